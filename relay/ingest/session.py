"""What one ingest peer says, and what it leads to: the RTMP conversation of a connection.

The connection (publisher.py) owns the transport: admission, reads, replies, deadlines,
closing. This is the other half: its bytes fed to the sans-I/O ServerConnection, and the
core's events handled. Media goes to the live stream's hub as the core made it (the only
per-tag work here); `connect` and `publish` are answered as verdicts.py decides, the
verdict carried out here (a wrong key counted, the line logged, the answer written, the
connection closed; or the live stream claimed); a publish session starts with
`publish_started` and ends, whoever ends it, with one `publish_ended` line carrying what
the publisher sent.

Strings the peer sent are logged through `peer_text` (cut, with their length); the
stream key it tried is never logged, only its fingerprint. Lines about a peer that has
not published are rate-limited (it may be one of a flood).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from relay.fanout.enhanced import declares_enhanced
from relay.ingest.admission import Admission, PeerLogBudget
from relay.ingest.readbatch import Batched, ReadBatch
from relay.ingest.verdicts import ACCEPT, CONNECT_REJECTED, Reject, connect_verdict, publish_verdict, stream_key
from relay.live.stream import LiveStream
from relay.runtime.logs import get_logger, peer_text
from relay.runtime.writetick import write_ticker
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.errors import ProtocolError
from relay.rtmp.events import ConnectRequest, DataDropped, PublishEnded, PublishRequest
from relay.rtmp.server import ServerConnection


class Settings(Protocol):
    """What the conversation reads of the ingest's settings (IngestSettings, publisher.py)."""

    @property
    def app(self) -> str: ...
    @property
    def find(self) -> Callable[[str], LiveStream | None]: ...
    @property
    def admission(self) -> Admission: ...
    @property
    def log_budget(self) -> PeerLogBudget: ...


class Owner(Batched, Protocol):
    """The connection this is the conversation of (IngestProtocol), passed to each call."""

    @property
    def address(self) -> str | None: ...
    @property
    def closing(self) -> bool: ...
    @property
    def transport(self) -> asyncio.Transport | None: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def write(self) -> None:
        """Send what the core has queued for the peer."""

    def end(self, abort: bool = False) -> None:
        """Close the connection: at once, or after the last answer is flushed."""

    def arm(self) -> None:
        """The phase changed: re-arm the deadline timer."""

    def unpublished(self) -> None:
        """The publisher stopped its stream: its publish deadline starts again."""

    def cut_off(self, reason: str) -> None:
        """End the publish session and close (the live stream asks)."""

    def evict(self) -> None:
        """Close now (admission counted it out)."""


