"""The way out to one ingest peer: its replies, their backpressure, and closing.

The relay answers a publisher with a few small messages (connect and publish results,
acknowledgements, ping responses). A peer that sends pings, Set Peer Bandwidth games or
calls, and never reads the answers, would make us queue replies without end. So:

- the transport pauses us above HIGH_WATER bytes in its buffer (`pause_writing`); while
  paused the ingest stops reading the peer too, so it cannot make us produce more, and
  replies wait in the RTMP connection, which caps them (`max_output_bytes`);
- everything queued for the peer (the transport's buffer and the connection's output)
  is held to `max_output_bytes`: past it, `send` says close;
- a peer paused for longer than the stall deadline is closed: it has stopped reading
  (deadlines.py);
- a connection closed after its last answer has CLOSE_GRACE seconds to flush it, then is
  aborted: a peer that does not read would otherwise hold its socket open.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

#: Bytes in the transport's buffer above which we stop writing and reading (asyncio's own
#: default is 64 KiB too); the low-water mark is a quarter of it.
HIGH_WATER = 64 * 1024
#: Seconds a closed connection may take to flush its last answer before it is aborted.
CLOSE_GRACE = 2.0


class Replies(Protocol):
    """The RTMP connection whose output this sends."""

    def take_output(self) -> list[bytes | memoryview]:
        """Everything queued for the peer."""

    @property
    def output_bytes(self) -> int:
        """Bytes queued and not yet taken."""


class ReplyFlow:
    """Paused or writable, since when; the replies sent while within budget; the close."""

    def __init__(self, transport: asyncio.Transport, max_output_bytes: int,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.max_output_bytes = max_output_bytes
        self._loop = loop
        self.paused_since: float | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        high = min(HIGH_WATER, max_output_bytes // 2)
        transport.set_write_buffer_limits(high=high, low=high // 4)

    @property
    def paused(self) -> bool:
        """True while the transport's buffer is above its high-water mark."""
        return self.paused_since is not None

    def pause(self) -> None:
        """pause_writing: stop taking replies out of the connection."""
        if self.paused_since is None:
            self.paused_since = self._loop.time()

    def resume(self) -> None:
        """resume_writing: the peer reads again."""
        self.paused_since = None

    def stalled_for(self) -> float:
        """Seconds the peer has been paused (0 when writable)."""
        return 0.0 if self.paused_since is None else self._loop.time() - self.paused_since

    def over_budget(self, unsent: int) -> bool:
        """Whether the transport's buffer plus `unsent` bytes still in the connection exceed the budget."""
        return self.transport.get_write_buffer_size() + unsent > self.max_output_bytes

    def send(self, conn: Replies) -> int | None:
        """Write what `conn` has queued (unless paused). None, or the bytes queued for the
        peer when they are over budget: close the connection."""
        transport = self.transport
        if transport.is_closing():
            return None
        if self.paused_since is None:
            out = conn.take_output()
            if out:
                transport.writelines(out)
        unsent = conn.output_bytes
        if self.over_budget(unsent):
            return transport.get_write_buffer_size() + unsent
        return None

    def close(self, abort: bool) -> None:
        """Abort now, or close after the buffer is flushed (aborted CLOSE_GRACE seconds later)."""
        transport = self.transport
        if abort:
            transport.abort()
        elif not transport.is_closing():
            transport.close()
            # close() waits for the buffer to drain, which a peer that does not read never lets happen.
            self._abort_timer = self._loop.call_later(CLOSE_GRACE, transport.abort)

    def cancel(self) -> None:
        """The connection is lost: nothing left to abort."""
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
