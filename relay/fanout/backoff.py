"""Exponential backoff with full jitter for target reconnects.

nginx-rtmp retries a dead push every 3 s and MediaMTX every 5 s, in lockstep; six
targets of many relays retrying in lockstep hammer an ingest that just came back. The
delay doubles from `initial` up to `maximum`, and the actual wait is drawn between half
of it and all of it, from a random source the caller passes in.
"""

from __future__ import annotations

from collections.abc import Callable


class Backoff:
    """Delays for consecutive failed attempts; reset() after a connection proves healthy."""

    __slots__ = ("initial", "maximum", "random", "attempt")

    def __init__(self, initial: float, maximum: float, random: Callable[[], float]) -> None:
        self.initial = initial
        self.maximum = maximum
        self.random = random  # returns a float in [0, 1)
        self.attempt = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        ceiling = min(self.maximum, self.initial * (2 ** min(self.attempt, 32)))
        self.attempt += 1
        return float(ceiling * (0.5 + 0.5 * self.random()))

    def reset(self) -> None:
        """Start again from the initial delay."""
        self.attempt = 0
