"""Log lines about a flood, rate-limited: at most `per_second` a second, the rest summed in one line.

A peer's failure or a platform's status message is worth a line each, as a real one
makes a few. A flood of them (a thousand strangers failing before they publish, a hostile
platform sending onStatus as fast as the network carries it: ~26,000 lines a second) is
worth one line a second that counts what was left out, by event: the flood itself is
news. One budget per source: the ingest's strangers share one (relay/ingest/admission.py),
each target has its own for what its platform says (relay/targets/link.py).

The window is counted with the clock passed in (the loop's by default); the summary is
written by a timer, a second after the first line left out.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

#: The window the per-second budget is counted over, and the summary's interval, in seconds.
WINDOW = 1.0


class LineBudget:
    """At most `per_second` lines a second; the suppressed ones counted by event and summed as `summary`."""

    __slots__ = ("per_second", "summary", "reason", "_clock", "_window_start", "_used", "suppressed", "_flush",
                 "_log")

    def __init__(self, per_second: int, summary: str, reason: str, clock: Callable[[], float] | None = None,
                 log: Any = None) -> None:
        self.per_second = per_second
        self.summary = summary  # the event of the summary line
        self.reason = reason
        self._clock = clock
        self._window_start = float("-inf")
        self._used = 0
        self.suppressed: Counter[str] = Counter()
        self._flush: asyncio.TimerHandle | None = None
        self._log = log  # where the summary goes (line() sets it to the log of the last line left out)

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
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(WINDOW, self.flush)
        return False

    def line(self, log: Any, level: str, event: str, /, **fields: Any) -> None:
        """Write `event` at `level` on `log` if the budget allows; else count it and summarise later."""
        if self.allow(event):
            getattr(log, level)(event, **fields)
        else:
            self._log = log

    def flush(self) -> None:
        """Write the summary of the suppressed lines, if any."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self.suppressed and self._log is not None:
            self._log.warning(self.summary, lines=sum(self.suppressed.values()), events=dict(self.suppressed),
                              interval_s=WINDOW, reason=self.reason)
            self.suppressed.clear()
