"""No stream key in anything the relay writes, down every path that logs.

One daemon run goes through them all: a good publish, an unknown key, a second publisher,
a publisher that drops without unpublishing (reconnect window), targets that are refused
(no such app, `deny publish all`) or fail TLS, SIGHUP with broken files and then a good
one, and SIGTERM; around it, `relay check-config` and `relay run` on broken files. Keys
come from all three sources (inline, stream_key_file under $CREDENTIALS_DIRECTORY,
stream_key_env). Every byte of stdout and stderr of every relay command is searched.

The search is only as good as the output it looks at: the unknown key's SHA-256
fingerprint must be found in the same text, which proves the output is really there.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.ffmpeg import FfmpegProcess, publish_with_ffmpeg, start_publish
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import free_port
from testbed.relay_proc import REPO, RelayProcess
from tests.support.tls import Stunnel

pytestmark = pytest.mark.e2e

# Distinctive, so that a hit can only be a leak: one per source and role.
INGEST_INLINE = "LEAKCHK-ingest-inline-3b9d2f7a61"
INGEST_FILE = "LEAKCHK-ingest-file-c40e8a9d15"
INGEST_ENV = "LEAKCHK-ingest-env-7a1f0b6e92"
TARGET_FILE = "LEAKCHK-target-file-5e2c9d"  # the target that broadcasts
TARGET_INLINE = "LEAKCHK-target-inline-91ab4c"  # refused: deny publish all
TARGET_ENV = "LEAKCHK-target-env-2d7e30"  # refused: no such application
TARGET_TLS_ENV = "LEAKCHK-target-tls-env-8c5f14"  # certificate not trusted
TARGET_BACKSTAGE = "LEAKCHK-target-inline-b-6f0a3d"
TARGET_THIRD = "LEAKCHK-target-file-b-e19b72"
UNKNOWN = "LEAKCHK-unknown-publisher-0f9e8d7c"
ALL_KEYS = {"INGEST_INLINE": INGEST_INLINE, "INGEST_FILE": INGEST_FILE, "INGEST_ENV": INGEST_ENV,
            "TARGET_FILE": TARGET_FILE, "TARGET_INLINE": TARGET_INLINE, "TARGET_ENV": TARGET_ENV,
            "TARGET_TLS_ENV": TARGET_TLS_ENV, "TARGET_BACKSTAGE": TARGET_BACKSTAGE, "TARGET_THIRD": TARGET_THIRD,
            "UNKNOWN": UNKNOWN}
ENV = {"LEAKCHK_INGEST": INGEST_ENV, "LEAKCHK_TARGET": TARGET_ENV, "LEAKCHK_TLS_TARGET": TARGET_TLS_ENV}
FAST_RETRY = {"initial_delay": 0.2, "max_delay": 0.5}


class Outputs:
    """Everything every relay command wrote, by command."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.daemons: list[RelayProcess] = []

    def run(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "relay", *args], cwd=REPO, env={**os.environ, **env},
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False)
        self.texts[f"{name} (stdout)"] = done.stdout
        self.texts[f"{name} (stderr)"] = done.stderr
        return done

    def all(self) -> dict[str, str]:
        return {**self.texts, **{f"daemon {i} (stdout+stderr)": d.output for i, d in enumerate(self.daemons)}}


@pytest.fixture
def outputs() -> Iterator[Outputs]:
    """The record of every relay command's output; the daemons are killed at teardown, whatever happened."""
    record = Outputs()
    yield record
    for daemon in record.daemons:
        daemon.kill()


