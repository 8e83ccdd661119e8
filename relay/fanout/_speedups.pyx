# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The fan-out's per-tag loop, compiled: the twin of timeline.Timeline.

timeline.py is the reference; this class takes the same steps on C integers (timestamps
and the unwrapped elapsed time as 64-bit integers: an unwrapped timeline would need 292
million years to overflow one). tests/unit/fanout/test_differential_timeline.py checks
both give the same timestamps for the same tags; accel.py chooses between them.
"""

from relay.flv import SCRIPT

cdef long long _WRAP = 1 << 32
cdef long long _HALF = 1 << 31
cdef int _SCRIPT = SCRIPT


cdef inline long long _step(long long timestamp, long long source):
    """timestamp - source, modulo 2^32, as a signed difference (earlier frames are negative)."""
    cdef long long diff = (timestamp - source) % _WRAP
    if diff < 0:
        diff += _WRAP  # C's % keeps the dividend's sign; Python's the divisor's
    if diff >= _HALF:
        diff -= _WRAP
    return diff


cdef class Timeline:
    """Maps source timestamps onto one target connection's timeline (timeline.Timeline, compiled)."""

    cdef public object origin
    cdef public dict last
    cdef public long long offset
    cdef long long _source
    cdef long long _elapsed
    cdef object _jump

    def __init__(self, offset=0):
        self.origin = None
        self.offset = offset
        self.last = {}
        self._source = 0
        self._elapsed = 0
        self._jump = None

    def discontinuity(self, gap_ms):
        """The source restarts its clock: its next frame is sent `gap_ms` after the latest timestamp sent."""
        if self.origin is not None:
            self._jump = max(0, gap_ms)

    def map(self, tag):
        """The timestamp to send a tag with."""
        kind = tag.kind
        cdef bint frame = not (tag.is_header or kind == _SCRIPT)
        cdef long long timestamp
        if self.origin is None:
            if not frame:
                return self.offset
            self.origin = tag.timestamp
            self._source = self.origin
        if self._jump is not None:
            latest = max(self.last.values(), default=self.offset)
            if not frame:
                return latest
            self._source = tag.timestamp
            self._elapsed = latest - self.offset + self._jump
            self._jump = None
        timestamp = tag.timestamp
        cdef long long elapsed = self._elapsed + _step(timestamp, self._source)
        if frame:
            self._source = timestamp
            self._elapsed = elapsed
        cdef long long ts = self.offset + elapsed
        cdef long long previous = self.last.get(kind, self.offset)
        if ts < previous:
            ts = previous
        self.last[kind] = ts
        return ts

    def map_all(self, tags):
        """map() of each tag in turn, in one call."""
        if self.origin is None or self._jump is not None:
            return [self.map(tag) for tag in tags]
        cdef long long source = self._source
        cdef long long elapsed = self._elapsed
        cdef long long offset = self.offset
        cdef dict last = self.last
        cdef list out = []
        cdef long long timestamp, moved, ts, previous
        cdef object kind, stored
        for tag in tags:
            kind = tag.kind
            timestamp = tag.timestamp
            moved = elapsed + _step(timestamp, source)
            if not (tag.is_header or kind == _SCRIPT):
                source = timestamp
                elapsed = moved
            ts = offset + moved
            stored = last.get(kind)
            previous = offset if stored is None else stored
            if ts < previous:
                ts = previous
            last[kind] = ts
            out.append(ts)
        self._source = source
        self._elapsed = elapsed
        return out
