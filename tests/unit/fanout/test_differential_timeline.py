"""The compiled Timeline (relay/fanout/_speedups.pyx) against the pure-Python reference (timeline.py).

The same tags, in the same calls (map, map_all, discontinuity), must give the same timestamps and
leave the same `last` and `origin`: timestamps anywhere in 32 bits (wrapping), headers and script
data among the frames, audio and video out of order, new sessions with gaps.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.fanout import timeline
from relay.flv import AUDIO, SCRIPT, VIDEO

_speedups = pytest.importorskip("relay.fanout._speedups", reason="the compiled twin is not built")


class FakeTag:
    __slots__ = ("kind", "timestamp", "is_header")

    def __init__(self, kind: int, timestamp: int, is_header: bool) -> None:
        self.kind = kind
        self.timestamp = timestamp
        self.is_header = is_header


_tag = st.builds(FakeTag, st.sampled_from([AUDIO, VIDEO, SCRIPT]),
                 st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32 - 5000, 2**32 - 1), st.integers(0, 5000)),
                 st.booleans())
# One step: a write's worth of tags through map_all, one tag through map, or a new session (gap in ms).
_step = st.one_of(st.tuples(st.just("all"), st.lists(_tag, max_size=10)),
                  st.tuples(st.just("one"), _tag),
                  st.tuples(st.just("gap"), st.integers(-100, 100_000)))


def play(make: type[timeline.Timeline], offset: int, steps: list[tuple[str, object]]) -> list[object]:
    line = make(offset)
    out: list[object] = []
    for what, arg in steps:
        if what == "all":
            out.append(line.map_all(arg))  # type: ignore[arg-type]
        elif what == "one":
            out.append(line.map(arg))  # type: ignore[arg-type]
        else:
            line.discontinuity(arg)  # type: ignore[arg-type]
        out.append((line.origin, dict(line.last)))
    return out


@settings(max_examples=400, deadline=None)
@given(offset=st.sampled_from([0, 1000, 2**32 - 10]), steps=st.lists(_step, max_size=20))
def test_same_timestamps(offset: int, steps: list[tuple[str, object]]) -> None:
    assert play(_speedups.Timeline, offset, steps) == play(timeline.Timeline, offset, steps)


def test_a_long_show_past_2_to_the_32() -> None:
    """Steps of 33 ms for 1.5 x 2^32 ms: the unwrapped timeline passes 2^32 in both."""
    tags = [FakeTag(VIDEO, (i * 33_000_000) % 2**32, False) for i in range(200)]
    steps: list[tuple[str, object]] = [("all", tags[i : i + 8]) for i in range(0, 200, 8)]
    got = play(_speedups.Timeline, 0, steps)
    assert got == play(timeline.Timeline, 0, steps)
    assert max(max(x) for x in got[::2] if isinstance(x, list)) > 2**32  # type: ignore[type-var]
