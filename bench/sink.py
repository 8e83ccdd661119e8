"""Sink: ONE process accepting every publish (any app, any stream name) with `ServerConnection`.

It stands in for the platforms: the relay (or nginx-rtmp) under test pushes N x 6
streams here. Per (app, stream name) it counts the audio and video payload bytes and tags
that arrive in the measurement window, checks every audio/video payload against the
workload clip (media.payload_key: length + CRC-32, ~3 GB/s, so every tag on every target
is checked, no sampling), and records the arrival time (time.monotonic_ns, the clock the
loadgen stamps its sends with) of every recognised tag.

With the loadgen's send records (loadgen --sends-out), the report matches each arrival
to the latest send of the same clip position on the same stream; a match whose send lies
in the window gives a latency (video tags only), the delivered bytes (delivery ratio =
matched bytes / published bytes) and the lost and duplicated tags.

Control (with --control): stdin lines
    window START_NS END_NS   the measurement window
    status                   answer {"event": "status", "publishing": COUNT, ...}
    report [SENDS_FILE]      print {"event": "report", ...} and exit
SIGTERM prints the report (without latency unless --sends was given) and exits.

    python bench/sink.py --port 19350 --control
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import resource
import signal
import sys
import time
import zlib
from array import array
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.loadgen import ControlInput, emit, percentile
from bench.media import Clip, load_clip
from relay.flv import AUDIO, VIDEO
from relay.rtmp.errors import ProtocolError
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.events import ConnectRequest, PublishEnded, PublishRequest
from relay.rtmp.server import ServerConnection

MAX_MISMATCH_SAMPLES = 5


class TargetStats:
    """What arrived for one (app, stream name)."""

    __slots__ = (
        "app",
        "arrivals",
        "closed_early",
        "data_tags",
        "headers",
        "mismatch_samples",
        "mismatches",
        "name",
        "publishes",
        "total_bytes",
        "total_tags",
        "window_bytes",
        "window_tags",
    )

    def __init__(self, app: str, name: str) -> None:
        self.app = app
        self.name = name
        self.publishes = 0
        self.window_bytes = {AUDIO: 0, VIDEO: 0}
        self.window_tags = {AUDIO: 0, VIDEO: 0}
        self.total_bytes = 0
        self.total_tags = 0
        self.data_tags = 0
        self.headers = 0
        self.mismatches = 0
        self.mismatch_samples: list[dict[str, int]] = []
        self.arrivals = array("q")  # clip index, arrival ns, ...
        self.closed_early = 0


class SinkConnection(asyncio.Protocol):
    """One incoming publish."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.conn = ServerConnection()
        self.transport: asyncio.Transport | None = None
        self.app = ""
        self.stats: TargetStats | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sink.connections += 1
        self._write()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        conn = self.conn
        sink = self.sink
        stats = self.stats
        try:
            conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                if type(event) is EncodedMessage:
                    if stats is None:
                        continue
                    kind = event.kind
                    payload = event.payload
                    size = len(payload)
                    if kind == AUDIO or kind == VIDEO:
                        stats.total_bytes += size
                        stats.total_tags += 1
                        ws, we = sink.window
                        if ws <= now < we:
                            stats.window_bytes[kind] += size
                            stats.window_tags[kind] += 1
                        idx = sink.index.get((size, zlib.crc32(payload)))
                        if idx is None:
                            stats.mismatches += 1
                            if len(stats.mismatch_samples) < MAX_MISMATCH_SAMPLES:
                                stats.mismatch_samples.append(
                                    {"kind": kind, "timestamp": event.timestamp, "size": size})
                        elif idx >= 0:
                            stats.arrivals.append(idx)
                            stats.arrivals.append(now)
                        else:
                            stats.headers += 1
                    else:
                        stats.data_tags += 1
                elif isinstance(event, ConnectRequest):
                    self.app = event.app.strip("/")
                    conn.accept_connect()
                elif isinstance(event, PublishRequest):
                    name = event.stream_name.split("?", 1)[0]
                    conn.accept_publish()
                    stats = self.stats = sink.stats_for(self.app, name)
                    stats.publishes += 1
                    sink.publishing += 1
                elif isinstance(event, PublishEnded):
                    self._unpublished()
                    stats = None
        except ProtocolError as exc:
            sink.protocol_errors.append(f"{self.app}: {exc}")
            if self.transport is not None:
                self.transport.abort()
            return
        self._write()

    def _unpublished(self) -> None:
        if self.stats is not None:
            self.sink.publishing -= 1
            if time.monotonic_ns() < self.sink.window[1]:
                self.stats.closed_early += 1
            self.stats = None

    def _write(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            out = self.conn.take_output()
            if out:
                transport.writelines(out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sink.connections -= 1
        self._unpublished()


class Sink:
    """Every incoming publish, and the report."""

    def __init__(self, clip: Clip, controlled: bool = False, slow_apps: frozenset[str] = frozenset()) -> None:
        self.clip = clip
        self.slow_apps = slow_apps  # their latency is left out of `latency_ms_normal`
        self.index = clip.index
        self.sizes = [len(t.payload) for t in clip.media]
        self.kinds = [t.kind for t in clip.media]
        # Under control nothing counts until the window is set; alone, everything counts.
        self.window = (1 << 62, 1 << 62) if controlled else (0, 1 << 62)
        self.window_set = False
        self.stats: dict[tuple[str, str], TargetStats] = {}
        self.connections = 0
        self.publishing = 0
        self.protocol_errors: list[str] = []
        self.done = asyncio.Event()
        self.sends_path: Path | None = None

    def stats_for(self, app: str, name: str) -> TargetStats:
        key = (app, name)
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = TargetStats(app, name)
        return stats

    async def read_control(self) -> None:
        control = ControlInput()
        while not self.done.is_set():
            line = await control.next()
            if not line:
                self.done.set()
                return
            if line[0] == "window" and len(line) == 3:
                self.window = (int(line[1]), int(line[2]))
                self.window_set = True
            elif line[0] == "status":
                emit("status", connections=self.connections, publishing=self.publishing,
                     targets=len(self.stats), protocol_errors=len(self.protocol_errors))
            elif line[0] == "report":
                if len(line) > 1:
                    self.sends_path = Path(line[1])
                self.done.set()
                return

    def report(self) -> dict[str, Any]:
        """Counters per target and overall; latency and delivery when the sends are known."""
        ws, we = self.window
        window_s = (we - ws) / 1e9 if self.window_set else None
        sends: dict[str, dict[int, list[int]]] = {}
        published: dict[str, int] = {}
        published_video: dict[str, int] = {}
        if self.sends_path is not None:
            data = json.loads(self.sends_path.read_text())
            for key, flat in data["streams"].items():
                per_idx: dict[int, list[int]] = {}
                total = 0
                video = 0
                for j in range(0, len(flat), 3):
                    idx, send_ns = flat[j], flat[j + 2]
                    per_idx.setdefault(idx, []).append(send_ns)
                    if ws <= send_ns < we:
                        total += self.sizes[idx]
                        video += self.kinds[idx] == VIDEO
                for times in per_idx.values():
                    times.sort()
                sends[key] = per_idx
                published[key] = total
                published_video[key] = video
        all_latency: list[int] = []
        normal_latency: list[int] = []
        targets: dict[str, Any] = {}
        sizes, kinds = self.sizes, self.kinds
        for (app, name), st in sorted(self.stats.items()):
            entry: dict[str, Any] = {
                "publishes": st.publishes,
                "window_bytes": st.window_bytes[AUDIO] + st.window_bytes[VIDEO],
                "window_video_tags": st.window_tags[VIDEO],
                "window_audio_tags": st.window_tags[AUDIO],
                "total_tags": st.total_tags,
                "data_tags": st.data_tags,
                "headers": st.headers,
                "mismatches": st.mismatches,
                "closed_early": st.closed_early,
            }
            if st.mismatch_samples:
                entry["mismatch_samples"] = st.mismatch_samples
            if window_s:
                entry["bitrate_mbps"] = entry["window_bytes"] * 8 / window_s / 1e6
            stream_sends = sends.get(name)
            if stream_sends is not None:
                latency: list[int] = []
                seen: set[tuple[int, int]] = set()
                matched_bytes = 0
                duplicates = 0
                early = 0
                early_samples: list[list[float]] = []
                arr = st.arrivals
                for j in range(0, len(arr), 2):
                    idx, t = arr[j], arr[j + 1]
                    times = stream_sends.get(idx, [])
                    k = bisect.bisect_right(times, t) - 1
                    if k < 0 or not ws <= times[k] < we:
                        if ws <= t < we:
                            # In the window, but not one of the window's sends: sent before it.
                            early += 1
                            if len(early_samples) < 5:
                                early_samples.append([idx, (t - ws) / 1e6])
                        continue
                    sent = times[k]
                    if (idx, sent) in seen:
                        duplicates += 1
                        continue
                    seen.add((idx, sent))
                    matched_bytes += sizes[idx]
                    if kinds[idx] == VIDEO:
                        latency.append(t - sent)
                latency.sort()
                all_latency.extend(latency)
                if app not in self.slow_apps:
                    normal_latency.extend(latency)
                pub = published.get(name, 0)
                entry.update({
                    "published_bytes": pub,
                    "delivered_bytes": matched_bytes,
                    "delivery_ratio": matched_bytes / pub if pub else None,
                    "lost_video": published_video.get(name, 0) - len(latency),
                    "duplicates": duplicates,
                    "arrived_in_window_sent_before": early,
                    "early_samples": early_samples,
                    "latency_ms": _summary(latency),
                })
            targets[f"{app}/{name}"] = entry
        all_latency.sort()
        normal_latency.sort()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "slow_apps": sorted(self.slow_apps),
            "latency_ms_normal": _summary(normal_latency),
            "window": [ws, we] if self.window_set else None,
            "targets": targets,
            "publishes": sum(st.publishes for st in self.stats.values()),
            "mismatches": sum(st.mismatches for st in self.stats.values()),
            "protocol_errors": self.protocol_errors[:10],
            "latency_ms": _summary(all_latency),
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }


def _summary(sorted_ns: list[int]) -> dict[str, float]:
    return {
        "count": len(sorted_ns),
        "p50": percentile(sorted_ns, 50) / 1e6,
        "p99": percentile(sorted_ns, 99) / 1e6,
        "max": (sorted_ns[-1] / 1e6) if sorted_ns else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (announced on stdout)")
    ap.add_argument("--control", action="store_true", help="take window/status/report commands on stdin")
    ap.add_argument("--sends", type=Path, help="the loadgen's --sends-out file, for latency and delivery")
    ap.add_argument("--duration", type=float, default=900.0, help="hard limit on the run, seconds")
    ap.add_argument("--clip", type=Path, help="the FLV the loadgen replays (default: the cached workload)")
    ap.add_argument("--slow-apps", default="", help="comma-separated apps left out of latency_ms_normal")
    args = ap.parse_args(argv)
    slow_apps = frozenset(a for a in args.slow_apps.split(",") if a)
    sink = Sink(load_clip(args.clip), controlled=args.control, slow_apps=slow_apps)
    sink.sends_path = args.sends

    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SinkConnection(sink), args.host, args.port, backlog=2048,
                                          reuse_address=True)
        port = server.sockets[0].getsockname()[1]
        emit("listening", port=port)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, sink.done.set)
        control = loop.create_task(sink.read_control()) if args.control else None  # a reference: the loop holds tasks weakly
        try:
            await asyncio.wait_for(sink.done.wait(), args.duration)
        except TimeoutError:
            pass
        server.close()
        if control is not None:
            control.cancel()

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())
    emit("report", **sink.report())


if __name__ == "__main__":
    main()
