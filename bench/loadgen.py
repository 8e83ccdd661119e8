"""Load generator: ONE process publishing N live streams of the workload clip, at real-time pace.

Each stream is an RTMP publish made with the project's own sans-I/O `ClientConnection`
over asyncio (uvloop when installed), to URL/KEY_i. Tags are replayed by timestamp against
the monotonic clock; the clip loops with continuing timestamps, so a stream runs as long
as it is asked to. Stream i starts i x (stagger / N) after the first, so that the N
streams' keyframes do not all land at once.

Cheap on purpose, so that it is never the bottleneck: every tag is encoded once at
start-up (an `EncodedMessage` with its chunked body built) and shared by all streams, which
send it the way the relay sends to its targets (`send_encoded`, one call per write): per
stream and per tag only the 12-byte first chunk header is made.

For latency, every audio and video tag sent is recorded out of band: per stream, the
clip position, the loop number and the send time (time.monotonic_ns, taken just before
the bytes are handed to the transport). The sink matches arrivals on the payload (whose
key names the clip position; see media.payload_key) to the latest send of that position.

Control (with --control): stdin lines
    window START_NS END_NS   count published bytes of tags sent in [START, END)
    stop                     unpublish, close, write --sends-out, print the report, exit
and JSON lines on stdout (`{"event": "published", ...}`, `{"event": "report", ...}`).
Without --control it runs for --duration seconds (always bounded by it) and then stops.

    python bench/loadgen.py --url rtmp://127.0.0.1:1935/live --streams 8 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import signal
import sys
import threading
import time
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.media import Clip, load_clip
from relay.rtmp.chunkwriter import DEFAULT_OUT_CHUNK_SIZE, EXTENDED
from relay.rtmp.client import ClientConnection
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.errors import ProtocolError
from relay.rtmp.events import PublishStarted, Refused, StatusReceived

PUBLISH_TIMEOUT = 15.0
CLOSE_TIMEOUT = 3.0
HIGH_WATER = 4 * 1024 * 1024  # transport buffer before we wait (the relay is not reading)


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout, for the orchestrator."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class ControlInput:
    """Command lines from stdin, read by a daemon thread (works for a pipe, a file or /dev/null).

    A daemon thread rather than connect_read_pipe: uvloop aborts on a stdin that is not a
    pipe, and a blocked read never holds up the exit.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._lines: asyncio.Queue[list[str]] = asyncio.Queue()
        threading.Thread(target=self._read, name="control-input", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line.split())
        self._loop.call_soon_threadsafe(self._lines.put_nowait, [])  # end of input

    async def next(self) -> list[str]:
        """The next command's words; [] at the end of input."""
        return await self._lines.get()


