"""The RTMP ingest: publishers (OBS, ffmpeg...) connect here and publish on a stream key.

Each connection is a ServerConnection driven from `data_received`: bytes in, events out,
answers written back at once. Media goes straight to the live stream's hub; nothing on
this path awaits a target. A peer that breaks the protocol has its connection closed and
one log line written; the stream key it tried is never logged, only its fingerprint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from relay.fanout.enhanced import declares_enhanced
from relay.flv import Tag
from relay.logs import get_logger
from relay.net.livestream import LiveStream
from relay.rtmp.connection import ServerConnection
from relay.rtmp.errors import ProtocolError
from relay.rtmp.events import ConnectRequest, Media, PublishEnded, PublishRequest
from relay.secret import Secret

BAD_NAME = "NetStream.Publish.BadName"
# A connection must be publishing this soon after it opens (handshake, connect, publish).
PUBLISH_DEADLINE = 30.0
# A publisher that sends nothing for this long is gone (a dead link sends no FIN).
IDLE_TIMEOUT = 30.0


class IngestProtocol(asyncio.Protocol):
    """One publisher connection."""

    def __init__(self, app: str, find: Callable[[str], LiveStream | None],
                 connections: set[IngestProtocol]) -> None:
        self.app = app
        self.find = find
        self.connections = connections
        self.conn = ServerConnection()
        self.transport: asyncio.Transport | None = None
        self.live: LiveStream | None = None
        self.log: Any = get_logger()
        self.loop = asyncio.get_running_loop()
        self.last_data = self.loop.time()
        self.timer: asyncio.TimerHandle | None = None
        self.declares_enhanced = False  # its connect declared Enhanced RTMP (fourCcList...)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.log = get_logger(peer=f"{peer[0]}:{peer[1]}" if peer else "?")
        self.connections.add(self)
        self.timer = self.loop.call_later(PUBLISH_DEADLINE, self._check_deadline)

    def _check_deadline(self) -> None:
        """Close connections that never publish, and publishers that went silent."""
        if self.live is None:
            self.log.warning("ingest_timeout", reason=f"not publishing {PUBLISH_DEADLINE:g} s after connecting")
            self._close(abort=True)
            return
        silent = self.loop.time() - self.last_data
        if silent >= IDLE_TIMEOUT:
            self.log.warning("ingest_timeout", reason=f"no data from the publisher for {silent:.0f} s")
            self._close(abort=True)
            return
        self.timer = self.loop.call_later(IDLE_TIMEOUT - silent, self._check_deadline)

    def data_received(self, data: bytes) -> None:
        self.last_data = self.loop.time()
        conn = self.conn
        try:
            conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                if isinstance(event, Media):
                    if self.live is not None:
                        self.live.publish(Tag(event.kind, event.timestamp, event.payload))
                elif isinstance(event, ConnectRequest):
                    self._on_connect(event)
                elif isinstance(event, PublishRequest):
                    self._on_publish(event)
                elif isinstance(event, PublishEnded):
                    self._release(f"publisher sent {event.command}", clean=True)
        except ProtocolError as exc:
            self.log.warning("ingest_protocol_error", error=str(exc))
            self._write()
            self._close(abort=True)
            return
        self._write()

    def _on_connect(self, event: ConnectRequest) -> None:
        self.declares_enhanced = declares_enhanced(event.properties)
        if event.app.strip("/") != self.app:
            # Only the first segment: an encoder set up with "rtmp://host/live/KEY" as its
            # server would otherwise put the key in this line.
            self.log.warning("connect_rejected", app=event.app.strip("/").split("/")[0],
                             reason="unknown application")
            self.conn.reject_connect(f"Unknown application; publish to /{self.app}.")
            self._write()
            self._close()
            return
        self.conn.accept_connect()

    def _on_publish(self, event: PublishRequest) -> None:
        # OBS and ffmpeg may append query parameters to the stream name.
        key = event.stream_name.split("?", 1)[0]
        live = self.find(key)
        fingerprint = Secret(key).fingerprint if key else "empty"
        if live is None:
            self.log.warning("publish_rejected", reason="unknown stream key", key_sha256=fingerprint)
            self.conn.reject_publish(BAD_NAME, "Unknown stream key.")
            self._write()
            self._close()
            return
        if not live.claim(self, declares_enhanced=self.declares_enhanced):
            self.log.warning("publish_rejected", live_stream=live.name, reason="already publishing")
            self.conn.reject_publish(BAD_NAME, "This live stream already has a publisher.")
            self._write()
            self._close()
            return
        self.live = live
        self.log = self.log.bind(live_stream=live.name)
        self.conn.accept_publish()
        self.log.info("publish_started")

    def _release(self, reason: str, clean: bool) -> None:
        live, self.live = self.live, None
        if live is not None:
            self.log.info("publish_ended", reason=reason, clean=clean)
            live.release(self, reason, clean)

    def _write(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            out = self.conn.take_output()
            if out:
                self.transport.writelines(out)

    def _close(self, abort: bool = False) -> None:
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def close(self) -> None:
        """Shut this publisher out (daemon shutdown)."""
        self._release("relay shutting down", clean=True)
        self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.connections.discard(self)
        # No FCUnpublish/deleteStream first: the publisher may come back (reconnect window).
        self._release("connection closed" if exc is None else f"connection lost: {exc}", clean=False)


async def start_ingest(host: str, port: int, app: str, find: Callable[[str], LiveStream | None],
                       connections: set[IngestProtocol], ssl_context: Any = None) -> asyncio.Server:
    """Listen for publishers."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: IngestProtocol(app, find, connections), host, port,
                                    ssl=ssl_context, reuse_address=True)
