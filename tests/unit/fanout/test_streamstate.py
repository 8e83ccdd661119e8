"""The init burst a late joiner gets: metadata, sequence headers, then the GOP since the latest keyframe."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay.fanout.streamstate import DEFAULT_MAX_GOP_BYTES, DEFAULT_MAX_GOP_TAGS, TAG_OVERHEAD, StreamState
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


def _feed(state: StreamState, tags: list[Tag]) -> None:
    for tag in tags:
        state.update(tag)


def test_empty_state_has_an_empty_burst() -> None:
    assert StreamState().init_burst() == []


def test_burst_order_is_metadata_video_header_audio_header_then_gop() -> None:
    state = StreamState()
    # Arrival order differs from burst order on purpose.
    ah, vh, meta = audio_header(0), video_header(0), metadata(0)
    k, a1, p1, a2 = keyframe(0), audio(10), inter(33), audio(43)
    _feed(state, [ah, vh, meta, k, a1, p1, a2])
    burst = state.init_burst()
    assert burst == [meta, vh, ah, k, a1, p1, a2]
    assert all(x is y for x, y in zip(burst, [meta, vh, ah, k, a1, p1, a2], strict=True))


def test_gop_restarts_at_each_keyframe() -> None:
    state = StreamState()
    vh = video_header()
    k1, p1, a1 = keyframe(0), inter(33), audio(40)
    k2, a2, p2 = keyframe(2000), audio(2010), inter(2033)
    _feed(state, [vh, k1, p1, a1])
    assert state.init_burst() == [vh, k1, p1, a1]
    _feed(state, [k2, a2, p2])
    assert state.init_burst() == [vh, k2, a2, p2]
    assert state.gop_bytes == sum(len(t.payload) + TAG_OVERHEAD for t in (k2, a2, p2))


def test_tags_before_the_first_keyframe_are_not_in_the_burst() -> None:
    state = StreamState()
    vh, ah = video_header(), audio_header()
    _feed(state, [vh, ah, audio(0), inter(0), audio(20), inter(33)])
    assert state.init_burst() == [vh, ah]
    assert state.gop == []
    k = keyframe(66)
    a = audio(70)
    _feed(state, [k, a])
    assert state.init_burst() == [vh, ah, k, a]


def test_header_changes_replace_the_cached_header() -> None:
    state = StreamState()
    vh1, ah1, meta1 = video_header(0), audio_header(0), metadata(0)
    _feed(state, [meta1, vh1, ah1, keyframe(0)])
    vh2, ah2, meta2 = video_header(5000, size=32), audio_header(5000, size=6), metadata(5000, size=40)
    _feed(state, [vh2, ah2, meta2])
    burst = state.init_burst()
    assert burst[:3] == [meta2, vh2, ah2]
    assert burst[0] is meta2 and burst[1] is vh2 and burst[2] is ah2
    assert vh1 not in burst and ah1 not in burst and meta1 not in burst
    # Headers are cached apart from the GOP: they never appear in it.
    assert all(not t.is_header for t in state.gop)


def test_script_data_other_than_metadata_is_ignored() -> None:
    state = StreamState()
    meta = metadata()
    k = keyframe()
    _feed(state, [meta, k, script(10)])
    assert state.init_burst() == [meta, k]


def test_gop_cap_clears_the_gop_until_the_next_keyframe() -> None:
    state = StreamState(max_gop_bytes=100 + 3 * TAG_OVERHEAD)
    vh = video_header()
    _feed(state, [vh, keyframe(0, size=40), inter(33, size=40)])
    assert len(state.gop) == 2 and state.gop_bytes == 80 + 2 * TAG_OVERHEAD
    _feed(state, [inter(66, size=21)])  # 101 > 100: a joiner would rather wait for the next keyframe
    assert state.gop == [] and state.gop_bytes == 0
    assert state.init_burst() == [vh]
    _feed(state, [inter(99), audio(100)])  # still no keyframe: nothing collects
    assert state.init_burst() == [vh]
    k = keyframe(2000, size=40)
    _feed(state, [k])
    assert state.init_burst() == [vh, k]


def test_gop_exactly_at_the_cap_is_kept() -> None:
    state = StreamState(max_gop_bytes=100 + 2 * TAG_OVERHEAD)
    _feed(state, [keyframe(0, size=60), inter(33, size=40)])
    assert state.gop_bytes == 100 + 2 * TAG_OVERHEAD and len(state.gop) == 2


def test_empty_frames_count_what_they_hold() -> None:
    # A zero-length frame holds no payload but still a Tag: it must count (issue #8).
    state = StreamState(max_gop_bytes=10 * TAG_OVERHEAD)
    _feed(state, [keyframe(0, size=16)])
    _feed(state, [Tag(AUDIO, i, b"") for i in range(1, 9)])
    assert len(state.gop) == 9 and state.gop_bytes == 16 + 9 * TAG_OVERHEAD
    _feed(state, [Tag(VIDEO, 10, b""), Tag(AUDIO, 11, b"")])  # 11 tags: over the cap
    assert state.gop == [] and state.gop_bytes == 0


def test_a_flood_of_empty_frames_never_grows_the_gop_past_its_caps() -> None:
    state = StreamState()
    _feed(state, [video_header(), keyframe(0)])
    most = 0
    for i in range(3 * DEFAULT_MAX_GOP_TAGS):
        state.update(Tag(AUDIO, i, b""))
        most = max(most, len(state.gop))
    assert most == DEFAULT_MAX_GOP_TAGS
    assert state.gop_bytes <= DEFAULT_MAX_GOP_BYTES


def test_gop_tag_cap_clears_the_gop_until_the_next_keyframe() -> None:
    state = StreamState(max_gop_tags=3)
    k = keyframe(0)
    _feed(state, [k, inter(33), audio(40)])
    assert len(state.gop) == 3
    _feed(state, [inter(66)])
    assert state.gop == [] and state.init_burst() == []
    _feed(state, [audio(70)])
    assert state.gop == []
    k2 = keyframe(2000)
    _feed(state, [k2])
    assert state.init_burst() == [k2]


def test_reset_forgets_everything() -> None:
    state = StreamState()
    _feed(state, [metadata(), video_header(), audio_header(), keyframe(), inter(33)])
    assert state.has_video
    state.reset()
    assert state.init_burst() == []
    assert state.gop_bytes == 0
    assert state.metadata is None and state.video_header is None and state.audio_header is None
    assert not state.has_video
    # And it works again afterwards.
    k = keyframe(0)
    state.update(k)
    assert state.init_burst() == [k]


_SIZED = {"metadata": metadata, "video_header": video_header, "audio_header": audio_header,
          "keyframe": keyframe, "inter": inter, "audio": audio}
_kinds = st.sampled_from([*_SIZED, "script"])


def _make(kind: str, ts: int, size: int) -> Tag:
    return script(ts) if kind == "script" else _SIZED[kind](ts, size=size)


@given(st.lists(st.tuples(_kinds, st.integers(1, 50)), max_size=60), st.integers(1, 400))
def test_burst_invariants(spec: list[tuple[str, int]], cap: int) -> None:
    """The burst is headers first, then a GOP that starts at a keyframe and is a tail of the stream."""
    cap += 3 * TAG_OVERHEAD  # room for a few tags' overhead, so that GOPs of several tags occur
    state = StreamState(max_gop_bytes=cap)
    tags: list[Tag] = []
    for i, (kind, size) in enumerate(spec):
        tag = _make(kind, i * 10, size)
        tags.append(tag)
        state.update(tag)
    gop = state.gop
    # A lone keyframe may exceed the cap (the cap is checked when the next frame arrives).
    held = sum(len(t.payload) + TAG_OVERHEAD for t in gop)
    assert state.gop_bytes == held <= max(cap, len(gop[0].payload) + TAG_OVERHEAD if gop else 0)
    if gop:
        assert gop[0].is_keyframe
        assert all(not t.is_keyframe and not is_header_or_script(t) for t in gop[1:])
        # The GOP is the stream's frames since that keyframe, in order, nothing skipped.
        start = next(i for i, t in enumerate(tags) if t is gop[0])
        tail = [t for t in tags[start:] if not is_header_or_script(t)]
        assert [id(t) for t in tail] == [id(t) for t in gop]
    burst = state.init_burst()
    assert burst[: len(burst) - len(gop)] == [
        t for t in (state.metadata, state.video_header, state.audio_header) if t is not None
    ]
