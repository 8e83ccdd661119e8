"""One- and two-character keys, through every surface of a running relay.

Keys are never put into answers, metrics or webhook bodies; what scrubbing is left works
on values, never on names or syntax. Scrubbing the serialized text for a key "ta" once
turned `{"data": ...}` into `{"da<redacted>...` and renamed metrics; for a key "a" it
would leave no JSON at all. Here every surface must parse, keep its names, hold no key
where a key could be (a url's path, a value of its own) and show no `<redacted` (nothing
had to be scrubbed, so nothing was cut).

The config warns about keys this short (they can be guessed): a warning, not an error.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from testbed.ffmpeg import FfmpegProcess
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import distinct_ports, free_port, wait_until
from testbed.relay_proc import REPO, RelayProcess, write_config
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("short-keys")]

INGEST_KEY = "a"
TARGET_KEYS = {"nginx": "ta", "nginx-on": "on", "nowhere": "da"}
TOKEN = "to"
WEBHOOK_SECRET = "se"
KEYS = (INGEST_KEY, *TARGET_KEYS.values(), TOKEN, WEBHOOK_SECRET)
METRICS = {"relay_build_info", "relay_live_stream_status", "relay_live_stream_publish_sessions",
           "relay_ingest_received_bytes", "relay_simulcast_target_status", "relay_simulcast_target_sent_bytes",
           "relay_simulcast_target_reconnects", "relay_simulcast_target_dropped_frames",
           "relay_webhook_delivered_events", "process_cpu_seconds"}


def leaks(text: str) -> list[str]:
    """Where a key stands as a key would: a url path segment, a query value, a whole value of its own."""
    found = []
    for key in KEYS:
        k = re.escape(key)
        if re.search(rf"[/=]{k}(?:$|[/?&\s\"',)])", text) or re.search(rf"\"{k}\"", text):
            found.append(key)
    return found


def check_json(raw: bytes, shape: set[str]) -> Any:
    """Parse `raw`, check its top-level names and that no name or value was cut or holds a key."""
    text = raw.decode()
    assert "redacted" not in text, text[:500]
    body = json.loads(text)
    assert set(body) == shape, body
    for name, value in walk(body):
        assert name.isidentifier() or name in TARGET_KEYS or name == "studio", name  # names are whole
        if isinstance(value, str):
            assert value not in KEYS and not leaks(value), (name, value)
    assert not leaks(text)
    return body


def walk(value: Any, name: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, name)


@pytest.fixture(scope="module")
def relay(source_flv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RelayProcess, Any]]:
    workdir = tmp_path_factory.mktemp("short-keys")
    nginx = NginxRtmp(workdir / "nginx", (RtmpApp("live", record=False),))
    (workdir / "nginx").mkdir()
    nginx.start()
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    receiver.start()
    rtmp_port, http_port = distinct_ports()
    config = {
        "server": {"listen": f"127.0.0.1:{rtmp_port}"},
        "http": {"listen": f"127.0.0.1:{http_port}", "token": TOKEN},
        "webhooks": [{"url": receiver.url, "secret": WEBHOOK_SECRET}],
        "live_streams": [{
            "name": "studio", "stream_key": INGEST_KEY, "reconnect_window": 0,
            "simulcast_targets": [
                {"url": nginx.url("live"), "stream_key": TARGET_KEYS["nginx"], "passthrough": "nginx"},
                {"url": nginx.url("live"), "stream_key": TARGET_KEYS["nginx-on"], "passthrough": "nginx-on"},
                {"url": "rtmp://127.0.0.1:1/app", "stream_key": TARGET_KEYS["nowhere"], "passthrough": "nowhere",
                 "reconnect": {"initial_delay": 1, "max_delay": 2}},
            ],
        }],
    }
    daemon = RelayProcess(write_config(workdir / "relay.yaml", config))
    publisher = None
    try:
        port = daemon.port
        publisher = FfmpegProcess(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-re",
                                   "-stream_loop", "-1", "-i", str(source_flv), "-c", "copy", "-f", "flv",
                                   f"rtmp://127.0.0.1:{port}/live/{INGEST_KEY}"])
        for label in ("nginx", "nginx-on"):
            daemon.wait_for("target_status", target=label, to="broadcasting", timeout=30)
        daemon.wait_for("target_status", target="nowhere", to="errored", timeout=30)
        receiver.wait_until(lambda events: any(e["type"].endswith("simulcast_target.errored") for e in events),
                            what="an errored event")
        yield daemon, receiver
    finally:
        if publisher is not None:
            publisher.stop()
        daemon.kill()
        nginx.stop()
        receiver.stop()


def request(daemon: RelayProcess, path: str, *, method: str = "GET", token: str | None = TOKEN,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{daemon.http_port}{path}", method=method,
                                 data=b"" if method == "POST" else None, headers=headers or {})
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_api_answers_parse_and_hold_no_key(relay: tuple[RelayProcess, Any]) -> None:
    daemon, _ = relay
    status, raw = request(daemon, "/api/v1/live-streams")
    assert status == 200
    (live,) = check_json(raw, {"data"})["data"]
    urls = {t["passthrough"]: t["url"] for t in live["simulcast_targets"]}
    assert urls == {"nginx": urls["nginx"], "nginx-on": urls["nginx"], "nowhere": "rtmp://127.0.0.1:1/app"}
    assert urls["nginx"].endswith("/live")  # the platform url, never with the key
    for path in ("/api/v1/live-streams/studio", "/api/v1/history"):
        status, raw = request(daemon, path)
        assert status == 200
        check_json(raw, {"data"})
    status, raw = request(daemon, "/api/v1/reload", method="POST")
    assert status == 200
    assert check_json(raw, {"data"})["data"]["ok"]


@pytest.mark.parametrize(("path", "kwargs", "status"), [
    ("/api/v1/live-streams/nope", {}, 404),
    ("/api/v1/nothing", {}, 404),
    ("/api/v1/live-streams", {"token": "ta"}, 401),
    ("/api/v1/live-streams", {"token": None}, 401),
    ("/api/v1/live-streams", {"headers": {"Host": "evil.example"}}, 421),
    ("/api/v1/reload", {"method": "POST", "headers": {"Origin": "https://evil.example"}}, 403),
])
def test_error_answers_parse_and_hold_no_key(relay: tuple[RelayProcess, Any], path: str,
                                             kwargs: dict[str, Any], status: int) -> None:
    daemon, _ = relay
    got, raw = request(daemon, path, **kwargs)
    assert got == status
    assert check_json(raw, {"error"})["error"]["messages"]


def test_metrics_parse_with_their_names(relay: tuple[RelayProcess, Any]) -> None:
    daemon, _ = relay
    status, raw = request(daemon, "/metrics")
    assert status == 200
    text = raw.decode()
    assert "redacted" not in text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert METRICS <= set(families), sorted(METRICS - set(families))
    for family in families.values():
        for sample in family.samples:
            assert sample.name.startswith(family.name)
            for value in sample.labels.values():
                assert value not in KEYS and not leaks(value), (sample.name, value)
    targets = {s.labels["target"] for s in families["relay_simulcast_target_status"].samples}
    assert targets == set(TARGET_KEYS)


def test_webhook_bodies_parse_and_hold_no_key(relay: tuple[RelayProcess, Any]) -> None:
    _, receiver = relay
    receiver.wait_until(lambda events: len(events) >= 3)
    for body in list(receiver.raw_bodies):
        event = check_json(body, {"type", "id", "created_at", "object", "data"})
        assert event["type"].startswith("video.live_stream")


def test_relay_status_json_and_table(relay: tuple[RelayProcess, Any], tmp_path: Path) -> None:
    daemon, _ = relay
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    base = ["--url", f"http://127.0.0.1:{daemon.http_port}", "--token-file", str(token_file)]
    as_json = subprocess.run([sys.executable, "-m", "relay", "status", *base, "--json"], cwd=REPO,
                             capture_output=True, timeout=30, check=False)
    assert as_json.returncode == 1, as_json.stderr  # a target of the active stream is errored
    check_json(as_json.stdout, {"data"})
    table = subprocess.run([sys.executable, "-m", "relay", "status", *base], cwd=REPO,
                           capture_output=True, timeout=30, check=False, text=True)
    assert table.returncode == 1 and "nginx-on" in table.stdout and "nowhere" in table.stdout
    assert "redacted" not in table.stdout and not leaks(table.stdout), table.stdout


def test_the_daemons_log_lines(relay: tuple[RelayProcess, Any]) -> None:
    daemon, _ = relay
    wait_until(lambda: any(e.get("event") == "target_status" for e in daemon.events), 10, "log lines")
    for event in list(daemon.events):
        assert event.get("event") != "<unparsed>", event
        assert "redacted" not in event["event"] and all("redacted" not in name for name in event), event
        for name, value in walk(event):
            if isinstance(value, str):
                assert value not in KEYS and not leaks(value), (event["event"], name, value)
    output = daemon.output
    for key, label in ((INGEST_KEY, "ingest"), *((k, t) for t, k in TARGET_KEYS.items())):
        # A key where it would stand in a url: the publisher's, or a target's.
        assert f"/live/{key}\"" not in output and f"/app/{key}\"" not in output, label
