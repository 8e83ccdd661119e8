"""One timer for the whole process: it writes what each target gathered, once per write_interval.

Each live stream gets a phase when it is made: one of PHASES slots of the write
interval, shared by its targets and its publisher's reads (readbatch.py). A target is
flushed when its slot comes round, so it writes at most once per interval and holds a tag
at most one interval. Live streams are packed STREAMS_PER_PHASE to a phase before the
next phase is used, then wrap round: every wakeup of the loop costs about as much as a
write (a timer, and caches gone cold since the last one), so a few live streams share
one, while many are still spread over PHASES moments of each interval instead of all
landing at once (a burst would delay the last stream's writes).

A target that keeps up is a *member* of its slot (`add` / `remove`): flushed every time
the slot comes, with nothing to do per tag or per write to stay there. A target that
only has something to drain now and then is *scheduled* once (`schedule`).

The wheel of slots is one per distinct interval (usually one: the default), and the one
`call_at` timer is armed for the earliest non-empty slot of any wheel. With PHASES = 10
the timer fires at most 10 times per interval, however many targets there are: a timer
per target, or per tag, costs more CPU than the writes it saves.

Each time its timer fires, the ticker tells `observer` (the loop monitor,
loopmonitor.py) when it was due: how late it runs is how long the loop was held, measured
without a timer of the monitor's own while streams are live.

`soon` runs a target's flush on the next loop iteration instead (flow control let go):
one `call_soon` for all of them. A flush that raises is reported to the loop's exception
handler and does not stop the other targets' flushes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Protocol

PHASES = 10
#: Live streams that share a phase before the next phase is used (phase_for).
STREAMS_PER_PHASE = 4
# The loop's timers fire on a millisecond clock (libuv under uvloop), possibly a little
# early: a slot due within this much of now is flushed now.
_SLACK = 0.001


class Flushable(Protocol):
    """What the ticker flushes."""

    def flush(self) -> None:
        """Write what is pending."""


class _Wheel:
    """The targets of one write interval, by phase: members every time, scheduled ones once."""

    __slots__ = ("step", "origin", "slots", "members", "cursor", "count")

    def __init__(self, interval: float, now: float) -> None:
        self.step = interval / PHASES
        self.origin = now  # slot number k comes at origin + k * step, phase k % PHASES
        self.slots: list[list[Flushable]] = [[] for _ in range(PHASES)]  # scheduled once
        self.members: list[list[Flushable]] = [[] for _ in range(PHASES)]  # flushed every time
        self.cursor = 0  # the number of the next slot to flush
        self.count = 0  # scheduled targets and members, in all slots

    def at(self, number: int) -> float:
        return self.origin + number * self.step

    def catch_up(self, now: float) -> None:
        """Idle until now: move the cursor to the first slot from now on."""
        if not self.count:
            self.cursor = max(self.cursor, math.ceil((now - self.origin) / self.step - 1e-9))

    def due(self, phase: int) -> float:
        """When `phase` next comes, from the cursor on."""
        cursor = self.cursor
        return self.at(cursor + (phase - cursor) % PHASES)

    def next_due(self) -> float:
        """When the earliest non-empty slot comes (inf if none)."""
        if not self.count:
            return math.inf
        slots, members, cursor = self.slots, self.members, self.cursor
        for ahead in range(PHASES):
            index = (cursor + ahead) % PHASES
            if slots[index] or members[index]:
                return self.at(cursor + ahead)
        return math.inf  # unreachable while count > 0


class WriteTicker:
    """The process-wide write timer of one event loop."""

    __slots__ = ("loop", "_wheels", "_timer", "_timer_at", "_soon", "_soon_handle", "_next_phase", "_phases",
                 "_groups", "observer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._wheels: dict[float, _Wheel] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._soon: list[Flushable] = []
        self._soon_handle: asyncio.Handle | None = None
        self._next_phase = 0
        self._phases: dict[str, int] = {}
        self._groups = 0  # groups given a phase so far
        self.observer: Callable[[float], None] | None = None  # told when each firing was due

    def new_phase(self) -> int:
        """A new phase: round robin, so that what gets one spreads over the interval."""
        phase = self._next_phase
        self._next_phase = (phase + 1) % PHASES
        return phase

    def phase_for(self, key: str) -> int:
        """The phase of a group (a live stream's targets and publisher): the same for every member;
        STREAMS_PER_PHASE groups to a phase, the next phase for the next ones, round robin.

        One phase per live stream rather than per target: its targets write the same bodies one
        after the other. Packed rather than one per group: eight live streams wake the loop twice
        per interval, not eight times (each wakeup costs about as much as a write)."""
        phase = self._phases.get(key)
        if phase is None:
            phase = self._phases[key] = (self._groups // STREAMS_PER_PHASE) % PHASES
            self._groups += 1
        return phase

    def schedule(self, target: Flushable, interval: float, phase: int) -> None:
        """Flush `target` once, when its phase of `interval` next comes (on the next iteration if 0).

        The caller schedules a target once until it is flushed."""
        if interval <= 0:
            self.soon(target)
            return
        wheel = self._wheel(interval)
        wheel.slots[phase].append(target)
        wheel.count += 1
        self._arm_for(wheel.due(phase))

    def add(self, target: Flushable, interval: float, phase: int) -> None:
        """Flush `target` every time its phase of `interval` comes, until remove()."""
        wheel = self._wheel(interval)
        members = wheel.members[phase]
        if any(member is target for member in members):
            return
        wheel.members[phase] = [*members, target]  # a new list: _fire may be iterating the old one
        wheel.count += 1
        self._arm_for(wheel.due(phase))

    def remove(self, target: Flushable, interval: float, phase: int) -> None:
        """Stop flushing `target` every time (a one-time schedule stands)."""
        wheel = self._wheels.get(interval)
        if wheel is not None:
            members = wheel.members[phase]
            for i, member in enumerate(members):
                if member is target:
                    wheel.members[phase] = members[:i] + members[i + 1:]  # a new list: _fire may be iterating
                    wheel.count -= 1
                    return

    def _wheel(self, interval: float) -> _Wheel:
        now = self.loop.time()
        wheel = self._wheels.get(interval)
        if wheel is None:
            wheel = self._wheels[interval] = _Wheel(interval, now)
        wheel.catch_up(now)
        return wheel

    def _arm_for(self, due: float) -> None:
        if due < self._timer_at:
            self._arm(due)

    def soon(self, target: Flushable) -> None:
        """Flush `target` on the next loop iteration."""
        self._soon.append(target)
        if self._soon_handle is None:
            self._soon_handle = self.loop.call_soon(self._run_soon)

    @property
    def scheduled(self) -> int:
        """Targets scheduled once and members, waiting for their slots (for tests)."""
        return sum(wheel.count for wheel in self._wheels.values())

    def _arm(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(due, self._fire)
        self._timer_at = due

    def _fire(self) -> None:
        if self.observer is not None:
            self.observer(self._timer_at)
        self._timer = None
        self._timer_at = math.inf
        now = self.loop.time() + _SLACK
        flush = self._flush
        for wheel in list(self._wheels.values()):
            slots, members, origin, step = wheel.slots, wheel.members, wheel.origin, wheel.step
            while wheel.count and origin + wheel.cursor * step <= now:  # wheel.at(), inline
                index = wheel.cursor % PHASES
                wheel.cursor += 1
                once = slots[index]
                if once:
                    slots[index] = []
                    wheel.count -= len(once)
                    for target in once:
                        flush(target)
                for target in members[index]:  # remove() replaces the list, never changes this one
                    flush(target)
        due_next = min((wheel.next_due() for wheel in self._wheels.values()), default=math.inf)
        if due_next < self._timer_at:  # a flush above may have armed the timer already
            self._arm(due_next)

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
