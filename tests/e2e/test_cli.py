"""The command line as an operator meets it: bad configs, check-config, reload, version."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.ports import free_port, wait_until
from testbed.relay_proc import REPO, RelayProcess, write_config
from tests.support.example import example_ready
from tests.support.openapi import validate
from tests.support.show import SECRETS as SHOW_SECRETS
from tests.support.show import TOKEN as SHOW_TOKEN
from tests.support.show import Show, live_show

INGEST_KEY = "cli-ingest-KEY-4e1d2f"
TARGET_KEY = "cli-target-KEY-77ab10"


def good_config(port: int) -> dict[str, Any]:
    return {
        "server": {"listen": f"127.0.0.1:{port}", "app": "live"},
        # Never the default 127.0.0.1:8935: another daemon (a parallel test, a relay the
        # developer runs) may hold it, and then this one would exit at start.
        "http": {"listen": f"127.0.0.1:{free_port()}"},
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


def test_the_example_is_refused_until_its_placeholder_ingest_key_is_replaced(tmp_path: Path) -> None:
    refused = relay("check-config", str(REPO / "config" / "example.yaml"))
    assert refused.returncode == 2
    assert "live_streams[0].stream_key: is a placeholder" in refused.stderr

    result = relay("check-config", str(example_ready(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "is a placeholder, not the platform's stream key" in result.stderr  # the targets' keys: warnings


def test_version() -> None:
    result = relay("--version")

    assert result.returncode == 0
    assert result.stdout.startswith("simulcast-relay ")
    # scripts/test installs a compiler: the compiled per-tag path is built and in use.
    assert "compiled per-tag path" in result.stdout


def test_version_and_start_say_when_the_pure_python_path_runs(tmp_path: Path) -> None:
    env = {**os.environ, "RELAY_PURE_PYTHON": "1"}
    version = subprocess.run([sys.executable, "-m", "relay", "--version"], cwd=REPO, capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL, env=env)
    assert "pure-Python per-tag path: RELAY_PURE_PYTHON is set" in version.stdout

    run = subprocess.run([sys.executable, "-m", "relay", "run", "--config", str(tmp_path / "missing.yaml"),
                          "--log-format", "json"], cwd=REPO, capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL, env=env)
    lines = [json.loads(line) for line in (run.stdout + run.stderr).splitlines() if line.startswith("{")]
    assert [line["event"] for line in lines].count("pure_python_path") == 1


# --- relay status / relay reload against a running show ------------------------------------------

# The tests of the show share one worker in a parallel run (pytest-xdist, --dist loadgroup),
# so that the show starts once.
SHARES_THE_SHOW = pytest.mark.xdist_group("cli-show")


@pytest.fixture(scope="module")
def show(source_flv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Show]:
    with live_show(tmp_path_factory.mktemp("cli-show"), source_flv) as running:
        yield running


def no_secrets(result: subprocess.CompletedProcess[str]) -> bool:
    return not [s for s in SHOW_SECRETS if s in result.stdout + result.stderr]


@SHARES_THE_SHOW
def test_status_prints_a_table_and_exits_1_while_a_target_of_an_active_stream_is_errored(show: Show) -> None:
    show.wait_for_status(lambda ls: ls["ingest"] is not None, what="a publisher")
    # "nowhere" retries every 1-2 s: between attempts it is errored, during one (a refused connect,
    # usually a few ms) starting. Each run's exit status must agree with the table it printed; run
    # it until one finds the target errored.
    runs: list[subprocess.CompletedProcess[str]] = []

    def errored_run() -> bool:
        result = relay("status", "--config", str(show.config_path))
        runs.append(result)
        nowhere = next(line for line in result.stdout.splitlines() if line.strip().startswith("nowhere"))
        assert nowhere.split()[1] in ("errored", "starting"), nowhere
        assert result.returncode == (1 if nowhere.split()[1] == "errored" else 0), (result.stdout, result.stderr)
        return result.returncode == 1

    wait_until(errored_run, 30, "a status run that finds the target errored", interval=0.1)
    result = runs[-1]
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["LIVE", "STREAM"]
    studio = next(line for line in lines if line.startswith("studio"))
    assert "active" in studio and "h264" in studio
    nginx = next(line for line in lines if line.strip().startswith("nginx"))
    assert "broadcasting" in nginx
    assert all(no_secrets(run) for run in runs)


@SHARES_THE_SHOW
def test_status_json_is_the_apis_answer(show: Show) -> None:
    result = relay("status", "--config", str(show.config_path), "--json")

    body = json.loads(result.stdout)
    validate(body, "/api/v1/live-streams", "get", 200)
    assert body["data"][0]["name"] == "studio"
    assert no_secrets(result)


@SHARES_THE_SHOW
def test_status_with_url_and_token_file(show: Show, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(SHOW_TOKEN + "\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token\n")

    good = relay("status", "--url", show.base, "--token-file", str(token_file))
    refused = relay("status", "--url", show.base, "--token-file", str(wrong))
    no_token = relay("status", "--url", show.base)

    assert good.returncode == 1 and "nginx" in good.stdout
    assert refused.returncode == 3 and "refused the token" in refused.stderr
    assert no_token.returncode == 3
    assert no_secrets(good) and no_secrets(refused)


@SHARES_THE_SHOW
def test_reload_prints_the_outcome(show: Show) -> None:
    result = relay("reload", "--config", str(show.config_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("reloaded") and "nginx" in result.stdout
    assert no_secrets(result)


@SHARES_THE_SHOW
def test_reload_of_a_broken_file_prints_every_problem_and_exits_1(show: Show, tmp_path: Path) -> None:
    good = show.config_path.read_text()
    broken = json.loads(json.dumps(show.config))
    broken["live_streams"][0]["simulcast_targets"][0]["stream_key"] = ""
    write_config(show.config_path, broken)
    try:
        result = relay("reload", "--config", str(show.config_path))
    finally:
        show.config_path.write_text(good)

    assert result.returncode == 1
    assert "keeps its last good config" in result.stderr
    assert "live_streams[0].simulcast_targets[0].stream_key" in result.stderr
    assert no_secrets(result)


def test_status_of_an_idle_relay_exits_0_and_of_none_exits_3(tmp_path: Path) -> None:
    config = good_config(free_port())
    config["http"] = {"listen": f"127.0.0.1:{free_port()}"}
    path = write_config(tmp_path / "relay.yaml", config)

    unreachable = relay("status", "--config", str(path))
    daemon = RelayProcess(path)
    try:
        daemon.wait_for("relay_listening", scheme="http")
        idle = relay("status", "--config", str(path))
    finally:
        daemon.terminate()
        daemon.kill()

    assert unreachable.returncode == 3 and "no relay answering" in unreachable.stderr
    assert idle.returncode == 0, idle.stderr
    assert "idle" in idle.stdout


def test_status_without_http_says_so(tmp_path: Path) -> None:
    config = good_config(free_port())
    config["http"] = {"listen": None}
    path = write_config(tmp_path / "relay.yaml", config)

    result = relay("status", "--config", str(path))

    assert result.returncode == 2 and "http.listen is null" in result.stderr
