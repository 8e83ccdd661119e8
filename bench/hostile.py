"""The hostile-input figures that depend on the machine, checked against their budgets.

tests/e2e/test_hostile.py throws two rounds of garbage at a daemon during a show and
asserts what does not depend on the machine (the show byte for byte, every attacker
closed, fds back to the baseline, the log summed). It prints its figures as one
`HOSTILE_FIGURES {json}` line; this runs it and checks those figures:

- RSS after each round, once the daemon gave freed memory back (`memory_trimmed`), within
  RSS_TOLERANCE of the baseline, and the second round within RSS_REPEAT_TOLERANCE of the
  first (a leak grows with every round; measured: +3 to +5 % after the first);
- the longest callback's CPU (the daemon's own loop monitor, `loop_stall` cpu_ms) at most
  MAX_BUSY_MS: wall-clock stalls are shown too, but include time the process was not
  scheduled;
- log lines per second of attack: `ingest_refused` at most one a second (+4), lines about
  strangers at most 10 a second (+10).

Run it on a quiet machine: `.venv/bin/python bench/hostile.py` (about a minute and a half).
Exit 0 when every figure is within its budget, 1 when one is not, 2 when the test failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MAX_BUSY_MS = 100
RSS_TOLERANCE = 0.10
RSS_REPEAT_TOLERANCE = 0.03
MARK = "HOSTILE_FIGURES "


def run_test() -> dict[str, Any] | None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-n", "0", "-p", "no:cacheprovider",
         "tests/e2e/test_hostile.py", "-k", "garbage_at_scale"],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(MARK)), None)
    if done.returncode != 0 or line is None:
        print(done.stdout[-4000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
        return None
    figures: dict[str, Any] = json.loads(line[len(MARK):])
    return figures


def check(figures: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(figure, value and budget, within it) for each budget."""
    before, (first, second) = figures["rss_kb_before"], figures["rss_kb_after"]
    seconds = sum(figures["attack_s"])
    busy = figures["loop_busy_max_ms"]
    return [
        ("RSS after round 1", f"{first} kB, baseline {before} kB (+{first / before - 1:.1%}; "
                              f"budget +{RSS_TOLERANCE:.0%})", first <= before * (1 + RSS_TOLERANCE)),
        ("RSS after round 2", f"{second} kB, after round 1 {first} kB (+{second / first - 1:.1%}; "
                              f"budget +{RSS_REPEAT_TOLERANCE:.0%})", second <= first * (1 + RSS_REPEAT_TOLERANCE)),
        ("longest callback", f"{busy} ms of CPU (budget {MAX_BUSY_MS} ms; longest wall-clock stall "
                             f"{figures['loop_stall_max_ms']} ms)", busy <= MAX_BUSY_MS),
        ("ingest_refused lines", f"{figures['refused_lines']} in {seconds:.1f} s of attack (budget 1/s + 4)",
         figures["refused_lines"] <= seconds + 4),
        ("stranger lines", f"{figures['stranger_lines']} in {seconds:.1f} s of attack (budget 10/s + 10)",
         figures["stranger_lines"] <= 10 * (seconds + 4) + 10),
    ]


def main() -> int:
    figures = run_test()
    if figures is None:
        print("tests/e2e/test_hostile.py failed: no figures", file=sys.stderr)
        return 2
    results = check(figures)
    for name, text, ok in results:
        print(f"{'ok  ' if ok else 'OVER'} {name}: {text}")
    out = REPO / ".cache" / "bench" / "hostile.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures: {out.relative_to(REPO)}")
    return 0 if all(ok for _, _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
