"""Per-target timestamps: start at the offset, never go backwards on a track, survive 32-bit wraps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay.fanout.accel import Timeline
from relay.flv import AUDIO, SCRIPT, VIDEO, Tag
from tests.support.tags import (
    audio,
    audio_header,
    inter,
    keyframe,
    metadata,
    video_header,
)

WRAP = 1 << 32
HOUR = 3_600_000


def test_first_media_tag_maps_to_zero() -> None:
    tl = Timeline()
    assert tl.map(keyframe(HOUR)) == 0
    assert tl.map(audio(HOUR + 10)) == 10
    assert tl.map(inter(HOUR + 33)) == 33
    assert tl.map(audio(HOUR + 33)) == 33


def test_first_media_tag_maps_to_the_offset() -> None:
    tl = Timeline(offset=5000)
    assert tl.map(keyframe(HOUR)) == 5000
    assert tl.map(inter(HOUR + 40)) == 5040


def test_headers_and_metadata_before_the_first_frame_map_to_the_offset() -> None:
    tl = Timeline(offset=7)
    # Cached at the start of the show: their source timestamps are an hour old.
    assert tl.map(metadata(0)) == 7
    assert tl.map(video_header(0)) == 7
    assert tl.map(audio_header(12)) == 7
    assert tl.origin is None  # they do not fix the origin
    assert tl.map(keyframe(HOUR)) == 7
    assert tl.map(inter(HOUR + 33)) == 40


def test_headers_after_the_first_frame_keep_their_place() -> None:
    tl = Timeline()
    tl.map(keyframe(1000))
    assert tl.map(video_header(1500)) == 500
    assert tl.map(metadata(1600)) == 600


def test_a_header_with_a_stale_timestamp_does_not_move_the_frames() -> None:
    tl = Timeline()
    assert tl.map(keyframe(HOUR)) == 0
    assert tl.map(metadata(0)) == 0  # re-sent with timestamp 0 an hour in: clamped, not negative
    assert tl.map(video_header(0)) == 0
    assert tl.map(inter(HOUR + 33)) == 33
    assert tl.map(audio(HOUR + 40)) == 40


def test_each_kind_is_monotonic_even_when_the_source_goes_back() -> None:
    tl = Timeline()
    assert tl.map(keyframe(1000)) == 0
    assert tl.map(audio(990)) == 0  # audio slightly before the first keyframe: clamped, not negative
    assert tl.map(audio(1020)) == 20
    assert tl.map(inter(1040)) == 40
    assert tl.map(inter(1030)) == 40  # source went back: held at the last value
    assert tl.map(audio(1010)) == 20
    assert tl.map(inter(1070)) == 70  # and resumes once the source is ahead again
    assert tl.map(audio(1070)) == 70


def test_kinds_are_clamped_independently() -> None:
    tl = Timeline()
    tl.map(keyframe(0))
    assert tl.map(inter(500)) == 500
    assert tl.map(audio(100)) == 100  # behind video, but audio's own track has not gone back


def test_wrap_at_2_32() -> None:
    tl = Timeline()
    assert tl.map(keyframe(WRAP - 100)) == 0
    assert tl.map(audio(WRAP - 1)) == 99
    assert tl.map(inter(0)) == 100
    assert tl.map(audio(50)) == 150
    assert tl.map(inter(WRAP - 40)) == 100  # a frame from before the wrap is still "earlier"


def test_a_long_connection_keeps_counting_past_2_31_and_2_32() -> None:
    """A 24/7 show: a target connected for 50 days sees its timestamps keep rising."""
    tl = Timeline()
    step = 1 << 28  # about 3 days of stream time per frame, well under half the wrap
    source = 123_456
    assert tl.map(keyframe(source)) == 0
    for n in range(1, 20):  # 19 * 2^28 > 2^32: past the half point and past the wrap
        source = (source + step) % WRAP
        assert tl.map(inter(source)) == n * step
        assert tl.map(audio(source)) == n * step


def test_a_new_timeline_starts_again() -> None:
    tl = Timeline()
    tl.map(keyframe(0))
    tl.map(inter(HOUR))
    assert Timeline().map(keyframe(HOUR + 40)) == 0


_kinds = st.sampled_from(["key", "inter", "audio", "video_header", "audio_header", "metadata"])
_BUILD = {
    "key": keyframe, "inter": inter, "audio": audio,
    "video_header": video_header, "audio_header": audio_header, "metadata": metadata,
}


@given(st.lists(st.tuples(_kinds, st.integers(0, WRAP - 1)), max_size=60), st.integers(0, WRAP))
def test_output_per_kind_never_decreases_and_starts_at_the_offset(
    spec: list[tuple[str, int]], offset: int
) -> None:
    tl = Timeline(offset)
    last: dict[int, int] = {}
    for kind, ts in spec:
        out = tl.map(_BUILD[kind](ts))
        tag_kind = {"audio": AUDIO, "audio_header": AUDIO, "metadata": SCRIPT}.get(kind, VIDEO)
        assert out >= offset
        assert out >= last.get(tag_kind, offset)
        last[tag_kind] = out


@given(
    st.integers(0, WRAP - 1),
    st.lists(st.tuples(st.sampled_from([VIDEO, AUDIO]), st.integers(0, (1 << 31) - 1)), max_size=40),
    st.integers(0, 10_000),
)
def test_a_forward_moving_source_is_followed_exactly(start: int, steps: list[tuple[int, int]], offset: int) -> None:
    """With each step forward (< 2^31, so unambiguous mod 2^32) the output is the unwrapped elapsed time."""
    tl = Timeline(offset)
    assert tl.map(Tag(VIDEO, start, b"\x17\x01")) == offset
    elapsed = 0
    for kind, step in steps:
        elapsed += step
        payload = b"\x27\x01" if kind == VIDEO else b"\xaf\x01"
        assert tl.map(Tag(kind, (start + elapsed) % WRAP, payload)) == offset + elapsed


_KIND_BUILDERS = {"key": keyframe, "inter": inter, "audio": audio, "vh": video_header, "ah": audio_header,
                  "meta": metadata}


@given(
    st.lists(st.tuples(st.sampled_from(sorted(_KIND_BUILDERS)), st.integers(-200, 3000)), max_size=60),
    st.lists(st.integers(1, 9), max_size=12),
    st.integers(0, WRAP - 1),
    st.one_of(st.none(), st.integers(0, 59)),
)
def test_map_all_is_map_of_each(steps: list[tuple[str, int]], batches: list[int], start: int,
                                jump_at: int | None) -> None:
    """The batch form the send path uses gives exactly what map() gives, batch cut anywhere."""
    tags, ts = [], start
    for kind, delta in steps:
        ts = (ts + delta) % WRAP
        tags.append(_KIND_BUILDERS[kind](ts))
    one, many = Timeline(), Timeline()
    expected = []
    for i, tag in enumerate(tags):
        if i == jump_at:
            one.discontinuity(1500)
        expected.append(one.map(tag))
    got: list[int] = []
    i = 0
    sizes = iter(batches or [len(tags) or 1])
    while i < len(tags):
        size = next(sizes, 4)
        batch = tags[i : i + size]
        if jump_at is not None and i <= jump_at < i + size:  # cut the batch at the discontinuity
            batch = tags[i:jump_at]
            if not batch:
                many.discontinuity(1500)
                batch = tags[i : i + 1]
        got += many.map_all(batch)
        i += len(batch)
    assert got == expected
