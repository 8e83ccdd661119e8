"""Stream health of a real publisher that does not follow the platforms' advice.

ffmpeg sends video only, with a keyframe every 6 s: the relay must say so in its status
and metrics, with reasons, and warn once per problem in its log, not on every check.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from testbed.ffmpeg import FfmpegProcess
from testbed.ports import wait_until
from testbed.relay_proc import RelayProcess

pytestmark = pytest.mark.e2e

INGEST_KEY = "health-ingest-KEY-0c2d7e19b4"


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        body: bytes = response.read()
        return body


def ingest_samples(port: int) -> list[float | None]:
    samples: list[float | None] = json.loads(get(port, "/api/v1/history"))["data"]["live_streams"]["studio"]["ingest"]
    return samples


@pytest.mark.long
def test_long_gops_and_missing_audio_are_reported_once(relay_daemon: Callable[..., RelayProcess]) -> None:
    # No audio at all: audio_missing once media_timeout has passed. The video is a live encode, which a
    # loaded machine may hold up for a moment: a media_timeout of 8 s (GOPs are 6 s) keeps such a pause
    # from also being reported as missing video.
    daemon = relay_daemon([], ingest_key=INGEST_KEY, live_stream={"health": {"media_timeout": 8}})
    publisher = FfmpegProcess([
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", "30",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "150", "-keyint_min", "150", "-sc_threshold", "0",
        "-f", "flv", f"rtmp://127.0.0.1:{daemon.port}/live/{INGEST_KEY}",
    ])
    try:
        http = daemon.http_port
        found: dict[str, Any] = {}

        def unhealthy() -> bool:
            nonlocal found
            found = json.loads(get(http, "/api/v1/live-streams/studio"))["data"]
            codes = {r["code"] for r in found["health"]["reasons"]}
            return {"keyframe_interval", "audio_missing"} <= codes

        wait_until(unhealthy, 28, "both health problems in the status")
        assert found["health"]["status"] == "unhealthy"
        assert found["ingest"]["audio_codec"] is None and found["ingest"]["video_codec"] == "h264"
        # Several checks later (one every 2 s, each adding a sample), each problem was logged once.
        daemon.wait_for("stream_health_warning", reason="keyframe_interval")
        daemon.wait_for("stream_health_warning", reason="audio_missing")
        checks = len(ingest_samples(http))
        wait_until(lambda: len(ingest_samples(http)) >= checks + 3, 20, "three more checks")
        metrics = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(get(http, "/metrics").decode()) for s in f.samples}
    finally:
        publisher.stop()

    warnings = [e for e in daemon.events if e.get("event") == "stream_health_warning"]
    assert sorted(e["reason"] for e in warnings) == ["audio_missing", "keyframe_interval"], warnings
    assert all(e["live_stream"] == "studio" for e in warnings)
    problem = "relay_live_stream_health_problem"
    assert metrics[(problem, (("live_stream", "studio"), ("reason", "keyframe_interval")))] == 1
    assert metrics[(problem, (("live_stream", "studio"), ("reason", "audio_missing")))] == 1
    assert metrics[("relay_live_stream_healthy", (("live_stream", "studio"),))] == 0
    assert daemon.terminate(timeout=15) == 0
