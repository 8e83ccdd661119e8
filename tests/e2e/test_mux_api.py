"""The /video/v1 management API over raw HTTP against the daemon: live streams and targets created,
listed, read and deleted at Mux's paths and codes; access tokens; the config file's live streams
read-only; bad input refused with the field named and nothing changed; the database found whole
after a restart and after a SIGKILL in a burst of writes. (Mux's SDK: test_mux_sdk.py.)"""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.ffmpeg import start_publish
from testbed.ports import free_port
from testbed.relay_proc import RelayProcess, write_config
from tests.support.muxapi import SECRETS, Answer, MuxApi, api_config
from tests.support.openapi import validate

pytestmark = pytest.mark.e2e

INGEST_KEY = "muxapi-ingest-KEY-4c2d8e0f1a"
TARGET_KEY = "muxapi-target-KEY-8e2b4d6f0a"
NEW_TARGET_KEY = "muxapi-target-KEY-1357924680"
YAML_TARGET_KEY = "muxapi-yaml-target-KEY-2468013579"


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess], tmp_path: Path) -> tuple[RelayProcess, MuxApi]:
    daemon = relay_daemon([{"url": "rtmp://127.0.0.1:1/live", "stream_key": YAML_TARGET_KEY, "passthrough": "yaml"}],
                          ingest_key=INGEST_KEY, secrets=(TARGET_KEY, NEW_TARGET_KEY, YAML_TARGET_KEY, *SECRETS),
                          extra=api_config(tmp_path / "state"))
    daemon.wait_for("relay_ready")
    return daemon, MuxApi(daemon.http_port)


def documented(answer: Answer, path: str, method: str) -> Answer:
    """`answer`, checked against the OpenAPI document (relay/api/web/openapi.yaml)."""
    validate(answer.json, f"/video/v1{path}", method, answer.status)
    return answer


LS, TARGET = "/live-streams/{LIVE_STREAM_ID}", "/live-streams/{LIVE_STREAM_ID}/simulcast-targets/{SIMULCAST_TARGET_ID}"


def new_stream(api: MuxApi, **fields: Any) -> dict[str, Any]:
    answer = api.call("POST", "/live-streams", {
        "reconnect_window": 10, "passthrough": "my show",
        "simulcast_targets": [{"url": "rtmp://127.0.0.1:1/live", "stream_key": TARGET_KEY, "passthrough": "yt"}],
        **fields})
    assert answer.status == 201, answer.raw
    documented(answer, "/live-streams", "post")
    data: dict[str, Any] = answer.data
    return data


def test_create_list_get_and_delete(relay: tuple[RelayProcess, MuxApi]) -> None:
    daemon, api = relay
    created = new_stream(api)
    live_id, key = created["id"], created["stream_key"]
    assert len(live_id) == 32 and len(key) >= 40 and created["status"] == "idle"
    assert created["reconnect_window"] == 10 and created["passthrough"] == "my show"
    (target,) = created["simulcast_targets"]
    assert target["passthrough"] == "yt" and target["status"] == "idle" and "stream_key" not in target

    listed = documented(api.call("GET", "/live-streams"), "/live-streams", "get").data
    assert [ls["id"] for ls in listed] == ["studio", live_id]
    assert [ls["source"] for ls in listed] == ["config", "api"]
    assert all("stream_key" not in ls for ls in listed)
    assert api.call("GET", "/live-streams?limit=1&page=2").data[0]["id"] == live_id

    assert documented(api.call("GET", f"/live-streams/{live_id}"), LS, "get").data["stream_key"] == key
    assert "stream_key" not in documented(api.as_reader().call("GET", f"/live-streams/{live_id}"), LS, "get").data

    added = api.call("POST", f"/live-streams/{live_id}/simulcast-targets",
                     {"url": "rtmp://127.0.0.1:2/app", "stream_key": NEW_TARGET_KEY})
    assert added.status == 201 and added.data["passthrough"] == "127.0.0.1" and "stream_key" not in added.data
    documented(added, "/live-streams/{LIVE_STREAM_ID}/simulcast-targets", "post")
    got = api.call("GET", f"/live-streams/{live_id}/simulcast-targets/{added.data['id']}")
    assert documented(got, TARGET, "get").data["url"] == "rtmp://127.0.0.1:2/app"
    patched = api.call("PATCH", f"/live-streams/{live_id}/simulcast-targets/{added.data['id']}", {"enabled": False})
    assert documented(patched, TARGET, "patch").data["enabled"] is False
    updated = api.call("PATCH", f"/live-streams/{live_id}", {"reconnect_window": 0, "recording": {"format": "flv"}})
    assert documented(updated, LS, "patch").data["recording"]["enabled"] is True
    for action, method in (("disable", "PUT"), ("enable", "PUT"), ("complete", "PUT"), ("reset-stream-key", "POST")):
        documented(api.call(method, f"/live-streams/{live_id}/{action}"), f"{LS}/{action}", method)
    assert api.call("DELETE", f"/live-streams/{live_id}/simulcast-targets/{target['id']}").status == 204
    assert [t["id"] for t in api.call("GET", f"/live-streams/{live_id}").data["simulcast_targets"]] == [
        added.data["id"]]

    # Deleted: gone from the API, and the deletion logged.
    assert api.call("DELETE", f"/live-streams/{live_id}").status == 204
    assert api.call("GET", f"/live-streams/{live_id}").status == 404
    daemon.wait_for("api_live_stream_deleted", live_stream=live_id)


