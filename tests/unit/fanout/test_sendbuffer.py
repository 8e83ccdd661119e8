"""A target's send buffer: follow the feed while caught up (nothing per tag), never hold headers back,
queue (and drop at a keyframe) while behind."""

from __future__ import annotations

from relay.fanout.accel import Hub
from relay.fanout.hub import TRIM_AT
from relay.fanout.queue import TargetQueue
from relay.fanout.sendbuffer import SendBuffer
from relay.flv import Tag, TagLike
from tests.support.tags import audio, audio_header, inter, keyframe, metadata, same_objects, script, video_header

BIG = 1 << 40
HEADERS = (metadata(), video_header(), audio_header())


class Owner:
    """Records what the buffer asks for, and writes (take + settle) when told to, like the target."""

    def __init__(self, hub: Hub[Tag], max_bytes: int = BIG, immediate: bool = False) -> None:
        self.buffer: SendBuffer[Tag] = SendBuffer(hub, TargetQueue(max_bytes, BIG, tag_overhead=0), self, immediate)
        self.writable = True
        self.soon = self.now = self.one = 0
        self.dropped: list[TagLike] = []
        self.following: list[bool] = []
        self.writes: list[list[Tag]] = []

    def send_soon(self) -> None:
        self.soon += 1

    def send_now(self) -> None:
        self.now += 1
        self.write()

    def send_message(self, message: Tag) -> None:
        self.one += 1
        self.writes.append([message])

    def frames_dropped(self, newest: TagLike) -> None:
        self.dropped.append(newest)

    def set_following(self, following: bool) -> None:
        self.following.append(following)

    def write(self) -> None:
        """What the target does when its slot comes: one write of everything taken."""
        taken = self.buffer.take(self.writable)
        if taken:
            self.writes.append(taken)
        self.buffer.settle(self.writable)

    def calls(self) -> tuple[int, int, int]:
        return self.soon, self.now, self.one


def caught_up(max_bytes: int = BIG, immediate: bool = False) -> tuple[Hub[Tag], Owner]:
    hub: Hub[Tag] = Hub("studio")
    for tag in (*HEADERS, keyframe(0)):
        hub.publish(tag)
    owner = Owner(hub, max_bytes, immediate)
    owner.buffer.join()
    owner.write()  # the init burst goes out at once
    assert owner.buffer.live and len(owner.writes) == 1 and len(owner.writes[0]) == 4
    owner.writes.clear()
    owner.soon = owner.now = owner.one = 0
    assert owner.following == ([] if immediate else [True])  # a member of its slot from now on
    return hub, owner


def test_a_burst_of_tags_becomes_one_write_and_costs_nothing_per_tag() -> None:
    hub, owner = caught_up()
    assert owner.buffer.following and hub.followers == (owner.buffer,)
    burst = [audio(10), inter(33), audio(33), inter(66), audio(56)]
    for tag in burst:
        hub.publish(tag)
    assert owner.calls() == (0, 0, 0) and owner.writes == []  # not one call per tag: the hub only appends
    owner.write()  # the target's slot came
    assert len(owner.writes) == 1 and same_objects(owner.writes[0], burst)
    later = [inter(99), audio(80)]
    for tag in later:
        hub.publish(tag)
    owner.write()
    assert same_objects(owner.writes[1], later)
    owner.write()  # nothing new: no write
    assert len(owner.writes) == 2


def test_headers_and_metadata_are_never_held_back() -> None:
    hub, owner = caught_up()
    before = [audio(10), inter(33)]
    for tag in before:
        hub.publish(tag)
    assert owner.writes == []
    header = video_header(40, size=20)
    hub.publish(header)  # a codec change: written at once, after what was gathered before it
    assert owner.now == 1 and same_objects(owner.writes[0], [*before, header])
    meta, text = metadata(50, size=30), script(51)
    hub.publish(meta)
    hub.publish(text)
    assert same_objects(owner.writes[1], [meta]) and same_objects(owner.writes[2], [text])
    hub.publish(inter(66))
    assert len(owner.writes) == 3  # frames wait for the slot again


