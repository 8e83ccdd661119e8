"""A target's bounded queue: FIFO under the bound; past it, drop frames and resync at the next keyframe."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.fanout.queue import TAG_OVERHEAD, TargetQueue
from relay.flv import AUDIO, SCRIPT, VIDEO, Tag, is_metadata
from tests.support.tags import (
    audio,
    audio_header,
    inter,
    is_header_or_script,
    keyframe,
    metadata,
    same_objects,
    script,
    video_header,
)

BIG = 1 << 40  # a bound that is never reached


def _queue(max_bytes: int, max_duration_ms: int) -> TargetQueue[Tag]:
    """A queue that counts payload bytes only, so that the byte arithmetic below stays readable;
    the per-tag overhead has tests of its own."""
    return TargetQueue(max_bytes, max_duration_ms, tag_overhead=0)


def _push_all(queue: TargetQueue, tags: list[Tag]) -> None:
    for tag in tags:
        queue.push(tag)


def _counters(queue: TargetQueue) -> tuple[int, int, int]:
    return queue.dropped_frames, queue.dropped_bytes, queue.drop_events


# --- under the bound ------------------------------------------------------------------


def test_fifo_under_the_bound() -> None:
    queue = _queue(BIG, 10_000)
    tags = [metadata(), video_header(), audio_header(), keyframe(0), audio(10), inter(33), audio(33), inter(66)]
    _push_all(queue, tags)
    assert len(queue) == len(tags)
    assert queue.bytes == sum(len(t.payload) for t in tags)
    assert same_objects(queue.pop_all(), tags)
    assert _counters(queue) == (0, 0, 0)
    assert queue.behind_since is None


def test_pop_all_empties() -> None:
    queue = _queue(BIG, 10_000)
    _push_all(queue, [keyframe(0), inter(33)])
    assert len(queue.pop_all()) == 2
    assert len(queue) == 0 and queue.bytes == 0
    assert queue.pop_all() == []
    k = keyframe(66)
    queue.push(k)
    assert same_objects(queue.pop_all(), [k])


def test_exactly_at_the_bounds_nothing_is_dropped() -> None:
    queue = _queue(100, 1000)
    tags = [keyframe(0, size=50), inter(1000, size=50)]  # 100 bytes, 1000 ms: at, not over
    _push_all(queue, tags)
    assert same_objects(queue.pop_all(), tags)
    assert _counters(queue) == (0, 0, 0)


# --- over the bound ---------------------------------------------------------------------


def test_over_max_bytes_drops_queued_frames_and_resumes_at_the_next_keyframe() -> None:
    queue = _queue(100, BIG)
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
    assert same_objects(queue.pop_all(), [vh, ah, k1, a1])
    assert queue.bytes == 0
    assert queue.behind_since is None  # caught up again
    assert _counters(queue) == (7, 180, 1)


def test_over_max_duration_drops_too() -> None:
    queue = _queue(BIG, 1000)
    k0, a0, p0 = keyframe(0), audio(500), inter(1000)
    _push_all(queue, [k0, a0, p0])
    assert _counters(queue) == (0, 0, 0)
    queue.push(audio(1001))  # 1001 ms queued: over
    assert queue.dropped_frames == 4 and queue.drop_events == 1
    assert queue.waiting_for_keyframe
    assert queue.pop_all() == []


def test_a_keyframe_that_passes_the_bound_is_kept() -> None:
    queue = _queue(100, BIG)
    vh = video_header(0, size=10)
    k0, p0, p1 = keyframe(0, size=40), inter(33, size=40), keyframe(66, size=40)
    _push_all(queue, [vh, k0, p0, p1])  # the new keyframe makes 130 bytes
    assert _counters(queue) == (2, 80, 1)
    assert not queue.waiting_for_keyframe  # the target resumes right at the kept keyframe
    p2 = inter(99, size=10)
    queue.push(p2)
    assert same_objects(queue.pop_all(), [vh, p1, p2])


def test_a_lone_keyframe_over_the_bound_is_not_a_drop() -> None:
    queue = _queue(100, BIG)
    k = keyframe(0, size=150)
    queue.push(k)
    assert _counters(queue) == (0, 0, 0)  # nothing was lost: no drop event either
    assert queue.behind_since is None
    assert same_objects(queue.pop_all(), [k])


def test_headers_are_never_dropped_but_a_superseded_one_goes_with_its_frames() -> None:
    queue = _queue(50, BIG)
    meta, vh, ah = metadata(0, size=30), video_header(0, size=30), audio_header(0, size=30)
    _push_all(queue, [meta, vh, ah])  # 90 bytes of headers alone: over the bound, still queued (one of each)
    assert _counters(queue) == (0, 0, 0) and len(queue) == 3
    k0 = keyframe(0, size=10)
    queue.push(k0)  # over the bound, but a lone keyframe is kept
    queue.push(inter(33, size=10))  # k0 and this one go
    assert queue.dropped_frames == 2 and queue.waiting_for_keyframe
    vh2 = video_header(40, size=30)
    queue.push(vh2)  # over the bound again: vh has no frame left to serve, vh2 replaces it
    assert queue.dropped_frames == 2 and len(queue) == 3
    text = script(45)
    _push_all(queue, [text, inter(66, size=10)])  # script data other than onMetaData goes with the frames
    assert queue.dropped_frames == 4
    k1 = keyframe(2000, size=10)
    queue.push(k1)
    assert same_objects(queue.pop_all(), [meta, ah, vh2, k1])


def test_a_header_is_kept_while_frames_that_need_it_are_queued() -> None:
    queue = _queue(BIG, BIG)
    vh, k0, p0, vh2, k1 = video_header(0), keyframe(0), inter(33), video_header(66), keyframe(66)
    tags = [vh, k0, p0, vh2, k1]
    _push_all(queue, tags)  # under the bound: nothing is superseded, the codec changes mid-queue
    assert same_objects(queue.pop_all(), tags)


def test_only_the_latest_metadata_is_queued() -> None:
    queue = _queue(BIG, BIG)
    m0, vh, k0, m1, p0, m2 = metadata(0), video_header(0), keyframe(0), metadata(10), inter(33), metadata(40)
    _push_all(queue, [m0, vh, k0, m1, p0, m2])
    assert same_objects(queue.pop_all(), [vh, k0, p0, m2])
    assert _counters(queue) == (0, 0, 0)  # no media was lost


def test_held_bytes_count_a_per_tag_overhead() -> None:
    queue: TargetQueue[Tag] = TargetQueue(10_000, BIG, tag_overhead=100)
    queue.push(keyframe(0, size=16))
    queue.push(Tag(VIDEO, 33, b""))
    assert queue.bytes == 16 + 100 + 0 + 100
    assert TAG_OVERHEAD >= 256  # the default stands for real objects, not zero


def test_a_flood_of_empty_frames_is_bounded() -> None:
    """Zero-length media used to be free: the bound counted payload bytes only."""
    queue: TargetQueue[Tag] = TargetQueue(65_536, BIG)
    queue.push(keyframe(0))
    for _ in range(10_000):
        queue.push(Tag(VIDEO, 0, b""))  # empty video tags at one timestamp: no duration either
    assert len(queue) <= 65_536 // TAG_OVERHEAD + 1
    assert queue.dropped_frames > 0 and queue.waiting_for_keyframe


def test_a_flood_of_headers_and_metadata_is_bounded() -> None:
    queue: TargetQueue[Tag] = TargetQueue(65_536, BIG)
    for i in range(5_000):
        queue.push(video_header(i, size=100 + i % 7))  # each one different
        queue.push(audio_header(i, size=4 + i % 3))
        queue.push(metadata(i))
        queue.push(script(i))
        assert queue.bytes <= 65_536 + 3 * (TAG_OVERHEAD + 200)
    popped = queue.pop_all()
    assert [t.kind for t in popped if t.is_header or is_metadata(t.payload)]  # the latest ones are there
    assert popped[-1].kind == SCRIPT or any(t.is_header for t in popped)


def test_old_header_timestamps_do_not_count_as_queued_time() -> None:
    """The init burst of a late joiner: headers stamped at the start of the show, then the current GOP.

    Headers keep the timestamp they were published with, an hour ago; the time the queue
    holds is the frames' span, or every target joining after max_duration_ms would lose the
    GOP it was given (and count drops it never had).
    """
    queue = _queue(BIG, 2000)
    hour = 3_600_000
    burst = [metadata(0), video_header(0), audio_header(0), keyframe(hour), audio(hour + 10), inter(hour + 33)]
    _push_all(queue, burst)
    assert _counters(queue) == (0, 0, 0)
    assert same_objects(queue.pop_all(), burst)
    # The same for a header re-sent mid-stream with an old (or zero) timestamp.
    late = [video_header(0), inter(hour + 66), audio(hour + 70)]
    _push_all(queue, late)
    assert same_objects(queue.pop_all(), late)
    assert _counters(queue) == (0, 0, 0)


def test_timestamp_wrap_is_not_a_long_queue() -> None:
    queue = _queue(BIG, 1000)
    tags = [keyframe((1 << 32) - 20), audio((1 << 32) - 10), inter(13), audio(20)]
    _push_all(queue, tags)
    assert same_objects(queue.pop_all(), tags)
    assert _counters(queue) == (0, 0, 0)


def test_audio_only_stream_resumes_at_the_next_audio_frame() -> None:
    queue = _queue(50, BIG)
    ah = audio_header(0, size=4)
    _push_all(queue, [ah, audio(0, size=20), audio(23, size=20)])
    a2 = audio(46, size=20)
    queue.push(a2)  # 64 > 50: everything queued goes, a2 included
    assert _counters(queue) == (3, 60, 1)
    assert not queue.waiting_for_keyframe  # there is no keyframe to wait for
    a3 = audio(69, size=20)
    queue.push(a3)
    assert same_objects(queue.pop_all(), [ah, a3])


def test_clear_does_not_count_drops() -> None:
    queue = _queue(100, BIG)
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
    assert same_objects(queue.pop_all(), [p])


def test_clear_with_frames_queued_counts_nothing() -> None:
    queue = _queue(BIG, BIG)
    _push_all(queue, [keyframe(0), inter(33), audio(40)])
    queue.clear()
    assert _counters(queue) == (0, 0, 0)
    assert queue.pop_all() == []


def test_behind_since_survives_pop_all_while_waiting() -> None:
    queue = _queue(10, BIG)
    _push_all(queue, [keyframe(500, size=8), inter(533, size=8)])
    assert queue.waiting_for_keyframe
    queue.pop_all()
    assert queue.behind_since == 500  # still behind: the keyframe has not come yet
    queue.push(keyframe(2500, size=8))
    queue.pop_all()
    assert queue.behind_since is None


# --- properties -------------------------------------------------------------------------

_KINDS = ("metadata", "video_header", "audio_header", "key", "inter", "audio", "script")
_BUILD = {
    "metadata": metadata, "video_header": video_header, "audio_header": audio_header,
    "key": keyframe, "inter": inter, "audio": audio, "script": lambda ts, size: script(ts),
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
    pushed_before_pop: list[int] = field(default_factory=list)  # len(pushed) at each pop


def _header_key(tag: Tag) -> int | None:
    if tag.is_header:
        return tag.kind
    return -1 if tag.kind == SCRIPT and is_metadata(tag.payload) else None


def _run(queue: TargetQueue[Tag], ops: list[tuple[str, str, int, int]], start_ts: int) -> Run:
    """Feed the queue and check the step-wise invariants; the timestamps move by each op's delta."""
    run = Run()
    ts = start_ts
    for op, kind, size, delta in ops:
        if op == "pop":
            snapshot = queue.pop_all()
            run.snapshots.append(snapshot)
            run.popped.extend(snapshot)
            run.pushed_before_pop.append(len(run.pushed))
            assert len(queue) == 0 and queue.bytes == 0
            continue
        ts = (ts + delta) % (1 << 32)
        tag = _BUILD[kind](ts, size=size)
        run.pushed.append(tag)
        queue.push(tag)
        held = list(queue)
        assert queue.bytes == sum(len(t.payload) for t in held)
        # (4) Memory: under the bound, or cut down to one of each header kind plus at most one keyframe.
        if queue.bytes > queue.max_bytes:
            keys = [_header_key(t) for t in held if _header_key(t) is not None]
            frames = [t for t in held if _header_key(t) is None]
            assert len(keys) == len(set(keys)), f"two headers of one kind held over the bound: {held}"
            assert len(frames) <= 1 and all(t.is_keyframe for t in frames), f"frames over the bound: {held}"
    final = queue.pop_all()
    run.snapshots.append(final)
    run.popped.extend(final)
    run.pushed_before_pop.append(len(run.pushed))
    return run


