"""Hostile platforms (issue #18): a target's server that misbehaves cannot hurt the relay.

The daemon publishes one ffmpeg show to a well-behaved nginx-rtmp (recording) and to
targets on tests/support/hostileplatform.py, one per mode: a ping flood from a platform
that never reads, an onStatus flood, a 60 KB onStatus, AMF nested 2,000 deep, garbage
after connect, Set Chunk Size 1. Six targets at most per live stream: the modes come in
two groups, each test with nginx beside them. Then:

- nginx's recording is the publisher's clip byte for byte, from its first frame;
- each malformed mode's target ends up errored with a reason naming what was wrong, the
  ping flood's with "stopped reading"; the status flood's target keeps broadcasting (it
  never errors) while its lines are summed;
- the daemon's lines about each hostile target are bounded by the configured rate
  (log_lines_per_second x the seconds it ran, plus a few), a count, not a time.
How long the loop was held (the loop monitor's worst callback) is printed, not asserted:
a figure for bench/RESULTS.md, as test_hostile.py's are.
"""

from __future__ import annotations

import functools
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testbed.ffmpeg import start_publish
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.relay_proc import RelayProcess
from tests.support.flvcheck import assert_same_media
from tests.support.hostileplatform import HostilePlatform

pytestmark = pytest.mark.e2e

INGEST_KEY = "hostile-platforms-ingest-KEY-7d21"
GOOD_KEY = "hostile-platforms-good-KEY-55a0"
LINES_PER_SECOND = 5
GROUPS = {
    "floods": ("ping_flood", "status_flood"),
    "malformed": ("huge_amf", "deep_amf", "garbage", "chunk_size_1"),
}
#: What the reason of each mode's errored target says.
REASONS = {
    "ping_flood": "stopped reading",
    "huge_amf": "AMF0 values",
    "deep_amf": "AMF0 nesting",
    "garbage": "protocol error from the platform",
    "chunk_size_1": "invalid chunk size 1",
}


def key_of(mode: str) -> str:
    return f"hostile-{mode}-KEY-0b7e"


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    keys = (GOOD_KEY, *(key_of(mode) for group in GROUPS.values() for mode in group))
    return functools.partial(relay_daemon, ingest_key=INGEST_KEY, secrets=keys)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_hostile_platforms_cannot_hurt_the_show_the_loop_or_the_log(
    group: str, long_clip: Path, nginx_rtmp: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess],
) -> None:
    modes = GROUPS[group]
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    with HostilePlatform() as platform:
        hostile: list[dict[str, Any]] = [
            {"url": platform.url(mode), "stream_key": key_of(mode), "passthrough": mode,
             "queue": {"max_behind_seconds": 2}, "timeouts": {"publish": 3},
             "limits": {"log_lines_per_second": LINES_PER_SECOND}}
            for mode in modes]
        daemon = relay([{"url": nginx.url("rec"), "stream_key": GOOD_KEY, "passthrough": "nginx"}, *hostile])
        started = time.monotonic()
        publisher = start_publish(f"rtmp://127.0.0.1:{daemon.port}/live/{INGEST_KEY}", long_clip)
        try:
            # Until every hostile mode has been played and answered (the show goes on meanwhile).
            for mode in modes:
                if mode in REASONS:
                    daemon.wait_for("target_status", target=mode, to="errored", timeout=30)
                else:
                    daemon.wait_for("target_log_suppressed", target=mode, timeout=30)
            assert publisher.returncode is None, "the publisher did not survive the hostile platforms"
        finally:
            publisher.interrupt()  # "Stop Streaming"
        publisher.wait(timeout=20)
        daemon.wait_for("target_status", target="nginx", to="idle", timeout=20)
        for mode in modes:
            daemon.wait_for("target_status", target=mode, to="idle", timeout=20)
        seconds = time.monotonic() - started
        daemon.proc.send_signal(signal.SIGUSR1)
        daemon.wait_for("loop_lag")
        connections = platform.connections
    nginx.wait_unpublished(GOOD_KEY)

    # The show reached the good platform byte for byte, from its first frame.
    assert assert_same_media(nginx.recorded_flv(GOOD_KEY, "rec"), long_clip, to_end=False).start == 0
    # Every hostile mode was played, and each malformed one ended its target with a reason.
    assert {c.mode for c in connections if c.published or c.mode == "garbage"} == set(modes)
    for mode, reason in REASONS.items():
        if mode in modes:
            errored = [e for e in daemon.events
                       if e.get("event") == "target_status" and e.get("target") == mode and e.get("to") == "errored"]
            assert errored and reason in errored[0]["reason"], (mode, errored[:1])
    if "status_flood" in modes:
        statuses = [e["to"] for e in daemon.events
                    if e.get("event") == "target_status" and e.get("target") == "status_flood"]
        assert "broadcasting" in statuses and "errored" not in statuses, statuses
        suppressed = [e for e in daemon.events
                      if e.get("event") == "target_log_suppressed" and e.get("target") == "status_flood"]
        assert sum(e["lines"] for e in suppressed) > 100  # it did flood
    # The log: per hostile target, at most the configured rate for the seconds it ran, a
    # summary line a second, and a few lines of status changes per attempt.
    for mode in modes:
        lines = [e for e in daemon.events if e.get("target") == mode]
        assert len(lines) <= (LINES_PER_SECOND + 1) * (seconds + 1) + 40, (mode, len(lines))
    # The loop: how long a callback held it, for the bench (a figure, not an assertion).
    stalls = [e for e in daemon.events if e.get("event") == "loop_stall"]
    print(f"HOSTILE_PLATFORM_FIGURES modes={','.join(modes)} max_cpu_ms={max((e['cpu_ms'] for e in stalls), default=0.0)}"
          f" stalls={len(stalls)} seconds={seconds:.1f}")
    unhandled = [e for e in daemon.events if e.get("event") == "unhandled_error"]
    assert not unhandled, [str(e)[:3000] for e in unhandled]
