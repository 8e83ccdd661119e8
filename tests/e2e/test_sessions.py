"""Numbers per publish session and a log an operator can read, on a real daemon.

One relay, two targets: nginx-rtmp (broadcasting) and a port nobody listens on (failing
all show long). Two publish sessions by ffmpeg, each ended by ffmpeg's own clean stop.
What is checked: a failing target writes one warning, not a line per retry (counted after
the status API shows several attempts, not after some time); the API's counters start
over with the second session while the lifetime totals grow, and its first connection is
not a reconnect; `publish_ended` says how long the session was and what it carried.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.ffmpeg import FfmpegProcess
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import free_port, wait_until
from testbed.relay_proc import RelayProcess

pytestmark = pytest.mark.e2e

INGEST_KEY = "sessions-ingest-KEY-5e8a1c07"
NGINX_KEY = "sessions-nginx-KEY-b3d9"
DEAD_KEY = "sessions-dead-KEY-07fa"
ATTEMPTS = 4  # failed attempts seen in the API before the warnings are counted


@pytest.fixture
def looping_publishers(source_flv: Path) -> Iterator[Callable[[str], FfmpegProcess]]:
    """Factory: ffmpeg publishing the clip in a loop, in real time, until stopped (SIGTERM: a clean stop)."""
    started: list[FfmpegProcess] = []

    def start(url: str) -> FfmpegProcess:
        proc = FfmpegProcess(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-re",
                              "-stream_loop", "-1", "-i", str(source_flv), "-c", "copy", "-f", "flv", url])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def live_stream(daemon: RelayProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.http_port}/api/v1/live-streams/studio",
                                timeout=10) as response:
        data: dict[str, Any] = json.load(response)["data"]
        return data


def wait_for_status(daemon: RelayProcess, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def check() -> bool:
        nonlocal found
        found = live_stream(daemon)
        return predicate(found)

    wait_until(check, 30, what, interval=0.2,
               abort=lambda: "the relay exited" if daemon.proc.poll() is not None else None)
    return found


def target(live: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in live["simulcast_targets"] if t["passthrough"] == name)
    return found


def lines(daemon: RelayProcess, name: str, level: str) -> list[dict[str, Any]]:
    return [e for e in daemon.events if e.get("target") == name and e.get("level") == level]


def test_counters_per_session_and_one_warning_for_a_target_that_keeps_failing(
    relay_daemon: Callable[..., RelayProcess], nginx_rtmp: Callable[..., NginxRtmp],
    looping_publishers: Callable[[str], FfmpegProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("live", record=False))
    daemon = relay_daemon([
        {"url": nginx.url("live"), "stream_key": NGINX_KEY, "passthrough": "nginx"},
        {"url": f"rtmp://127.0.0.1:{free_port()}/app", "stream_key": DEAD_KEY, "passthrough": "nowhere",
         "reconnect": {"initial_delay": 0.1, "max_delay": 0.2}},
    ], ingest_key=INGEST_KEY, secrets=(NGINX_KEY, DEAD_KEY))
    url = f"rtmp://127.0.0.1:{daemon.port}/live/{INGEST_KEY}"

    # -- the first publish session, while `nowhere` keeps failing ---------------------------------
    first_publisher = looping_publishers(url)
    live = wait_for_status(daemon, lambda ls: target(ls, "nowhere")["attempts"] > ATTEMPTS
                           and target(ls, "nginx")["bytes_sent"] > 0, f"{ATTEMPTS} failed attempts")
    nowhere = target(live, "nowhere")
    assert nowhere["status"] in ("errored", "starting") and nowhere["last_connected_at"] is None
    assert nowhere["failing_since"] is not None and "connection refused" in nowhere["last_error"]
    # One warning for the failure, none for the retries (they are at debug); nothing at info meanwhile.
    (warning,) = lines(daemon, "nowhere", "warning")
    assert (warning["event"], warning["to"], warning["severity"]) == ("target_status", "errored", "normal")
    assert "connection refused" in warning["reason"]
    assert not lines(daemon, "nowhere", "info")
    retries = [e for e in lines(daemon, "nowhere", "debug") if e["event"] == "target_status" and e["to"] == "errored"]
    assert len(retries) >= ATTEMPTS - 1

    first_publisher.stop()  # SIGTERM: ffmpeg unpublishes (a clean stop)
    ended = daemon.wait_for("publish_ended")
    assert ended["clean"] is True
    assert ended["duration_s"] > 0 and ended["bytes_received"] > 0
    assert ended["video_frames"] > 0 and ended["audio_frames"] > 0
    daemon.wait_for("target_status", target="nginx", to="idle", timeout=20)
    over = daemon.wait_for("target_status", target="nowhere", to="idle", timeout=20)
    assert over["level"] == "info" and over["attempts"] > ATTEMPTS  # the failing episode ends, with its count
    first = live_stream(daemon)
    nginx_first = target(first, "nginx")
    assert first["status"] == "idle" and first["bytes_received"] == first["bytes_received_total"] > 0
    assert nginx_first["bytes_sent"] == nginx_first["bytes_sent_total"] > 0  # kept while idle
    assert (nginx_first["connections"], nginx_first["reconnects"]) == (1, 0)

    # -- the second publish session: the counters start over, the totals carry on ----------------
    second_publisher = looping_publishers(url)
    second = wait_for_status(daemon, lambda ls: ls["sessions"] == 2 and target(ls, "nginx")["status"] == "broadcasting"
                             and target(ls, "nginx")["bytes_sent"] > 0, "the second session broadcasting")
    nginx_second = target(second, "nginx")
    assert (nginx_second["connections"], nginx_second["reconnects"]) == (1, 0)  # the Stop was not a reconnect
    assert (nginx_second["connections_total"], nginx_second["reconnects_total"]) == (2, 0)
    assert nginx_second["bytes_sent_total"] == nginx_first["bytes_sent_total"] + nginx_second["bytes_sent"]
    assert nginx_second["last_connected_at"] > nginx_first["last_connected_at"]
    assert second["bytes_received_total"] == first["bytes_received_total"] + second["bytes_received"]
    # A new session is a new episode for `nowhere`: its failure is news again, once.
    daemon.wait_for("target_status", target="nowhere", to="errored", level="warning", count=2)
    second_publisher.stop()
    daemon.wait_for("publish_ended", count=2)
    assert len(lines(daemon, "nowhere", "warning")) == 2
