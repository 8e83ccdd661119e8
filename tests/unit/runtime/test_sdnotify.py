"""The notify protocol's pieces: addresses, the watchdog interval, the STATUS= line, one datagram per call."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from relay.runtime.sdnotify import Notifier, summary_line, watchdog_interval
from relay.status import LiveStreamSnapshot, RelaySnapshot, TargetSnapshot
from tests.support.notify_socket import NotifySocket


def _target(status: str) -> TargetSnapshot:
    fields = {name: None for name in TargetSnapshot.__dataclass_fields__}
    return TargetSnapshot(**{**fields, "passthrough": "t", "url": "rtmp://x/live", "status": status})


def _stream(status: str, *targets: str) -> LiveStreamSnapshot:
    fields = {name: None for name in LiveStreamSnapshot.__dataclass_fields__}
    return LiveStreamSnapshot(**{**fields, "name": "s", "status": status,
                                 "simulcast_targets": tuple(_target(t) for t in targets)})


def _snapshot(*streams: LiveStreamSnapshot) -> RelaySnapshot:
    fields = {name: None for name in RelaySnapshot.__dataclass_fields__}
    return RelaySnapshot(**{**fields, "live_streams": streams})


def test_summary_counts_live_streams_and_broadcasting_targets() -> None:
    snapshot = _snapshot(
        _stream("active", "broadcasting", "broadcasting", "errored"),
        _stream("idle", "idle", "idle", "idle"),
    )

    assert summary_line(snapshot) == "2 live streams, 1 active, 2/6 targets broadcasting"


def test_summary_in_the_singular() -> None:
    assert summary_line(_snapshot(_stream("active", "broadcasting"))) == \
        "1 live stream, 1 active, 1/1 target broadcasting"


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, None),
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4243"}, None),  # another process's watchdog
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
])
def test_watchdog_interval_is_half_of_watchdog_usec_for_our_pid(environ: dict[str, str],
                                                               expected: float | None) -> None:
    assert watchdog_interval(environ, pid=4242) == expected


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier({}, pid=1)

    notifier.ready("x")  # and no error
    notifier.stopping()

    assert not notifier.enabled


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_each_call_is_one_datagram_of_assignments(tmp_path: Path, abstract: bool) -> None:
    with NotifySocket(None if abstract else tmp_path / "notify") as sock:
        notifier = Notifier({"NOTIFY_SOCKET": sock.address}, pid=1)
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

        notifier.ready("1 live stream, 0 active, 0/1 target broadcasting")
        notifier.status("1 live stream, 0 active, 0/1 target broadcasting")  # unchanged: not sent
        with notifier.reloading(lambda: "after reload"):
            pass
        notifier.watchdog()
        notifier.stopping()
        notifier.close()
        sock.wait_for(lambda messages: len(messages) == 5, timeout=5)

    ready, reloading, reloaded, watchdog, stopping = sock.messages
    assert ready == [("READY", "1"), ("STATUS", "1 live stream, 0 active, 0/1 target broadcasting")]
    assert [name for name, _ in reloading] == ["RELOADING", "MONOTONIC_USEC"]
    assert before <= int(reloading[1][1]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert reloaded == [("READY", "1"), ("STATUS", "after reload")]
    assert watchdog == [("WATCHDOG", "1")]
    assert stopping == [("STOPPING", "1")]


def test_ready_follows_a_reload_that_failed(tmp_path: Path) -> None:
    with NotifySocket(tmp_path / "notify") as sock:
        notifier = Notifier({"NOTIFY_SOCKET": sock.address}, pid=1)

        with pytest.raises(RuntimeError), notifier.reloading():
            raise RuntimeError("bad config")
        sock.wait_for(lambda messages: len(messages) == 2, timeout=5)

    assert sock.messages[1] == [("READY", "1")]


def test_a_gone_socket_is_not_an_error(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")}, pid=1)

    notifier.ready("x")
    notifier.watchdog()

    assert notifier.enabled
