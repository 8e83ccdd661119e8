"""A hostile streaming platform: it takes the relay's connect and publish, then misbehaves.

Made of the relay's own sans-I/O ServerConnection, on its own asyncio loop in a background
thread (testbed/background.py), like tests/support/fakeplatform.py. The misbehaviour is
chosen by the app the target connects to, so one server plays every mode at once
(`url(mode)`):

- `ping_flood`: after publish, stops reading and sends User Control pings as fast as the
  socket takes them (7 bytes each: one type-3 chunk per ping), so that every ping the
  relay reads asks for an 18-byte answer it cannot deliver;
- `status_flood`: after publish, keeps reading and sends onStatus messages as fast as the
  socket takes them (each one a would-be log line);
- `huge_amf`: after publish, one onStatus whose info object is `HUGE_AMF_BYTES` of AMF0
  (thousands of properties);
- `deep_amf`: after publish, one onStatus nested `DEEP_AMF_LEVELS` objects deep;
- `garbage`: after answering connect, random bytes instead of anything RTMP;
- `chunk_size_1`: after publish, Set Chunk Size 1, then an onStatus in 1-byte chunks.

Each connection is recorded (mode, published, bytes sent, how it ended); tests wait with
`wait_until`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from relay.rtmp import amf0
from relay.rtmp import messages as m
from relay.rtmp.chunkwriter import COMMAND_CSID, encode_message
from relay.rtmp.errors import ProtocolError
from relay.rtmp.events import ConnectRequest, PublishRequest
from relay.rtmp.server import ServerConnection
from testbed.background import BackgroundServer

MODES = ("ping_flood", "status_flood", "huge_amf", "deep_amf", "garbage", "chunk_size_1")
#: Bytes written per burst of a flood, each time the socket takes more.
FLOOD_BURST = 64 * 1024
#: The size of the huge onStatus: under the client's 64 KiB command size, over its values.
HUGE_AMF_BYTES = 60 * 1024
#: Nesting of the deep onStatus (the decoder stops at amf0.MAX_DEPTH).
DEEP_AMF_LEVELS = 2000


@dataclass
class HostileConnection:
    """What one connection to the hostile platform did."""

    index: int
    mode: str | None = None
    published: bool = False
    bytes_sent: int = 0
    closed: bool = False


class HostilePlatform(BackgroundServer):
    """An RTMP server on 127.0.0.1 that misbehaves per app name (see MODES)."""

    thread_name = "hostile platform"

    def __init__(self) -> None:
        super().__init__()
        self._connections: list[HostileConnection] = []
        self._cond = threading.Condition()
        self._transports: set[asyncio.Transport] = set()

    def url(self, mode: str) -> str:
        """rtmp://127.0.0.1:PORT/MODE"""
        assert mode in MODES, mode
        return f"rtmp://127.0.0.1:{self.port}/{mode}"

    @property
    def connections(self) -> list[HostileConnection]:
        with self._cond:
            return list(self._connections)

    def wait_until(self, predicate: Callable[[list[HostileConnection]], bool], timeout: float = 15.0,
                   what: str = "a condition on the hostile platform") -> list[HostileConnection]:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self._connections), timeout):
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}: {self._connections}")
            return list(self._connections)

    async def _listen(self, ready: threading.Event) -> None:
        assert self._stop is not None and self._loop is not None
        server = await self._loop.create_server(lambda: _HostileProtocol(self), "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for transport in list(self._transports):
                transport.abort()

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()


def ping_burst(size: int = FLOOD_BURST) -> bytes:
    """Pings on chunk stream 2: one type-0 message, then type-3 chunks that repeat its header."""
    payload = m.UserControl(m.PING_REQUEST, 1).to_payload()
    first = encode_message(m.CONTROL_CSID, 0, m.USER_CONTROL, 0, payload, 4096)
    again = bytes([0xC0 | m.CONTROL_CSID]) + payload
    return first + again * ((size - len(first)) // len(again))


def on_status(info: object, chunk_size: int) -> bytes:
    """An onStatus command carrying `info`, as the relay's ServerConnection frames one."""
    return encode_message(COMMAND_CSID, 0, m.COMMAND_AMF0, 1, amf0.encode("onStatus", 0.0, None, info), chunk_size)


def status_burst(chunk_size: int, size: int = FLOOD_BURST) -> bytes:
    one = on_status(m.status_info("status", "NetStream.Data.Start", "hello again"), chunk_size)
    return one * (size // len(one))


def huge_info() -> dict[str, object]:
    info: dict[str, object] = m.status_info("status", "NetStream.Huge", "a huge status")
    for n in range(HUGE_AMF_BYTES // 16):
        info[f"k{n:06d}"] = "v" * 5  # 2+7 key, 1+2+5 string: 16 bytes a property
    return info


def deep_on_status(chunk_size: int, levels: int = DEEP_AMF_LEVELS) -> bytes:
    """An onStatus whose info object nests `levels` objects, written by hand (amf0.encode refuses it)."""
    head = amf0.encode("onStatus", 0.0, None)
    payload = head + b"\x03\x00\x01x" * levels + b"\x05" + b"\x00\x00\x09" * levels
    return encode_message(COMMAND_CSID, 0, m.COMMAND_AMF0, 1, payload, chunk_size)


class _HostileProtocol(asyncio.Protocol):
    def __init__(self, platform: HostilePlatform) -> None:
        self.platform = platform
        self.conn = ServerConnection()
        self.transport: asyncio.Transport | None = None
        self.writable: asyncio.Event = asyncio.Event()
        self.writable.set()
        self.flood: asyncio.Task[None] | None = None
        self.garbled = False
        with platform._cond:
            self.record = HostileConnection(len(platform._connections))
            platform._connections.append(self.record)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.platform._transports.add(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.garbled:
            return  # past connect it understands nothing any more
        try:
            self.conn.receive_data(data)
            while (event := self.conn.next_event()) is not None:
                if isinstance(event, ConnectRequest):
                    self.record.mode = event.app if event.app in MODES else None
                    self.conn.accept_connect()
                    if self.record.mode == "garbage":
                        self._write()
                        self._send(os.urandom(8192))
                        self.garbled = True
                        return
                elif isinstance(event, PublishRequest):
                    self.conn.accept_publish()
                    self.record.published = True
                    self._write()
                    self._misbehave()
        except ProtocolError:
            if self.transport is not None:
                self.transport.abort()
            return
        self._write()
        self.platform._changed()

    def _misbehave(self) -> None:
        mode, chunk_size = self.record.mode, self.conn.out_chunk_size
        if mode == "ping_flood":
            assert self.transport is not None
            self.transport.pause_reading()  # it never reads again
            self.flood = asyncio.get_running_loop().create_task(self._flood(ping_burst()))
        elif mode == "status_flood":
            self.flood = asyncio.get_running_loop().create_task(self._flood(status_burst(chunk_size)))
        elif mode == "huge_amf":
            self._send(on_status(huge_info(), chunk_size))
        elif mode == "deep_amf":
            self._send(deep_on_status(chunk_size))
        elif mode == "chunk_size_1":
            self._send(encode_message(m.CONTROL_CSID, 0, m.SET_CHUNK_SIZE, 0, m.SetChunkSize(1).to_payload(), 4096))
            self._send(on_status(m.status_info("status", "NetStream.Tiny", "one byte a chunk"), 1))

    async def _flood(self, burst: bytes) -> None:
        while self.transport is not None and not self.transport.is_closing():
            await self.writable.wait()
            self._send(burst)
            await asyncio.sleep(0)  # let the loop run its other connections between bursts

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.record.bytes_sent += len(data)

    def _write(self) -> None:
        out = self.conn.data_to_send()
        if out:
            self._send(out)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.flood is not None:
            self.flood.cancel()
        if self.transport is not None:
            self.platform._transports.discard(self.transport)
        with self.platform._cond:
            self.record.closed = True
            self.platform._cond.notify_all()
