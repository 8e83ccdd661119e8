"""The status API of a running relay during a show, checked against its OpenAPI document.

One show for the module: a looping ffmpeg publisher, an nginx-rtmp target broadcasting
and a target nobody listens for (errored, retrying).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay.live.health import REASON_CODES
from testbed.ports import wait_until
from testbed.relay_proc import write_config
from tests.support.openapi import validate
from tests.support.show import SECRETS, TOKEN, Show, live_show, target

# One show for the module: its tests share one worker in a parallel run (pytest-xdist, --dist loadgroup).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("http-show")]


@pytest.fixture(scope="module")
def show(source_flv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Show]:
    with live_show(tmp_path_factory.mktemp("show"), source_flv) as running:
        yield running


def assert_no_secrets(body: bytes) -> None:
    assert not [s for s in SECRETS if s.encode() in body], "a key or the token is in a response"


def test_live_streams_during_a_show(show: Show) -> None:
    # The show's publisher follows the platforms' advice (a keyframe every 2 s, audio and video):
    # once measured, the relay must call it healthy.
    show.wait_for_status(lambda ls: ls["ingest"] is not None and ls["ingest"]["keyframe_interval"] is not None
                         and target(ls, "nginx")["bytes_sent"] > 0 and ls["health"]["status"] == "healthy",
                         what="ingest measurements and a healthy stream")
    status, raw, headers = show.request("/api/v1/live-streams")

    assert status == 200 and headers["Content-Type"].startswith("application/json")
    body = json.loads(raw)
    validate(body, "/api/v1/live-streams", "get", 200)
    assert_no_secrets(raw)
    (live,) = body["data"]
    assert live["status"] == "active" and live["publisher_connected"] and live["sessions"] == 1
    ingest = live["ingest"]
    assert (ingest["video_codec"], ingest["audio_codec"]) == ("h264", "aac")
    assert (ingest["width"], ingest["height"]) == (640, 360)
    assert ingest["frame_rate"] == pytest.approx(30, abs=2)
    assert ingest["keyframe_interval"] == pytest.approx(2.0, abs=0.1)
    assert ingest["bitrate_kbps"] > 0 and ingest["publisher_address"].startswith("127.0.0.1:")
    # Its status agrees with its reasons, each one a code the relay defines.
    health = live["health"]
    assert health["status"] == ("unhealthy" if health["reasons"] else "healthy"), health
    assert {r["code"] for r in health["reasons"]} <= set(REASON_CODES), health
    good, bad = target(live, "nginx"), target(live, "nowhere")
    assert good["status"] == "broadcasting" and good["connected_since"] and good["url"] == show.nginx.url("live")
    assert bad["status"] in ("errored", "starting") and "connection refused" in bad["last_error"]
    assert bad["bytes_sent"] == 0 and bad["connections"] == 0
    # The failing one shows how many times it tried since it last worked, and that it never did.
    assert bad["attempts"] >= 1 and bad["last_connected_at"] is None and bad["failing_since"] is not None
    # One publish session so far: its counters and the lifetime totals agree.
    assert good["bytes_sent_total"] >= good["bytes_sent"] > 0 and good["reconnects"] == good["reconnects_total"] == 0
    assert good["attempts"] == 0 and good["last_connected_at"] == good["connected_since"]


def test_one_live_stream_and_a_missing_one(show: Show) -> None:
    status, raw, _ = show.request("/api/v1/live-streams/studio")
    assert status == 200
    validate(json.loads(raw), "/api/v1/live-streams/{name}", "get", 200)

    status, body = show.get_json("/api/v1/live-streams/nope")
    assert status == 404
    validate(body, "/api/v1/live-streams/{name}", "get", 404)


def test_history_fills_with_samples(show: Show) -> None:
    def samples() -> dict[str, object]:
        status, body = show.get_json("/api/v1/history")
        assert status == 200
        validate(body, "/api/v1/history", "get", 200)
        return body["data"]["live_streams"]["studio"]  # type: ignore[no-any-return]

    wait_until(lambda: any(v for v in samples()["ingest"]) and any(  # type: ignore[attr-defined]
        v for v in samples()["simulcast_targets"]["nginx"]), 15, "bitrate samples")  # type: ignore[index]
    assert all(v is None for v in samples()["simulcast_targets"]["nowhere"])  # type: ignore[index]


def test_metrics_parse_with_prometheus_clients_parser(show: Show) -> None:
    status, raw, headers = show.request("/metrics")

    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert_no_secrets(raw)
    values = {}
    for family in text_string_to_metric_families(raw.decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    nginx = (("live_stream", "studio"), ("status", "broadcasting"), ("target", "nginx"))
    assert values[("relay_simulcast_target_status", nginx)] == 1
    assert values[("relay_live_stream_status", (("live_stream", "studio"), ("status", "active")))] == 1
    assert values[("relay_simulcast_target_sent_bytes_total", (("live_stream", "studio"), ("target", "nginx")))] > 0
    assert values[("relay_ingest_received_bytes_total", (("live_stream", "studio"),))] > 0
    assert values[("relay_live_stream_publish_sessions_total", (("live_stream", "studio"),))] == 1
    assert ("relay_simulcast_target_dropped_frames_total", (("live_stream", "studio"), ("target", "nginx"))) in values
    assert any(name == "relay_build_info" for name, _ in values)


def test_the_token_is_required_except_for_healthz(show: Show) -> None:
    assert show.request("/api/v1/live-streams", token=None)[0] == 401
    assert show.request("/metrics", token="wrong")[0] == 401
    status, body = show.get_json("/healthz", token=None)
    assert status == 200
    validate(body, "/healthz", "get", 200)
    assert body["checks"] == {"event_loop": True, "rtmp_listener": True, "http_listener": True}


def test_reload_answers_with_the_problems_of_a_broken_file(show: Show) -> None:
    good = show.config_path.read_text()
    broken = json.loads(json.dumps(show.config))
    broken["live_streams"][0]["simulcast_targets"][1]["url"] = "http://example.invalid/app"
    write_config(show.config_path, broken)
    try:
        status, raw, _ = show.request("/api/v1/reload", method="POST")
    finally:
        show.config_path.write_text(good)
    body = json.loads(raw)
    assert status == 422
    validate(body, "/api/v1/reload", "post", 422)
    assert any("live_streams[0].simulcast_targets[1].url" in p for p in body["data"]["problems"])
    assert_no_secrets(raw)
    # The show went on; the good file reloads with nothing to change.
    status, body = show.get_json("/api/v1/reload", method="POST")
    assert status == 200 and body["data"]["ok"]
    assert target(show.live_stream(), "nginx")["status"] == "broadcasting"


def test_slow_http_clients_never_stall_the_show(show: Show) -> None:
    before = target(show.live_stream(), "nginx")
    slow = []
    for _ in range(80):  # more than the connection cap, each dribbling half a request
        sock = socket.create_connection(("127.0.0.1", show.http_port))
        sock.sendall(b"GET /api/v1/live-streams HTTP/1.1\r\nHost: relay\r\n")
        slow.append(sock)
    try:
        for sock in slow:  # each is cut at its deadline (request_timeout: 1 s) or refused at once
            sock.settimeout(15)
            try:
                assert sock.recv(100) == b""
            except ConnectionResetError:
                pass
    finally:
        for sock in slow:
            sock.close()

    after = show.wait_for_status(lambda ls: target(ls, "nginx")["bytes_sent"] > before["bytes_sent"],
                                 what="more media sent")
    nginx = target(after, "nginx")
    assert nginx["status"] == "broadcasting" and nginx["connections"] == before["connections"]
    assert nginx["dropped_frames"] == 0
    assert show.get_json("/healthz", token=None)[1]["checks"]["event_loop"] is True
    assert TOKEN not in show.daemon.output
