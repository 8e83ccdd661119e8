"""How one ingest connection's input reaches its RTMP core, and why its reading is paused.

A publisher's reads are fed whole, at once (publisher.py does it without coming here).
A stranger's (no key yet) wait in a backlog and are fed FEED_SLICE bytes at a time while
the loop's budget for strangers lasts (workbudget.py); once it is spent, reading pauses
and the rest is fed in a later iteration. A stranger that publishes mid-backlog has the
rest of its backlog fed whole, in order.

Reading is paused for as long as any reason holds: "replies" (the peer does not read our
answers, replyflow.py), "budget" (above) and "batch" (a publisher read once per write
interval, readbatch.py). A batch is held in the kernel instead where the socket allows it
(`hold`, rcvhold.py): the transport keeps reading, and nothing wakes the loop for it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from relay.ingest.rcvhold import ReceiveHold
from relay.runtime.workbudget import IterationBudget

#: Bytes of a stranger's input fed to the core at a time: the most work done past the
#: loop's budget for strangers (workbudget.py) is one slice, well under a millisecond.
FEED_SLICE = 4096


class Fed(Protocol):
    """The connection whose input this is."""

    @property
    def closing(self) -> bool:
        """Closed or closing: feed nothing more."""

    @property
    def live(self) -> object | None:
        """The live stream it publishes to (None: a stranger)."""

    def feed(self, data: bytes | memoryview) -> None:
        """Bytes to the RTMP core, and its events handled."""


class Intake:
    """A connection's backlog of reads not yet fed, and the reasons its reading is paused."""

    __slots__ = ("budget", "loop", "backlog", "paused_for", "transport", "receive_hold", "_hold_tried",
                 "_continuing", "reading_since")

    def __init__(self, budget: IterationBudget, loop: asyncio.AbstractEventLoop) -> None:
        # No reference to the connection (it is passed in): a cycle would outlive it until
        # the cyclic GC, which runs seldom (relay/runtime/gcpolicy.py).
        self.budget = budget
        self.loop = loop
        self.backlog: deque[memoryview] = deque()  # read and not yet fed to the core (a stranger's)
        self.paused_for: set[str] = set()  # why reading is paused: "replies", "budget", "batch"
        # When reading last started again after we paused it: a peer's silence before it is ours.
        self.reading_since = float("-inf")
        self.transport: asyncio.Transport | None = None  # set when the connection is made
        self.receive_hold: ReceiveHold | None = None  # made at a publisher's first hold() (rcvhold.py)
        self._hold_tried = False
        self._continuing = False

    def add(self, owner: Fed, data: bytes) -> None:
        """A read of `owner` to feed after the backlog (now, as far as the budget allows)."""
        self.backlog.append(memoryview(data))
        self.work(owner)

    def work(self, owner: Fed) -> None:
        """Feed a stranger's input to the core a slice at a time, within the loop's budget for strangers."""
        budget, backlog = self.budget, self.backlog
        while backlog and not owner.closing:
            stranger = owner.live is None
            if stranger and budget.exhausted:
                # The rest in a later iteration; read nothing more until then.
                if not self._continuing:
                    self._continuing = True
                    budget.deferred += 1
                    self.pause("budget")
                    self.loop.call_soon(self._continue, owner)
                return
            piece = backlog[0]
            if stranger and len(piece) > FEED_SLICE:
                backlog[0] = piece[FEED_SLICE:]
                piece = piece[:FEED_SLICE]
            else:
                backlog.popleft()
            started = budget.clock()
            owner.feed(piece)
            if stranger:
                budget.charge(budget.clock() - started)
        self.resume("budget")

    def _continue(self, owner: Fed) -> None:
        self._continuing = False
        if not owner.closing:
            self.work(owner)

    @property
    def held(self) -> bool:
        """Input is held in the kernel (hold()): read only once HOLD_BYTES wait, though the transport is not paused."""
        return self.receive_hold is not None and self.receive_hold.held

    def hold(self) -> None:
        """Read nothing until release() (in the kernel where the socket allows it: unless HOLD_BYTES wait,
        rcvhold.py), else by pausing."""
        if not self._hold_tried and self.transport is not None:
            self._hold_tried = True  # once: a socket that cannot hold is paused from then on
            self.receive_hold = ReceiveHold.of(self.transport)
        if self.receive_hold is None or not self.receive_hold.hold():
            self.pause("batch")

    def close(self) -> None:
        """The connection is over: let go of the hold's descriptor."""
        if self.receive_hold is not None:
            self.receive_hold.close()

    def release(self) -> None:
        """Read again, from now (undoes hold())."""
        if self.receive_hold is not None and self.receive_hold.held:
            self.receive_hold.release()
            self.reading_since = self.loop.time()
        self.resume("batch")

    def pause(self, reason: str) -> None:
        """Stop reading the peer (if it is not already) until `reason` is resumed, and every other."""
        transport = self.transport
        if not self.paused_for and transport is not None and not transport.is_closing():
            transport.pause_reading()
        self.paused_for.add(reason)

    def resume(self, reason: str) -> None:
        """`reason` no longer holds: read again if no other does."""
        if reason not in self.paused_for:
            return
        self.paused_for.discard(reason)
        transport = self.transport
        if not self.paused_for and transport is not None and not transport.is_closing():
            transport.resume_reading()
            self.reading_since = self.loop.time()
