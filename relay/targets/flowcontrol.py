"""Write-side flow control of one transport: paused or writable, drain(), and the write deadline.

The transport calls `pause_writing()` when its buffer passes the high-water mark and
`resume_writing()` when it falls back under the low-water mark (asyncio.Protocol). This
object is the one place that remembers which it was; everything else asks it
(uvicorn's flow_control.py is the model).

A peer that stops reading must not hold a connection, its buffer and a task forever:
when the transport stays paused for `deadline` seconds, `on_stall` runs (the link then
fails with a reason). `connection_lost()` wakes whatever waits in `drain()`, so a dead
peer never hangs a task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class FlowControl:
    """Paused / writable state of one transport, with a deadline on staying paused."""

    __slots__ = ("_loop", "deadline", "_on_stall", "paused", "closed", "writable", "_stall_timer", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float, on_stall: Callable[[], None]) -> None:
        self._loop = loop
        self.deadline = deadline  # seconds paused before on_stall runs
        self._on_stall = on_stall
        self.paused = False
        self.closed = False
        # Not paused and not closed: an attribute, not a property, as the send path reads it per write.
        self.writable = True
        self._stall_timer: asyncio.TimerHandle | None = None
        self._waiters: list[asyncio.Future[None]] = []

    def pause_writing(self) -> None:
        """The transport's buffer is over its high-water mark."""
        if self.paused or self.closed:
            return
        self.paused = True
        self.writable = False
        self._stall_timer = self._loop.call_later(self.deadline, self._stalled)

    def resume_writing(self) -> None:
        """The transport's buffer drained under its low-water mark."""
        self.paused = False
        self.writable = not self.closed
        self._cancel_timer()
        self._wake()

    def close(self) -> None:
        """Nothing more will be written (the stream was unpublished, or the transport is gone)."""
        self.closed = True
        self.writable = False
        self._cancel_timer()

    def connection_lost(self) -> None:
        """The transport is gone: nothing is writable any more, and nobody waits."""
        self.close()
        self.paused = False
        self._wake()

    async def drain(self) -> None:
        """Return once the transport takes data again (or is gone)."""
        if not self.paused or self.closed:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _stalled(self) -> None:
        self._stall_timer = None
        if self.paused and not self.closed:
            self._on_stall()

    def _cancel_timer(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