def test_credentials(relay: tuple[RelayProcess, MuxApi]) -> None:
    _, api = relay
    anonymous = MuxApi(api.port, None, None).call("GET", "/live-streams")
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    documented(anonymous, "/live-streams", "get")
    assert MuxApi(api.port, "app", "wrong").call("GET", "/live-streams").status == 401
    refused = api.as_reader().call("POST", "/live-streams", {})
    assert refused.status == 403 and "only read" in refused.messages[0]
    documented(refused, "/live-streams", "post")
    assert api.as_reader().call("GET", "/live-streams").status == 200
    # A browser page of another site cannot write, even with the credentials.
    assert api.call("POST", "/live-streams", {}, headers={"Origin": "http://evil.example"}).status == 403
    assert api.call("GET", "/live-streams", headers={"Host": "evil.example"}).status == 421


def test_the_config_files_live_streams_are_read_only(relay: tuple[RelayProcess, MuxApi]) -> None:
    _, api = relay
    studio = api.call("GET", "/live-streams/studio").data
    assert studio["source"] == "config" and "stream_key" not in studio
    (target,) = studio["simulcast_targets"]
    for method, path, body in (("DELETE", "/live-streams/studio", None), ("PATCH", "/live-streams/studio", {}),
                               ("POST", "/live-streams/studio/simulcast-targets", {"url": "rtmp://a/b", "stream_key": "a-target-key-long-enough-0"}),
                               ("DELETE", f"/live-streams/studio/simulcast-targets/{target['id']}", None),
                               ("PUT", "/live-streams/studio/disable", None),
                               ("POST", "/live-streams/studio/reset-stream-key", None)):
        answer = api.call(method, path, body)
        assert answer.status == 409 and "edit the file" in answer.messages[0], (method, path)
    documented(answer, f"{LS}/reset-stream-key", "post")


BAD_INPUT = [
    ("malformed JSON", "POST", "/live-streams", b'{"reconnect_window": ', 400, "the body is not valid JSON"),
    ("unknown field", "POST", "/live-streams", b'{"colour": "red"}', 400, "colour: unknown field"),
    ("wrong type", "POST", "/live-streams", b'{"reconnect_window": "soon"}', 400,
     "reconnect_window: must be a number, not a string"),
    ("a 7th target", "POST", "/live-streams",
     b'{"simulcast_targets": [' + b",".join(b'{"url": "rtmp://127.0.0.1:%d/live", "stream_key": "a-target-key-long-enough-%d"}' % (i, i)
                                             for i in range(1, 8)) + b"]}",
     400, "simulcast_targets[6]: at most 6 simulcast targets"),
    ("not rtmp", "POST", "/live-streams",
     b'{"simulcast_targets": [{"url": "https://example.com/live", "stream_key": "a-target-key-long-enough-0"}]}', 400,
     "simulcast_targets[0].url: must start with rtmp:// or rtmps://"),
    ("over-long", "POST", "/live-streams", b'{"passthrough": "' + b"x" * 300 + b'"}', 400,
     "passthrough: must be at most 255 characters"),
    ("oversized body", "POST", "/live-streams", b'{"passthrough": "' + b"x" * 70_000 + b'"}', 413, ""),
    ("unknown id", "GET", "/live-streams/nope", None, 404, "no live stream with that id"),
    ("unknown target", "GET", "/live-streams/studio/simulcast-targets/nope", None, 404, "no simulcast target"),
]


@pytest.mark.parametrize(("case", "method", "path", "raw", "status", "message"), BAD_INPUT,
                         ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
        relay: tuple[RelayProcess, MuxApi], case: str, method: str, path: str, raw: bytes | None,
        status: int, message: str) -> None:
    _, api = relay
    before = api.call("GET", "/live-streams").data
    answer = api.call(method, path, raw=raw)
    assert answer.status == status
    assert any(m.startswith(message) for m in answer.messages), answer.messages
    assert api.call("GET", "/live-streams").data == before
    documented(answer, path.split("?")[0].replace("/nope", "/{LIVE_STREAM_ID}").replace(
        "/studio/simulcast-targets/{LIVE_STREAM_ID}", "/{LIVE_STREAM_ID}/simulcast-targets/{SIMULCAST_TARGET_ID}"),
        method)


