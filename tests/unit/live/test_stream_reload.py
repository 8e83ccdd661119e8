"""A reload of one live stream while it broadcasts: a renamed target keeps its connection, and a
changed target's new connection opens only after the old one unpublished (a platform refuses a
second publisher on one key)."""

from __future__ import annotations

from typing import Any

from relay.config import LiveStreamConfig
from relay.live.stream import LiveStream
from tests.support.tags import audio_header, keyframe, metadata, video_header
from tests.support.fakenetwork import FakeNetwork

TARGET = {"url": "rtmp://platform.example/live", "stream_key": "unit-target-KEY-9a8b7c", "passthrough": "yt"}


class StubPublisher:
    def cut_off(self, reason: str) -> None:
        pass


def config(*targets: dict[str, Any]) -> LiveStreamConfig:
    return LiveStreamConfig.model_validate({
        "name": "studio", "stream_key": "unit-ingest-KEY-1f2e3d4c5b", "simulcast_targets": list(targets),
    })


async def broadcasting(network: FakeNetwork) -> LiveStream:
    live = LiveStream(config(TARGET))
    assert live.claim(StubPublisher())
    for tag in (metadata(), video_header(), audio_header(), keyframe(0)):
        live.publish(tag)
    transport = await network.wait_opened(1)
    await transport.wait_until(lambda: len(transport.media) >= 4)
    return live


async def test_a_renamed_target_keeps_its_connection(network: FakeNetwork) -> None:
    live = await broadcasting(network)
    (target,) = live.targets
    live.reconfigure(config({**TARGET, "passthrough": "YouTube"}))
    assert live.targets == [target] and target.snapshot().passthrough == "YouTube"
    live.publish(keyframe(2000))
    transport = network.transports[0]
    await transport.wait_until(lambda: len(transport.media) >= 5)
    assert len(network.transports) == 1 and transport.unpublished is None
    live.shut_down("test over")
    await live.wait_targets_stopped(5)


async def test_a_changed_target_connects_again_only_after_the_old_connection_unpublished(
        network: FakeNetwork) -> None:
    live = await broadcasting(network)
    (old,) = live.targets
    first = network.transports[0]
    first.link.pause_writing()  # the platform is slow: the old session drains its backlog before it unpublishes
    live.publish(keyframe(2000))
    live.reconfigure(config({**TARGET, "write_interval": 0.02}))
    (new,) = live.targets
    assert new is not old and new.predecessor is old
    second = await network.wait_opened(2)
    assert first.closing and first.unpublished is not None  # deleteStream/FCUnpublish went out before
    await second.wait_until(lambda: len(second.media) >= 4)  # the new connection got the burst
    live.shut_down("test over")
    await live.wait_targets_stopped(5)


async def test_a_target_moved_elsewhere_does_not_wait_for_the_old_one(network: FakeNetwork) -> None:
    live = await broadcasting(network)
    live.reconfigure(config({**TARGET, "url": "rtmp://other.example/live"}))
    (new,) = live.targets
    assert new.predecessor is None  # nothing to wait for: another destination
    second = await network.wait_opened(2)
    assert second.endpoint.host == "other.example"
    live.shut_down("test over")
    await live.wait_targets_stopped(5)
