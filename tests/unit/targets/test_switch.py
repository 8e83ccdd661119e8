"""An Enhanced RTMP reconnect request (relay/targets/switch.py) over a fake network: followed only to the
target's own host or its reconnect_hosts, the tcUrl's path never logged, the switch made at a keyframe."""

from __future__ import annotations

from typing import Any

from relay.flv import AUDIO, VIDEO
from tests.support.fakenetwork import KEY, FakeNetwork
from tests.support.tags import inter, keyframe
from tests.unit.targets.support import RECONNECT_REQUEST, Started


async def test_a_reconnect_request_to_another_host_is_not_followed(
    started: Started, network: FakeNetwork, logs: list[dict[str, Any]],
) -> None:
    target, hub, transport = await started(write_interval=0.05)
    transport.send_status(RECONNECT_REQUEST, tcUrl=f"rtmp://evil.example:1935/live/{KEY}-and-a-path")
    second = await network.wait_opened(2)
    assert (second.endpoint.host, second.endpoint.tc_url) == ("platform.example", "rtmp://platform.example/live")
    refused = [e for e in logs if e["event"] == "target_reconnect_refused"]
    assert len(refused) == 1 and refused[0]["host"] == "evil.example"
    assert [e["host"] for e in logs if e["event"] == "target_reconnect_requested"] == ["evil.example"]
    assert "and-a-path" not in repr(logs) and KEY not in repr(logs)
    # The switch still happens at the next keyframe, to the configured url.
    hub.publish(inter(33))
    hub.publish(keyframe(2000))
    await second.wait_until(lambda: any(t.is_keyframe for t in second.media))
    assert transport.unpublished == "FCUnpublish"
    assert [t.kind for t in second.media[:3]] == [18, VIDEO, AUDIO] and second.media[3].is_keyframe
    assert target.snapshot().connections == 2 and target.snapshot().reconnects == 1


async def test_a_reconnect_request_to_an_allowed_host_is_followed(started: Started, network: FakeNetwork) -> None:
    _target, hub, transport = await started(write_interval=0.05, reconnect_hosts=["backup.example"])
    transport.send_status(RECONNECT_REQUEST, tcUrl="rtmp://Backup.Example:1936/live2")
    second = await network.wait_opened(2)
    assert (second.endpoint.host, second.endpoint.port, second.endpoint.app) == ("backup.example", 1936, "live2")
