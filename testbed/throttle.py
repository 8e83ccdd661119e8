"""A slow network path: a TCP proxy that reads from its client at a fixed rate.

Put it between the relay and a real server to make a target that cannot keep up: it
reads what the relay sends at about `rate` bytes a second and forwards it upstream; the
server's replies come back at full speed. `set_rate(None)` lifts the limit (the uplink
recovers). It runs its own asyncio loop in a thread.

Loopback TCP buffers a lot on its own: Linux autotunes the sender's buffer to megabytes
on a 64 KiB-MSS loopback connection, which would hide a slow reader from the relay for
longer than a test lasts. The listening socket therefore gets a small receive buffer and
a small MSS (both inherited by accepted connections, the MSS through the SYN-ACK), which
keeps the kernel's share to a couple of hundred KiB, as on a real slow uplink.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

from testbed.background import BackgroundServer

CHUNK = 2500  # bytes per read; at 50 KB/s one read every 50 ms
RCVBUF = 4096  # the kernel doubles it
MSS = 536


class ThrottleProxy(BackgroundServer):
    """127.0.0.1:`port` (chosen by the OS) -> 127.0.0.1:`upstream_port`, client-to-server at ~`rate` B/s."""

    thread_name = "throttling proxy"

    def __init__(self, upstream_port: int, rate: int | None = 50_000) -> None:
        self.upstream_port = upstream_port
        self.rate = rate
        super().__init__()
        self.connections = 0
        self.forwarded = 0  # client-to-server bytes passed on

    def url(self, app: str) -> str:
        """rtmp://127.0.0.1:PORT/APP through the proxy."""
        return f"rtmp://127.0.0.1:{self.port}/{app}"

    def set_rate(self, rate: int | None) -> None:
        """Change the client-to-server rate (bytes a second; None: as fast as the server reads)."""
        self.rate = rate  # read by the copy loop at its next read

    async def _listen(self, ready: threading.Event) -> None:
        assert self._stop is not None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        tasks: set[asyncio.Task[None]] = set()
        ready.set()
        accepting = asyncio.ensure_future(self._accept(listener, tasks))
        try:
            await self._stop.wait()
        finally:
            accepting.cancel()
            for task in (accepting, *tasks):
                task.cancel()
            await asyncio.gather(accepting, *tasks, return_exceptions=True)
            listener.close()

    async def _accept(self, listener: socket.socket, tasks: set[asyncio.Task[None]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client, _ = await loop.sock_accept(listener)
            self.connections += 1
            task = asyncio.create_task(self._serve(client))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _serve(self, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        client.setblocking(False)
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setblocking(False)
        copies: list[asyncio.Task[None]] = []
        try:
            await loop.sock_connect(upstream, ("127.0.0.1", self.upstream_port))
            copies = [asyncio.create_task(self._slow_copy(client, upstream)),
                      asyncio.create_task(self._copy(upstream, client))]
            # Both directions end on EOF (half-closes are passed on); a reset ends both.
            await asyncio.wait(copies, return_when=asyncio.FIRST_EXCEPTION)
        except OSError:
            pass  # the server is not there: drop the client
        finally:
            for task in copies:
                task.cancel()
            await asyncio.gather(*copies, return_exceptions=True)
            client.close()
            upstream.close()

    async def _slow_copy(self, source: socket.socket, sink: socket.socket) -> None:
        """Client to server at `rate`: each read is followed by the time it takes to send at that rate."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while data := await loop.sock_recv(source, CHUNK if self.rate else 65536):
                await loop.sock_sendall(sink, data)
                self.forwarded += len(data)
                rate = self.rate
                if rate:
                    due = max(due, loop.time() - 1.0) + len(data) / rate  # no catching up after a lull
                    # The pause is the throttle itself, not a wait for an event.
                    await asyncio.sleep(max(0.0, due - loop.time()))
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    @staticmethod
    async def _copy(source: socket.socket, sink: socket.socket) -> None:
        """Server to client at full speed."""
        loop = asyncio.get_running_loop()
        try:
            while data := await loop.sock_recv(source, 65536):
                await loop.sock_sendall(sink, data)
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
