"""Per-target timestamps: each connection starts at 0 and never goes backwards on a track.

A target may join at any keyframe of a show hours old; platforms want the session's
first media timestamp near 0 and each track monotonic (otherwise: "non-monotonous DTS").
Source timestamps are 32-bit and may wrap, so differences are taken modulo 2^32.
"""

from __future__ import annotations

from relay.flv import SCRIPT, Tag

_WRAP = 1 << 32
_HALF = 1 << 31


class Timeline:
    """Maps source timestamps onto one target connection's timeline."""

    __slots__ = ("origin", "last", "offset")

    def __init__(self, offset: int = 0) -> None:
        self.origin: int | None = None  # source timestamp that maps to `offset`
        self.offset = offset
        self.last: dict[int, int] = {}  # per tag kind, the last timestamp sent

    def map(self, tag: Tag) -> int:
        """The timestamp to send a tag with."""
        kind = tag.kind
        if self.origin is None:
            if tag.is_header or kind == SCRIPT:
                # Headers and metadata are sent before the first frame, whatever their age.
                return self.offset
            self.origin = tag.timestamp
        diff = (tag.timestamp - self.origin) % _WRAP
        if diff >= _HALF:
            diff -= _WRAP  # earlier than the origin (audio just before the first keyframe)
        ts = self.offset + diff
        last = self.last.get(kind, self.offset)
        if ts < last:
            ts = last
        self.last[kind] = ts
        return ts
