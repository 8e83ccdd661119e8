"""Log lines about what one target's platform says: at most `log_lines_per_second`, the rest summed.

A platform's status messages are worth a debug line each, as a real server sends a few
in a show. A hostile one sending onStatus as fast as the network carries them wrote about
26,000 lines a second. A target's lines about its platform therefore pass through one
LineBudget: `per_second` lines in each one-second window, and for the rest one
`target_log_suppressed` warning a second that counts them (the flood itself is news).

The window is counted here, the clock passed in; the summary's timer is the asyncio side.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

#: The window the per-second budget is counted over, and the summary's interval, in seconds.
WINDOW = 1.0


class LineBudget:
    """At most `per_second` lines a second for one target; the suppressed ones counted by event."""

    __slots__ = ("per_second", "_clock", "_window_start", "_used", "suppressed", "_flush", "_log")

    def __init__(self, per_second: int, clock: Callable[[], float] | None = None) -> None:
        self.per_second = per_second
        self._clock = clock
        self._window_start = float("-inf")
        self._used = 0
        self.suppressed: Counter[str] = Counter()
        self._flush: asyncio.TimerHandle | None = None
        self._log: Any = None

    def allow(self, event: str) -> bool:
        """True if a line for `event` may be written now; else it is counted for the summary."""
        now = self._clock() if self._clock is not None else asyncio.get_running_loop().time()
        if now - self._window_start >= WINDOW:
            self._window_start = now
            self._used = 0
        if self._used < self.per_second:
            self._used += 1
            return True
        self.suppressed[event] += 1
        return False

    def line(self, log: Any, level: str, event: str, /, **fields: Any) -> None:
        """Write `event` at `level` on `log` if the budget allows; else count it and summarise later."""
        if self.allow(event):
            getattr(log, level)(event, **fields)
            return
        self._log = log
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(WINDOW, self.flush)

    def flush(self) -> None:
        """Write the summary of the suppressed lines, if any."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self.suppressed and self._log is not None:
            self._log.warning("target_log_suppressed", lines=sum(self.suppressed.values()),
                              events=dict(self.suppressed), interval_s=WINDOW,
                              reason=f"the platform says more than log_lines_per_second ({self.per_second})")
            self.suppressed.clear()