def test_a_bad_target_added_to_a_live_stream_changes_nothing(relay: tuple[RelayProcess, MuxApi]) -> None:
    _, api = relay
    created = new_stream(api)
    path = f"/live-streams/{created['id']}/simulcast-targets"
    answer = api.call("POST", path, {"url": "rtmp://127.0.0.1:1/live", "stream_key": TARGET_KEY})
    assert answer.status == 400 and answer.messages == [
        "same url and stream key as simulcast_targets[0]; the server takes only one"]
    answer = api.call("POST", path, {"url": "rtmp://127.0.0.1/", "stream_key": "a-target-key-long-enough-0"})
    assert answer.messages == ["url: must include the app, e.g. rtmp://live.twitch.tv/app"]
    assert len(api.call("GET", f"/live-streams/{created['id']}").data["simulcast_targets"]) == 1


def test_a_restart_finds_everything_and_a_reload_may_not_take_an_api_name(
        relay: tuple[RelayProcess, MuxApi], tmp_path: Path) -> None:
    daemon, api = relay
    created = new_stream(api)
    assert daemon.terminate() == 0
    again = RelayProcess(daemon.config_path)
    try:
        again.wait_for("relay_ready")
        api = MuxApi(again.http_port)
        found = api.call("GET", f"/live-streams/{created['id']}").data
        assert found == created

        config = yaml.safe_load(daemon.config_path.read_text())
        config["live_streams"].append({"name": created["id"], "stream_key": "muxapi-other-KEY-99", "simulcast_targets": []})
        write_config(daemon.config_path, config)
        again.proc.send_signal(signal.SIGHUP)
        failed = again.wait_for("config_reload_failed")
        assert any(created["id"] in p and "/video/v1 API" in p for p in failed["problems"])
        assert api.call("GET", f"/live-streams/{created['id']}").status == 200
    finally:
        again.kill()
    assert created["stream_key"] not in again.output and TARGET_KEY not in again.output


def test_a_sigkill_in_a_burst_of_writes_leaves_a_consistent_database(
        relay: tuple[RelayProcess, MuxApi], tmp_path: Path) -> None:
    daemon, api = relay
    answered: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            try:
                answer = api.call("POST", "/live-streams", {"simulcast_targets": [
                    {"url": f"rtmp://127.0.0.1:{i + 1}/live", "stream_key": f"burst-target-key-{i:04d}"} for i in range(6)]})
            except OSError:
                return
            if answer.status == 201:
                answered.append(answer.data["id"])

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    daemon.wait_for("api_live_stream_created", count=20, timeout=60)
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait(10)
    stop.set()
    for thread in threads:
        thread.join(15)

    conn = sqlite3.connect(tmp_path / "state" / "relay.sqlite3")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    counts = conn.execute("SELECT l.id, count(t.id) FROM live_streams l LEFT JOIN simulcast_targets t "
                          "ON t.live_stream_id = l.id GROUP BY l.id").fetchall()
    conn.close()
    assert all(n == 6 for _, n in counts), "a live stream was stored with some of its targets"
    assert set(answered) <= {live_id for live_id, _ in counts}, "an answered creation is not in the database"

    again = RelayProcess(daemon.config_path)
    try:
        again.wait_for("relay_ready")
        listed = MuxApi(again.http_port).call("GET", "/live-streams?limit=100").data
        assert {ls["id"] for ls in listed} == {"studio"} | {live_id for live_id, _ in counts}
    finally:
        again.kill()


def test_an_api_only_relay_starts_with_no_live_stream_and_takes_a_publisher_on_a_made_key(
        tmp_path: Path, source_flv: Path) -> None:
    # An app that drives the relay through /video/v1 alone: the config file lists no live stream.
    config = {"server": {"listen": f"127.0.0.1:{free_port()}", "app": "live"}, "live_streams": [],
              **api_config(tmp_path / "state")}
    daemon = RelayProcess(write_config(tmp_path / "relay.yaml", config))
    try:
        ready = daemon.wait_for("relay_ready")
        assert ready["live_streams"] == []
        api = MuxApi(daemon.http_port)
        made = new_stream(api)
        publisher = start_publish(f"rtmp://127.0.0.1:{daemon.port}/live/{made['stream_key']}", source_flv)
        try:
            daemon.wait_for("publish_started", timeout=30)
        finally:
            publisher.stop()
        assert made["stream_key"] not in daemon.output
    finally:
        assert daemon.terminate(timeout=15) == 0
    leaked = [key for key in (TARGET_KEY, *SECRETS) if key in daemon.output]
    assert not leaked


def test_a_reload_gives_the_api_live_streams_the_files_new_defaults(relay: tuple[RelayProcess, MuxApi]) -> None:
    daemon, api = relay
    created = new_stream(api)

    def write_interval() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.http_port}/api/v1/live-streams/{created['id']}",
                                    timeout=10) as response:
            (target,) = json.load(response)["data"]["simulcast_targets"]
            return float(target["write_interval"])

    before = write_interval()
    config = yaml.safe_load(daemon.config_path.read_text())
    config["target_defaults"] = {"write_interval": 0.02 if before != 0.02 else 0.03}
    write_config(daemon.config_path, config)
    daemon.proc.send_signal(signal.SIGHUP)
    reloaded = daemon.wait_for("config_reloaded")
    assert created["id"] in reloaded["changed"]
    assert write_interval() == config["target_defaults"]["write_interval"]