class IngestSession:
    """The core of one connection fed, its events handled, its publish session claimed and released.

    It holds no reference to its connection, which is passed to each call: a cycle between
    them would outlive the connection until the cyclic GC, which runs seldom
    (relay/runtime/gcpolicy.py).
    """

    __slots__ = ("settings", "conn", "peer", "live", "batch", "declares_enhanced", "encoder", "_log")

    def __init__(self, settings: Settings, conn: ServerConnection) -> None:
        self.settings = settings
        self.conn = conn
        self.peer = "?"  # host:port, once the transport is made
        self.live: LiveStream | None = None  # the live stream it publishes to (None: a stranger)
        self.batch: ReadBatch | None = None  # a publisher on plain TCP: reads once per write interval
        self.declares_enhanced = False  # its connect declared Enhanced RTMP (fourCcList...)
        self.encoder: dict[str, Any] = {}  # its connect's flashVer, as log fields
        self._log: Any = None  # made on first use: most strangers never get a line of their own

    @property
    def log(self) -> Any:
        """The logger of this connection (peer=, and live_stream= once publishing)."""
        if self._log is None:
            self._log = get_logger(peer=self.peer)
        return self._log

    def warn(self, event: str, **fields: Any) -> None:
        """A warning about this peer; rate-limited while it has not published (it may be one of a flood)."""
        if self.live is not None or self.settings.log_budget.allow(event):
            self.log.warning(event, **fields)

    def feed(self, owner: Owner, data: bytes | memoryview) -> None:
        """Bytes to the RTMP core; its events to the live stream and the handlers; answers out."""
        conn = self.conn
        try:
            conn.receive_data(data)
            while not owner.closing and (event := conn.next_event()) is not None:
                if isinstance(event, EncodedMessage):  # a message of the published stream
                    if self.live is not None:
                        self.live.publish(event)  # as it is: the hub keeps and sends this very object
                elif isinstance(event, ConnectRequest):
                    self._on_connect(owner, event)
                elif isinstance(event, PublishRequest):
                    self._on_publish(owner, event)
                elif isinstance(event, PublishEnded):
                    self.release(owner, f"publisher sent {event.command}", clean=True)
                    owner.unpublished()
                elif isinstance(event, DataDropped):
                    self.log.warning("script_tag_dropped", size=event.size, timestamp=event.timestamp,
                                     reason=event.reason)
        except ProtocolError as exc:
            self.warn("ingest_protocol_error", **peer_text("error", str(exc)))
            owner.end(abort=True)  # nothing more is written: the buffer would go with the abort
            drop_frames(exc)
            return
        if not owner.closing:
            owner.write()

    def _on_connect(self, owner: Owner, event: ConnectRequest) -> None:
        props = event.properties
        self.declares_enhanced = declares_enhanced(props)
        encoder = props.get("flashVer")
        self.encoder = peer_text("encoder", encoder) if isinstance(encoder, str) else {}
        verdict = connect_verdict(event.app, event.tc_url, self.settings.app)
        if isinstance(verdict, Reject):
            self._refuse(owner, verdict)
            return
        self.conn.accept_connect()

    def _on_publish(self, owner: Owner, event: PublishRequest) -> None:
        settings = self.settings
        assert owner.address is not None
        key = stream_key(event.stream_name)
        blocked = settings.admission.is_blocked(owner.address)
        live = None if blocked else settings.find(key)
        claimed = live is not None and live.claim(owner, declares_enhanced=self.declares_enhanced)
        verdict = publish_verdict(blocked=blocked, key=key, live_stream=None if live is None else live.name,
                                  claimed=claimed)
        if isinstance(verdict, Reject):
            self._refuse(owner, verdict)
            return
        assert live is not None and verdict is ACCEPT
        self.live = live
        settings.admission.trusted(owner)  # a publisher now: never evicted for a newcomer
        self._log = self.log.bind(live_stream=live.name)
        transport = owner.transport
        if transport is not None and transport.get_extra_info("ssl_object") is None:
            self.batch = ReadBatch(owner, write_ticker())
        self.conn.accept_publish()
        self.log.info("publish_started", **self.encoder)
        owner.arm()

    def _refuse(self, owner: Owner, verdict: Reject) -> None:
        """Carry out a rejected connect or publish: count the guess, log, answer, close."""
        if verdict.key_failed and owner.address is not None:
            self.settings.admission.publish_failed(owner.address)
        if verdict.event is not None:
            fields: dict[str, Any] = {}
            for name, value in verdict.peer_fields:
                fields.update(peer_text(name, value))
            fields.update(verdict.fields)
            self.warn(verdict.event, **fields)
        if verdict.code == CONNECT_REJECTED:
            self.conn.reject_connect(verdict.description)
        else:
            self.conn.reject_publish(verdict.code, verdict.description)
        owner.write()
        owner.end()

    def release(self, owner: Owner, reason: str, clean: bool) -> None:
        """End the publish session, if there is one: its line, and the live stream let go."""
        live, self.live = self.live, None
        if self.batch is not None:
            self.batch.cancel()
            self.batch = None
        if live is not None:
            # What this publisher sent (the live stream's meter was reset when it claimed the stream).
            meter = live.meter
            self.log.info("publish_ended", reason=reason, clean=clean,
                          duration_s=round(max(0.0, owner.loop.time() - meter.started), 1),
                          bytes_received=meter.bytes_received, video_frames=meter.video_frames,
                          audio_frames=meter.audio_frames)
            live.release(owner, reason, clean)


def drop_frames(exc: BaseException) -> None:
    """Let go of the frames an exception (and those chained to it) holds.

    The core keeps its error (sticky), and the error's traceback holds the frames it passed
    through, which hold this connection and the bytes of its last read: a reference cycle
    that only the cyclic GC frees, late. After a flood of garbage that was megabytes of
    reads held for no reason (and a full collection costs the loop ~100 ms).
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
