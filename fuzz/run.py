"""A bounded fuzzing run: build the seed corpus from the real sessions, run fuzz_server.py, report.

    python fuzz/run.py [--seconds 60] [--corpus DIR] [--artifacts DIR] [--coverage]

Exits 0 when the run ends without a crash, 1 when libFuzzer found one (the input is kept
in the artifacts folder, its traceback printed above), and 0 with a message when atheris
or the captures are not available (the fuzz step is optional). --coverage then replays
the corpus under coverage.py (when installed) and prints the line coverage of relay/rtmp/.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--corpus", type=Path, help="corpus folder, kept and grown (default: a temporary one)")
    parser.add_argument("--artifacts", type=Path, help="where a crashing input is written (default: temporary)")
    parser.add_argument("--coverage", action="store_true", help="replay the corpus under coverage.py afterwards")
    parser.add_argument("--replay", type=Path, help=argparse.SUPPRESS)  # the --coverage child process
    args = parser.parse_args()
    if args.replay:
        return _replay_under_coverage(args.replay)
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("fuzz: atheris is not installed (pip install atheris): skipped")
        return 0
    import pytest

    from fuzz import corpus
    from testbed.captures import read_capture

    with tempfile.TemporaryDirectory(prefix="relay-fuzz-") as tmp:
        corpus_dir = args.corpus or Path(tmp) / "corpus"
        artifacts = args.artifacts or Path(tmp) / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        try:
            count = corpus.write(corpus_dir, read_capture)
        except pytest.skip.Exception as exc:
            print(f"fuzz: no real sessions to seed from ({exc}): skipped")
            return 0
        command = [
            sys.executable, str(ROOT / "fuzz" / "fuzz_server.py"),
            f"-max_total_time={args.seconds}", "-max_len=40000", "-timeout=10", "-rss_limit_mb=2048",
            "-print_final_stats=1", f"-artifact_prefix={artifacts}/", str(corpus_dir),
        ]
        print(f"fuzz: {count} seeds from the real sessions; {' '.join(command[1:])}", flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        log = done.stdout + done.stderr
        summary = _summary(log)
        crashes = sorted(p.name for p in artifacts.iterdir())
        print(f"fuzz: {summary}; crashes: {len(crashes)}")
        if done.returncode != 0 or crashes:
            print(log[-20_000:])
            kept = ROOT / ".cache" / "fuzz-artifacts"
            kept.mkdir(parents=True, exist_ok=True)
            for name in crashes:
                (kept / name).write_bytes((artifacts / name).read_bytes())
            print(f"fuzz: crashing inputs copied to {kept}")
            return 1
        if args.coverage:
            # A fresh process: relay.rtmp must be imported under coverage, not before it (corpus.py).
            subprocess.run([sys.executable, __file__, "--replay", str(corpus_dir)], check=True)
    return 0


def _replay_under_coverage(corpus_dir: Path) -> int:
    try:
        import coverage
    except ImportError:
        print("fuzz: coverage.py is not installed: no line coverage")
        return 0
    cov = coverage.Coverage(source=["relay.rtmp"], data_file=None)
    cov.start()
    from fuzz.target import test_one_input

    inputs = sorted(corpus_dir.iterdir())
    for path in inputs:
        test_one_input(path.read_bytes())
    cov.stop()
    print(f"fuzz: line coverage of relay/rtmp/ by the {len(inputs)} inputs of the corpus:")
    cov.report(file=sys.stdout)
    return 0


def _summary(log: str) -> str:
    """Executions, coverage and features from libFuzzer's last status line and final stats."""
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    speed = re.findall(r"stat::average_exec_per_sec:\s*(\d+)", log)
    status = re.findall(r"^#\d+\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", log, re.MULTILINE)
    parts = []
    if runs:
        parts.append(f"{int(runs[-1]):,} executions")
    if speed:
        parts.append(f"{speed[-1]}/s")
    if status:
        cov, ft, corp, size = status[-1]
        parts.append(f"coverage {cov} edges, {ft} features, corpus {corp} inputs ({size})")
    return ", ".join(parts) or "no statistics (see the log)"


if __name__ == "__main__":
    sys.exit(main())