def good_config(listen: str, nginx: NginxRtmp, tunnel: Stunnel) -> dict[str, Any]:
    return {
        "server": {"listen": listen, "app": "live"},
        "http": {"listen": f"127.0.0.1:{free_port()}"},  # not the default port, which another daemon may hold
        "target_defaults": {"reconnect": FAST_RETRY},
        "live_streams": [
            {"name": "studio", "stream_key": INGEST_INLINE, "reconnect_window": 0, "simulcast_targets": [
                {"url": nginx.url("rec"), "stream_key_file": "target.key", "passthrough": "good"},
                {"url": nginx.url("denied"), "stream_key": TARGET_INLINE, "passthrough": "denied"},
                {"url": nginx.url("nosuchapp"), "stream_key_env": "LEAKCHK_TARGET", "passthrough": "noapp"},
                {"url": tunnel.url("rec"), "stream_key_env": "LEAKCHK_TLS_TARGET", "passthrough": "tls"},
            ]},
            {"name": "backstage", "stream_key_file": "ingest.key", "reconnect_window": 0, "simulcast_targets": [
                {"url": nginx.url("rec"), "stream_key": TARGET_BACKSTAGE, "passthrough": "backstage"},
            ]},
            {"name": "third", "stream_key_env": "LEAKCHK_INGEST", "reconnect_window": 0.5, "simulcast_targets": [
                {"url": nginx.url("rec"), "stream_key_file": "target-b.key", "passthrough": "third"},
            ]},
        ],
    }


def broken_values(config: dict[str, Any]) -> str:
    """The good config with mistakes made around keys: every message must describe them without quoting."""
    bad = yaml.safe_load(yaml.safe_dump(config))
    studio_targets = bad["live_streams"][0]["simulcast_targets"]
    studio_targets[1]["url"] += f"/{TARGET_INLINE}"  # the key pasted into the url
    studio_targets[2][TARGET_INLINE] = True  # a key pasted as a field name
    studio_targets[0]["stream_key"] = TARGET_FILE  # two sources for one key
    bad["live_streams"][1]["stream_key_file"] = "missing.key"
    third = bad["live_streams"][2]["simulcast_targets"][0]
    del third["stream_key_file"]
    third["stream_key_env"] = "LEAKCHK_UNSET"
    bad["live_streams"].append({"name": "studio", "stream_key": INGEST_INLINE, "simulcast_targets": []})
    return yaml.safe_dump(bad, sort_keys=False)


