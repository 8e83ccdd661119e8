"""Backpressure of the replies to one ingest peer: a peer that will not read is closed.

The relay answers a publisher with a few small messages (connect and publish results,
acknowledgements, ping responses). A peer that sends pings, Set Peer Bandwidth games or
calls, and never reads the answers, would make us queue replies without end. So:

- the transport pauses us above HIGH_WATER bytes in its buffer (`pause_writing`); while
  paused the ingest stops reading the peer too, so it cannot make us produce more, and
  replies wait in the RTMP connection, which caps them (`max_output_bytes`);
- everything queued for the peer (the transport's buffer and the connection's output)
  is held to `max_output_bytes`: past it, `over_budget` says close;
- a peer paused for longer than the stall deadline is closed: it has stopped reading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: Bytes in the transport's buffer above which we stop writing and reading (asyncio's own
#: default is 64 KiB too); the low-water mark is a quarter of it.
HIGH_WATER = 64 * 1024


class ReplyFlow:
    """Paused or writable, since when, and whether a peer's queued replies are over budget."""

    def __init__(self, transport: asyncio.Transport, max_output_bytes: int, clock: Callable[[], float]) -> None:
        self.transport = transport
        self.max_output_bytes = max_output_bytes
        self._clock = clock
        self.paused_since: float | None = None
        high = min(HIGH_WATER, max_output_bytes // 2)
        transport.set_write_buffer_limits(high=high, low=high // 4)

    @property
    def paused(self) -> bool:
        """True while the transport's buffer is above its high-water mark."""
        return self.paused_since is not None

    def pause(self) -> None:
        """pause_writing: stop taking replies out of the connection."""
        if self.paused_since is None:
            self.paused_since = self._clock()

    def resume(self) -> None:
        """resume_writing: the peer reads again."""
        self.paused_since = None

    def stalled_for(self) -> float:
        """Seconds the peer has been paused (0 when writable)."""
        return 0.0 if self.paused_since is None else self._clock() - self.paused_since

    def over_budget(self, unsent: int) -> bool:
        """Whether the transport's buffer plus `unsent` bytes still in the connection exceed the budget."""
        return self.transport.get_write_buffer_size() + unsent > self.max_output_bytes
