"""What a live stream tells its observers (the webhooks) about its targets' statuses.

A target that keeps failing goes errored -> starting -> errored at every retry; observers
must hear of the error once, of giving up (fatal) once, and of the recovery. The target
reports to its status policy (relay/targets/statustable.py) with the events its session
loop reports; every event reaches the live stream, which picks the news.
"""

from __future__ import annotations

from relay.config import LiveStreamConfig
from relay.targets.statustable import CONNECTED, FAILED, REFUSED, RETRY, START, STOP, SWITCHED
from relay.live.stream import LiveStream
from relay.status import StatusChange


def live_stream() -> LiveStream:
    config = LiveStreamConfig.model_validate({
        "name": "studio", "stream_key": "unit-ingest-KEY-1f2e3d4c5b",
        "simulcast_targets": [{"url": "rtmp://127.0.0.1:1/app", "stream_key": "unit-target-KEY-9a8b7c",
                               "passthrough": "yt"}],
    })
    return LiveStream(config)


def kinds(heard: list[StatusChange]) -> list[str]:
    return [c.type.rsplit(".", 1)[1] for c in heard]


async def test_retries_are_not_news_but_errors_fatality_and_recovery_are() -> None:
    live = live_stream()
    heard: list[StatusChange] = []
    live.observers.append(heard.append)
    (target,) = live.targets

    # One publish session: two failed attempts, then the platform takes the stream.
    target._handle(START)
    target._handle(FAILED, "connection refused")
    target._handle(RETRY)
    target._handle(FAILED, "connection refused again")
    target._handle(RETRY)
    target._handle(CONNECTED)
    # The last error stays visible after the target recovered.
    assert heard[-1].target is not None and heard[-1].target.last_error == "connection refused again"
    assert live.snapshot().simulcast_targets[0].last_error == "connection refused again"
    target._handle(STOP)
    # The next session: the platform refuses the key until the target gives up.
    target._handle(START)
    for _ in range(2):
        target._handle(REFUSED, "NetStream.Publish.BadName")
        target._handle(RETRY)
    target._handle(REFUSED, "NetStream.Publish.BadName")
    target._handle(STOP)

    assert kinds(heard) == ["starting", "errored", "broadcasting", "idle", "starting", "errored", "errored", "idle"]
    assert [c.target.error_severity for c in heard if c.target] == [
        None, "normal", None, None, None, "normal", "fatal", None]
    fatal = heard[-2].target
    assert fatal is not None and fatal.last_error is not None and "refused 3 times in a row" in fatal.last_error
    assert heard[-1].target is not None and heard[-1].target.last_error == fatal.last_error  # kept while idle
    assert all(c.live_stream.name == "studio" for c in heard)


async def test_a_switch_to_a_new_connection_is_not_news() -> None:
    live = live_stream()
    heard: list[StatusChange] = []
    live.observers.append(heard.append)
    (target,) = live.targets
    target._handle(START)
    target._handle(CONNECTED)
    target._handle(SWITCHED)
    assert kinds(heard) == ["starting", "broadcasting"]
    assert live.snapshot().simulcast_targets[0].connections == 2


async def test_a_target_removed_by_a_reload_is_not_announced() -> None:
    live = live_stream()
    heard: list[StatusChange] = []
    live.observers.append(heard.append)
    (old,) = live.targets
    live.reconfigure(live.config.model_copy(update={"simulcast_targets": ()}))

    old._handle(START)
    old._handle(FAILED, "connection refused")

    assert heard == []
