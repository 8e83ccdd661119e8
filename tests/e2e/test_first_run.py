"""The first run explains itself: `relay_ready` says what to put in OBS, and scripts/run-example runs clean.

- the daemon logs `relay_ready` once, with the Server URL of each listener, the live
  streams by name and the status page, and no key anywhere in its output;
- scripts/run-example runs the example on a private 0600 copy (no permission warning) with
  the ports it is given, from the environment or its arguments.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from testbed.ports import free_port
from testbed.relay_proc import REPO, RelayProcess, write_config
from tests.support.example import example_text

pytestmark = pytest.mark.e2e

INGEST_A = "firstrun-ingest-A-KEY-6b0e21"
INGEST_B = "firstrun-ingest-B-KEY-c4d9a7"
TARGET_KEY = "firstrun-target-KEY-19f3e8"
HTTP_TOKEN = "firstrun-http-TOKEN-5a7c33"


def test_relay_ready_says_what_to_put_in_obs_once_and_never_a_key(tmp_path: Path) -> None:
    http_port = free_port()
    config = write_config(tmp_path / "relay.yaml", {
        "server": {"listen": f"127.0.0.1:{free_port()}", "app": "live"},
        "http": {"listen": f"127.0.0.1:{http_port}", "token": HTTP_TOKEN},
        "live_streams": [
            {"name": "studio-a", "stream_key": INGEST_A, "simulcast_targets": [
                {"url": f"rtmp://127.0.0.1:{free_port()}/live", "stream_key": TARGET_KEY, "passthrough": "x"}]},
            {"name": "studio-b", "stream_key": INGEST_B, "simulcast_targets": []},
        ],
    })
    relay = RelayProcess(config)
    try:
        ready = relay.wait_for("relay_ready")
        port = relay.port
        # A reload does not say it again: it is the first run's explanation.
        relay.proc.send_signal(signal.SIGHUP)
        relay.wait_for("config_reloaded")
        assert relay.terminate() == 0
    finally:
        relay.kill()

    assert ready["level"] == "info"
    assert ready["obs_server"] == [f"rtmp://127.0.0.1:{port}/live"]
    assert ready["live_streams"] == ["studio-a", "studio-b"]
    assert ready["status_page"] == [f"http://127.0.0.1:{http_port}/"]
    assert any("this machine only" in note for note in ready["notes"])
    assert [e["event"] for e in relay.events].count("relay_ready") == 1
    output = relay.output
    for secret in (INGEST_A, INGEST_B, TARGET_KEY, HTTP_TOKEN):
        assert secret not in output
        # Not even as a fingerprint: the names are enough.
        assert hashlib.sha256(secret.encode()).hexdigest()[:8] not in json.dumps(ready)


def _installed_venv() -> bool:
    """True when scripts/run-example would run the checkout's .venv as it is (no pip install)."""
    # The stamp scripts/test and scripts/run-example write: the packaging files and the compiled twins' sources.
    sources = [REPO / "pyproject.toml", REPO / "setup.py", *sorted(REPO.glob("relay/*/_speedups.pyx"))]
    want = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()
    stamps = [REPO / ".venv" / name for name in (".installed-test", ".installed")]
    return (REPO / ".venv" / "bin" / "relay").exists() and any(
        stamp.exists() and stamp.read_text().strip() == want for stamp in stamps)


class _Lines:
    """A process's output lines, awaited one by one (with a timeout) from a reader thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.proc = proc
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_event(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"exited without {name}:\n{''.join(self.seen)[-4000:]}")
            self.seen.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == name:
                return event

    def rest(self) -> str:
        self._reader.join(15)
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)


@pytest.mark.parametrize("how", ["environment", "arguments"])
def test_run_example_runs_a_private_copy_on_the_ports_it_is_given(tmp_path: Path, how: str) -> None:
    if not _installed_venv():
        pytest.skip("scripts/run-example would install the package into .venv first")
    rtmp_port, http_port = free_port(), free_port()
    run_dir = tmp_path / "run"
    env = {**os.environ, "RUN_DIR": str(run_dir)}
    env.pop("JOURNAL_STREAM", None)
    args = ["--log-format", "json"]
    if how == "environment":
        env.update(RTMP_PORT=str(rtmp_port), HTTP_PORT=str(http_port))
    else:
        args = ["--rtmp-port", str(rtmp_port), f"--http-port={http_port}", *args]
    proc = subprocess.Popen(["bash", str(REPO / "scripts" / "run-example"), *args], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = _Lines(proc)
    try:
        ready = lines.wait_event("relay_ready")
        proc.send_signal(signal.SIGTERM)  # the script execs the relay: this is the relay
        code = proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = lines.rest()

    assert code == 0, output[-3000:]
    assert f":{rtmp_port}/live" in ready["obs_server"][0]
    assert ready["status_page"] == [f"http://127.0.0.1:{http_port}/"]
    assert "readable by group or others" not in output
    copy = run_dir / "relay.yaml"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    key_file = run_dir / "ingest-key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key) >= 24
    assert copy.read_text() == example_text(key).replace(
        "listen: 0.0.0.0:1935", f"listen: 0.0.0.0:{rtmp_port}").replace(
        "listen: 127.0.0.1:8935", f"listen: 127.0.0.1:{http_port}")
    assert key not in output  # the relay's own output never shows it


def test_run_example_refuses_a_port_that_is_not_a_number(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(REPO / "scripts" / "run-example"), "--rtmp-port", "19x5"],
                          env={**os.environ, "RUN_DIR": str(tmp_path / "run")}, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)

    assert done.returncode == 2
    assert "a port is a number" in done.stderr
    assert not (tmp_path / "run").exists()