def test_a_repeated_sequence_header_is_taken_like_any_other() -> None:
    # Whether the connection has it already is the primer's to judge (test_primer.py), per connection.
    hub, owner = caught_up()
    again = video_header()  # the same bytes as before: a publisher that came back
    hub.publish(again)
    assert owner.calls() == (0, 1, 0) and same_objects(owner.writes[0], [again])


def test_write_interval_0_writes_every_tag_as_it_comes() -> None:
    hub, owner = caught_up(immediate=True)
    assert owner.buffer.live and not owner.buffer.following  # offered each message instead
    tags = [audio(10), inter(33), audio(33)]
    for tag in tags:
        hub.publish(tag)
    assert owner.calls() == (0, 0, 3)
    assert owner.writes == [[t] for t in tags]


def test_a_blocked_target_queues_and_drops_at_a_keyframe_as_before() -> None:
    hub, owner = caught_up(max_bytes=100)
    owner.buffer.block()  # flow control paused the link
    owner.writable = False
    assert not owner.buffer.following and hub.followers == () and owner.following == [True, False]
    k0, a0, p0 = keyframe(100, size=30), audio(110, size=20), inter(133, size=30)
    for tag in (k0, a0, p0):
        hub.publish(tag)
    assert owner.calls() == (0, 0, 0) and owner.writes == []  # nothing to do until the link takes data
    p1 = inter(166, size=30)
    hub.publish(p1)  # 110 > 100 bytes: the queued frames go, and this one
    buffer = owner.buffer
    assert owner.dropped == [p1] and buffer.queue.dropped_frames == 4 and buffer.queue.waiting_for_keyframe
    hub.publish(audio(170, size=20))
    hub.publish(inter(199, size=30))
    k1, a1 = keyframe(2000, size=30), audio(2010, size=20)
    hub.publish(k1)
    hub.publish(a1)
    owner.writable = True  # resumed: the owner drains
    owner.write()
    assert same_objects(owner.writes[0], [k1, a1])  # it resumes at the keyframe
    assert buffer.live and buffer.following


def test_what_was_fed_when_the_link_paused_goes_before_what_queued() -> None:
    hub, owner = caught_up()
    fed = [audio(10), inter(33)]
    for tag in fed:
        hub.publish(tag)
    owner.buffer.block()
    owner.writable = False
    queued = [audio(40), inter(66)]
    for tag in queued:
        hub.publish(tag)
    owner.write()  # the slot comes while paused: what was gathered goes (one interval's worth at most)
    assert same_objects(owner.writes[0], fed)
    owner.writable = True
    owner.write()
    assert same_objects(owner.writes[1], queued)


def test_held_for_a_switch_the_queue_drains_at_each_write() -> None:
    hub, owner = caught_up()
    buffer = owner.buffer
    buffer.hold()
    tags = [audio(10), inter(33)]
    for tag in tags:
        hub.publish(tag)
    assert owner.soon == 1  # the link still takes data: drain at the next slot
    assert same_objects(buffer.take(True), tags)
    buffer.settle(True, switching=True)
    assert not buffer.live  # still switching: keep queueing
    buffer.settle(True, switching=False)
    assert buffer.live and buffer.following


def test_after_the_publisher_comes_back_frames_wait_for_its_first_keyframe() -> None:
    hub, owner = caught_up()
    owner.buffer.resync()
    hub.state.reset()  # as the live stream does for a new publish session
    vh = video_header()  # the new session's headers (the connection's primer leaves out a repeated one)
    hub.publish(vh)
    for tag in (audio(0), inter(33)):
        hub.publish(tag)
    k = keyframe(66)
    hub.publish(k)
    owner.write()
    assert same_objects(owner.writes[0], [vh, k])
    assert owner.buffer.queue.dropped_frames == 0 and owner.buffer.queue.skipped_frames == 2


