"""What the relay's ingest alone costs: N publishers (bench/loadgen.py, the standard workload), no targets.

The floor under every figure of bench/fanout.py: reading, parsing and classifying the
publishers' tags before any target is involved. Compare it with nginx-rtmp's whole cost
(ingest and 6 pushes) at the same N in the same minutes.

    python bench/ingest_only.py --streams 8 32 --seconds 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.fanout import BENCH_DIR, CLK_TCK, INGEST_APP, KEY_PREFIX, READY_TIMEOUT, JsonLinesProc, RelaySystem, cpu_of

WARMUP_S = 4.0


def measure(n: int, seconds: float) -> tuple[float, float]:
    """(user, kernel) CPU ms per stream-second of a relay with n publishers and no targets."""
    workdir = Path(tempfile.mkdtemp(prefix="ingest-only-"))
    system = RelaySystem(workdir)
    loadgen: JsonLinesProc | None = None
    try:
        port = system.start(0, n, 0)
        loadgen = JsonLinesProc(
            "loadgen",
            [sys.executable, str(BENCH_DIR / "loadgen.py"), "--url", f"rtmp://127.0.0.1:{port}/{INGEST_APP}",
             "--streams", str(n), "--key-prefix", KEY_PREFIX, "--control", "--duration", str(seconds + 60)],
            workdir / "loadgen.stderr",
        )
        loadgen.wait_event("published", READY_TIMEOUT)
        time.sleep(WARMUP_S)  # the scenario: publishers running; nothing to wait for
        before, t0 = cpu_of(system.pids()), time.monotonic()
        time.sleep(seconds)
        after, elapsed = cpu_of(system.pids()), time.monotonic() - t0
        loadgen.send("stop")
    finally:
        if loadgen is not None:
            loadgen.stop()
        system.stop()
    per = 1000 / CLK_TCK / (n * elapsed)
    return (after[0] - before[0]) * per, (after[1] - before[1]) * per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    print(f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}\n")
    print("| N | relay CPU ms per stream-second, no targets | user | kernel |")
    print("|---:|---:|---:|---:|")
    for n in args.streams:
        user, kernel = measure(n, args.seconds)
        print(f"| {n} | {user + kernel:.2f} | {user:.2f} | {kernel:.2f} |", flush=True)


if __name__ == "__main__":
    main()
