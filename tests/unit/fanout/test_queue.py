"""A target's bounded queue: FIFO under the bound; past it, drop frames and resync at the next keyframe."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.fanout.queue import TargetQueue
from relay.flv import AUDIO, VIDEO, Tag
from tests.support.tags import (
    audio,
    audio_header,
    inter,
    is_header_or_script,
    keyframe,
    metadata,
    script,
    video_header,
)

BIG = 1 << 40  # a bound that is never reached


def _push_all(queue: TargetQueue, tags: list[Tag]) -> None:
    for tag in tags:
        queue.push(tag)


def _same(a: list[Tag], b: list[Tag]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _counters(queue: TargetQueue) -> tuple[int, int, int]:
    return queue.dropped_frames, queue.dropped_bytes, queue.drop_events


# --- under the bound ------------------------------------------------------------------


def test_fifo_under_the_bound() -> None:
    queue = TargetQueue(BIG, 10_000)
    tags = [metadata(), video_header(), audio_header(), keyframe(0), audio(10), inter(33), audio(33), inter(66)]
    _push_all(queue, tags)
    assert len(queue) == len(tags)
    assert queue.bytes == sum(len(t.payload) for t in tags)
    assert _same(queue.pop_all(), tags)
    assert _counters(queue) == (0, 0, 0)
    assert queue.behind_since is None


def test_pop_all_empties() -> None:
    queue = TargetQueue(BIG, 10_000)
    _push_all(queue, [keyframe(0), inter(33)])
    assert len(queue.pop_all()) == 2
    assert len(queue) == 0 and queue.bytes == 0
    assert queue.pop_all() == []
    k = keyframe(66)
    queue.push(k)
    assert _same(queue.pop_all(), [k])


def test_exactly_at_the_bounds_nothing_is_dropped() -> None:
    queue = TargetQueue(100, 1000)
    tags = [keyframe(0, size=50), inter(1000, size=50)]  # 100 bytes, 1000 ms: at, not over
    _push_all(queue, tags)
    assert _same(queue.pop_all(), tags)
    assert _counters(queue) == (0, 0, 0)


# --- over the bound ---------------------------------------------------------------------


def test_over_max_bytes_drops_queued_frames_and_resumes_at_the_next_keyframe() -> None:
    queue = TargetQueue(100, BIG)
    vh, ah = video_header(0, size=10), audio_header(0, size=4)
    k0, a0, p0 = keyframe(0, size=30), audio(10, size=20), inter(33, size=30)
    _push_all(queue, [vh, ah, k0, a0, p0])  # 94 bytes
    assert _counters(queue) == (0, 0, 0)
    p1 = inter(66, size=30)
    queue.push(p1)  # 124 > 100: k0, a0, p0 and p1 itself go
    assert _counters(queue) == (4, 110, 1)
    assert queue.waiting_for_keyframe
    assert queue.behind_since == 0  # the timestamp of the first frame dropped
    # Until the next keyframe, video and audio alike are dropped as they come.
    _push_all(queue, [audio(70, size=20), inter(99, size=30), audio(100, size=20)])
    assert _counters(queue) == (7, 180, 1)
    k1, a1 = keyframe(2000, size=30), audio(2010, size=20)
    _push_all(queue, [k1, a1])
    assert not queue.waiting_for_keyframe
    assert _same(queue.pop_all(), [vh, ah, k1, a1])
    assert queue.bytes == 0
    assert queue.behind_since is None  # caught up again
    assert _counters(queue) == (7, 180, 1)


def test_over_max_duration_drops_too() -> None:
    queue = TargetQueue(BIG, 1000)
    k0, a0, p0 = keyframe(0), audio(500), inter(1000)
    _push_all(queue, [k0, a0, p0])
    assert _counters(queue) == (0, 0, 0)
    queue.push(audio(1001))  # 1001 ms queued: over
    assert queue.dropped_frames == 4 and queue.drop_events == 1
    assert queue.waiting_for_keyframe
    assert queue.pop_all() == []


def test_a_keyframe_that_passes_the_bound_is_kept() -> None:
    queue = TargetQueue(100, BIG)
    vh = video_header(0, size=10)
    k0, p0, p1 = keyframe(0, size=40), inter(33, size=40), keyframe(66, size=40)
    _push_all(queue, [vh, k0, p0, p1])  # the new keyframe makes 130 bytes
    assert _counters(queue) == (2, 80, 1)
    assert not queue.waiting_for_keyframe  # the target resumes right at the kept keyframe
    p2 = inter(99, size=10)
    queue.push(p2)
    assert _same(queue.pop_all(), [vh, p1, p2])


def test_a_lone_keyframe_over_the_bound_is_not_a_drop() -> None:
    queue = TargetQueue(100, BIG)
    k = keyframe(0, size=150)
    queue.push(k)
    assert _counters(queue) == (0, 0, 0)  # nothing was lost: no drop event either
    assert queue.behind_since is None
    assert _same(queue.pop_all(), [k])


def test_headers_and_metadata_are_never_dropped() -> None:
    queue = TargetQueue(50, BIG)
    meta, vh, ah = metadata(0, size=30), video_header(0, size=30), audio_header(0, size=30)
    _push_all(queue, [meta, vh, ah])  # 90 bytes of headers alone: over the bound, still queued
    assert _counters(queue) == (0, 0, 0)
    k0 = keyframe(0, size=10)
    queue.push(k0)  # over the bound, but a lone keyframe is kept
    vh2 = video_header(40, size=30)
    text = script(45)
    _push_all(queue, [inter(33, size=10), vh2, text, inter(66, size=10)])
    assert queue.dropped_frames == 3
    k1 = keyframe(2000, size=10)
    queue.push(k1)
    assert _same(queue.pop_all(), [meta, vh, ah, vh2, text, k1])


def test_old_header_timestamps_do_not_count_as_queued_time() -> None:
    """The init burst of a late joiner: headers stamped at the start of the show, then the current GOP.

    Headers keep the timestamp they were published with, an hour ago; the time the queue
    holds is the frames' span, or every target joining after max_duration_ms would lose the
    GOP it was given (and count drops it never had).
    """
    queue = TargetQueue(BIG, 2000)
    hour = 3_600_000
    burst = [metadata(0), video_header(0), audio_header(0), keyframe(hour), audio(hour + 10), inter(hour + 33)]
    _push_all(queue, burst)
    assert _counters(queue) == (0, 0, 0)
    assert _same(queue.pop_all(), burst)
    # The same for a header re-sent mid-stream with an old (or zero) timestamp.
    late = [video_header(0), inter(hour + 66), audio(hour + 70)]
    _push_all(queue, late)
    assert _same(queue.pop_all(), late)
    assert _counters(queue) == (0, 0, 0)


def test_timestamp_wrap_is_not_a_long_queue() -> None:
    queue = TargetQueue(BIG, 1000)
    tags = [keyframe((1 << 32) - 20), audio((1 << 32) - 10), inter(13), audio(20)]
    _push_all(queue, tags)
    assert _same(queue.pop_all(), tags)
    assert _counters(queue) == (0, 0, 0)


def test_audio_only_stream_resumes_at_the_next_audio_frame() -> None:
    queue = TargetQueue(50, BIG)
    ah = audio_header(0, size=4)
    _push_all(queue, [ah, audio(0, size=20), audio(23, size=20)])
    a2 = audio(46, size=20)
    queue.push(a2)  # 64 > 50: everything queued goes, a2 included
    assert _counters(queue) == (3, 60, 1)
    assert not queue.waiting_for_keyframe  # there is no keyframe to wait for
    a3 = audio(69, size=20)
    queue.push(a3)
    assert _same(queue.pop_all(), [ah, a3])


def test_clear_does_not_count_drops() -> None:
    queue = TargetQueue(100, BIG)
    _push_all(queue, [keyframe(0, size=60), inter(33, size=60), inter(66, size=10)])
    before = _counters(queue)
    assert before == (3, 130, 1)
    assert queue.waiting_for_keyframe
    queue.clear()
    assert _counters(queue) == before
    assert len(queue) == 0 and queue.bytes == 0
    assert not queue.waiting_for_keyframe
    assert queue.behind_since is None
    # After clear the queue takes whatever comes: a new connection starts with the init burst.
    p = inter(99, size=10)
    queue.push(p)
    assert _same(queue.pop_all(), [p])


def test_clear_with_frames_queued_counts_nothing() -> None:
    queue = TargetQueue(BIG, BIG)
    _push_all(queue, [keyframe(0), inter(33), audio(40)])
    queue.clear()
    assert _counters(queue) == (0, 0, 0)
    assert queue.pop_all() == []


def test_behind_since_survives_pop_all_while_waiting() -> None:
    queue = TargetQueue(10, BIG)
    _push_all(queue, [keyframe(500, size=8), inter(533, size=8)])
    assert queue.waiting_for_keyframe
    queue.pop_all()
    assert queue.behind_since == 500  # still behind: the keyframe has not come yet
    queue.push(keyframe(2500, size=8))
    queue.pop_all()
    assert queue.behind_since is None


# --- properties -------------------------------------------------------------------------

_KINDS = ("metadata", "video_header", "audio_header", "key", "inter", "audio")
_BUILD = {
    "metadata": metadata, "video_header": video_header, "audio_header": audio_header,
    "key": keyframe, "inter": inter, "audio": audio,
}

_push = st.tuples(st.just("push"), st.sampled_from(_KINDS), st.integers(1, 120), st.integers(-50, 200))
_pop = st.tuples(st.just("pop"), st.just(""), st.just(0), st.just(0))
_ops = st.lists(st.one_of(_push, _push, _push, _pop), max_size=120)


@dataclass
class Run:
    """The outcome of feeding a queue: everything pushed and popped, and the snapshots popped."""

    pushed: list[Tag] = field(default_factory=list)
    popped: list[Tag] = field(default_factory=list)
    snapshots: list[list[Tag]] = field(default_factory=list)


def _run(queue: TargetQueue, ops: list[tuple[str, str, int, int]], start_ts: int) -> Run:
    """Feed the queue and check the step-wise invariants; the timestamps move by each op's delta."""
    run = Run()
    ts = start_ts
    header_bytes = 0  # headers and metadata queued since the last pop_all: never dropped
    header_count = 0
    for op, kind, size, delta in ops:
        if op == "pop":
            snapshot = queue.pop_all()
            run.snapshots.append(snapshot)
            run.popped.extend(snapshot)
            assert len(queue) == 0 and queue.bytes == 0
            header_bytes = header_count = 0
            continue
        ts = (ts + delta) % (1 << 32)
        tag = _BUILD[kind](ts, size=size)
        run.pushed.append(tag)
        before = _counters(queue)
        queue.push(tag)
        frames_dropped = queue.dropped_frames - before[0]
        if is_header_or_script(tag):
            header_bytes += len(tag.payload)
            header_count += 1
            assert _counters(queue) == before  # a header push never drops anything
        elif frames_dropped == 0:
            # Taken with no drop: under the bound (headers included), or a lone keyframe.
            lone_keyframe = tag.is_keyframe and len(queue) == header_count + 1
            assert queue.bytes <= queue.max_bytes or lone_keyframe
        elif queue.drop_events > before[2]:
            # A drop: only headers stay, and the new tag if it is a keyframe.
            kept = len(tag.payload) if tag.is_keyframe else 0
            assert queue.bytes == header_bytes + kept
            assert len(queue) == header_count + (1 if tag.is_keyframe else 0)
        else:
            assert frames_dropped == 1  # dropped on arrival while waiting for a keyframe
        assert queue.bytes >= header_bytes
        # (4) The strongest bound on bytes that holds: the frames queued never exceed max_bytes unless one
        # keyframe stands alone. Headers come on top, unbounded: they are never dropped, nor do they
        # trigger a drop (the next frame does, as the bound counts them).
        frame_bytes = queue.bytes - header_bytes
        frame_count = len(queue) - header_count
        assert frame_bytes <= queue.max_bytes or frame_count == 1
    final = queue.pop_all()
    run.snapshots.append(final)
    run.popped.extend(final)
    return run


