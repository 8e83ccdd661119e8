"""The target's write path (relay/targets/writer.py) over a fake transport (no sockets): coalesced writes,
headers at once, each tag at once with write_interval 0, drops at a keyframe while paused (logged once a
second), a flush before unpublishing, shared bodies, and the primer's guard on each connection."""

from __future__ import annotations

from typing import Any

from relay.flv import VIDEO, Tag
from tests.support.tags import audio, audio_header, inter, keyframe, metadata, video_header
from tests.unit.targets.support import HEADERS, Started, payloads


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
        t.length for t in HEADERS)  # script data with its @setDataFrame


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
    link = target.writer.link
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
