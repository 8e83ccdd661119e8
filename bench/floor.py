"""The I/O floor: the least CPU a Python relay on asyncio + uvloop spends with the relay's I/O pattern.

No RTMP, no tags, no per-tag Python: one process (the one measured) accepts N publisher
connections and opens 6 TCP connections per stream (TCP_NODELAY) to a sink, and moves bytes
the way the relay does. Each publisher socket is held in the kernel between reads by its
receive low-water mark (the relay's own `ReceiveHold`, relay/ingest/rcvhold.py) and let go
once per write interval at its stream's slot: one loop timer for all streams, streams packed
STREAMS_PER_PHASE to a phase over PHASES phases (relay/runtime/writetick.py). Whatever one read
gives goes to each of the stream's 6 targets as ONE `writelines` of the read cut into 8 pieces
(memoryview slices: the ~8 tags of a relay's writev), and the socket is held again. Unlike the
relay, it holds after every read (the relay reads again after one of 64 KiB or more).

A publisher process replays the clip's (bench/media.py) tag sizes per stream at real-time
pace on the monotonic clock (77 tags/s, ~4.4 Mbit/s of payload), stream starts spread over
2 s; a sink process reads and discards. Both are one process each, on plain sockets.

The floor's CPU over the window (utime + stime, /proc/self/stat) per stream-second is the cost
of the I/O pattern alone: the kernel's loopback copies, the loop's wakeups, reads and writes.
Any Python relay with this pattern spends at least that; what it spends above it is parsing and
fan-out logic. Compare with nginx-rtmp's figure (bench/fanout.py) on the same workload.

    python bench/floor.py [--streams 1 8 32] [--window 20] [--warmup 5] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import multiprocessing
import multiprocessing.connection
import os
import selectors
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.media import load_clip
from relay.ingest.rcvhold import ReceiveHold
from relay.runtime.writetick import PHASES, STREAMS_PER_PHASE

CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = 6
PIECES = 8
SPREAD = 2.0  # stream starts spread over this many seconds (one GOP)
START_TIMEOUT = 15.0  # children up, connections made
STOP_TIMEOUT = 5.0  # transports closed, children gone


def process_figures() -> tuple[int, int, int]:
    """(utime, stime) of this process in clock ticks, and how many times its (the loop's) thread slept
    (voluntary context switches)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    status = Path("/proc/self/status").read_text()
    sleeps = int(status.split("\nvoluntary_ctxt_switches:", 1)[1].split()[0])
    return int(fields[11]), int(fields[12]), sleeps


def sink(conn: multiprocessing.connection.Connection, count: int, deadline: float) -> None:
    """Accept `count` connections, read and discard until all end (or the deadline); send the bytes read."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=count)
    listener.settimeout(START_TIMEOUT)
    conn.send(listener.getsockname()[1])
    sel = selectors.DefaultSelector()
    for _ in range(count):
        sock, _ = listener.accept()
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
    listener.close()
    buf = bytearray(1 << 20)
    total = 0
    end = time.monotonic() + deadline
    while sel.get_map() and time.monotonic() < end:
        for key, _ in sel.select(0.2):
            conn_sock = key.fileobj
            assert isinstance(conn_sock, socket.socket)
            try:
                n = conn_sock.recv_into(buf)
            except BlockingIOError:
                continue
            except OSError:
                n = 0
            total += n
            if not n:
                sel.unregister(conn_sock)
                conn_sock.close()
    conn.send(total)


def publisher(port: int, streams: int, sizes: list[int], times: list[float], loop_s: float,
              done: Event, deadline: float) -> None:
    """Open `streams` connections and send each the clip's tag sizes at their timestamps, looped."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=START_TIMEOUT) for _ in range(streams)]
    for sock in socks:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(STOP_TIMEOUT)  # a floor that stops reading for that long ends the run
    blob = memoryview(os.urandom(max(sizes)))
    count = len(sizes)
    t0 = time.monotonic()
    offsets = [t0 + i * SPREAD / streams for i in range(streams)]
    heap = [(offsets[i] + times[0], i, 0) for i in range(streams)]  # (due, stream, tags sent)
    end = t0 + deadline
    try:
        while not done.is_set():
            due, i, k = heap[0]
            now = time.monotonic()
            if now >= end:
                break
            if due > now:
                time.sleep(min(due - now, 0.2))
                continue
            socks[i].sendall(blob[:sizes[k % count]])
            k += 1
            heapq.heapreplace(heap, (offsets[i] + (k // count) * loop_s + times[k % count], i, k))
    except OSError:
        pass  # the floor closed first
    for sock in socks:
        sock.close()


class Feed(asyncio.Protocol):
    """A publisher connection: each read goes to its stream's targets as one writelines each."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.phase = (len(floor.feeds) // STREAMS_PER_PHASE) % PHASES
        self.targets = floor.targets[len(floor.feeds)]  # opened before the publisher connects
        self.hold: ReceiveHold | None = None
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.hold = ReceiveHold.of(transport)
        if self.hold is None:
            raise SystemExit("SO_RCVLOWAT cannot be set on this socket")

    def data_received(self, data: bytes) -> None:
        n = len(data)
        view = memoryview(data)
        pieces = [view[n * j // PIECES:n * (j + 1) // PIECES] for j in range(PIECES)]
        for target in self.targets:
            target.writelines(pieces)
        self.hold.hold()  # type: ignore[union-attr]  # set in connection_made
        self.floor.reads += 1
        self.floor.bytes_read += n


class Floor:
    """The measured process's state: the feeds, counters, and the one timer that lets them read."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.feeds: list[Feed] = []
        self.targets: list[list[asyncio.Transport]] = []  # per stream, in the order feeds connect
        self.phases: list[list[Feed]] = [[] for _ in range(PHASES)]
        self.step = interval / PHASES
        self.origin = loop.time()
        self.cursor = 0
        self.timer: asyncio.TimerHandle | None = None
        self.fired = self.reads = self.bytes_read = 0

    def new_feed(self) -> Feed:
        feed = Feed(self)
        self.feeds.append(feed)
        self.phases[feed.phase].append(feed)
        return feed

    def start_ticker(self) -> None:
        self.origin = self.loop.time()
        self._arm()

    def _arm(self) -> None:
        while not self.phases[self.cursor % PHASES]:
            self.cursor += 1
        self.timer = self.loop.call_at(self.origin + self.cursor * self.step, self._fire)

    def _fire(self) -> None:
        self.fired += 1
        now = self.loop.time() + 0.001  # libuv's millisecond timers may fire a little early
        while self.origin + self.cursor * self.step <= now:
            for feed in self.phases[self.cursor % PHASES]:
                if feed.hold is not None:
                    feed.hold.release()
            self.cursor += 1
        self._arm()


async def until(cond: Callable[[], bool], timeout: float) -> bool:
    """Wait (polling, without blocking the loop) until cond() holds or the timeout passes."""
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        await asyncio.sleep(0.05)
    return cond()


async def measure(streams: int, warmup: float, window: float, interval: float,
                  sizes: list[int], times: list[float], loop_s: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with a loop
    deadline = warmup + window + 3 * START_TIMEOUT
    here, there = ctx.Pipe()
    sink_proc = ctx.Process(target=sink, args=(there, streams * TARGETS, deadline), daemon=True)
    sink_proc.start()
    if not await until(here.poll, START_TIMEOUT):
        raise SystemExit("the sink did not start")
    sink_port: int = here.recv()
    floor = Floor(loop, interval)
    for _ in range(streams):
        floor.targets.append([])
        for _ in range(TARGETS):
            sock = socket.create_connection(("127.0.0.1", sink_port), timeout=START_TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            transport, _ = await loop.create_connection(asyncio.Protocol, sock=sock)
            floor.targets[-1].append(transport)
    server = await loop.create_server(floor.new_feed, "127.0.0.1", 0, backlog=streams)
    done = ctx.Event()
    pub_proc = ctx.Process(target=publisher, daemon=True, args=(
        server.sockets[0].getsockname()[1], streams, sizes, times, loop_s, done, deadline))
    pub_proc.start()
    if not await until(lambda: len(floor.feeds) == streams, START_TIMEOUT):
        raise SystemExit("the publisher did not connect")
    floor.start_ticker()
    await asyncio.sleep(warmup)
    t0, (u0, s0, w0), r0, b0, f0 = time.monotonic(), process_figures(), floor.reads, floor.bytes_read, floor.fired
    await asyncio.sleep(window)
    t1, (u1, s1, w1), r1, b1, f1 = time.monotonic(), process_figures(), floor.reads, floor.bytes_read, floor.fired
    # Shutdown: stop the publisher, close every connection (targets drain first: the sink reads
    # to the end of each, then sends what it read), then the children are gone or killed.
    done.set()
    await until(lambda: not pub_proc.is_alive(), STOP_TIMEOUT)
    if floor.timer is not None:
        floor.timer.cancel()
    server.close()
    for feed in floor.feeds:
        if feed.transport is not None:
            feed.transport.close()
        if feed.hold is not None:
            feed.hold.close()
        for target in feed.targets:
            target.close()
    received: int = here.recv() if await until(here.poll, STOP_TIMEOUT) else -1
    for proc in (pub_proc, sink_proc):
        if not await until(lambda: not proc.is_alive(), STOP_TIMEOUT):
            proc.kill()
        proc.join(STOP_TIMEOUT)
    elapsed, ms = t1 - t0, 1000 / CLK_TCK
    written = floor.bytes_read * TARGETS
    return {
        "cpu": (u1 - u0 + s1 - s0) * ms / (streams * elapsed), "user": (u1 - u0) * ms / (streams * elapsed),
        "kernel": (s1 - s0) * ms / (streams * elapsed), "core_pct": (u1 - u0 + s1 - s0) * ms / elapsed / 10,
        "sleeps": (w1 - w0) / elapsed, "fired": (f1 - f0) / elapsed, "reads": (r1 - r0) / elapsed,
        "kbps": (b1 - b0) / elapsed / streams / 1000, "delivered": received / written if written else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between two reads of a publisher")
    args = ap.parse_args()
    if args.interval <= 0:
        ap.error("--interval must be above 0")
    import uvloop

    print(f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    clip = load_clip()
    sizes = [len(t.payload) for t in clip.media]
    times = [t.timestamp / 1000 for t in clip.media]
    loop_s = clip.loop_ms / 1000
    print(f"{TARGETS} targets per stream, {len(sizes) / loop_s:.0f} tags/s, "
          f"{sum(sizes) * 8 / loop_s / 1e6:.2f} Mbit/s of payload per stream; read every {args.interval:g} s, "
          f"{PIECES} pieces per writelines; warm-up {args.warmup:g} s, window {args.window:g} s\n")
    print("| N | CPU ms per stream-second | user | kernel | CPU % of one core | sleeps/s | timer firings/s "
          "| reads/s | kB/s per target | sink got / written |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.streams:
        r = uvloop.run(measure(n, args.warmup, args.window, args.interval, sizes, times, loop_s))
        print(f"| {n} | {r['cpu']:.2f} | {r['user']:.2f} | {r['kernel']:.2f} | {r['core_pct']:.1f} | "
              f"{r['sleeps']:.0f} | {r['fired']:.0f} | {r['reads']:.0f} | {r['kbps']:.0f} | {r['delivered']:.4f} |",
              flush=True)


if __name__ == "__main__":
    main()