@settings(max_examples=400)
@given(_ops, st.integers(1, 400), st.integers(0, 400), st.integers(0, (1 << 32) - 1))
def test_queue_properties(ops: list[tuple[str, str, int, int]], max_bytes: int, max_ms: int, start: int) -> None:
    queue = TargetQueue(max_bytes, max_ms)
    run = _run(queue, ops, start)
    pushed, popped = run.pushed, run.popped
    index = {id(t): i for i, t in enumerate(pushed)}

    # (3) What comes out is a subsequence of what went in, in order, nothing twice.
    positions = [index[id(t)] for t in popped]
    assert positions == sorted(set(positions))

    # (1) Headers and metadata are never dropped.
    popped_ids = {id(t) for t in popped}
    assert all(id(t) in popped_ids for t in pushed if is_header_or_script(t))

    # (2) After a gap in the video, the first video frame that comes out is a keyframe.
    video = [t for t in pushed if t.kind == VIDEO and not t.is_header]
    for prev, cur in pairwise(video):
        if id(cur) in popped_ids and id(prev) not in popped_ids:
            assert cur.is_keyframe

    # ... and audio does not come out across a video gap: the video frame before it came out too.
    last_video: Tag | None = None
    for tag in pushed:
        if tag.kind == VIDEO and not tag.is_header:
            last_video = tag
        elif tag.kind == AUDIO and not tag.is_header and id(tag) in popped_ids and last_video is not None:
            assert id(last_video) in popped_ids

    # (5) The counters account exactly for the frames that went in and did not come out.
    lost = [t for t in pushed if id(t) not in popped_ids]
    assert queue.dropped_frames == len(lost)
    assert queue.dropped_bytes == sum(len(t.payload) for t in lost)
    assert queue.drop_events <= queue.dropped_frames
    if queue.dropped_frames:
        assert queue.drop_events >= 1

    # Every popped batch respects the duration bound over its frames (timestamps move forward here).
    for snapshot in run.snapshots:
        frames = [t for t in snapshot if not is_header_or_script(t)]
        if len(frames) >= 2:
            span = (frames[-1].timestamp - frames[0].timestamp) % (1 << 32)
            assert span <= max_ms or span >= 1 << 31


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.sampled_from(["audio", "audio", "audio_header", "metadata"]), st.integers(1, 120)),
             max_size=80),
    st.lists(st.integers(0, 80), max_size=10),
    st.integers(1, 300),
)
def test_audio_only_never_waits(spec: list[tuple[str, int]], pops: list[int], max_bytes: int) -> None:
    """Without video nothing waits for a keyframe: every audio frame that fits is queued."""
    queue = TargetQueue(max_bytes, BIG)
    pop_at = set(pops)
    for i, (kind, size) in enumerate(spec):
        if i in pop_at:
            queue.pop_all()
        tag = _BUILD[kind](i * 23, size=size)
        fits = queue.bytes + len(tag.payload) <= max_bytes
        dropped = queue.dropped_frames
        queue.push(tag)
        assert not queue.waiting_for_keyframe
        if kind == "audio" and fits:
            assert queue.dropped_frames == dropped
            assert queue.bytes <= max_bytes