def broken_syntax(config: dict[str, Any]) -> str:
    """The good config with an unterminated quote on the line of an inline key."""
    text = yaml.safe_dump(config, sort_keys=False)
    line = f"stream_key: {INGEST_INLINE}"
    assert line in text
    return text.replace(line, f'stream_key: "{INGEST_INLINE}', 1)


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.long
def test_no_stream_key_reaches_any_output(
    tmp_path: Path, source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], stunnel: Callable[..., Stunnel],
    outputs: Outputs,
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True), RtmpApp("denied", "live on; deny publish all;"))
    tunnel = stunnel(nginx.port)  # the relay is not given the test CA: its certificate check fails
    credentials = tmp_path / "credentials"  # not next to the config: proves $CREDENTIALS_DIRECTORY is used
    credentials.mkdir()
    write(credentials / "target.key", TARGET_FILE + "\n")
    write(credentials / "target-b.key", TARGET_THIRD + "\n")
    write(credentials / "ingest.key", INGEST_FILE + "\n")
    env = {**ENV, "CREDENTIALS_DIRECTORY": str(credentials)}
    configs = tmp_path / "configs"
    configs.mkdir()
    good = good_config(f"127.0.0.1:{free_port()}", nginx, tunnel)
    bad_values = write(configs / "bad-values.yaml", broken_values(good))
    bad_syntax = write(configs / "bad-syntax.yaml", broken_syntax(good))
    # Group- and world-readable with inline keys: a warning, not an error.
    relay_yaml = write(configs / "relay.yaml", yaml.safe_dump(good, sort_keys=False), 0o644)

    # --- the CLI on broken and good files -----------------------------------------------------
    for name, path in (("values", bad_values), ("syntax", bad_syntax)):
        checked = outputs.run(f"check-config {name}", ["check-config", str(path)], env)
        assert checked.returncode == 2, checked.stderr
        run = outputs.run(f"run {name}", ["run", "--config", str(path), "--log-format", "json"], env)
        assert run.returncode == 2, run.stderr
        assert "config_invalid" in run.stderr
    problems = outputs.texts["check-config values (stderr)"]
    for where in ("simulcast_targets[1].url", "simulcast_targets[2]", "live_streams[1].stream_key_file",
                  "live_streams[2].simulcast_targets[0].stream_key_env", "live_streams[3].name"):
        assert where in problems, problems  # the mistakes were reported, so their messages were written
    assert re.search(r"bad-syntax\.yaml:\d+:\d+: invalid YAML", outputs.texts["check-config syntax (stderr)"])
    checked = outputs.run("check-config good", ["check-config", str(relay_yaml)], env)
    assert checked.returncode == 0, checked.stderr
    assert "readable by group or others" in checked.stderr
    assert f"sha256:{hashlib.sha256(TARGET_FILE.encode()).hexdigest()[:8]}" in checked.stdout

    # --- one daemon run --------------------------------------------------------------------
    daemon = RelayProcess(relay_yaml, env=env)
    outputs.daemons.append(daemon)
    port = daemon.port
    warning = daemon.wait_for("config_warning")
    assert "readable by group or others" in warning["message"]

    def url(key: str) -> str:
        return f"rtmp://127.0.0.1:{port}/live/{key}"

    show = start_publish(url(INGEST_INLINE), source_flv, realtime=True)
    dropped: FfmpegProcess | None = None
    try:
        daemon.wait_for("target_status", target="good", to="broadcasting")
        nginx.wait_published(TARGET_FILE)  # the key did go out, on the wire
        for label in ("denied", "noapp", "tls"):
            daemon.wait_for("target_status", target=label, to="errored")
        assert "certificate" in daemon.wait_for("target_status", target="tls", to="errored")["reason"]

        # A stranger's key, then a second publisher on a live stream that has one.
        assert start_publish(url(UNKNOWN), source_flv, realtime=False).wait(timeout=30) != 0
        daemon.wait_for("publish_rejected", reason="unknown stream key")
        assert start_publish(url(INGEST_INLINE), source_flv, realtime=False).wait(timeout=30) != 0
        daemon.wait_for("publish_rejected", reason="already publishing")

        # The ingest keys from a file and from the environment, and a publisher that drops
        # without unpublishing: its live stream waits out the reconnect window.
        publish_with_ffmpeg(url(INGEST_FILE), source_flv, realtime=False, timeout=30)
        daemon.wait_for("target_status", target="backstage", to="idle", timeout=20)
        dropped = start_publish(url(INGEST_ENV), source_flv, realtime=True)
        daemon.wait_for("target_status", target="third", to="broadcasting")
        dropped.proc.kill()
        daemon.wait_for("publisher_lost", live_stream="third")
        daemon.wait_for("target_status", target="third", to="idle")

        # SIGHUP with broken files: logged, ignored, the show goes on.
        for count, broken in enumerate((bad_values, bad_syntax), start=1):
            relay_yaml.write_text(broken.read_text())
            daemon.proc.send_signal(signal.SIGHUP)
            daemon.wait_for("config_reload_failed", count=count)
            assert daemon.proc.poll() is None
        # And with a good one: the refused targets go, the others stay.
        good["live_streams"][0]["simulcast_targets"] = good["live_streams"][0]["simulcast_targets"][:1]
        relay_yaml.write_text(yaml.safe_dump(good, sort_keys=False))
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for("config_reloaded")

        show.check(timeout=60)
    finally:
        show.stop()
        if dropped is not None:
            dropped.stop()
    daemon.wait_for("target_status", target="good", to="idle", timeout=20)
    assert not [e for e in daemon.events if e.get("target") == "good" and e.get("to") == "errored"]
    assert daemon.terminate(timeout=15) == 0
    daemon.wait_for("relay_stopped")
    unparsed = [e["line"] for e in daemon.events if e.get("event") == "<unparsed>"]
    assert not unparsed, "the daemon wrote lines that are not JSON log events:\n" + "".join(unparsed)[:3000]

    # --- the search -------------------------------------------------------------------------
    texts = outputs.all()
    leaks = {(name, label) for name, text in texts.items() for label, key in ALL_KEYS.items() if key in text}
    assert not leaks, f"stream keys in the relay's output: {sorted(leaks)}"
    unknown_fingerprint = hashlib.sha256(UNKNOWN.encode()).hexdigest()[:8]
    assert unknown_fingerprint in texts["daemon 0 (stdout+stderr)"]


