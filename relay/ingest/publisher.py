"""The RTMP ingest: publishers (OBS, ffmpeg...) connect here and publish on a stream key.

Each connection is a ServerConnection driven from `data_received`: bytes in, events out,
answers written back at once. Media goes straight to the live stream's hub; nothing on
this path awaits a target.

Until a peer publishes with a valid key it is a stranger, and the port is on the
internet. Every limit comes from the config's `server.limits` (read when the connection
opens, so a reload applies to new connections):
- admission (admission.py): connections in total and per address, and addresses that
  guessed keys, are refused at accept, with one summary log line a second;
- deadlines from TCP accept: the RTMP handshake within `handshake_timeout` (for RTMPS,
  counted from the end of the TLS handshake, which has its own deadline: tlsgate.py) and
  publishing within `publish_timeout`; a publisher that sends nothing for `idle_timeout`
  is gone (a dead link sends no FIN);
- memory and work per read are bounded by the RTMP core, which gets the limits too, and
  the loop time all strangers together use per iteration by a budget (workbudget.py);
- replies: a peer that does not read what we answer is closed (replyflow.py).

A peer that breaks the protocol has its connection closed and one log line written
(lines about peers that never published are rate-limited). Strings the peer sent are
logged through `peer_text` (cut, with their length); the stream key it tried is never
logged, only its fingerprint.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from relay.config import IngestLimits
from relay.fanout.enhanced import declares_enhanced
from relay.flv import Tag
from relay.runtime.logs import get_logger, peer_text
from relay.ingest.admission import Admission, PeerLogBudget, address_key
from relay.live.stream import LiveStream
from relay.ingest.readbatch import ReadBatch
from relay.ingest.replyflow import ReplyFlow
from relay.runtime.workbudget import IterationBudget
from relay.runtime.writetick import write_ticker
from relay.rtmp.errors import ProtocolError
from relay.rtmp.events import ConnectRequest, DataDropped, Media, PublishEnded, PublishRequest
from relay.rtmp.server import ServerConnection
from relay.rtmp.states import HANDSHAKE
from relay.secret import Secret

BAD_NAME = "NetStream.Publish.BadName"
#: Seconds a closed connection may take to flush its last answer before it is aborted
#: (a peer that does not read would otherwise hold its socket open).
CLOSE_GRACE = 2.0
#: Bytes of a stranger's input fed to the core at a time: the most work done past the
#: loop's budget for strangers (workbudget.py) is one slice, well under a millisecond.
FEED_SLICE = 4096


@dataclass(eq=False)
class IngestSettings:
    """What every ingest connection shares; a reload replaces `app` and `limits` for new connections."""

    app: str
    limits: IngestLimits
    find: Callable[[str], LiveStream | None]
    admission: Admission
    log_budget: PeerLogBudget
    budget: IterationBudget = field(default_factory=IterationBudget)
    connections: set[IngestProtocol] = field(default_factory=set)


def new_server_connection(limits: IngestLimits) -> ServerConnection:
    """The sans-I/O connection of one publisher, bounded by the config's limits."""
    return ServerConnection(
        max_chunk_size=limits.max_chunk_size,
        max_message_size=limits.max_message_size,
        max_command_size=limits.max_command_size,
        max_unauthenticated_memory=limits.max_unauthenticated_memory,
        max_output_bytes=limits.max_output_bytes,
    )


