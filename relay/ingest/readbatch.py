"""A publisher's socket read once per write interval, and its targets written right after.

Reading costs per wakeup far more than per byte, as writing does (bench/RESULTS.md, "Where
the rest goes"): a publisher sends each tag as it is encoded, 30-80 times a second, and
each read wakes the event loop, the RTMP core and the hub with cold caches. The RTMP
core parsing one tag after 2 ms idle costs several times what it costs on the next tag
at once (bench/wakeups.py; the figures are in bench/RESULTS.md). The
targets gather what they write over `write_interval` anyway (writetick.py); the tags may
as well wait in the kernel's receive buffer, and be read, parsed and written in one go.

So while a live stream's targets all gather (every write_interval above 0), its
publisher's input is held after each read that emptied the socket (in the kernel, by the
socket's receive low-water mark: rcvhold.py; else by pausing the transport), and let go
when the live stream's slot of the write ticker comes round; the read that follows takes
everything that arrived meanwhile, and the targets that follow the feed write it at
once. A tag then waits at most one interval in all, as before: in the kernel, not in the
hub. A read of READ_LARGE bytes or more may have left data behind (a high bitrate): the
socket is read again before pausing. The kernel's receive buffer grows by itself under
this pattern (Linux autotuning; 50 Mbit/s read every 100 ms never held the sender back,
bench/readpause.py); a held socket is read early once HOLD_BYTES wait (rcvhold.py), so a
publisher faster than 20 Mbit/s is read more than once per interval.

Plain TCP only: a TLS transport's reads are the TLS layer's records, and say nothing of
what the socket still holds.
"""

from __future__ import annotations

from typing import Protocol

from relay.runtime.writetick import WriteTicker

#: A read at least this big may not have emptied the socket: read again before pausing.
#: Under the read buffer of uvloop (256,000 bytes) and asyncio (256 KiB).
READ_LARGE = 65536


class Batched(Protocol):
    """The connection whose reads are batched."""

    def pause_batch(self) -> None:
        """Stop reading until resume_batch() (a held socket is still read once HOLD_BYTES wait: rcvhold.py)."""

    def resume_batch(self) -> None:
        """Read again (the slot came)."""


class ReadBatch:
    """When one publisher reads: the glue between its connection and the write ticker."""

    __slots__ = ("owner", "ticker", "waiting")

    def __init__(self, owner: Batched, ticker: WriteTicker) -> None:
        self.owner = owner
        self.ticker = ticker
        self.waiting = False  # paused, with a slot booked

    def after_read(self, size: int, interval: float, phase: int) -> bool:
        """A read of `size` bytes was fed. If it emptied the socket and `interval` is above 0,
        pause until the slot of `phase` in `interval` comes and return True: the batch is
        complete, and the caller has the targets write it now."""
        if size >= READ_LARGE or interval <= 0 or self.waiting:
            return False  # more may be waiting (take it in this batch), or reads are not batched
        self.waiting = True
        self.owner.pause_batch()
        self.ticker.schedule(self, interval, phase)
        return True

    def flush(self) -> None:
        """The write ticker's slot came: read again."""
        if self.waiting:
            self.waiting = False
            self.owner.resume_batch()

    def cancel(self) -> None:
        """Stop batching (the publisher stopped): read as data comes; the booked slot does nothing."""
        if self.waiting:
            self.waiting = False
            self.owner.resume_batch()