@settings(max_examples=400)
@given(_ops, st.integers(1, 400), st.integers(0, 400), st.integers(0, (1 << 32) - 1))
def test_queue_properties(ops: list[tuple[str, str, int, int]], max_bytes: int, max_ms: int, start: int) -> None:
    queue = _queue(max_bytes, max_ms)
    run = _run(queue, ops, start)
    pushed, popped = run.pushed, run.popped
    index = {id(t): i for i, t in enumerate(pushed)}

    # (3) What comes out is a subsequence of what went in, in order, nothing twice.
    positions = [index[id(t)] for t in popped]
    assert positions == sorted(set(positions))
    popped_ids = {id(t) for t in popped}

    # (1) Headers are never dropped: at each pop, the newest sequence header of each track and the
    # newest onMetaData pushed so far have come out (in this pop or an earlier one) ...
    for end in run.pushed_before_pop:
        newest: dict[int, Tag] = {}
        for tag in pushed[:end]:
            key = _header_key(tag)
            if key is not None:
                newest[key] = tag
        assert all(id(t) in popped_ids for t in newest.values())
    # ... and every frame that comes out follows the sequence header it was pushed after: none lost its header.
    out_header: dict[int, Tag] = {}
    in_header: dict[int, Tag] = {}
    for tag in pushed:
        if tag.is_header:
            in_header[tag.kind] = tag
            if id(tag) in popped_ids:
                out_header[tag.kind] = tag
        elif tag.kind in (AUDIO, VIDEO) and id(tag) in popped_ids and tag.kind in in_header:
            assert out_header.get(tag.kind) is in_header[tag.kind], f"{tag} came out after the wrong header"

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

    # (5) The counters account exactly for the frames and droppable script data that went in and did
    # not come out (superseded headers and metadata are not media lost).
    lost = [t for t in pushed if id(t) not in popped_ids and _header_key(t) is None]
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
    queue = _queue(max_bytes, BIG)
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
