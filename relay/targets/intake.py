"""What a platform sends a target, fed to its connection a slice at a time: no flood holds the loop.

A real platform sends a target a few small messages a second (acknowledgements, a ping,
a status). A hostile or broken one can send pings or statuses as fast as the network
carries them, and the relay reads up to 256 KiB at a time: parsed and answered in one
go, that was 150 ms to seconds of one callback for every live stream (a ping flood
measured 5.5 s of CPU in one stall). So:

- input is fed in FEED_SLICE pieces, each charged to one IterationBudget for all targets
  (relay/runtime/workbudget.py); once the iteration's share is spent, reading pauses and
  the rest is fed in a later iteration (call_soon), after the loop served its timers,
  the publisher and the other targets;
- while the platform does not read what we write (the transport paused writing: `hold`),
  its input waits unread and reading pauses, so it cannot make us produce replies it
  will not take; the link's write deadline (flowcontrol.py) ends a platform that never
  reads again.

What is waiting is at most one read (the transport reads no more while paused).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable

from relay.runtime.workbudget import IterationBudget

#: Bytes of a platform's input fed to the connection at a time: the most work done past the
#: iteration's budget (one slice of 7-byte pings is about 600 answers, well under a millisecond).
FEED_SLICE = 4096

_budgets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, IterationBudget] = weakref.WeakKeyDictionary()


def platform_budget(loop: asyncio.AbstractEventLoop) -> IterationBudget:
    """The loop's budget for what every platform sends, shared by all targets."""
    budget = _budgets.get(loop)
    if budget is None:
        budget = _budgets[loop] = IterationBudget()
    return budget


class Intake:
    """One link's unread input, its reading paused for `budget` or `replies` (the platform does not read)."""

    __slots__ = ("_loop", "_feed", "_budget", "_transport", "_backlog", "_paused_for", "_continuing", "closed")

    def __init__(self, loop: asyncio.AbstractEventLoop, feed: Callable[[memoryview], bool],
                 budget: IterationBudget | None = None) -> None:
        self._loop = loop
        self._feed = feed  # False: the link failed, feed nothing more
        self._budget = budget if budget is not None else platform_budget(loop)
        self._transport: asyncio.Transport | None = None
        self._backlog: deque[memoryview] = deque()
        self._paused_for: set[str] = set()
        self._continuing = False
        self.closed = False

    def attach(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    @property
    def pending(self) -> int:
        """Bytes read and not fed yet."""
        return sum(map(len, self._backlog))

    def received(self, data: bytes) -> None:
        """data_received: queue, then feed what the budget allows."""
        if not self.closed:
            self._backlog.append(memoryview(data))
            self._work()

    def hold(self) -> None:
        """pause_writing: the platform does not read; read and feed nothing until `release`."""
        self._pause("replies")

    def release(self) -> None:
        """resume_writing: the platform reads again."""
        self._resume("replies")
        self._work()

    def close(self) -> None:
        """The link is gone: drop what is left."""
        self.closed = True
        self._backlog.clear()

    def _work(self) -> None:
        backlog, budget = self._backlog, self._budget
        while backlog and not self.closed:
            if "replies" in self._paused_for:
                return  # fed once the platform reads again
            if budget.exhausted:
                if not self._continuing:
                    self._continuing = True
                    budget.deferred += 1
                    self._pause("budget")
                    self._loop.call_soon(self._continue)
                return
            piece = backlog[0]
            if len(piece) > FEED_SLICE:
                backlog[0] = piece[FEED_SLICE:]
                piece = piece[:FEED_SLICE]
            else:
                backlog.popleft()
            started = budget.clock()
            ok = self._feed(piece)
            budget.charge(budget.clock() - started)
            if not ok:
                self.close()
                return
        self._resume("budget")

    def _continue(self) -> None:
        self._continuing = False
        self._work()

    def _pause(self, reason: str) -> None:
        transport = self._transport
        if not self._paused_for and transport is not None and not transport.is_closing():
            transport.pause_reading()
        self._paused_for.add(reason)

    def _resume(self, reason: str) -> None:
        if reason not in self._paused_for:
            return
        self._paused_for.discard(reason)
        transport = self._transport
        if not self._paused_for and transport is not None and not transport.is_closing():
            transport.resume_reading()
