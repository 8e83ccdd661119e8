"""The command line as an operator meets it: bad configs, check-config, reload, version."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.ports import free_port
from tests.support.relay_proc import REPO, RelayProcess, write_config

INGEST_KEY = "cli-ingest-KEY-4e1d2f"
TARGET_KEY = "cli-target-KEY-77ab10"


def good_config(port: int) -> dict[str, Any]:
    return {
        "server": {"listen": f"127.0.0.1:{port}", "app": "live"},
        "live_streams": [{
            "name": "studio",
            "stream_key": INGEST_KEY,
            "simulcast_targets": [
                {"url": "rtmp://127.0.0.1:1/app/instance", "stream_key": TARGET_KEY, "passthrough": "one"},
            ],
        }],
    }


def seven_targets(port: int) -> dict[str, Any]:
    config = good_config(port)
    config["live_streams"][0]["simulcast_targets"] = [
        {"url": f"rtmp://127.0.0.1:1/app{i}", "stream_key": f"{TARGET_KEY}-{i}", "passthrough": f"t{i}"}
        for i in range(7)
    ]
    config["live_streams"][0]["simulcast_targets"][2]["url"] = "http://example.invalid/app"
    return config


def relay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relay", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def test_run_with_a_bad_config_exits_2_before_binding_and_names_every_problem(tmp_path: Path) -> None:
    path = write_config(tmp_path / "bad.yaml", seven_targets(free_port()))

    result = relay("run", "--config", str(path), "--log-format", "json")

    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "relay_listening" not in output
    assert "live_streams[0].simulcast_targets[6]" in output
    assert "live_streams[0].simulcast_targets[2].url" in output
    assert str(path) in output
    assert INGEST_KEY not in output and TARGET_KEY not in output


def test_check_config_reports_the_same_problems_with_exit_2(tmp_path: Path) -> None:
    path = write_config(tmp_path / "bad.yaml", seven_targets(free_port()))

    result = relay("check-config", str(path))

    assert result.returncode == 2
    # FILE:LINE:COLUMN: path: message
    assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: live_streams\[0\]\.simulcast_targets\[6\]: ",
                     result.stderr, re.MULTILINE)
    assert "at most 6" in result.stderr
    assert TARGET_KEY not in result.stdout + result.stderr


def test_check_config_summarizes_a_good_file_with_keys_redacted(tmp_path: Path) -> None:
    path = write_config(tmp_path / "good.yaml", good_config(free_port()))

    result = relay("check-config", str(path))

    assert result.returncode == 0, result.stderr
    assert "studio" in result.stdout and "one" in result.stdout
    assert "rtmp://127.0.0.1:1/app/instance" in result.stdout
    assert INGEST_KEY not in result.stdout and TARGET_KEY not in result.stdout


def test_the_example_config_is_valid() -> None:
    result = relay("check-config", str(REPO / "config" / "example.yaml"))

    assert result.returncode == 0, result.stderr


def test_version() -> None:
    result = relay("--version")

    assert result.returncode == 0
    assert result.stdout.startswith("simulcast-relay ")


def test_sighup_keeps_the_last_good_config_when_the_new_one_is_broken(tmp_path: Path) -> None:
    port = free_port()
    path = write_config(tmp_path / "relay.yaml", good_config(port))
    daemon = RelayProcess(path)
    try:
        daemon.wait_for("relay_listening")
        path.write_text("live_streams: [\n")  # a YAML syntax error

        daemon.proc.send_signal(signal.SIGHUP)

        failed = daemon.wait_for("config_reload_failed")
        assert any(str(path) in problem for problem in failed["problems"])
        fixed = good_config(port)
        fixed["live_streams"].append({"name": "second", "stream_key": INGEST_KEY + "-2", "simulcast_targets": []})
        write_config(path, fixed)
        daemon.proc.send_signal(signal.SIGHUP)
        assert daemon.wait_for("config_reloaded")["live_streams"] == 2
        assert daemon.proc.poll() is None
        assert daemon.terminate(timeout=5) == 0
    finally:
        daemon.kill()
    assert INGEST_KEY not in daemon.output and TARGET_KEY not in daemon.output