SHORT_TARGET_KEY = "ta"  # what a new user types to try the relay out
SHORT_INGEST_KEY = "obs1"


def test_short_keys_are_scrubbed_as_whole_tokens_and_the_log_stays_readable(
    tmp_path: Path, source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], outputs: Outputs,
) -> None:
    # Keys this short are warned about at load; the scrubber must still not cut words apart
    # ("starting", "target_status", "metadata"), and where a key stands alone it is replaced.
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    config = {
        "server": {"listen": f"127.0.0.1:{free_port()}", "app": "live"},
        "http": {"listen": None},
        "live_streams": [{"name": "studio", "stream_key": SHORT_INGEST_KEY, "reconnect_window": 0,
                          "simulcast_targets": [{"url": nginx.url("rec"), "stream_key": SHORT_TARGET_KEY,
                                                 "passthrough": "nginx"}]}],
    }
    daemon = RelayProcess(write(tmp_path / "relay.yaml", yaml.safe_dump(config, sort_keys=False)))
    outputs.daemons.append(daemon)
    port = daemon.port
    warnings = [e["message"] for e in daemon.events if e.get("event") == "config_warning"]
    assert any("shorter than 16" in w for w in warnings)

    publish_with_ffmpeg(f"rtmp://127.0.0.1:{port}/live/{SHORT_INGEST_KEY}", source_flv, realtime=False, timeout=30)
    daemon.wait_for("target_status", target="nginx", to="idle", timeout=20)
    nginx.wait_unpublished(SHORT_TARGET_KEY)  # the key did go out, on the wire
    # A stranger's publish to a url that carries the short target key as a path segment:
    # the relay logs the app's first segment, which is then the key standing alone.
    assert start_publish(f"rtmp://127.0.0.1:{port}/{SHORT_TARGET_KEY}/x", source_flv,
                         realtime=False).wait(timeout=30) != 0
    rejected = daemon.wait_for("connect_rejected")
    assert daemon.terminate(timeout=15) == 0

    statuses = [e for e in daemon.events if e.get("event") == "target_status"]
    assert [e["to"] for e in statuses] == ["starting", "broadcasting", "idle"]
    assert all(e["target"] == "nginx" for e in statuses)
    # "ta" is inside "live_stream_status", "status" and "starting": the raw line keeps them whole.
    assert [line for line in daemon.raw_lines
            if '"event": "live_stream_status"' in line and '"from": "idle", "to": "active"' in line], \
        "no whole live_stream_status line for the publish"
    assert rejected["app"] == f"<redacted:{hashlib.sha256(SHORT_TARGET_KEY.encode()).hexdigest()[:8]}>"
    # No redaction inside a word anywhere, and neither key left standing alone.
    text = daemon.output
    assert not re.search(r"[\w.~-]<redacted|redacted:[0-9a-f]{8}>[\w.~-]", text)
    for key in (SHORT_TARGET_KEY, SHORT_INGEST_KEY):
        assert not re.search(rf"(?<![\w.~-]){key}(?![\w.~-])", text), f"the short key {key!r} stands in the log"
    assert '"to": "starting"' in text and '"event": "target_status"' in text  # the words are whole
