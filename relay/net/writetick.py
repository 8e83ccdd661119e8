"""One timer for the whole process: it writes each target's gathered tags when they are due.

A target that has something pending asks to be flushed `write_interval` after its first
pending tag came (`schedule`). Entries are kept per interval in arrival order, which is
due order, so the earliest due entry is always at the head of a lane: one `call_at` for
the earliest head serves every target of every live stream, however many there are.
Targets are flushed when they are due, not all at one tick, so the writes (and the
platforms' reads) spread over time as the publishers' tags do.

`soon` runs a target's flush on the next loop iteration instead (flow control let go,
or `write_interval: 0` while queueing): one `call_soon` for all of them.

A flush that raises is reported to the loop's exception handler and does not stop the
other targets' flushes.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Protocol

# Timers of the event loop fire on a millisecond clock (libuv under uvloop): a target due
# within this much of now is flushed now, rather than waiting for one more timer.
_SLACK = 0.001


class Flushable(Protocol):
    """What the ticker flushes."""

    def flush(self) -> None:
        """Write what is pending."""


class WriteTicker:
    """The process-wide write timer of one event loop."""

    __slots__ = ("loop", "_lanes", "_timer", "_timer_at", "_soon", "_soon_handle")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lanes: dict[float, deque[tuple[float, Flushable]]] = {}  # interval -> (due, target), in due order
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._soon: list[Flushable] = []
        self._soon_handle: asyncio.Handle | None = None

    def schedule(self, target: Flushable, interval: float) -> None:
        """Flush `target` `interval` seconds from now (at once on the next iteration if 0)."""
        if interval <= 0:
            self.soon(target)
            return
        due = self.loop.time() + interval
        lane = self._lanes.get(interval)
        if lane is None:
            lane = self._lanes[interval] = deque()
        lane.append((due, target))
        if due < self._timer_at:
            self._arm(due)

    def soon(self, target: Flushable) -> None:
        """Flush `target` on the next loop iteration."""
        self._soon.append(target)
        if self._soon_handle is None:
            self._soon_handle = self.loop.call_soon(self._run_soon)

    @property
    def scheduled(self) -> int:
        """Entries waiting for the timer (for tests and status)."""
        return sum(len(lane) for lane in self._lanes.values())

    def _arm(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(due, self._fire)
        self._timer_at = due

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        now = self.loop.time() + _SLACK
        for lane in list(self._lanes.values()):
            while lane and lane[0][0] <= now:
                self._flush(lane.popleft()[1])
        heads = [lane[0][0] for lane in self._lanes.values() if lane]
        if heads:
            self._arm(min(heads))  # a flush above may have armed it already: this re-arms the same

    def _run_soon(self) -> None:
        self._soon_handle = None
        targets, self._soon = self._soon, []
        for target in targets:
            self._flush(target)

    def _flush(self, target: Flushable) -> None:
        try:
            target.flush()
        except Exception as exc:  # one target's bug must not stop the others' writes
            self.loop.call_exception_handler({"message": "a target's flush failed", "exception": exc})


_ticker: WriteTicker | None = None


def write_ticker() -> WriteTicker:
    """The write ticker of the running event loop (one per process at a time)."""
    global _ticker
    loop = asyncio.get_running_loop()
    if _ticker is None or _ticker.loop is not loop:
        _ticker = WriteTicker(loop)
    return _ticker
