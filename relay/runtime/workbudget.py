"""How much of one event-loop iteration untrusted peers may use: strangers on the ingest, platforms.

An event loop runs every ready callback of an iteration before it looks at its timers and
at the next reads: 150 strangers whose reads arrive together, each costing a millisecond
of parsing, hold every live stream for 150 ms. Work for connections that have not
published is therefore charged to a budget per iteration: once PER_ITERATION seconds are
spent, a stranger stops reading and finishes its input in a later iteration (call_soon),
after the loop has served its timers, the publishers and the targets. Publishers are not
charged: their media is what the relay is for. What platforms send back to the targets
(acknowledgements, pings, statuses: a few messages a second from a real server) is
charged to a budget of its own (relay/targets/intake.py), so a flood from one platform
neither holds the loop nor takes the strangers' share.

The budget starts over in the iteration after the first charge (a call_soon callback runs
in the next iteration), so each iteration gives strangers about PER_ITERATION seconds plus
one slice of work beyond it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

#: Seconds of stranger work per loop iteration.
PER_ITERATION = 0.010


class IterationBudget:
    """Loop time used by strangers in the current iteration."""

    def __init__(self, per_iteration: float = PER_ITERATION,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.per_iteration = per_iteration
        self.clock = clock
        self.spent = 0.0
        self.deferred = 0  # times a stranger had to wait for a later iteration (for the figures)
        self._reset_scheduled = False

    @property
    def exhausted(self) -> bool:
        """True once this iteration's share is used up."""
        return self.spent >= self.per_iteration

    def charge(self, seconds: float) -> None:
        """Count `seconds` of work done for a stranger in this iteration."""
        self.spent += seconds
        if not self._reset_scheduled:
            self._reset_scheduled = True
            asyncio.get_running_loop().call_soon(self._reset)

    def _reset(self) -> None:
        self.spent = 0.0
        self._reset_scheduled = False
