"""The asyncio target over a fake transport (no sockets): coalesced writes, headers at once, drops at a
keyframe while paused, a flush before unpublishing, shared bodies, the reconnect request's host check,
Enhanced RTMP announced in a connect only when the stream needs it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from relay.fanout.hub import Hub
from relay.targets.logpolicy import TargetLogPolicy
from relay.targets.statustable import CONNECTED, FAILED, RETRY, START
from relay.flv import AUDIO, VIDEO, Tag
from relay.runtime.logs import PEER_TEXT_LIMIT
from relay.targets.supervisor import Target
from relay.rtmp.encoded import EncodedMessage
from tests.support.tags import audio, audio_header, inter, keyframe, metadata, video_header
from tests.support.fakenetwork import KEY, FakeNetwork, FakeTransport, target_config

RECONNECT_REQUEST = "NetConnection.Connect.ReconnectRequest"
HEADERS = (metadata(), video_header(), audio_header())


@pytest.fixture
def logs() -> AsyncIterator[list[dict[str, Any]]]:
    with capture_logs() as captured:
        yield captured


Started = Callable[..., Any]


@pytest.fixture
async def started(network: FakeNetwork, logs: list[dict[str, Any]]) -> AsyncIterator[Started]:
    """Factory: a hub with headers published, and a target on it, broadcasting with its init burst written."""
    targets: list[Target] = []

    async def start(hub: Hub[EncodedMessage] | None = None, **config: Any) -> tuple[Target, Hub[EncodedMessage],
                                                                                     FakeTransport]:
        if hub is None:
            hub = Hub("studio", wrap=EncodedMessage)
            for tag in HEADERS:
                hub.publish(tag)
        target = Target("studio", target_config(**config), hub)
        targets.append(target)
        target.start()
        transport = await network.wait_opened(len(network.transports) + 1)
        await transport.wait_until(lambda: len(transport.media) >= 3 and target.buffer.live)
        return target, hub, transport

    yield start
    for target in targets:
        target.request_stop()
        await target.wait_stopped(5)


def payloads(tags: list[Tag]) -> list[bytes]:
    return [t.payload for t in tags]


async def test_a_burst_of_tags_becomes_one_write(started: Started) -> None:
    target, hub, transport = await started(write_interval=0.05)
    writes = len(transport.writes)
    burst = [keyframe(0, size=6700), audio(10), inter(33, size=3000), audio(33), inter(66, size=3000)]
    for tag in burst:
        hub.publish(tag)
    assert len(transport.writes) == writes  # gathered, not written tag by tag
    write = await transport.next_write()
    assert payloads(write.media) == payloads(burst)
    assert len(transport.writes) == writes + 1  # one writelines for the five tags
    assert sum(len(p) == 12 for p in write.pieces) >= 5  # per tag: its 12-byte header, then the shared body
    snapshot = target.snapshot()
    assert snapshot.tags_sent == 3 + 5 and snapshot.bytes_sent == sum(len(t.payload) for t in burst) + sum(
        len(EncodedMessage(t).payload) + (16 if t.kind == 18 else 0) for t in HEADERS)


async def test_headers_and_metadata_are_never_held_back(started: Started) -> None:
    _target, hub, transport = await started(write_interval=0.1)
    gathered = [keyframe(0), audio(10), inter(33)]
    for tag in gathered:
        hub.publish(tag)
    writes = len(transport.writes)
    header = video_header(40, size=40)  # the encoder changed its configuration
    hub.publish(header)
    # Written before anything could wait: the header, and what was gathered before it, in order.
    assert len(transport.writes) == writes + 1
    assert payloads(transport.writes[-1].media) == payloads([*gathered, header])
    meta = metadata(50, size=80)
    hub.publish(meta)
    assert payloads(transport.writes[-1].media) == [meta.payload]


async def test_write_interval_0_writes_each_tag_as_it_comes(started: Started) -> None:
    _target, hub, transport = await started(write_interval=0)
    for tag in (keyframe(0), audio(10), inter(33)):
        writes = len(transport.writes)
        hub.publish(tag)
        assert len(transport.writes) == writes + 1 and payloads(transport.writes[-1].media) == [tag.payload]


async def test_a_paused_target_drops_at_a_keyframe_and_says_so_once_a_second(
    started: Started, logs: list[dict[str, Any]],
) -> None:
    target, hub, transport = await started(write_interval=0.05, queue={"max_bytes": 65_536, "max_seconds": 4})
    link = transport.link
    link.pause_writing()  # the platform is not reading: the transport's buffer is full
    def gop(start: int, frames: int) -> list[Tag]:
        return [keyframe(start, size=20_000), *(inter(start + 33 * i, size=20_000) for i in range(1, frames))]

    last_gop = [keyframe(4000, size=20_001), audio(4010), inter(4033, size=1000)]  # sizes tell the tags apart
    for tag in [*gop(0, 8), audio(260), *gop(2000, 5), *last_gop]:  # over the bound in each of the first two
        hub.publish(tag)
    assert target.queue.dropped_frames >= 5 and target.queue.drop_events >= 2
    dropping = [e for e in logs if e["event"] == "target_dropping"]
    assert len(dropping) == 1  # two drop events within a second: one line
    assert dropping[0]["dropped_frames"] >= 3
    writes = len(transport.writes)
    link.resume_writing()
    write = await transport.next_write()
    assert len(transport.writes) == writes + 1
    video = [t for t in write.media if t.kind == VIDEO]
    assert video[0].payload == last_gop[0].payload  # resumed at the keyframe
    assert payloads(write.media) == payloads(last_gop)
    assert target.snapshot().dropped_frames == target.queue.dropped_frames
    assert target.buffer.live  # caught up again


async def test_stopping_flushes_what_is_gathered_then_unpublishes(started: Started) -> None:
    target, hub, transport = await started(write_interval=0.1)
    tags = [keyframe(0), audio(10), inter(33)]
    for tag in tags:
        hub.publish(tag)
    target.request_stop()
    await target.wait_stopped(5)
    assert payloads(transport.media[3:]) == payloads(tags)  # none lost to the stop
    assert transport.unpublished == "FCUnpublish"
    assert target.snapshot().status == "idle"


async def test_targets_on_one_hub_share_each_body(started: Started) -> None:
    a, hub, ta = await started(write_interval=0.05)
    b, _hub, tb = await started(hub, write_interval=0.05)
    frame = keyframe(0, size=9000)  # over the 4096-byte chunk size: a body of its own
    ca, cb = len(ta.writes), len(tb.writes)
    hub.publish(frame)
    await ta.wait_until(lambda: len(ta.writes) > ca)
    await tb.wait_until(lambda: len(tb.writes) > cb)
    wa, wb = ta.writes[ca], tb.writes[cb]
    assert payloads(wa.media) == payloads(wb.media) == [frame.payload]
    assert all(a is b for a, b in zip(wa.pieces[1:], wb.pieces[1:], strict=True))  # one body for both targets
    assert isinstance(wa.pieces[1], memoryview) and wa.pieces[1].obj is frame.payload  # a view: no copy
    assert wa.pieces[0] == wb.pieces[0]  # and the same timeline, so the same header bytes


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


async def test_the_snapshot(started: Started) -> None:
    target, _hub, _transport = await started(write_interval=0.04)
    snapshot = target.snapshot()
    assert (snapshot.passthrough, snapshot.url, snapshot.status) == ("t", "rtmp://platform.example/live", "broadcasting")
    assert snapshot.error_severity is None and snapshot.last_error is None and snapshot.next_attempt_at is None
    assert snapshot.connected_since is not None and snapshot.connections == 1 and snapshot.reconnects == 0
    assert snapshot.write_interval == 0.04 and snapshot.tls_verify
    assert KEY not in repr(snapshot)


async def test_enhanced_rtmp_is_decided_at_each_connect(started: Started, network: FakeNetwork) -> None:
    # auto: an H.264 stream connects the classic way; once the stream carries HEVC (Enhanced
    # RTMP), the next connect (here the switch of a reconnect request) announces it.
    _target, hub, transport = await started(write_interval=0.05)
    assert transport.connect_properties is not None and "fourCcList" not in transport.connect_properties
    hub.publish(Tag(VIDEO, 40, b"\x90hvc1" + bytes(30)))  # IsExHeader | keyframe | SequenceStart
    transport.send_status(RECONNECT_REQUEST)
    second = await network.wait_opened(2)
    assert second.connect_properties is not None and "hvc1" in second.connect_properties["fourCcList"]


async def test_enhanced_rtmp_always_and_never(started: Started) -> None:
    _target, _hub, always = await started(write_interval=0.05, enhanced_rtmp="always")
    hub: Hub[EncodedMessage] = Hub("studio", wrap=EncodedMessage)
    hub.state.publisher_enhanced = True  # the publisher's connect declared Enhanced RTMP
    for tag in HEADERS:
        hub.publish(tag)
    _target, _hub, never = await started(hub, write_interval=0.05, enhanced_rtmp="never")
    assert always.connect_properties is not None and "fourCcList" in always.connect_properties
    assert never.connect_properties is not None and "fourCcList" not in never.connect_properties


async def test_a_new_publish_session_starts_the_counters_over(started: Started, network: FakeNetwork) -> None:
    target, hub, transport = await started(write_interval=0.05)
    hub.publish(keyframe(0, size=5000))
    await transport.wait_until(lambda: len(transport.media) >= 4)
    target.request_stop()  # the publisher's Stop
    await target.wait_stopped(5)
    first = target.snapshot()
    assert first.status == "idle" and first.bytes_sent == first.bytes_sent_total > 5000  # kept while idle

    target.start()  # the next publish session
    second_transport = await network.wait_opened(2)
    await second_transport.wait_until(lambda: target.snapshot().status == "broadcasting" and target.buffer.live)
    hub.publish(inter(33, size=700))
    await second_transport.wait_until(lambda: any(len(t.payload) == 700 for t in second_transport.media))
    second = target.snapshot()
    assert (second.connections, second.reconnects, second.attempts) == (1, 0, 0)  # not a reconnect
    assert (second.connections_total, second.reconnects_total) == (2, 0)
    # This session's: its init burst (headers and the cached GOP) and one frame; the total has both sessions.
    assert 0 < second.bytes_sent < second.bytes_sent_total == first.bytes_sent_total + second.bytes_sent
    assert second.tags_sent == 3 + 1 + 1 and second.dropped_frames == second.dropped_frames_total == 0
    assert second.last_connected_at is not None and second.last_connected_at >= (first.last_connected_at or 0)


async def test_the_platforms_words_lose_the_key_and_are_cut_before_a_log_line_or_last_error(started: Started) -> None:
    target, _hub, _transport = await started(write_interval=0.05)
    link = target._link
    assert link is not None
    words = f"Publish rejected for stream {KEY}: " + "x" * 100_000  # a hostile or broken platform

    said = link.redact(words)

    assert KEY not in said and said.startswith("Publish rejected for stream <redacted")
    assert len(said) < PEER_TEXT_LIMIT + 40 and said.endswith(" characters)")  # cut, saying how long it was
    assert link.redact("Publish rejected.") == "Publish rejected."  # short words stay as they are


async def test_a_new_session_that_connects_before_the_publisher_sends_anything_gets_its_headers(
        started: Started, network: FakeNetwork) -> None:
    # Stop Streaming, Start Streaming: the target of the second session connects before the
    # publisher's headers, which are the same bytes as the first session's.
    target, hub, first = await started()
    hub.publish(keyframe(0))
    await first.wait_until(lambda: any(t.is_keyframe for t in first.media))
    target.request_stop()
    await target.wait_stopped(5)
    hub.state.reset()  # what the live stream does when the next publisher claims it
    target.start()
    second = await network.wait_opened(2)
    await second.wait_until(lambda: target.buffer.live)
    assert second.media == []  # nothing to send yet
    show = [metadata(), video_header(), audio_header(), keyframe(0), audio(10), inter(33)]
    for tag in show:
        hub.publish(tag)
    await second.wait_until(lambda: len(second.media) >= len(show))
    assert payloads(second.media) == payloads(show)


async def test_a_frame_about_to_go_out_without_its_header_is_repaired_and_logged_once(
        started: Started, logs: list[dict[str, Any]]) -> None:
    from relay.fanout.primer import Primer
    target, hub, transport = await started()
    link = target._link
    assert link is not None
    link.primer = Primer()  # as if the connection had lost what it was sent: the bug the primer guards against
    before = len(transport.media)
    frames = [inter(33), inter(66), keyframe(100), audio(110), inter(133), keyframe(200)]
    for tag in frames:
        hub.publish(tag)
    await transport.wait_until(lambda: len(transport.media) - before >= 7)
    sent = transport.media[before:]
    vh, ah = HEADERS[1], HEADERS[2]
    assert payloads(sent) == payloads([HEADERS[0], vh, frames[2], ah, frames[3], frames[4], frames[5]])
    assert [e["event"] for e in logs].count("target_headers_repaired") == 1
    assert target.snapshot().dropped_frames == 2  # the two frames before the keyframe


async def test_a_target_that_keeps_failing_warns_once_then_summarises(logs: list[dict[str, Any]]) -> None:
    target = Target("studio", target_config(), Hub("studio", wrap=EncodedMessage))
    target.log_policy = TargetLogPolicy(summary_interval=0.0)  # a summary at every failure after the first
    target._handle(START)
    for i in range(3):
        target._handle(FAILED, f"connection refused #{i}")
        target._handle(RETRY)
    target._handle(CONNECTED)
    lines = [(e["log_level"], e["event"], e.get("to")) for e in logs]
    assert lines == [
        ("debug", "target_status", "starting"),
        ("warning", "target_status", "errored"), ("debug", "target_status", "starting"),
        ("warning", "target_still_failing", None), ("debug", "target_status", "starting"),
        ("warning", "target_still_failing", None), ("debug", "target_status", "starting"),
        ("info", "target_status", "broadcasting"),
    ]
    assert logs[-3]["attempts"] == 3 and logs[-3]["last_reason"] == "connection refused #2"
    assert logs[-1]["attempts"] == 4 and logs[-1]["failing_since"] is not None
