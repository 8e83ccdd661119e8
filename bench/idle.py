"""What an idle relay costs: CPU per second of a daemon with its config loaded and its listeners up,
and no publisher. Issue #21's target is at most 0.5 ms of CPU per second.

    .venv/bin/python bench/idle.py [--seconds 30] [--live-streams 1] [--targets 3]

Starts `relay run` (the example's shape: listeners, HTTP, live streams whose targets point at a
closed port, so nothing connects while idle), waits until it is ready and has settled, then
reads its CPU time (utime + stime from /proc/PID/stat) at the start and the end of a window and
prints ms of CPU per second, with the loop wakeups the window saw (voluntary context switches).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testbed.ports import free_port  # noqa: E402
from testbed.relay_proc import RelayProcess, write_config  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def switches(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--live-streams", type=int, default=1)
    parser.add_argument("--targets", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after ready before measuring")
    args = parser.parse_args()
    closed = free_port()  # nothing listens there; no publisher means no target connects anyway
    with tempfile.TemporaryDirectory() as tmp:
        config = {
            "server": {"listen": f"127.0.0.1:{free_port()}", "app": "live"},
            "http": {"listen": f"127.0.0.1:{free_port()}"},
            "live_streams": [{
                "name": f"studio-{i}", "stream_key": f"idle-bench-ingest-key-{i:04d}-8f3a2c",
                "simulcast_targets": [{"url": f"rtmp://127.0.0.1:{closed}/app{j}",
                                       "stream_key": f"idle-bench-target-key-{i}-{j}-77aa", "passthrough": f"t{j}"}
                                      for j in range(args.targets)],
            } for i in range(args.live_streams)],
        }
        relay = RelayProcess(write_config(Path(tmp) / "relay.yaml", config), log_level="info")
        try:
            relay.wait_for("relay_ready", timeout=30)
            time.sleep(args.settle)  # a bench, not a test: it measures over a window of time
            pid = relay.proc.pid
            cpu0, sw0, t0 = cpu_seconds(pid), switches(pid), time.monotonic()
            time.sleep(args.seconds)
            cpu1, sw1, t1 = cpu_seconds(pid), switches(pid), time.monotonic()
        finally:
            relay.terminate(timeout=15)
    elapsed = t1 - t0
    print(f"idle relay ({args.live_streams} live stream(s), {args.targets} target(s) each), {elapsed:.1f} s window:")
    print(f"  CPU {1000 * (cpu1 - cpu0) / elapsed:.2f} ms per second; {(sw1 - sw0) / elapsed:.1f} wakeups per second")
    print(f"  (CPU clock resolution {1000 / CLK_TCK:.0f} ms: {1000 * (cpu1 - cpu0):.0f} ms over the window)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
