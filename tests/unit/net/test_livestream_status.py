"""What a live stream tells its observers (the webhooks) about its targets' statuses.

A target that keeps failing goes errored -> starting -> errored at every retry; observers
must hear of the error once, of giving up (fatal) once, and of the recovery.
"""

from __future__ import annotations

from relay.config import LiveStreamConfig
from relay.net.livestream import LiveStream
from relay.net.target import BROADCASTING, ERRORED, FATAL, IDLE, STARTING
from relay.status import StatusChange


def live_stream() -> LiveStream:
    config = LiveStreamConfig.model_validate({
        "name": "studio", "stream_key": "unit-ingest-KEY-1f2e3d4c5b",
        "simulcast_targets": [{"url": "rtmp://127.0.0.1:1/app", "stream_key": "unit-target-KEY-9a8b7c",
                               "passthrough": "yt"}],
    })
    return LiveStream(config)


async def test_retries_are_not_news_but_errors_fatality_and_recovery_are() -> None:
    live = live_stream()
    heard: list[StatusChange] = []
    live.observers.append(heard.append)
    (target,) = live.targets

    target._set_status(STARTING)
    target._set_status(ERRORED, "connection refused", 1.0)
    target._set_status(STARTING)
    target._set_status(ERRORED, "connection refused again", 2.0)
    target.severity = FATAL
    target._set_status(ERRORED, "refused 3 times in a row")
    target.severity = "normal"
    target._set_status(STARTING)
    target._set_status(BROADCASTING)
    target._set_status(IDLE)

    assert [c.type.rsplit(".", 1)[1] for c in heard] == ["starting", "errored", "errored", "broadcasting", "idle"]
    assert [c.target.error_severity for c in heard if c.target] == [None, "normal", "fatal", None, None]
    # The last error stays visible after the target recovered.
    assert heard[-2].target is not None and heard[-2].target.last_error == "refused 3 times in a row"
    assert live.snapshot().simulcast_targets[0].last_error == "refused 3 times in a row"
    assert all(c.live_stream.name == "studio" for c in heard)


async def test_a_target_removed_by_a_reload_is_not_announced() -> None:
    live = live_stream()
    heard: list[StatusChange] = []
    live.observers.append(heard.append)
    (old,) = live.targets
    live.reconfigure(live.config.model_copy(update={"simulcast_targets": ()}))

    old._set_status(IDLE)
    old._set_status(STARTING)

    assert heard == []
