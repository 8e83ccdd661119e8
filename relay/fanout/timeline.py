"""Per-target timestamps: each connection starts at 0 and never goes backwards on a track.

A target may join at any keyframe of a show hours old; platforms want the session's
first media timestamp near 0 and each track monotonic (otherwise: "non-monotonous DTS").
Source timestamps are 32-bit and may wrap, so differences are taken modulo 2^32.
"""

from __future__ import annotations

from collections.abc import Sequence

from relay.flv import SCRIPT, TagLike

_WRAP = 1 << 32
_HALF = 1 << 31


class Timeline:
    """Maps source timestamps onto one target connection's timeline."""

    __slots__ = ("origin", "last", "offset", "_source", "_elapsed", "_jump")

    def __init__(self, offset: int = 0) -> None:
        self.origin: int | None = None  # source timestamp that maps to `offset`
        self.offset = offset
        self.last: dict[int, int] = {}  # per tag kind, the last timestamp sent
        # The latest frame's source timestamp and its distance from the origin, unwrapped.
        # Each step is measured from the previous frame, not from the origin: steps are far
        # below 2^31 ms, while a 24/7 connection outlives 2^31 ms (24.8 days) from its origin.
        # The result then grows past 2^32; the chunk writer sends it modulo 2^32, as RTMP wraps.
        self._source = 0
        self._elapsed = 0
        self._jump: int | None = None  # set by discontinuity(), applied at the next frame

    def discontinuity(self, gap_ms: int) -> None:
        """The source restarts its clock (a new publisher session): its next frame is sent
        `gap_ms` after the latest timestamp sent, so the target's timeline keeps going forward.
        """
        if self.origin is not None:
            self._jump = max(0, gap_ms)

    def map(self, tag: TagLike) -> int:
        """The timestamp to send a tag with."""
        kind = tag.kind
        frame = not (tag.is_header or kind == SCRIPT)
        if self.origin is None:
            if not frame:
                # Headers and metadata are sent before the first frame, whatever their age.
                return self.offset
            self.origin = self._source = tag.timestamp
        if self._jump is not None:
            latest = max(self.last.values(), default=self.offset)
            if not frame:
                return latest  # a new session's headers go out before its first frame
            self._source, self._elapsed = tag.timestamp, latest - self.offset + self._jump
            self._jump = None
        diff = (tag.timestamp - self._source) % _WRAP
        if diff >= _HALF:
            diff -= _WRAP  # earlier than the latest frame (audio and video interleave)
        elapsed = self._elapsed + diff
        if frame:  # a header re-sent with a stale timestamp does not move the reference
            self._source, self._elapsed = tag.timestamp, elapsed
        ts = self.offset + elapsed
        last = self.last.get(kind, self.offset)
        if ts < last:
            ts = last
        self.last[kind] = ts
        return ts

    def map_all(self, tags: Sequence[TagLike]) -> list[int]:
        """map() of each tag in turn, in one call: the send path maps a whole write at once, and a
        call per tag and target is the largest cost left on it. The same steps as map(), inline."""
        if self.origin is None or self._jump is not None:
            return [self.map(tag) for tag in tags]  # the first frames, or right after a discontinuity
        source, elapsed, offset, last = self._source, self._elapsed, self.offset, self.last
        out: list[int] = []
        append = out.append
        for tag in tags:
            kind = tag.kind
            timestamp = tag.timestamp
            diff = (timestamp - source) % _WRAP
            if diff >= _HALF:
                diff -= _WRAP
            moved = elapsed + diff
            if not (tag.is_header or kind == SCRIPT):
                source, elapsed = timestamp, moved
            ts = offset + moved
            previous = last.get(kind, offset)
            if ts < previous:
                ts = previous
            last[kind] = ts
            append(ts)
        self._source, self._elapsed = source, elapsed
        return out