def percentile(sorted_values: list[int] | list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = math.ceil(q / 100 * len(sorted_values))  # 1-based
    return float(sorted_values[min(len(sorted_values), max(1, rank)) - 1])


class Shared:
    """Per clip tag, what every stream sends: (message encoded once, payload length, timestamp in loop)."""

    def __init__(self, clip: Clip, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self.preamble = [EncodedMessage(t.kind, t.timestamp, t.payload) for t in clip.preamble]
        self.media = [(EncodedMessage(t.kind, t.timestamp, t.payload), len(t.payload), t.timestamp) for t in clip.media]
        for message, _length, _ts in self.media:
            message.body(chunk_size, 0)  # built now, once: a stream's send only adds its header
        self.loop_ms = clip.loop_ms


class Publisher(asyncio.Protocol):
    """One published stream: the asyncio glue around a ClientConnection, and its records."""

    def __init__(self, index: int, key: str, app: str, tc_url: str) -> None:
        loop = asyncio.get_running_loop()
        self.index = index
        self.key = key
        self.conn = ClientConnection(app, tc_url, key)
        self.transport: asyncio.Transport | None = None
        self.published: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.writable = asyncio.Event()
        self.writable.set()
        self.error: str | None = None
        self.closing = False  # we are ending the session: a close now is no error
        # Per tag sent: clip index, loop, send time. array('q'): compact, one allocation amortised.
        self.sends = array("q")
        self.window_bytes = 0
        self.window_tags = 0
        self.total_bytes = 0
        self.lateness_ns = array("q")  # send time - due time, per batch
        self.max_buffered = 0

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        assert self.transport is not None
        self.transport.set_write_buffer_limits(high=HIGH_WATER)
        self._write()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        try:
            conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                if isinstance(event, PublishStarted):
                    if not self.published.done():
                        self.published.set_result(None)
                elif isinstance(event, Refused):
                    self._fail(f"refused {event.stage}: {event.code}")
                    return
                elif isinstance(event, StatusReceived) and event.level == "error":
                    self._fail(f"server status {event.code}")
                    return
        except ProtocolError as exc:
            self._fail(f"protocol error: {exc}")
            return
        self._write()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None and not self.closing:
            self.error = f"connection lost: {exc}" if exc else "server closed the connection"
        for fut in (self.published, self.closed):
            if not fut.done():
                fut.set_result(None)
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    # -- ours --------------------------------------------------------------------------

    def _write(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            out = self.conn.take_output()
            if out:
                transport.writelines(out)

    def _fail(self, reason: str) -> None:
        self.error = reason
        if not self.published.done():
            self.published.set_result(None)
        if self.transport is not None:
            self.transport.abort()

    @property
    def alive(self) -> bool:
        return self.error is None and self.transport is not None and not self.transport.is_closing()


class LoadGen:
    """N publishers sharing one clip, one event loop and one stop signal."""

    def __init__(self, args: argparse.Namespace, clip: Clip) -> None:
        url = urlsplit(args.url)
        if url.scheme != "rtmp" or not url.hostname or not url.path.strip("/"):
            raise SystemExit(f"--url must be rtmp://HOST[:PORT]/APP, not {args.url!r}")
        self.host = url.hostname
        self.port = url.port or 1935
        self.app = url.path.strip("/")
        self.tc_url = f"rtmp://{self.host}:{self.port}/{self.app}"
        self.n = args.streams
        self.keys = [f"{args.key_prefix}{i:03d}" for i in range(self.n)]
        self.stagger_ns = int(args.stagger * 1e9 / self.n) if self.n > 1 else 0
        self.shared = Shared(clip, DEFAULT_OUT_CHUNK_SIZE)
        self.clip = clip
        self.stop = asyncio.Event()
        self.window: tuple[int, int] | None = None
        self.publishers: list[Publisher] = []
        self.started_ns = 0

    async def run_stream(self, pub: Publisher, start_ns: int) -> None:
        """Replay the clip on one publisher from start_ns until stop (or the connection dies)."""
        shared = self.shared
        conn = pub.conn
        if conn.out_chunk_size != shared.chunk_size:
            pub.error = f"chunk size {conn.out_chunk_size} != {shared.chunk_size}"
            return
        stop = self.stop
        media = shared.media
        count = len(media)
        sends = pub.sends
        lateness = pub.lateness_ns
        monotonic_ns = time.monotonic_ns
        sleep = asyncio.sleep
        await sleep(max(0.0, (start_ns - monotonic_ns()) / 1e9))
        if stop.is_set() or not pub.alive:
            return
        conn.send_encoded(shared.preamble, [0] * len(shared.preamble))
        pub._write()
        i = 0
        loop_no = 0
        base_ms = 0
        while not stop.is_set() and pub.alive:
            message, _length, ts = media[i]
            due = start_ns + (base_ms + ts) * 1_000_000
            now = monotonic_ns()
            if due > now:
                await sleep((due - now) / 1e9)
                if stop.is_set() or not pub.alive:
                    break
            if not pub.writable.is_set():
                await pub.writable.wait()  # the server is not reading: wait, and count it as latency
                if stop.is_set() or not pub.alive:
                    break
            now = monotonic_ns()
            # Everything due by now goes in one write.
            first = len(sends)
            batch: list[EncodedMessage] = []
            stamps: list[int] = []
            while True:
                stamp = base_ms + ts
                if stamp >= EXTENDED:
                    # Past it every body is per timestamp (encoded.py): built at each send, and kept.
                    pub.error = "ran past the 24-bit timestamp range (4.6 h)"
                    return
                batch.append(message)
                stamps.append(stamp)
                sends.extend((i, loop_no, 0))
                i += 1
                if i == count:
                    i = 0
                    loop_no += 1
                    base_ms += shared.loop_ms
                message, _length, ts = media[i]
                if start_ns + (base_ms + ts) * 1_000_000 > now:
                    break
            conn.send_encoded(batch, stamps)
            lateness.append(now - due)
            sent_ns = monotonic_ns()
            window = self.window
            for j in range(first + 2, len(sends), 3):
                sends[j] = sent_ns
            if window is not None and window[0] <= sent_ns < window[1]:
                for j in range(first, len(sends), 3):
                    pub.window_bytes += media[sends[j]][1]
                    pub.window_tags += 1
            out = conn.take_output()
            transport = pub.transport
            assert transport is not None
            transport.writelines(out)
            buffered = transport.get_write_buffer_size()
            pub.max_buffered = max(pub.max_buffered, buffered)

    async def connect(self, pub: Publisher) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(lambda: pub, self.host, self.port), PUBLISH_TIMEOUT)
            await asyncio.wait_for(asyncio.shield(pub.published), PUBLISH_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            pub.error = pub.error or f"connect/publish failed: {exc!r}"
        if pub.error is None and pub.conn.state != "PUBLISHING":
            pub.error = f"not publishing (state {pub.conn.state})"

    async def close(self, pub: Publisher) -> None:
        transport = pub.transport
        if transport is None or transport.is_closing():
            return
        pub.closing = True
        try:
            pub.conn.unpublish()
        except ProtocolError:
            pass
        pub._write()
        transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(pub.closed), CLOSE_TIMEOUT)
        except TimeoutError:
            transport.abort()

    async def main(self, duration: float, control: bool) -> None:
        self.publishers = [Publisher(i, key, self.app, self.tc_url) for i, key in enumerate(self.keys)]
        await asyncio.gather(*(self.connect(p) for p in self.publishers))
        ok = [p for p in self.publishers if p.error is None]
        emit("published", streams=len(ok), failed={p.key: p.error for p in self.publishers if p.error})
        self.started_ns = time.monotonic_ns() + 50_000_000
        tasks = [asyncio.create_task(self.run_stream(p, self.started_ns + p.index * self.stagger_ns)) for p in ok]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        # A reference keeps the task alive: the loop holds tasks only weakly.
        control_task = loop.create_task(self.read_control()) if control else None
        try:
            await asyncio.wait_for(self.stop.wait(), duration)
        except TimeoutError:
            self.stop.set()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await asyncio.gather(*(self.close(p) for p in self.publishers))
        if control_task is not None:
            control_task.cancel()

    async def read_control(self) -> None:
        control = ControlInput()
        while not self.stop.is_set():
            line = await control.next()
            if not line or line[0] == "stop":
                self.stop.set()
                return
            if line[0] == "window" and len(line) == 3:
                self.window = (int(line[1]), int(line[2]))

    def report(self) -> dict[str, Any]:
        late = sorted(x for p in self.publishers for x in p.lateness_ns)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "streams": self.n,
            "errors": {p.key: p.error for p in self.publishers if p.error},
            "window": list(self.window) if self.window else None,
            "published": {p.key: {"bytes": p.window_bytes, "tags": p.window_tags} for p in self.publishers},
            "total_sent_tags": sum(len(p.sends) // 3 for p in self.publishers),
            "lateness_ms": {"p50": percentile(late, 50) / 1e6, "p99": percentile(late, 99) / 1e6,
                            "max": (late[-1] / 1e6) if late else 0.0},
            "max_write_buffer": max((p.max_buffered for p in self.publishers), default=0),
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }

    def write_sends(self, path: Path) -> None:
        """Per stream: flat [clip index, loop, send_ns, ...] of every tag sent.

        All of them, not only the window's: an arrival just after the window must match its
        own send, not the same clip position one loop earlier.
        """
        lo, hi = self.window if self.window else (0, 1 << 62)
        streams = {p.key: p.sends.tolist() for p in self.publishers}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"clock": "CLOCK_MONOTONIC ns", "window": [lo, hi],
                                   "loop_ms": self.clip.loop_ms, "streams": streams}))
        tmp.replace(path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="rtmp://HOST:PORT/APP")
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--key-prefix", default="bench-stream-key-", help="stream i publishes KEY_PREFIX%%03d")
    ap.add_argument("--stagger", type=float, default=2.0, help="seconds over which stream starts are spread")
    ap.add_argument("--duration", type=float, default=600.0, help="hard limit on the run, seconds")
    ap.add_argument("--control", action="store_true", help="take window/stop commands on stdin")
    ap.add_argument("--sends-out", type=Path, help="write the per-tag send times here at the end")
    ap.add_argument("--clip", type=Path, help="FLV to replay (default: the cached workload)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    clip = load_clip(args.clip)
    gen: LoadGen | None = None

    async def run() -> None:
        nonlocal gen
        gen = LoadGen(args, clip)
        await gen.main(args.duration, args.control)

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())
    assert gen is not None
    if args.sends_out:
        gen.write_sends(args.sends_out)
    emit("report", **gen.report())


if __name__ == "__main__":
    main()
