"""A target's send buffer: gather while caught up, never hold headers back, queue (and drop) while behind."""

from __future__ import annotations

from relay.fanout.queue import TargetQueue
from relay.fanout.sendbuffer import SendBuffer
from relay.flv import Tag, TagLike
from tests.support.tags import audio, audio_header, inter, keyframe, metadata, script, video_header

BIG = 1 << 40


class Owner:
    """Records what the buffer asks for, and writes (take + settle) when told to, like the target."""

    def __init__(self, writable: bool = True) -> None:
        self.buffer: SendBuffer[Tag] | None = None
        self.writable = writable
        self.soon = 0
        self.now = 0
        self.dropped: list[TagLike] = []
        self.writes: list[list[Tag]] = []
        self.write_on_now = True

    def send_soon(self) -> None:
        self.soon += 1

    def send_now(self) -> None:
        self.now += 1
        if self.write_on_now:
            self.write()

    def frames_dropped(self, newest: TagLike) -> None:
        self.dropped.append(newest)

    def write(self) -> None:
        """What the ticker does when the target is due: one write of everything taken."""
        assert self.buffer is not None
        taken = self.buffer.take(self.writable)
        if taken:
            self.writes.append(taken)
        self.buffer.settle(self.writable)


def caught_up(max_bytes: int = BIG, max_ms: int = BIG, immediate: bool = False) -> tuple[SendBuffer[Tag], Owner]:
    owner = Owner()
    buffer: SendBuffer[Tag] = SendBuffer(TargetQueue(max_bytes, max_ms, tag_overhead=0), owner, immediate)
    owner.buffer = buffer
    buffer.start([metadata(), video_header(), audio_header(), keyframe(0)])
    owner.write()  # the init burst goes out at once
    assert buffer.live and len(owner.writes) == 1
    owner.writes.clear()
    return buffer, owner


def _same(a: list[Tag], b: list[Tag]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def test_a_burst_of_tags_becomes_one_write() -> None:
    buffer, owner = caught_up()
    burst = [audio(10), inter(33), audio(33), inter(66), audio(56)]
    for tag in burst:
        buffer.offer_message(tag)
    assert owner.soon == 1 and owner.now == 0  # one timer request for the whole burst, no write yet
    assert owner.writes == []
    owner.write()  # the interval is over
    assert len(owner.writes) == 1 and _same(owner.writes[0], burst)
    assert buffer.live
    later = [inter(99), audio(80)]
    for tag in later:
        buffer.offer_message(tag)
    assert owner.soon == 2  # the next gathering asks again
    owner.write()
    assert _same(owner.writes[1], later)


def test_headers_and_metadata_are_never_held_back() -> None:
    buffer, owner = caught_up()
    before = [audio(10), inter(33)]
    for tag in before:
        buffer.offer_message(tag)
    assert owner.writes == []
    header = video_header(40, size=20)
    buffer.offer_message(header)  # a codec change: written at once, after what was pending before it
    assert owner.now == 1 and _same(owner.writes[0], [*before, header])
    meta = metadata(50)
    buffer.offer_message(meta)
    text = script(51)
    buffer.offer_message(text)
    assert _same(owner.writes[1], [meta]) and _same(owner.writes[2], [text])
    buffer.offer_message(inter(66))
    assert len(owner.writes) == 3  # frames wait for the interval again


def test_a_repeated_sequence_header_is_sent_once() -> None:
    buffer, owner = caught_up()
    again = video_header()  # the same bytes as the one in the init burst: a publisher that came back
    buffer.offer_message(again)
    assert owner.now == 0 and owner.writes == []
    changed = video_header(size=24)
    buffer.offer_message(changed)
    assert _same(owner.writes[0], [changed])


def test_write_interval_0_writes_every_tag_at_once() -> None:
    buffer, owner = caught_up(immediate=True)
    tags = [audio(10), inter(33), audio(33)]
    for tag in tags:
        buffer.offer_message(tag)
    assert owner.soon == 0 and owner.now == 3
    assert [w for w in owner.writes] == [[t] for t in tags]


def test_a_blocked_target_queues_and_drops_at_a_keyframe_as_before() -> None:
    buffer, owner = caught_up(max_bytes=100)
    buffer.block()  # flow control paused the link
    owner.writable = False
    k0, a0, p0 = keyframe(100, size=30), audio(110, size=20), inter(133, size=30)
    for tag in (k0, a0, p0):
        buffer.offer_message(tag)
    assert owner.soon == 0 and owner.writes == []  # nothing to do until the link takes data
    p1 = inter(166, size=30)
    buffer.offer_message(p1)  # 110 > 100 bytes: the queued frames go, and this one
    assert owner.dropped == [p1] and buffer.queue.dropped_frames == 4 and buffer.queue.waiting_for_keyframe
    buffer.offer_message(audio(170, size=20))
    buffer.offer_message(inter(199, size=30))
    k1, a1 = keyframe(2000, size=30), audio(2010, size=20)
    buffer.offer_message(k1)
    buffer.offer_message(a1)
    owner.writable = True  # resumed: the owner drains
    owner.write()
    assert _same(owner.writes[0], [k1, a1])  # it resumes at the keyframe
    assert buffer.live
    buffer.offer_message(inter(2033))
    assert owner.soon == 1  # caught up: gathering again


def test_what_was_pending_when_the_link_paused_goes_before_what_queued() -> None:
    buffer, owner = caught_up()
    pending = [audio(10), inter(33)]
    for tag in pending:
        buffer.offer_message(tag)
    buffer.block()
    owner.writable = False
    queued = [audio(40), inter(66)]
    for tag in queued:
        buffer.offer_message(tag)
    owner.write()  # the interval ends while paused: what was gathered goes (one interval's worth at most)
    assert _same(owner.writes[0], pending)
    owner.writable = True
    owner.write()
    assert _same(owner.writes[1], queued)


def test_held_for_a_switch_the_queue_drains_at_each_write() -> None:
    buffer, owner = caught_up()
    buffer.hold()
    tags = [audio(10), inter(33)]
    for tag in tags:
        buffer.offer_message(tag)
    assert owner.soon == 1  # the link still takes data: drain at the next write
    assert owner.buffer is buffer
    taken = buffer.take(True)
    assert _same(taken, tags)
    buffer.settle(True, switching=True)
    assert not buffer.live  # still switching: keep queueing
    buffer.settle(True, switching=False)
    assert buffer.live


def test_after_the_publisher_comes_back_frames_wait_for_its_first_keyframe() -> None:
    buffer, owner = caught_up()
    buffer.resync()
    buffer.offer_message(video_header())  # repeated: skipped
    for tag in (audio(0), inter(33)):
        buffer.offer_message(tag)
    k = keyframe(66)
    buffer.offer_message(k)
    owner.write()
    assert _same(owner.writes[0], [k])
    assert buffer.queue.dropped_frames == 0 and buffer.queue.skipped_frames == 2


def test_gathered_video_tells_the_queue_the_stream_has_video() -> None:
    owner = Owner()
    buffer: SendBuffer[Tag] = SendBuffer(TargetQueue(50, BIG, tag_overhead=0), owner)
    owner.buffer = buffer
    buffer.start([])  # joined before the publisher sent anything
    owner.write()
    assert buffer.live and not buffer.queue.has_video
    buffer.offer_message(inter(0, size=10))
    owner.write()
    assert buffer.queue.has_video  # so that a later drop resumes at a keyframe, not at any frame
    buffer.block()
    for tag in (inter(33, size=30), inter(66, size=30)):
        buffer.offer_message(tag)
    assert buffer.queue.waiting_for_keyframe
