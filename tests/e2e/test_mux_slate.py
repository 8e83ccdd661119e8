"""The reconnect slate through the /video/v1 API, against the daemon over raw HTTP: Mux's
`use_slate_for_standard_latency` and `reconnect_slate_url` set on create, read back, turned off by
a PATCH, found again after a restart; a url the relay will not take (http, a missing file) refused
naming the field, changing nothing; and the slate of an API-made live stream plays on a drop."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testbed.ffmpeg import FfmpegListener, start_publish
from testbed.relay_proc import RelayProcess
from tests.support.muxapi import SECRETS, MuxApi, api_config
from tests.support.openapi import validate

pytestmark = pytest.mark.e2e

INGEST_KEY = "muxslate-ingest-KEY-6a1f0c3e9b"
TARGET_KEY = "muxslate-target-KEY-2d7b9e4f10"
LS = "/live-streams/{LIVE_STREAM_ID}"


@pytest.fixture
def png(tmp_path: Path) -> Path:
    image = tmp_path / "slate.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=blue:s=320x240", "-frames:v", "1",
                    str(image)], check=True, timeout=30)
    return image


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess], tmp_path: Path) -> tuple[RelayProcess, MuxApi]:
    daemon = relay_daemon([], ingest_key=INGEST_KEY, secrets=(TARGET_KEY, *SECRETS),
                          extra=api_config(tmp_path / "state"))
    daemon.wait_for("relay_ready")
    return daemon, MuxApi(daemon.http_port)


def call(api: MuxApi, method: str, path: str, body: dict[str, Any], status: int, documented: str) -> Any:
    answer = api.call(method, path, body)
    assert answer.status == status, answer.raw
    validate(answer.json, f"/video/v1{documented}", method.lower(), answer.status)
    return answer.json.get("data")


def test_the_slate_is_set_read_turned_off_and_kept_across_a_restart(
        relay: tuple[RelayProcess, MuxApi], png: Path) -> None:
    daemon, api = relay
    created = call(api, "POST", "/live-streams", {"use_slate_for_standard_latency": True,
                                                  "reconnect_slate_url": png.as_uri()}, 201, "/live-streams")
    live_id = created["id"]
    assert created["use_slate_for_standard_latency"] is True and created["reconnect_slate_url"] == png.as_uri()
    got = call(api, "GET", f"/live-streams/{live_id}", {}, 200, LS)
    assert (got["use_slate_for_standard_latency"], got["reconnect_slate_url"]) == (True, png.as_uri())

    before = api.call("GET", f"/live-streams/{live_id}").data
    for url, message in (("http://example.com/slate.png", "reconnect_slate_url: the relay does not download images; "
                                                          "give a path on the relay's machine, e.g. file:///"),
                         (str(png.with_name("missing.png")), "reconnect_slate_url: cannot read the image file")):
        refused = api.call("PATCH", f"/live-streams/{live_id}", {"reconnect_slate_url": url})
        assert refused.status == 400 and refused.messages[0].startswith(message), refused.messages
        validate(refused.json, f"/video/v1{LS}", "patch", 400)
        assert api.call("GET", f"/live-streams/{live_id}").data == before

    off = call(api, "PATCH", f"/live-streams/{live_id}", {"use_slate_for_standard_latency": False,
                                                          "reconnect_slate_url": None}, 200, LS)
    assert (off["use_slate_for_standard_latency"], off["reconnect_slate_url"]) == (False, None)
    on = call(api, "PATCH", f"/live-streams/{live_id}", {"reconnect_slate_url": str(png)}, 200, LS)
    assert (on["use_slate_for_standard_latency"], on["reconnect_slate_url"]) == (False, png.as_uri())

    found_before = api.call("GET", f"/live-streams/{live_id}").data
    assert daemon.terminate() == 0
    again = RelayProcess(daemon.config_path)
    try:
        again.wait_for("relay_ready")
        assert MuxApi(again.http_port).call("GET", f"/live-streams/{live_id}").data == found_before
    finally:
        again.kill()


@pytest.mark.long
def test_the_slate_of_an_api_made_live_stream_plays_on_a_drop(
        relay: tuple[RelayProcess, MuxApi], png: Path, long_clip: Path,
        ffmpeg_listener: Callable[..., FfmpegListener], tmp_path: Path) -> None:
    daemon, api = relay
    listener = ffmpeg_listener(stream_key=TARGET_KEY, output=tmp_path / "listener.flv")
    created = call(api, "POST", "/live-streams", {
        "reconnect_window": 4, "use_slate_for_standard_latency": True, "reconnect_slate_url": str(png),
        "simulcast_targets": [{"url": listener.url.rsplit("/", 1)[0], "stream_key": TARGET_KEY,
                               "passthrough": "listener"}]}, 201, "/live-streams")
    live_id = created["id"]
    publisher = start_publish(f"rtmp://127.0.0.1:{daemon.port}/live/{created['stream_key']}", long_clip)
    try:
        daemon.wait_for("slate_ready", live_stream=live_id, timeout=30)
        daemon.wait_for("target_status", live_stream=live_id, target="listener", to="broadcasting")
        publisher.proc.kill()  # a crashed encoder: no FCUnpublish
        publisher.proc.wait(5)
        daemon.wait_for("slate_started", live_stream=live_id, timeout=10)
        daemon.wait_for("live_stream_status", live_stream=live_id, to="idle", timeout=15)
    finally:
        publisher.stop()
    assert created["stream_key"] not in daemon.output
