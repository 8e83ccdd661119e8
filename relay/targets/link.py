"""One outbound RTMP connection of a target: TCP (TLS for rtmps), handshake, connect, publish.

`open_link()` returns a TargetLink once the platform answered NetStream.Publish.Start, or
raises TargetFailure with a reason a person understands. After that the link reports
the platform's messages and its own end through callbacks and the `closed` future; the
target decides what to send and when (supervisor.py, writer.py).

Flow control (paused, writable, drain, the write deadline) is one FlowControl object
(flowcontrol.py): a peer that stops reading for `max_behind_seconds` fails the link
instead of hanging it.

What the platform sends is untrusted (the target's `limits`): the connection takes
messages up to `max_message_size` and chunk sizes from 128 to `max_chunk_size`, and fails
past `max_output_bytes` of replies it queued by itself; its input is fed a slice at a
time within a share of each loop iteration, and not at all while the platform does not
read (intake.py); the target's lines about what the platform says are rate-limited
(relay/runtime/linebudget.py, one budget per target, shared by its links).

An Enhanced RTMP reconnect request names where to reconnect (a tcUrl). It may come from
anyone on the path of a plain rtmp connection, and following it moves the stream key
there, so it is followed only to the target's own host or a host listed in the target's
`reconnect_hosts`; anything else reconnects to the configured url (`reconnect_endpoint`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from relay.config import TargetConfig
from relay.fanout.primer import Primer
from relay.runtime.linebudget import LineBudget
from relay.runtime.logs import PEER_TEXT_LIMIT
from relay.targets.flowcontrol import FlowControl
from relay.targets.intake import Intake
from relay.targets.reasons import describe_connection_error
from relay.rtmp.client import ClientConnection
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.errors import ProtocolError
from relay.rtmp.events import Connected, PublishStarted, ReconnectRequested, Refused, StatusReceived
from relay.secret import redact

WRITE_HIGH_WATER = 512 * 1024  # the transport's own buffer; the target's queue bound applies past it
CLOSE_TIMEOUT = 2.0
_KEY_REFUSALS = ("NetStream.Publish.BadName", "NetStream.Publish.Denied", "NetConnection.Connect.Rejected")


class TargetFailure(Exception):
    """Why an attempt or a link ended; its text is safe to log (keys redacted).

    `refused` marks the platform turning the stream key (or the connect) down, which
    counts toward giving up with a fatal error.
    """

    def __init__(self, reason: str, refused: bool = False) -> None:
        super().__init__(reason)
        self.refused = refused


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a link connects: the config's url, or a tcUrl from a reconnect request."""

    host: str
    port: int
    app: str
    tc_url: str


class LinkOwner:
    """What a link tells its target."""

    _platform_log: LineBudget | None = None

    def platform_log(self, per_second: int) -> LineBudget:
        """The budget of this target's log lines about its platform, one for all its links."""
        budget = self._platform_log
        if budget is None or budget.per_second != per_second:
            budget = self._platform_log = LineBudget(
                per_second, "target_log_suppressed", f"the platform says more than log_lines_per_second ({per_second})")
        return budget

    def link_resumed(self, link: TargetLink) -> None:
        """The transport can take data again."""

    def link_blocked(self, link: TargetLink) -> None:
        """The transport cannot take data now (paused or failed)."""

    def link_reconnect_requested(self, link: TargetLink, tc_url: str | None) -> None:
        """The platform asked for a reconnect (Enhanced RTMP)."""

    def link_message(self, link: TargetLink, level: str, code: str, description: str) -> None:
        """An onStatus the link did not act on."""


