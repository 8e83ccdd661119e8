"""A publisher's input held in the kernel (relay/ingest/rcvhold.py), on real loopback sockets.

Each test runs on asyncio's loop and on uvloop's (the relay's): the transport keeps
reading, and yet nothing is delivered while the input is held; release() delivers what
waits; more than HOLD_BYTES, or the peer closing, is delivered while held.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import termios
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from relay.ingest.rcvhold import HOLD_BYTES, ReceiveHold

WAIT = 10.0
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


class Reader(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received = bytearray()
        self.reads = 0
        self.made = asyncio.Event()
        self.changed = asyncio.Event()
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport) or hasattr(transport, "write")
        self.transport = transport  # type: ignore[assignment]
        self.made.set()

    def data_received(self, data: bytes) -> None:
        self.received += data
        self.reads += 1
        self.changed.set()

    def eof_received(self) -> bool:
        self.eof = True
        self.changed.set()
        return False

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


async def queued(fd: int, size: int) -> None:
    """Wait until `size` bytes wait in the socket's receive queue (the kernel has them)."""
    async with asyncio.timeout(WAIT):
        while int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4), "little") < size:
            await asyncio.sleep(0.001)


async def connected() -> tuple[Reader, ReceiveHold, socket.socket, asyncio.AbstractServer]:
    reader = Reader()
    server = await asyncio.get_running_loop().create_server(lambda: reader, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    async with asyncio.timeout(WAIT):
        await reader.made.wait()
    assert reader.transport is not None
    hold = ReceiveHold.of(reader.transport)
    assert hold is not None
    return reader, hold, client, server


def run(make_loop: Callable[[], asyncio.AbstractEventLoop],
        test: Callable[[Reader, ReceiveHold, socket.socket], Awaitable[None]]) -> None:
    async def connected_test() -> None:
        reader, hold, client, server = await connected()
        try:
            await test(reader, hold, client)
        finally:
            hold.close()
            client.close()
            if reader.transport is not None:
                reader.transport.close()
            server.close()
            await server.wait_closed()

    loop = make_loop()
    try:
        loop.run_until_complete(connected_test())
    finally:
        loop.close()


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_held_input_waits_in_the_kernel_until_released(kind: str) -> None:
    async def body(reader: Reader, hold: ReceiveHold, client: socket.socket) -> None:
        assert reader.transport is not None
        assert hold.hold() and hold.held
        client.sendall(b"x" * 10_000)
        await queued(reader.transport.get_extra_info("socket").fileno(), 10_000)
        for _ in range(5):  # iterations whose polls see the socket's queue: none reads it
            await asyncio.sleep(0)
        assert reader.reads == 0 and not reader.transport.is_closing()
        hold.release()
        assert not hold.held
        await reader.until(lambda: len(reader.received) == 10_000)
        client.sendall(b"y" * 100)  # released: read as it comes
        await reader.until(lambda: len(reader.received) == 10_100)
        hold.close()  # its own descriptor: the transport's socket reads on
        client.sendall(b"z" * 100)
        await reader.until(lambda: len(reader.received) == 10_200)
        assert not hold.hold()  # closed: the caller pauses instead
    run(LOOPS[kind], body)


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_more_than_the_hold_is_read_while_held(kind: str) -> None:
    async def body(reader: Reader, hold: ReceiveHold, client: socket.socket) -> None:
        assert hold.hold()
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(client, b"z" * (HOLD_BYTES * 2))
        await reader.until(lambda: len(reader.received) >= HOLD_BYTES)
        assert hold.held  # still held: read early because that much waited, not released
    run(LOOPS[kind], body)


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_a_peer_that_closes_while_held_is_seen_at_once(kind: str) -> None:
    async def body(reader: Reader, hold: ReceiveHold, client: socket.socket) -> None:
        assert hold.hold()
        client.sendall(b"last words")
        client.close()
        await reader.until(lambda: reader.eof)
        assert bytes(reader.received) == b"last words"
    run(LOOPS[kind], body)


def test_no_hold_on_a_transport_without_a_tcp_socket() -> None:
    class NoSocket(asyncio.BaseTransport):
        def get_extra_info(self, name: str, default: object = None) -> object:
            return default

    assert ReceiveHold.of(NoSocket()) is None
