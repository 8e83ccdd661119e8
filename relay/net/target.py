"""One simulcast target: connect (TLS for rtmps), publish, send the live stream, reconnect.

A target runs one asyncio task per publish session of its live stream. Each attempt is a
fresh RTMP session: a new connection, a new Timeline starting at 0, an empty queue and
the hub's init burst (metadata, sequence headers, current GOP), so nothing stale is
replayed after a reconnect.

The publisher's read path reaches a target only through `offer()`, which queues the tag
and schedules one flush per event-loop iteration; it never awaits. The flush writes every
queued tag with one `writelines`. While the socket's buffer is over its high-water mark
the transport pauses us (`pause_writing`) and the queue's bound and drop policy take over.

Statuses use Mux's words: idle, starting, broadcasting, errored.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Callable
from typing import Any, cast

from relay.config import TargetConfig
from relay.fanout.backoff import Backoff
from relay.fanout.hub import Hub
from relay.fanout.queue import TargetQueue
from relay.fanout.timeline import Timeline
from relay.flv import Tag
from relay.logs import get_logger
from relay.net.reasons import describe_connection_error
from relay.rtmp.chunk import EXTENDED, encode_body
from relay.rtmp.connection import ClientConnection
from relay.rtmp.errors import ProtocolError
from relay.rtmp.events import Connected, PublishStarted, ReconnectRequested, Refused, StatusReceived
from relay.secret import redact

IDLE = "idle"
STARTING = "starting"
BROADCASTING = "broadcasting"
ERRORED = "errored"

WRITE_HIGH_WATER = 512 * 1024  # the transport's own buffer; the queue's bound applies past it
CLOSE_TIMEOUT = 2.0


class TargetFailure(Exception):
    """Why an attempt ended; its text is safe to log (keys redacted)."""


class _TargetProtocol(asyncio.Protocol):
    """asyncio glue around one ClientConnection."""

    def __init__(self, conn: ClientConnection, target: Target) -> None:
        loop = asyncio.get_running_loop()
        self.conn = conn
        self.target = target
        self.transport: asyncio.Transport | None = None
        self.connected: asyncio.Future[None] = loop.create_future()
        self.published: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[str] = loop.create_future()
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.write_output()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        try:
            conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                if isinstance(event, Connected):
                    _settle(self.connected)
                elif isinstance(event, PublishStarted):
                    _settle(self.published)
                elif isinstance(event, Refused):
                    self.fail(f"the platform refused {event.stage}: {event.code} "
                              f"{self.target.redact(event.description)}".rstrip())
                    return
                elif isinstance(event, ReconnectRequested):
                    self.fail("the platform asked for a reconnect (NetConnection.Connect.ReconnectRequest)")
                    return
                elif isinstance(event, StatusReceived):
                    self.target.log.info("target_status_message", level=event.level, code=event.code,
                                         description=self.target.redact(event.description))
                    if event.level == "error":
                        self.fail(f"the platform reported {event.code}")
                        return
        except ProtocolError as exc:
            self.fail(f"protocol error from the platform: {exc}")
            return
        self.write_output()

    def write_output(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            out = self.conn.take_output()
            if out:
                self.transport.writelines(out)

    def fail(self, reason: str) -> None:
        """End this connection with a reason; everything waiting on it wakes up."""
        for future in (self.connected, self.published):
            if not future.done():
                future.set_exception(TargetFailure(reason))
                future.exception()  # retrieved here so an unawaited one never warns
        if not self.closed.done():
            self.closed.set_result(reason)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = "the platform closed the connection" if exc is None else f"connection lost: {exc}"
        self.fail(reason)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.target.schedule_flush()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Target:
    """A simulcast target of one live stream, with its status and counters."""

    def __init__(self, live_stream: str, config: TargetConfig, hub: Hub,
                 rand: Callable[[], float] = random.random) -> None:
        self.live_stream = live_stream
        self.config = config
        self.hub = hub
        self.log = get_logger(live_stream=live_stream, target=config.passthrough)
        self.status = IDLE
        self.reason: str | None = None
        self.next_attempt_in: float | None = None
        self.queue = TargetQueue(config.queue.max_bytes, int(config.queue.max_seconds * 1000))
        self.backoff = Backoff(config.reconnect.initial_delay, config.reconnect.max_delay, rand)
        self.sent_tags = 0
        self.sent_bytes = 0
        self._timeline = Timeline()
        self._proto: _TargetProtocol | None = None
        self._flush_scheduled = False
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._restart = False

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Begin a publish session: connect and keep reconnecting until stop()."""
        self._stop = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"target {self.config.passthrough}")
        else:
            self._restart = True  # the previous session is still closing: run again after it

    def request_stop(self) -> None:
        """End the publish session: flush, unpublish, close."""
        self._restart = False
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """True when no session task is running."""
        return self._task is None or self._task.done()

    async def wait_stopped(self, timeout: float) -> None:
        """Wait for the session task to finish, cancelling it after `timeout`."""
        task = self._task
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            await asyncio.wait({task})

    def redact(self, text: str) -> str:
        """Text from the platform with this target's key removed (some echo the stream name)."""
        return redact(text, [self.config.stream_key])

    # -- the publisher's side ----------------------------------------------------------

    def offer(self, tag: Tag) -> None:
        """Queue a tag for this target (called on the publisher's read path; never blocks)."""
        self.queue.push(tag)
        self.schedule_flush()

    def schedule_flush(self) -> None:
        """Arrange one flush in this loop iteration, however many tags arrive before it."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        proto = self._proto
        if proto is None or proto.paused or proto.transport is None or proto.transport.is_closing():
            return
        conn = proto.conn
        chunk_size = conn.out_chunk_size
        timeline = self._timeline
        for tag in self.queue.pop_all():
            ts = timeline.map(tag)
            kind = tag.kind
            wire = tag.wire
            if ts < EXTENDED and isinstance(wire, tuple) and wire[0] == chunk_size:
                length, body = wire[1], wire[2]
            else:
                payload = conn.wire_payload(kind, tag.payload)
                length = len(payload)
                body = encode_body(payload, chunk_size, conn.csid_for(kind), ts)
                if ts < EXTENDED:
                    tag.wire = (chunk_size, length, body)  # every other target reuses these bytes
            conn.send_shared(kind, ts, length, body)
            self.sent_tags += 1
            self.sent_bytes += length
        proto.write_output()

    # -- the session ---------------------------------------------------------------

    def _set_status(self, status: str, reason: str | None = None, next_attempt_in: float | None = None) -> None:
        previous = self.status
        self.status, self.reason, self.next_attempt_in = status, reason, next_attempt_in
        if previous != status or status == ERRORED:
            fields: dict[str, Any] = {"from_status": previous, "to_status": status}
            if reason:
                fields["reason"] = reason
            if next_attempt_in is not None:
                fields["retry_in_s"] = round(next_attempt_in, 2)
            self.log.info("target_status", **fields)

    async def _run(self) -> None:
        while True:
            await self._session(self._stop)
            if not self._restart:
                return
            self._restart = False

    async def _session(self, stop: asyncio.Event) -> None:
        self.backoff.reset()
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._set_status(STARTING)
            broadcast_started: list[float] = []
            try:
                await self._attempt(stop, broadcast_started)
                reason = None
            except TargetFailure as exc:
                reason = str(exc)
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                reason = describe_connection_error(exc, self.config.host, self.config.port)
            if stop.is_set():
                break
            if broadcast_started and loop.time() - broadcast_started[0] >= self.config.reconnect.reset_after:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            self._set_status(ERRORED, reason or "the connection ended", delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
        self._set_status(IDLE)

    async def _attempt(self, stop: asyncio.Event, broadcast_started: list[float]) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        conn = ClientConnection(cfg.app, cfg.tc_url, cfg.stream_key.reveal())
        proto = _TargetProtocol(conn, self)
        timeouts = cfg.timeouts
        ssl_context = self._ssl_context() if cfg.scheme == "rtmps" else None
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: proto, cfg.host, cfg.port, ssl=ssl_context,
                                       server_hostname=cfg.host if ssl_context else None,
                                       ssl_handshake_timeout=timeouts.handshake if ssl_context else None),
                timeouts.connect,
            )
        except TimeoutError:
            raise TargetFailure(f"no connection to {cfg.host}:{cfg.port} within {timeouts.connect:g} s") from None
        try:
            await _within(proto.connected, timeouts.handshake, "the RTMP handshake and connect")
            await _within(proto.published, timeouts.publish, "the answer to publish")
            self._proto = proto
            self._timeline = Timeline()
            self.queue.clear()
            broadcast_started.append(loop.time())
            self._set_status(BROADCASTING)
            for tag in self.hub.join(self):
                self.queue.push(tag)
            self._flush()
            stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
            try:
                closed: asyncio.Future[Any] = proto.closed
                await asyncio.wait({stopper, closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
            if proto.closed.done():
                raise TargetFailure(proto.closed.result())
            await self._close_cleanly(proto)
        finally:
            self.hub.leave(self)
            self._proto = None
            if proto.transport is not None:
                proto.transport.abort()

    async def _close_cleanly(self, proto: _TargetProtocol) -> None:
        """Send what is queued, unpublish, and close once the socket has drained."""
        self.hub.leave(self)
        proto.paused = False  # the transport buffers what is left; close() flushes it
        self._flush()
        try:
            proto.conn.unpublish()
        except ProtocolError:
            pass
        proto.write_output()
        transport = proto.transport
        assert transport is not None
        if transport.can_write_eof():
            # Half-close and let the platform close: closing outright would answer its
            # replies to deleteStream with a reset.
            transport.write_eof()
        else:
            transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(proto.closed), CLOSE_TIMEOUT)
        except TimeoutError:
            self.log.warning("target_close_timeout", timeout_s=CLOSE_TIMEOUT)

    def _ssl_context(self) -> ssl.SSLContext:
        cfg = self.config
        context = ssl.create_default_context(cafile=cfg.tls_ca_file)
        if not cfg.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


async def _within(future: asyncio.Future[None], timeout: float, what: str) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        raise TargetFailure(f"no reply to {what} within {timeout:g} s") from None
