"""A peer far away or slow to answer: a TCP proxy that holds each connection `delay` s before
passing it on, and passes every chunk on `latency` s after it arrived.

Between the relay and a real server, `delay` chooses when a target's RTMP session gets
going: the relay's TCP connect succeeds at once (the kernel accepts), but its handshake
reaches the server, and the server's answer comes back, only `delay` s later. So the
target joins the live stream that long after the publisher started, which is what
decides what the relay has to send it first (everything since the session began, or the
init burst of a stream that is already going).

Between a publisher and the relay, `latency` is a long network path (an encoder at home,
the relay in a data centre): each exchange takes 2 x `latency`, so the publisher's
metadata and sequence headers, sent when the relay's answer to `publish` arrives, reach
the relay 2 x `latency` after it accepted the publish and started its targets.

`upstream_port` may be changed between connections (a one-shot server such as
`ffmpeg -listen 1` gets a new port for each session); a connection uses the port set when
its delay ends. It runs its own asyncio loop in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

from testbed.background import BackgroundServer


class DelayProxy(BackgroundServer):
    """127.0.0.1:`port` (chosen by the OS) -> 127.0.0.1:`upstream_port`: each connection held `delay` s
    first, then every chunk either way passed on `latency` s after it arrived."""

    thread_name = "delaying proxy"

    def __init__(self, upstream_port: int, delay: float = 0.0, latency: float = 0.0) -> None:
        super().__init__()
        self.upstream_port = upstream_port
        self.delay = delay
        self.latency = latency
        self.connections = 0  # accepted so far
        self.forwarded = 0  # of them, passed on to the server

    def url(self, app: str) -> str:
        """rtmp://127.0.0.1:PORT/APP through the proxy."""
        return f"rtmp://127.0.0.1:{self.port}/{app}"

    async def _listen(self, ready: threading.Event) -> None:
        assert self._stop is not None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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
            if self.delay > 0:
                # The pause is the scenario (a platform slow to answer), not a wait for an event.
                await asyncio.sleep(self.delay)
            await loop.sock_connect(upstream, ("127.0.0.1", self.upstream_port))
            self.forwarded += 1
            for source, sink in ((client, upstream), (upstream, client)):
                chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
                copies += [asyncio.create_task(self._read(source, chunks)),
                           asyncio.create_task(self._write(chunks, sink))]
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

    async def _read(self, source: socket.socket, chunks: asyncio.Queue[tuple[float, bytes]]) -> None:
        """Each chunk with the time it is due at the other end; b"" (EOF) last."""
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(source, 65536)
            chunks.put_nowait((loop.time() + self.latency, data))
            if not data:
                return

    @staticmethod
    async def _write(chunks: asyncio.Queue[tuple[float, bytes]], sink: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await chunks.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)  # the path's latency: the scenario, not a wait for an event
                if not data:
                    return
                await loop.sock_sendall(sink, data)
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