class TargetLink(asyncio.Protocol):
    """asyncio glue around one ClientConnection."""

    def __init__(self, conn: ClientConnection, owner: LinkOwner, config: TargetConfig) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.conn = conn
        self.owner = owner
        self.config = config
        self.transport: asyncio.Transport | None = None
        self.connected: asyncio.Future[None] = loop.create_future()
        self.published: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[TargetFailure] = loop.create_future()
        stall = config.queue.max_behind_seconds
        self.flow = FlowControl(loop, stall, lambda: self.fail(TargetFailure(
            f"the platform stopped reading: no write progress for {stall:g} s")))
        self.closing = False  # unpublished: nothing more may be sent
        self.half_closed = False  # our end is shut (write_eof): the platform's input is read, never answered
        # What this connection has been sent: onMetaData and sequence headers before any frame.
        self.primer: Primer[EncodedMessage] = Primer()
        self.intake = Intake(loop, self._feed)
        self.lines = owner.platform_log(config.limits.log_lines_per_second)

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.intake.attach(self.transport)
        self.write_output()

    def data_received(self, data: bytes) -> None:
        self.intake.received(data)

    def _feed(self, data: memoryview) -> bool:
        """A slice of the platform's input to the connection; False once the link has failed."""
        if self.closed.done():
            return False
        conn = self.conn
        try:
            conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                if isinstance(event, Connected):
                    _settle(self.connected)
                elif isinstance(event, PublishStarted):
                    _settle(self.published)
                elif isinstance(event, Refused):
                    self._on_refused(event)
                    return False
                elif isinstance(event, ReconnectRequested):
                    self.owner.link_reconnect_requested(self, event.tc_url)
                elif isinstance(event, StatusReceived):
                    description = self.redact(event.description)
                    code = self.redact(event.code)
                    self.owner.link_message(self, self.redact(event.level), code, description)
                    if event.level == "error":
                        self.fail(TargetFailure(f"the platform reported {code}: {description}".rstrip(": ")))
                        return False
        except ProtocolError as exc:
            self.fail(TargetFailure(f"protocol error from the platform: {self.redact(str(exc))}"))
            return False
        self.write_output()
        return not self.closed.done()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self.fail(TargetFailure("the platform closed the connection"))
        else:
            self.fail(TargetFailure(describe_connection_error(exc, self.config.host, self.config.port)))

    def pause_writing(self) -> None:
        self.flow.pause_writing()
        self.intake.hold()  # a platform that does not read cannot make us answer it more
        self.owner.link_blocked(self)

    def resume_writing(self) -> None:
        self.flow.resume_writing()
        self.intake.release()
        if self.writable:
            self.owner.link_resumed(self)

    # -- for the target --------------------------------------------------------------

    @property
    def writable(self) -> bool:
        """True when the link takes data now (not paused, not closing, not gone)."""
        return self.flow.writable

    @property
    def sendable(self) -> bool:
        """True while media may still be handed to the link (paused or not)."""
        return not self.closing and not self.closed.done()

    def send(self, messages: Sequence[EncodedMessage], stamps: Sequence[int]) -> int:
        """Write messages at these timestamps in one writelines; the payload bytes handed over."""
        conn = self.conn
        try:
            sent = conn.send_encoded(messages, stamps)
        except ProtocolError as exc:
            self.fail(TargetFailure(f"cannot send: {exc}"))
            return 0
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.writelines(conn.take_output())
        return sent

    def send_one(self, message: EncodedMessage, timestamp: int) -> int:
        """send() of one message: the write-per-tag path of write_interval 0."""
        try:
            sent = self.conn.send_message(message, timestamp)
        except ProtocolError as exc:
            self.fail(TargetFailure(f"cannot send: {exc}"))
            return 0
        self.write_output()
        return sent

    def write_output(self) -> None:
        """Hand everything the connection queued to the transport, in one writelines."""
        if self.transport is not None and not self.transport.is_closing():
            out = self.conn.take_output()
            if out and not self.half_closed:
                self.transport.writelines(out)

    def redact(self, text: str) -> str:
        """Text from the platform with the target's key removed (some echo the stream name), cut to
        PEER_TEXT_LIMIT characters: it goes into log lines and the status API's last_error."""
        text = redact(text, [self.config.stream_key])
        if len(text) > PEER_TEXT_LIMIT:
            text = f"{text[:PEER_TEXT_LIMIT]}… ({len(text)} characters)"
        return text

    def fail(self, failure: TargetFailure) -> None:
        """End the link with a reason; everything waiting on it wakes up."""
        for future in (self.connected, self.published):
            if not future.done():
                future.set_exception(failure)
                future.exception()  # retrieved here so an unawaited one never warns
        if not self.closed.done():
            self.closed.set_result(failure)
        self.intake.close()
        self.flow.connection_lost()
        if self.transport is not None:
            self.transport.abort()
        self.owner.link_blocked(self)

    async def drained(self, timeout: float) -> bool:
        """Wait until the link takes data again; False if it did not within `timeout` or is gone."""
        try:
            await asyncio.wait_for(self.flow.drain(), max(0.0, timeout))
        except TimeoutError:
            return False
        return self.writable

    async def close_cleanly(self) -> bool:
        """Unpublish, half-close, and wait for the platform to close; False if it did not in time."""
        self.closing = True
        self.flow.close()
        self.owner.link_blocked(self)
        try:
            self.conn.unpublish()
        except ProtocolError:
            pass
        self.write_output()
        transport = self.transport
        if transport is None or transport.is_closing():
            return True
        if transport.can_write_eof():
            # Half-close and let the platform close: closing outright would answer its
            # replies to deleteStream with a reset, and some servers then drop the tail.
            transport.write_eof()
            self.half_closed = True
        else:
            transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), CLOSE_TIMEOUT)
            return True
        except TimeoutError:
            transport.abort()
            return False

    def _on_refused(self, event: Refused) -> None:
        # Codes and descriptions are the platform's words: some echo the stream name.
        description = self.redact(event.description)
        code = self.redact(event.code)
        detail = f"{code}: {description}" if description else code
        if event.stage == "publish" and event.code in _KEY_REFUSALS:
            reason = f"the platform refused the stream key ({detail})"
        else:
            reason = f"the platform refused {event.stage} ({detail})"
        self.fail(TargetFailure(reason, refused=event.code in _KEY_REFUSALS))


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def ssl_context_for(config: TargetConfig) -> ssl.SSLContext:
    """Verification against the system store, or the target's own CA; none if tls_verify is false."""
    context = ssl.create_default_context(cafile=config.tls_ca_file)
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def open_link(config: TargetConfig, endpoint: Endpoint, owner: LinkOwner, *,
                    enhanced: bool = False) -> TargetLink:
    """Connect and publish; the link once the platform answered NetStream.Publish.Start.

    `enhanced`: announce Enhanced RTMP in connect (relay/fanout/enhanced.py decides).
    """
    loop = asyncio.get_running_loop()
    timeouts = config.timeouts
    limits = config.limits
    conn = ClientConnection(endpoint.app, endpoint.tc_url, config.stream_key.reveal(), enhanced=enhanced,
                            max_chunk_size=limits.max_chunk_size, max_message_size=limits.max_message_size,
                            max_output_bytes=limits.max_output_bytes)
    link = TargetLink(conn, owner, config)
    ssl_context = ssl_context_for(config) if config.scheme == "rtmps" else None
    try:
        await asyncio.wait_for(
            loop.create_connection(lambda: link, endpoint.host, endpoint.port, ssl=ssl_context,
                                   server_hostname=endpoint.host if ssl_context else None,
                                   ssl_handshake_timeout=timeouts.handshake if ssl_context else None),
            # TCP gets `connect`; the TLS handshake inside create_connection gets its own deadline.
            timeouts.connect + (timeouts.handshake if ssl_context else 0),
        )
    except TimeoutError:
        raise TargetFailure(f"no connection to {endpoint.host}:{endpoint.port} within {timeouts.connect:g} s") from None
    except (OSError, ssl.SSLError) as exc:
        raise TargetFailure(describe_connection_error(exc, endpoint.host, endpoint.port)) from None
    try:
        await _within(link.connected, timeouts.handshake, "the RTMP handshake and connect")
        await _within(link.published, timeouts.publish, "the answer to publish")
    except BaseException:
        link.fail(TargetFailure("attempt abandoned"))
        raise
    return link


async def _within(future: asyncio.Future[None], timeout: float, what: str) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        raise TargetFailure(f"no reply to {what} within {timeout:g} s") from None


def reconnect_endpoint(config: TargetConfig, tc_url: str | None) -> tuple[Endpoint, str | None]:
    """Where to follow a reconnect request, and the host it asked for if that one is refused.

    The platform's tcUrl is followed if it keeps the scheme (rtmps is never downgraded on
    the platform's word) and names the target's own host or one of its `reconnect_hosts`;
    otherwise, and without a usable tcUrl, the configured url is the endpoint.
    """
    default = Endpoint(config.host, config.port, config.app, config.tc_url)
    if not tc_url:
        return default, None
    try:
        parts = urlsplit(tc_url)
        port = parts.port
    except ValueError:
        return default, "(not a url)"
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != config.scheme or not host:
        return default, host or "(no host)"
    allowed = {h.lower().rstrip(".") for h in (config.host, *config.reconnect_hosts)}
    if host not in allowed:  # urlsplit's hostname is lowercase already
        return default, host
    app = parts.path.strip("/") or config.app
    return Endpoint(host, port or config.port, app, tc_url), None