def test_what_the_old_source_left_on_a_paused_link_is_dropped_when_the_publisher_comes_back() -> None:
    # Sent after the timeline's jump, the old source's frames would hold the new source's timestamps back.
    hub, owner = caught_up()
    owner.buffer.block()  # the platform stopped reading for a while
    owner.writable = False
    old = [keyframe(1000, size=30), audio(1010, size=20), inter(1033, size=30)]
    for tag in old:
        hub.publish(tag)
    assert len(owner.buffer.queue) == 3
    owner.buffer.resync()
    assert not owner.buffer.backlog
    assert owner.buffer.queue.dropped_frames == 3 and owner.buffer.queue.dropped_bytes == 80
    hub.state.reset()
    owner.writable = True
    vh, k = video_header(size=20), keyframe(0)  # the new session, from its first keyframe
    hub.publish(vh)
    hub.publish(k)
    owner.write()
    assert same_objects([m for w in owner.writes for m in w], [vh, k])


def test_fed_video_tells_the_queue_the_stream_has_video() -> None:
    hub: Hub[Tag] = Hub("studio")
    owner = Owner(hub, max_bytes=50)
    owner.buffer.join()  # before the publisher sent anything
    owner.write()
    buffer = owner.buffer
    assert buffer.following and not buffer.queue.has_video
    hub.publish(inter(0, size=10))
    owner.write()
    assert buffer.queue.has_video  # so that a later drop resumes at a keyframe, not at any frame
    buffer.block()
    for tag in (inter(33, size=30), inter(66, size=30)):
        hub.publish(tag)
    assert buffer.queue.waiting_for_keyframe


def test_the_feed_holds_only_what_the_slowest_follower_has_not_read() -> None:
    hub, fast = caught_up()
    slow = Owner(hub)
    slow.buffer.join()
    slow.write()
    for i in range(1000):
        hub.publish(audio(100 + i))
        fast.write()
        if i % 100 == 0:
            slow.write()
        assert len(hub.feed.messages) <= max(TRIM_AT, 100) + 2
    slow.write()
    assert sum(len(w) for w in fast.writes) == sum(len(w) for w in slow.writes[1:]) == 1000
    slow.buffer.leave()
    fast.buffer.leave()
    assert hub.followers == () and hub.feed.messages == []


def test_what_a_connection_leaves_unwritten_is_counted_as_dropped() -> None:
    hub, owner = caught_up()
    fed = [audio(10, size=20), inter(33, size=30)]
    for tag in fed:
        hub.publish(tag)
    owner.buffer.block()  # the platform stops reading: the fed tags are pending, the rest queues
    owner.writable = False
    queued = [audio(40, size=20), inter(66, size=30), video_header(size=24)]  # a new codec configuration
    for tag in queued:
        hub.publish(tag)
    queue = owner.buffer.queue
    assert queue.dropped_frames == 0

    frames, size = owner.buffer.abandon()  # the session ends before the platform took them

    assert (frames, size) == (4, 124)  # a header is bytes, not a frame
    assert (queue.dropped_frames, queue.dropped_bytes) == (4, size)
    assert not owner.buffer.backlog and owner.buffer.abandon() == (0, 0)


def test_a_new_connection_counts_what_the_last_one_left_as_dropped() -> None:
    hub, owner = caught_up()
    owner.buffer.block()
    owner.writable = False
    for tag in (audio(10, size=20), inter(33, size=30)):
        hub.publish(tag)
    owner.buffer.leave()  # the link failed

    owner.buffer.join()  # the next connection starts from the init burst

    queue = owner.buffer.queue
    assert (queue.dropped_frames, queue.dropped_bytes) == (2, 50)


def test_idle_while_following_with_nothing_unwritten() -> None:
    """The write ticker's slot skips an idle follower (writer.py's flush): idle must mean no write has anything."""
    hub, owner = caught_up()
    assert owner.buffer.idle
    hub.publish(inter(33))
    assert not owner.buffer.idle  # something fed and not read
    owner.write()
    assert owner.buffer.idle and len(owner.writes) == 1
    hub.publish(inter(66))
    owner.writable = False
    owner.write()  # the link paused: taken, not written, and no longer following
    assert not owner.buffer.idle
    _, immediate = caught_up(immediate=True)
    assert immediate.buffer.live and not immediate.buffer.idle  # not following: every message is offered
