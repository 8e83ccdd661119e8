"""Bitrate history for the status page's sparklines: a bounded ring of samples per series.

Every `interval` seconds the glue hands in each series' byte counter; the rate since
the previous sample is kept, at most `size` samples per series (five minutes at the
defaults). Memory is bounded by the number of live streams and targets, never by the
length of the show.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable

SAMPLE_INTERVAL = 2.0  # seconds
SAMPLES = 150  # five minutes at one sample every 2 s


class RateHistory:
    """Rates (kbit/s) from byte counters sampled at a steady interval, one ring per key."""

    def __init__(self, size: int = SAMPLES, interval: float = SAMPLE_INTERVAL) -> None:
        self.size = size
        self.interval = interval
        self._rings: dict[Hashable, deque[float | None]] = {}
        self._last: dict[Hashable, tuple[int, float]] = {}

    def sample(self, key: Hashable, total_bytes: int | None, now: float) -> float | None:
        """Record the counter `total_bytes` for `key` at `now`; the rate since the last sample.

        None (a gap in the sparkline) when the series is not running, or on its first
        sample. A counter that went down was reset (a new session): it counts from zero.
        """
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = deque(maxlen=self.size)
        if total_bytes is None:
            self._last.pop(key, None)
            ring.append(None)
            return None
        previous = self._last.get(key)
        self._last[key] = (total_bytes, now)
        rate: float | None = None
        if previous is not None and now > previous[1]:
            delta = total_bytes - previous[0] if total_bytes >= previous[0] else total_bytes
            rate = round(delta * 8 / 1000 / (now - previous[1]), 1)
        ring.append(rate)
        return rate

    def series(self, key: Hashable) -> list[float | None]:
        """The samples of `key`, oldest first."""
        ring = self._rings.get(key)
        return [] if ring is None else list(ring)

    def latest(self, key: Hashable) -> float | None:
        """The newest sample of `key`."""
        ring = self._rings.get(key)
        return ring[-1] if ring else None

    def keep_only(self, keys: Iterable[Hashable]) -> None:
        """Forget every series not in `keys` (live streams and targets that left the config)."""
        wanted = set(keys)
        for key in [k for k in self._rings if k not in wanted]:
            del self._rings[key]
            self._last.pop(key, None)