class IngestProtocol(asyncio.Protocol):
    """One publisher connection (plain TCP, or TLS after tlsgate's handshake)."""

    def __init__(self, settings: IngestSettings, *, accepted_at: float | None = None,
                 admitted_address: str | None = None) -> None:
        self.settings = settings
        self.limits = settings.limits
        self.conn = new_server_connection(self.limits)
        self.loop = asyncio.get_running_loop()
        now = self.loop.time()
        # RTMPS: the gate took the TCP connection earlier and counted it in already.
        self.accepted_at = now if accepted_at is None else accepted_at
        self.address = admitted_address
        self._admitted = admitted_address is not None
        self.handshake_deadline = float("inf")  # set when the transport is made
        self.publish_deadline = self.accepted_at + self.limits.publish_timeout
        self.transport: asyncio.Transport | None = None
        self.flow: ReplyFlow | None = None
        self.live: LiveStream | None = None
        self.peer = "?"
        self._log: Any = None  # made on first use: most strangers never get a line of their own
        self.last_data = now
        self.timer: asyncio.TimerHandle | None = None
        self.declares_enhanced = False  # its connect declared Enhanced RTMP (fourCcList...)
        self.closing = False
        self._abort_timer: asyncio.TimerHandle | None = None
        self._backlog: deque[memoryview] = deque()  # read and not yet fed to the core (a stranger's)
        self._continuing = False
        self._paused_for: set[str] = set()  # why reading is paused: "replies", "budget", "batch"
        self._batch: ReadBatch | None = None  # a publisher on plain TCP: reads once per write interval
        self._encoder: dict[str, Any] = {}
        # Set by the RTMPS gate while the TLS handshake runs: how to end it if evicted (admission.py).
        self.on_evict: Callable[[], None] | None = None

    @property
    def log(self) -> Any:
        """The logger of this connection (peer=, and live_stream= once publishing)."""
        if self._log is None:
            self._log = get_logger(peer=self.peer)
        return self._log

    # -- transport callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        transport = cast(asyncio.Transport, transport)
        if self.closing:
            return  # a TLS connection that was lost before it was handed over
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if peer else "?"
        self.peer = f"{host}:{peer[1]}" if peer else "?"
        if not self._admitted:
            self.address = address_key(host)
            if not self.settings.admission.admit(self.address, self):
                self.closing = True
                transport.abort()  # refused: no handshake, no reply, no log line of its own
                return
            self._admitted = True
        self.transport = transport
        # For RTMPS, the RTMP handshake's deadline starts when the TLS handshake is done.
        self.handshake_deadline = self.loop.time() + self.limits.handshake_timeout
        self.flow = ReplyFlow(transport, self.limits.max_output_bytes, self.loop.time)
        self.settings.connections.add(self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.closing:
            return
        self.last_data = self.loop.time()
        live = self.live
        if live is not None and not self._backlog:
            self._feed(data)  # a publisher: all of it, now
            batch = self._batch
            if batch is not None and self.live is live and not self.closing:
                interval = live.read_interval
                if batch.after_read(len(data), interval, live.read_phase):
                    live.read_batch_done(interval)
            return
        self._backlog.append(memoryview(data))
        self._work()

    def _work(self) -> None:
        """Feed a stranger's input to the core a slice at a time, within the loop's budget for strangers."""
        budget = self.settings.budget
        backlog = self._backlog
        while backlog and not self.closing:
            stranger = self.live is None
            if stranger and budget.exhausted:
                # The rest in a later iteration; read nothing more until then.
                if not self._continuing:
                    self._continuing = True
                    budget.deferred += 1
                    self._pause_reading("budget")
                    self.loop.call_soon(self._continue)
                return
            piece = backlog[0]
            if stranger and len(piece) > FEED_SLICE:
                backlog[0] = piece[FEED_SLICE:]
                piece = piece[:FEED_SLICE]
            else:
                backlog.popleft()
            started = budget.clock()
            self._feed(piece)
            if stranger:
                budget.charge(budget.clock() - started)
        self._resume_reading("budget")

    def _continue(self) -> None:
        self._continuing = False
        if not self.closing:
            self._work()

    def _feed(self, data: bytes | memoryview) -> None:
        """Bytes to the RTMP core; its events to the live stream and the handlers; answers out."""
        conn = self.conn
        try:
            conn.receive_data(data)
            while not self.closing and (event := conn.next_event()) is not None:
                if isinstance(event, Media):
                    if self.live is not None:
                        self.live.publish(Tag(event.kind, event.timestamp, event.payload))
                elif isinstance(event, ConnectRequest):
                    self._on_connect(event)
                elif isinstance(event, PublishRequest):
                    self._on_publish(event)
                elif isinstance(event, PublishEnded):
                    self._release(f"publisher sent {event.command}", clean=True)
                    self.publish_deadline = self.loop.time() + self.limits.publish_timeout
                    self._arm()
                elif isinstance(event, DataDropped):
                    self.log.warning("script_tag_dropped", size=event.size, timestamp=event.timestamp,
                                     reason=event.reason)
        except ProtocolError as exc:
            self._warn("ingest_protocol_error", **peer_text("error", str(exc)))
            self._close(abort=True)  # nothing more is written: the buffer would go with the abort
            drop_frames(exc)
            return
        if not self.closing:
            self._write()

    def pause_batch(self) -> None:
        self._pause_reading("batch")

    def resume_batch(self) -> None:
        self._resume_reading("batch")

    def _pause_reading(self, reason: str) -> None:
        if not self._paused_for and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self._paused_for.add(reason)

    def _resume_reading(self, reason: str) -> None:
        if reason not in self._paused_for:
            return
        self._paused_for.discard(reason)
        if not self._paused_for and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        if self.flow is not None:
            self.flow.pause()
            # Stop reading too: a peer that does not read must not make us produce more replies.
            self._pause_reading("replies")
            self._arm()

    def resume_writing(self) -> None:
        if self.flow is not None and not self.closing:
            self.flow.resume()
            self._resume_reading("replies")
            self._write()
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        for timer in (self.timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self._abort_timer = None
        self.release_admission()
        if self.transport is None:
            return  # refused at admission, or a TLS connection lost before it was handed over
        self.settings.connections.discard(self)
        # No FCUnpublish/deleteStream first: the publisher may come back (reconnect window).
        self._release("connection closed" if exc is None else f"connection lost: {exc}", clean=False)

    def release_admission(self) -> None:
        """Count this connection out of the admission limits (once, whoever calls first)."""
        if self._admitted and self.address is not None:
            self._admitted = False
            self.settings.admission.release(self.address, self)

    def evict(self) -> None:
        """Admission counted this stranger out to make room for a newcomer: close it now."""
        self._admitted = False
        if self.on_evict is not None:
            self.on_evict()  # still in its TLS handshake: the gate ends it
        if self.transport is not None and not self.closing:
            self._close(abort=True)

    # -- deadlines -------------------------------------------------------------------

    def _arm(self) -> None:
        """(Re)arm the one timer at the earliest deadline that applies now."""
        if self.closing:
            return
        limits = self.limits
        flow = self.flow
        if flow is not None and flow.paused_since is not None:
            # We stopped reading the peer ourselves: its silence is not idleness.
            when = flow.paused_since + limits.idle_timeout
            if self.live is None:
                when = min(when, self.publish_deadline)
        elif self.live is None:
            when = self.publish_deadline
            if self.conn.state == HANDSHAKE:
                when = min(when, self.handshake_deadline)
        else:
            when = self.last_data + limits.idle_timeout
        if self.timer is not None:
            if self.timer.when() == when:
                return
            self.timer.cancel()
        self.timer = self.loop.call_at(when, self._check_deadlines)

    def _check_deadlines(self) -> None:
        """Close connections that never publish, publishers that went silent, peers that stopped reading."""
        self.timer = None
        if self.closing:
            return
        now = self.loop.time()
        limits = self.limits
        flow = self.flow
        reason = None
        if flow is not None and flow.paused and flow.stalled_for() >= limits.idle_timeout:
            reason = f"the peer has not read our replies for {flow.stalled_for():.0f} s"
        elif self.live is None:
            if self.conn.state == HANDSHAKE and now >= self.handshake_deadline:
                reason = f"RTMP handshake not done {limits.handshake_timeout:g} s after connecting"
            elif now >= self.publish_deadline:
                reason = f"not publishing {limits.publish_timeout:g} s after connecting"
        elif now - self.last_data >= limits.idle_timeout:
            reason = f"no data from the publisher for {now - self.last_data:.0f} s"
        if reason is None:
            self._arm()
            return
        self._warn("ingest_timeout", reason=reason)
        self._close(abort=True)

    # -- events ------------------------------------------------------------------------

    def _on_connect(self, event: ConnectRequest) -> None:
        props = event.properties
        self.declares_enhanced = declares_enhanced(props)
        self._encoder = peer_text("encoder", props.get("flashVer")) if isinstance(props.get("flashVer"), str) else {}
        app = event.app.strip("/")
        if app != self.settings.app:
            # Only the first segment: an encoder set up with "rtmp://host/live/KEY" as its
            # server would otherwise put the key in this line. Of the tcUrl, only the host.
            self._warn("connect_rejected", **peer_text("app", app.split("/")[0]),
                       **peer_text("tc_url_host", _host_of(event.tc_url)), reason="unknown application")
            self.conn.reject_connect(f"Unknown application; publish to /{self.settings.app}.")
            self._write()
            self._close()
            return
        self.conn.accept_connect()

    def _on_publish(self, event: PublishRequest) -> None:
        admission = self.settings.admission
        assert self.address is not None
        if admission.is_blocked(self.address):
            # Opened before the address was blocked: no more guesses on it either.
            self.conn.reject_publish(BAD_NAME, "Too many attempts with a wrong stream key.")
            self._write()
            self._close()
            return
        # OBS and ffmpeg may append query parameters to the stream name.
        key = event.stream_name.split("?", 1)[0]
        live = self.settings.find(key)
        if live is None:
            fingerprint = Secret(key).fingerprint if key else "empty"
            admission.publish_failed(self.address)
            self._warn("publish_rejected", reason="unknown stream key", key_sha256=fingerprint)
            self.conn.reject_publish(BAD_NAME, "Unknown stream key.")
            self._write()
            self._close()
            return
        if not live.claim(self, declares_enhanced=self.declares_enhanced):
            self._warn("publish_rejected", live_stream=live.name, reason="already publishing")
            self.conn.reject_publish(BAD_NAME, "This live stream already has a publisher.")
            self._write()
            self._close()
            return
        self.live = live
        self.settings.admission.trusted(self)  # a publisher now: never evicted for a newcomer
        self._log = self.log.bind(live_stream=live.name)
        if self.transport is not None and self.transport.get_extra_info("ssl_object") is None:
            self._batch = ReadBatch(self, write_ticker())
        self.conn.accept_publish()
        self.log.info("publish_started", **self._encoder)
        self._arm()

    def _release(self, reason: str, clean: bool) -> None:
        live, self.live = self.live, None
        if self._batch is not None:
            self._batch.cancel()
            self._batch = None
        if live is not None:
            # What this publisher sent (the live stream's meter was reset when it claimed the stream).
            meter = live.meter
            self.log.info("publish_ended", reason=reason, clean=clean,
                          duration_s=round(max(0.0, self.loop.time() - meter.started), 1),
                          bytes_received=meter.bytes_received, video_frames=meter.video_frames,
                          audio_frames=meter.audio_frames)
            live.release(self, reason, clean)

    # -- output and closing ------------------------------------------------------------

    def _write(self) -> None:
        transport, flow = self.transport, self.flow
        if transport is None or flow is None or transport.is_closing():
            return
        if not flow.paused:
            out = self.conn.take_output()
            if out:
                transport.writelines(out)
        unsent = self.conn.output_bytes
        if flow.over_budget(unsent):
            self._warn("ingest_peer_not_reading", queued_bytes=transport.get_write_buffer_size() + unsent,
                       max_output_bytes=flow.max_output_bytes)
            self._close(abort=True)

    def _warn(self, event: str, **fields: Any) -> None:
        """A warning about this peer; rate-limited while it has not published (it may be one of a flood)."""
        if self.live is not None or self.settings.log_budget.allow(event):
            self.log.warning(event, **fields)

    def _close(self, abort: bool = False) -> None:
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        transport = self.transport
        if transport is None:
            return
        if abort:
            transport.abort()
        elif not transport.is_closing():
            transport.close()
            # close() waits for the buffer to drain, which a peer that does not read never lets happen.
            self._abort_timer = self.loop.call_later(CLOSE_GRACE, transport.abort)

    def cut_off(self, reason: str) -> None:
        """End this publisher's session now, without a reconnect window (shutdown, revoked key, removed stream)."""
        self._release(reason, clean=True)
        self._close()

    def close(self) -> None:
        """Shut this connection (daemon shutdown)."""
        self.cut_off("relay shutting down")


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


def _host_of(tc_url: str | None) -> str | None:
    """The host of a tcUrl (its path may hold a key)."""
    if not tc_url:
        return None
    try:
        return urlsplit(tc_url[:1024]).hostname
    except ValueError:
        return None
