"""The relay end to end on 127.0.0.1: ffmpeg publishes, real servers receive.

Targets are nginx-rtmp recording (`record all`, two applications) and ffmpeg listening as
an RTMP server. What each received is compared with the published clip, tag payload for
tag payload. Every test also searches everything the daemon wrote for the stream keys.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from testbed.ffmpeg import FfmpegListener, publish_with_ffmpeg, start_publish
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.relay_proc import RelayProcess
from tests.support.flvcheck import assert_same_media

pytestmark = pytest.mark.e2e

INGEST_KEY = "e2e-ingest-KEY-5d1f0c9a7b"
TARGET_KEYS = ("e2e-target-one-KEY-a81c", "e2e-target-two-KEY-33fe", "e2e-target-three-KEY-9e07")
WRONG_KEY = "e2e-wrong-KEY-0b6e42"
ALL_KEYS = (INGEST_KEY, *TARGET_KEYS, WRONG_KEY)


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    """The shared daemon factory with this module's keys (checked for leaks at teardown)."""
    return functools.partial(relay_daemon, ingest_key=INGEST_KEY, secrets=ALL_KEYS, reconnect_window=60)


def ingest_url(relay: RelayProcess, key: str = INGEST_KEY) -> str:
    return f"rtmp://127.0.0.1:{relay.port}/live/{key}"


def test_one_publish_reaches_three_targets_byte_for_byte(
    source_flv: Path,
    nginx_rtmp: Callable[..., NginxRtmp],
    ffmpeg_listener: Callable[..., FfmpegListener],
    relay: Callable[..., RelayProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True), RtmpApp("rec2", record=True))
    listener = ffmpeg_listener(app="live", stream_key=TARGET_KEYS[2])
    daemon = relay([
        {"url": nginx.url("rec"), "stream_key": TARGET_KEYS[0], "passthrough": "nginx-rec"},
        {"url": nginx.url("rec2"), "stream_key": TARGET_KEYS[1], "passthrough": "nginx-rec2"},
        {"url": f"rtmp://127.0.0.1:{listener.port}/live", "stream_key": TARGET_KEYS[2], "passthrough": "ffmpeg"},
    ])

    publish_with_ffmpeg(ingest_url(daemon), source_flv, realtime=True, timeout=60)

    for label in ("nginx-rec", "nginx-rec2", "ffmpeg"):
        daemon.wait_for("target_status", target=label, to="idle", timeout=20)
    listener.check(timeout=20)
    nginx.wait_unpublished(TARGET_KEYS[0])
    nginx.wait_unpublished(TARGET_KEYS[1])
    received = {
        "nginx-rec": nginx.recorded_flv(TARGET_KEYS[0], "rec"),
        "nginx-rec2": nginx.recorded_flv(TARGET_KEYS[1], "rec2"),
        "ffmpeg": listener.output,
    }
    for label, path in received.items():
        match = assert_same_media(path, source_flv)
        # The GOP cache gives a target that connects after the publisher started the show
        # from its first keyframe.
        assert match.start == 0, f"{label} lost the start of the show: first tag is source media[{match.start}]"
    assert not [e for e in daemon.events if e.get("to") == "errored"]
    assert daemon.terminate(timeout=15) == 0


def test_unknown_stream_key_is_refused_without_logging_it(
    source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess]
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    daemon = relay([{"url": nginx.url("rec"), "stream_key": TARGET_KEYS[0], "passthrough": "nginx"}])

    publisher = start_publish(ingest_url(daemon, WRONG_KEY), source_flv, realtime=False)

    assert publisher.wait(timeout=30) != 0
    event = daemon.wait_for("publish_rejected", reason="unknown stream key")
    assert event["peer"].startswith("127.0.0.1:")
    assert "key_sha256" in event
    assert nginx.publishers(TARGET_KEYS[0]) == {}
    assert daemon.terminate(timeout=15) == 0


def test_second_publisher_is_refused_and_the_first_is_not_disturbed(
    source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess]
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    daemon = relay([{"url": nginx.url("rec"), "stream_key": TARGET_KEYS[0], "passthrough": "nginx"}])
    first = start_publish(ingest_url(daemon), source_flv, realtime=True)
    daemon.wait_for("publish_started")

    second = start_publish(ingest_url(daemon), source_flv, realtime=False)

    assert second.wait(timeout=30) != 0
    daemon.wait_for("publish_rejected", reason="already publishing")
    first.check(timeout=60)
    daemon.wait_for("target_status", target="nginx", to="idle", timeout=20)
    nginx.wait_unpublished(TARGET_KEYS[0])
    match = assert_same_media(nginx.recorded_flv(TARGET_KEYS[0], "rec"), source_flv)
    assert match.start == 0
    assert daemon.terminate(timeout=15) == 0


def test_sigterm_mid_show_unpublishes_targets_and_exits_zero(
    source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess]
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    daemon = relay([{"url": nginx.url("rec"), "stream_key": TARGET_KEYS[0], "passthrough": "nginx"}])
    publisher = start_publish(ingest_url(daemon), source_flv, realtime=True)
    try:
        daemon.wait_for("target_status", target="nginx", to="broadcasting")

        # The relay bounds its own shutdown (4 s, then it cuts what is left and says so); 15 s is
        # the test's deadline, not a measurement. It got through in order: nothing was cut.
        assert daemon.terminate(timeout=15) == 0

        nginx.wait_unpublished(TARGET_KEYS[0])
        assert "target_close_timeout" not in daemon.output
        assert "target_backlog_dropped" not in daemon.output
        assert daemon.wait_for("relay_stopped")
        # nginx logs the deleteStream we sent, then the one its disconnect implies.
        assert nginx.log_text().count("deleteStream") >= 2
    finally:
        publisher.stop()
