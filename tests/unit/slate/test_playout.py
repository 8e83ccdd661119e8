"""The slate's playout: which tags are due when, with which timestamps (tables, no clock)."""

from __future__ import annotations

import pytest

from relay.flv import AUDIO, VIDEO, Tag
from relay.slate.playout import ClipError, Playout, clip_from_tags, continue_from, later

AVC_HEADER = bytes((0x17, 0, 0, 0, 0)) + b"avcC"
AAC_HEADER = bytes((0xAF, 0, 0x12, 0x10))
KEY = bytes((0x17, 1, 0, 0, 0)) + b"I"
INTER = bytes((0x27, 1, 0, 0, 0)) + b"P"
END = bytes((0x17, 2, 0, 0, 0))
AAC = bytes((0xAF, 1)) + b"a"


def clip_tags(start: int = 0) -> list[Tag]:
    """What ffmpeg writes for a 100 ms clip at 25 fps with ~21 ms audio frames."""
    return [
        Tag(18, 0, b"\x02\x00\x0aonMetaData"),
        Tag(VIDEO, 0, AVC_HEADER), Tag(AUDIO, 0, AAC_HEADER),
        Tag(VIDEO, start, KEY), Tag(AUDIO, start, AAC), Tag(AUDIO, start + 21, AAC),
        Tag(VIDEO, start + 40, INTER), Tag(AUDIO, start + 43, AAC), Tag(AUDIO, start + 64, AAC),
        Tag(VIDEO, start + 80, INTER), Tag(AUDIO, start + 85, AAC),
        Tag(AUDIO, start + 107, AAC),  # past the period: left out
        Tag(VIDEO, start + 80, END),  # the encoder's end of sequence: left out
    ]


def summary(tags: list[Tag]) -> list[tuple[str, int]]:
    names = {AVC_HEADER: "vh", AAC_HEADER: "ah", KEY: "K", INTER: "P", AAC: "a"}
    return [(names[t.payload], t.timestamp) for t in tags]


def test_the_clip_is_headers_then_frames_from_the_keyframe_within_the_period() -> None:
    clip = clip_from_tags(clip_tags(start=1000), period=100)
    assert summary(list(clip.headers)) == [("vh", 0), ("ah", 0)]
    assert summary(list(clip.frames)) == [("K", 0), ("a", 0), ("a", 21), ("P", 40), ("a", 43), ("a", 64),
                                          ("P", 80), ("a", 85)]


@pytest.mark.parametrize(("tags", "message"), [
    ([Tag(AUDIO, 0, AAC_HEADER), Tag(AUDIO, 0, AAC)], "no video sequence header and keyframe"),
    ([Tag(VIDEO, 0, AVC_HEADER), Tag(VIDEO, 0, INTER)], "no video sequence header and keyframe"),
    ([Tag(VIDEO, 0, AVC_HEADER), Tag(VIDEO, 0, KEY), Tag(AUDIO, 0, AAC)], "audio frames without"),
])
def test_a_clip_that_cannot_loop_is_refused(tags: list[Tag], message: str) -> None:
    with pytest.raises(ClipError, match=message):
        clip_from_tags(tags, period=100)


# (now_ms since the start, what is fed then): base 5000, period 100, started at 0
PLAYOUT = [
    (0, [("vh", 5000), ("ah", 5000), ("K", 5000), ("a", 5000)]),
    (20, []),
    (45, [("a", 5021), ("P", 5040), ("a", 5043)]),
    (99, [("a", 5064), ("P", 5080), ("a", 5085)]),
    (100, [("K", 5100), ("a", 5100)]),  # round 2 starts with the keyframe
    (260, [("a", 5121), ("P", 5140), ("a", 5143), ("a", 5164), ("P", 5180), ("a", 5185), ("K", 5200),
           ("a", 5200), ("a", 5221), ("P", 5240), ("a", 5243)]),
]


def test_the_loop_goes_on_in_real_time_with_timestamps_from_the_base() -> None:
    playout = Playout(clip_from_tags(clip_tags(), period=100), base=5000, started_ms=0)
    fed: list[tuple[str, int]] = []
    for now, expected in PLAYOUT:
        due = summary(playout.due(now))
        assert due == expected, now
        fed += due
    frames = [ts for name, ts in fed if name not in ("vh", "ah")]
    assert frames == sorted(frames)  # audio and video together, never backwards
    assert playout.since_last(260) == 260 - 243
    assert playout.since_last(300) == 57


def test_nothing_fed_means_no_gap_to_report() -> None:
    assert Playout(clip_from_tags(clip_tags(), period=100), base=0, started_ms=50).since_last(60) is None


def test_timestamps_wrap_at_32_bits() -> None:
    playout = Playout(clip_from_tags(clip_tags(), period=100), base=(1 << 32) - 50, started_ms=1000)
    assert summary(playout.due(1100))[-3:] == [("a", 35), ("K", 50), ("a", 50)]


@pytest.mark.parametrize(("last", "away", "base"), [
    (None, 1000, 1000), (12_345, 1003, 13_348), ((1 << 32) - 10, 20, 10), (500, -5, 500),
])
def test_the_slate_continues_from_where_the_publisher_stopped(last: int | None, away: int, base: int) -> None:
    assert continue_from(last, away) == base


@pytest.mark.parametrize(("a", "b", "expected"), [
    (10, 5, True), (5, 10, False), (5, 5, False), (3, (1 << 32) - 3, True), ((1 << 32) - 3, 3, False),
])
def test_later_on_a_wrapping_timeline(a: int, b: int, expected: bool) -> None:
    assert later(a, b) is expected
