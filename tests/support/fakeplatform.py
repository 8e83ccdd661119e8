"""A fake streaming platform: an RTMP server made of the relay's own sans-I/O ServerConnection.

It runs its own asyncio loop in a background thread, so a synchronous test can wait on
the relay's log and on what the platform saw, side by side. It accepts every connect; a
publish is accepted, or refused with an error status (`refuse_publish=(code, text)`,
the way a platform turns down a wrong stream key; "{stream_name}" in the text is replaced
by the name published, as platforms that echo it do). With `reconnect_request_at_ms`, it
sends Enhanced RTMP's NetConnection.Connect.ReconnectRequest on its first connection once
media at that timestamp has arrived, and keeps reading.

Every connection is recorded (app, tcUrl, stream name, what was answered, the tags that
arrived while publishing, how it ended); tests read `connections` and wait with `wait_until`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from relay.flv import SCRIPT, Tag
from relay.rtmp import messages as m
from relay.rtmp.errors import ProtocolError
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.events import ConnectRequest, PublishEnded, PublishRequest
from relay.rtmp.server import ServerConnection
from testbed.background import BackgroundServer

RECONNECT_REQUEST = "NetConnection.Connect.ReconnectRequest"


@dataclass
class PlatformConnection:
    """What one connection to the fake platform did, in order."""

    index: int
    app: str | None = None
    tc_url: str | None = None
    connect_properties: dict[str, object] | None = None  # the connect command object (fourCcList...)
    stream_name: str | None = field(default=None, repr=False)  # a stream key: kept out of reprs
    published: bool = False  # we answered NetStream.Publish.Start
    refused: bool = False  # we answered publish with an error
    tags: list[Tag] = field(default_factory=list, repr=False)  # media and script data while publishing
    reconnect_requested_after: int | None = None  # len(tags) when the reconnect request went out
    unpublished: str | None = None  # FCUnpublish / deleteStream / closeStream, the first one seen
    closed: bool = False
    error: str | None = None

    @property
    def media(self) -> list[Tag]:
        """Audio and video tags (sequence headers included), script data left out."""
        return [t for t in self.tags if t.kind != SCRIPT]


class FakePlatform(BackgroundServer):
    """An RTMP server on 127.0.0.1 running in a thread; `url(app)` to target it."""

    thread_name = "fake platform"

    def __init__(self, *, refuse_publish: tuple[str, str] | None = None,
                 reconnect_request_at_ms: int | None = None, reconnect_tc_url: str | None = None,
                 port: int = 0) -> None:
        self.refuse_publish = refuse_publish
        self.reconnect_request_at_ms = reconnect_request_at_ms
        self.reconnect_tc_url = reconnect_tc_url
        super().__init__()
        self.port = port  # 0: the OS chooses; else one chosen earlier (a platform coming up late)
        self._connections: list[PlatformConnection] = []
        self._cond = threading.Condition()
        self._transports: set[asyncio.Transport] = set()

    def url(self, app: str = "live") -> str:
        """rtmp://127.0.0.1:PORT/APP"""
        return f"rtmp://127.0.0.1:{self.port}/{app}"

    @property
    def connections(self) -> list[PlatformConnection]:
        """Every connection so far, oldest first (the records are live: read them after waiting)."""
        with self._cond:
            return list(self._connections)

    # -- lifecycle ---------------------------------------------------------------------

    async def _listen(self, ready: threading.Event) -> None:
        assert self._stop is not None and self._loop is not None
        server = await self._loop.create_server(lambda: _PlatformProtocol(self), "127.0.0.1", self.port)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for transport in list(self._transports):
                transport.abort()

    # -- waiting -----------------------------------------------------------------------

    def wait_until(self, predicate: Callable[[list[PlatformConnection]], bool], timeout: float = 15.0,
                   what: str = "a condition on the fake platform") -> list[PlatformConnection]:
        """Wait until `predicate(connections)` holds; the connections then."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self._connections), timeout):
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; "
                                     f"connections: {self._connections}")
            return list(self._connections)

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()


class _PlatformProtocol(asyncio.Protocol):
    """One connection to the fake platform."""

    def __init__(self, platform: FakePlatform) -> None:
        self.platform = platform
        self.conn = ServerConnection()
        self.transport: asyncio.Transport | None = None
        with platform._cond:
            self.record = PlatformConnection(len(platform._connections))
            platform._connections.append(self.record)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.platform._transports.add(self.transport)

    def data_received(self, data: bytes) -> None:
        conn, record, platform = self.conn, self.record, self.platform
        close = False
        try:
            conn.receive_data(data)
            with platform._cond:
                while (event := conn.next_event()) is not None:
                    if isinstance(event, ConnectRequest):
                        record.app, record.tc_url = event.app, event.tc_url
                        record.connect_properties = dict(event.properties)
                        conn.accept_connect()
                    elif isinstance(event, PublishRequest):
                        record.stream_name = event.stream_name
                        if platform.refuse_publish is not None:
                            code, text = platform.refuse_publish
                            # Some platforms echo the stream name back: "{stream_name}" does that.
                            conn.reject_publish(code, text.replace("{stream_name}", event.stream_name))
                            record.refused = close = True
                        else:
                            conn.accept_publish()
                            record.published = True
                    elif isinstance(event, EncodedMessage):
                        if record.unpublished is None:
                            record.tags.append(event)
                            self._maybe_request_reconnect()
                    elif isinstance(event, PublishEnded):
                        record.unpublished = record.unpublished or event.command
                platform._cond.notify_all()
        except ProtocolError as exc:
            record.error = str(exc)
            close = True
        self._write()
        if close and self.transport is not None:
            self.transport.close()  # after writing what is queued: the refusal reaches the relay
        platform._changed()

    def _maybe_request_reconnect(self) -> None:
        platform, record = self.platform, self.record
        at = platform.reconnect_request_at_ms
        if at is None or record.index != 0 or record.reconnect_requested_after is not None:
            return
        tag = record.tags[-1]
        if tag.kind == SCRIPT or tag.is_header or tag.timestamp < at:
            return
        extra = {"tcUrl": platform.reconnect_tc_url} if platform.reconnect_tc_url else {}
        info = m.status_info("status", RECONNECT_REQUEST, "The server is going down for maintenance.", **extra)
        # Enhanced RTMP: a NetConnection-level onStatus, on message stream 0.
        self.conn._send_command("onStatus", 0, None, info)
        record.reconnect_requested_after = len(record.tags)

    def _write(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            out = self.conn.take_output()
            if out:
                self.transport.writelines(out)

    def eof_received(self) -> bool | None:
        return None  # the relay half-closed after unpublishing: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.platform._transports.discard(self.transport)
        with self.platform._cond:
            self.record.closed = True
            self.platform._cond.notify_all()
