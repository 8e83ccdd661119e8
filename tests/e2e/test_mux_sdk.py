"""Mux's official Python SDK (mux-python) against the relay, pointed at it by its host setting.

An app's whole life: create a live stream with two targets (nginx-rtmp), publish with the
returned key (ffmpeg), both targets receive the stream byte for byte; add a third target
while live (it joins at a keyframe), disable and enable one, delete one, reset the key (the
publisher on the old one is cut off, and the old key is refused); restart the daemon and
find everything again. The webhook receiver hears Mux's events for each change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mux_python
import pytest
from mux_python.rest import ApiException

from testbed.ffmpeg import publish_with_ffmpeg, start_publish
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.relay_proc import RelayProcess
from tests.support.flvcheck import assert_same_media
from tests.support.muxapi import READ_ID, READ_SECRET, SECRETS, WRITE_ID, WRITE_SECRET, MuxApi, api_config
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

INGEST_KEY = "sdk-ingest-KEY-6b1f0c8e2d"
KEYS = ("sdk-target-A-KEY-19f3b7", "sdk-target-B-KEY-2c8e4a", "sdk-target-C-KEY-5d0a6f")
HOOK_SECRET = "sdk-hook-SECRET-7e3c1a9b"


def client(port: int, user: str = WRITE_ID, password: str = WRITE_SECRET) -> mux_python.LiveStreamsApi:
    configuration = mux_python.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.username = user
    configuration.password = password
    return mux_python.LiveStreamsApi(mux_python.ApiClient(configuration))


@pytest.fixture
def setup(relay_daemon: Callable[..., RelayProcess], nginx_rtmp: Callable[..., NginxRtmp],
          tmp_path: Path) -> Iterator[tuple[RelayProcess, NginxRtmp, WebhookReceiver]]:
    nginx = nginx_rtmp(RtmpApp("live", record=True))
    with WebhookReceiver(HOOK_SECRET) as hooks:
        daemon = relay_daemon([], ingest_key=INGEST_KEY, secrets=(*KEYS, *SECRETS, HOOK_SECRET),
                              extra={**api_config(tmp_path / "state"),
                                     "webhooks": [{"url": hooks.url, "secret": HOOK_SECRET}]})
        daemon.wait_for("relay_ready")
        yield daemon, nginx, hooks


def targets(nginx: NginxRtmp, *indices: int) -> list[mux_python.CreateSimulcastTargetRequest]:
    return [mux_python.CreateSimulcastTargetRequest(url=nginx.url("live"), stream_key=KEYS[i], passthrough=f"t{i}")
            for i in indices]


def ingest(daemon: RelayProcess, key: str) -> str:
    return f"rtmp://127.0.0.1:{daemon.port}/live/{key}"


def test_an_app_creates_a_live_stream_and_its_targets_receive_it_byte_exact(
        setup: tuple[RelayProcess, NginxRtmp, WebhookReceiver], source_flv: Path) -> None:
    daemon, nginx, hooks = setup
    api = client(daemon.http_port)
    created = api.create_live_stream(mux_python.CreateLiveStreamRequest(
        playback_policy=[mux_python.PlaybackPolicy.PUBLIC], reconnect_window=0, passthrough="user-42",
        simulcast_targets=targets(nginx, 0, 1))).data
    assert isinstance(created, mux_python.LiveStream) and created.status == "idle" and created.stream_key
    assert [t.passthrough for t in created.simulcast_targets] == ["t0", "t1"]
    assert all(t.stream_key is None for t in created.simulcast_targets)

    publish_with_ffmpeg(ingest(daemon, created.stream_key), source_flv, realtime=True, timeout=60)
    for key in KEYS[:2]:
        nginx.wait_unpublished(key, timeout=20)
        assert_same_media(nginx.recorded_flv(key), source_flv, allow_late_start=False)

    listed = api.list_live_streams(limit=10, page=1).data
    assert [ls.id for ls in listed] == ["studio", created.id]
    got = api.get_live_stream(created.id).data
    assert got.stream_key == created.stream_key and got.passthrough == "user-42"
    reader = client(daemon.http_port, READ_ID, READ_SECRET)
    assert reader.get_live_stream(created.id).data.stream_key is None
    with pytest.raises(ApiException) as refused:
        reader.delete_live_stream(created.id)
    assert refused.value.status == 403

    # A restart finds the live stream, its key and its targets.
    assert daemon.terminate() == 0
    again = RelayProcess(daemon.config_path)
    try:
        again.wait_for("relay_ready")
        found = client(again.http_port).get_live_stream(created.id).data
        assert found.stream_key == created.stream_key
        assert [(t.id, t.url) for t in found.simulcast_targets] == [(t.id, t.url) for t in created.simulcast_targets]
    finally:
        again.kill()
    hooks.wait_until(lambda events: "video.live_stream.created" in [e["type"] for e in events])


@pytest.mark.long
def test_targets_change_while_live_and_a_reset_key_cuts_the_publisher_off(
        setup: tuple[RelayProcess, NginxRtmp, WebhookReceiver], long_clip: Path) -> None:
    daemon, nginx, hooks = setup
    api = client(daemon.http_port)
    live = api.create_live_stream(mux_python.CreateLiveStreamRequest(
        reconnect_window=0, simulcast_targets=targets(nginx, 0))).data
    publisher = start_publish(ingest(daemon, live.stream_key), long_clip)
    try:
        nginx.wait_published(KEYS[0], timeout=20)

        # A third target while live: it joins at the next keyframe; the first is untouched.
        added = api.create_live_stream_simulcast_target(live.id, targets(nginx, 2)[0]).data
        assert isinstance(added, mux_python.SimulcastTarget) and added.passthrough == "t2"
        nginx.wait_published(KEYS[2], timeout=20)
        daemon.wait_for("target_status", target="t2", to="broadcasting", timeout=20)
        assert api.get_live_stream_simulcast_target(live.id, added.id).data.status == "broadcasting"

        # Disabled: it unpublishes and keeps its settings; enabled: it publishes again.
        raw = MuxApi(daemon.http_port)
        disabled = raw.call("PATCH", f"/live-streams/{live.id}/simulcast-targets/{added.id}", {"enabled": False})
        assert disabled.data["enabled"] is False and disabled.data["status"] == "idle"
        nginx.wait_unpublished(KEYS[2], timeout=20)
        assert raw.call("PATCH", f"/live-streams/{live.id}/simulcast-targets/{added.id}",
                        {"enabled": True}).data["enabled"] is True
        daemon.wait_for("target_status", target="t2", to="broadcasting", count=2, timeout=20)

        # Deleted: the first unpublishes; the third goes on (one nginx publisher of it since it was enabled).
        first = live.simulcast_targets[0]
        api.delete_live_stream_simulcast_target(live.id, first.id)
        nginx.wait_unpublished(KEYS[0], timeout=20)
        assert not all(nginx.publishers(KEYS[2]).values())
        assert [t.id for t in api.get_live_stream(live.id).data.simulcast_targets] == [added.id]

        # A new key: the publisher on the old one is cut off, and the old one is refused.
        reset = api.reset_stream_key(live.id).data
        assert reset.stream_key and reset.stream_key != live.stream_key
        assert publisher.wait(20) != 0
        # The target added while live (its second session, since it was enabled again) began with
        # metadata and sequence headers, at a keyframe, and carried the stream byte for byte.
        nginx.wait_unpublished(KEYS[2], timeout=20)
        assert_same_media(nginx.recorded_flv(KEYS[2]), long_clip, allow_late_start=True, to_end=False)
        refused = start_publish(ingest(daemon, live.stream_key), long_clip)
        try:
            daemon.wait_for("publish_rejected", reason="unknown stream key", timeout=20)
        finally:
            refused.stop()
    finally:
        publisher.stop()

    api.disable_live_stream(live.id)
    assert api.get_live_stream(live.id).data.status == "disabled"
    refused = start_publish(ingest(daemon, reset.stream_key), long_clip)  # a disabled live stream's key
    try:
        daemon.wait_for("publish_rejected", reason="unknown stream key", count=2, timeout=20)
    finally:
        refused.stop()
    api.enable_live_stream(live.id)
    api.signal_live_stream_complete(live.id)
    api.update_live_stream(live.id, mux_python.UpdateLiveStreamRequest(reconnect_window=30, passthrough="renamed"))
    updated = api.get_live_stream(live.id).data
    assert (updated.reconnect_window, updated.passthrough, updated.status) == (30, "renamed", "idle")
    api.delete_live_stream(live.id)
    with pytest.raises(ApiException) as gone:
        api.get_live_stream(live.id)
    assert gone.value.status == 404

    wanted = ["video.live_stream.created", "video.live_stream.simulcast_target.created",
              "video.live_stream.simulcast_target.updated", "video.live_stream.simulcast_target.deleted",
              "video.live_stream.disabled", "video.live_stream.enabled", "video.live_stream.updated",
              "video.live_stream.deleted"]

    def heard(events: list[dict[str, Any]]) -> bool:
        return set(wanted) <= {e["type"] for e in events}

    events = hooks.wait_until(heard, timeout=20)
    assert not [e for e in events if any(k in str(e) for k in (*KEYS, live.stream_key, reset.stream_key))]
