"""A publisher's input held in the kernel between two batched reads, without pausing the transport.

Between two reads of a batched publisher (readbatch.py) the relay wants no wakeup for it.
Pausing the transport (`pause_reading`) does not give that under libuv: it takes a
socket out of epoll lazily, so the publisher's next packet still wakes the loop once,
only for libuv to remove the socket then (an `epoll_ctl` after a wakeup of its own), and
resuming adds it back (a second `epoll_ctl`). One live stream woke the loop twice per
write interval instead of once; a wakeup from idle costs far more than the work it does
(bench/RESULTS.md, "Where the rest goes").

The socket's receive low-water mark does it in the kernel: while SO_RCVLOWAT is HOLD_BYTES,
epoll reports the socket readable only once that much has arrived (or at end of stream,
or on an error: a disconnect is seen at once); setting it back to 1 makes data that
waits readable at once (Linux signals it from the setsockopt, tcp_set_rcvlowat). So the
transport keeps reading and the socket stays in epoll, and the only wakeup per interval
is the write ticker's. HOLD_BYTES is a safety valve as well: a publisher that sends more
than that within one interval is read early, as a large read is (readbatch.READ_LARGE).

Raising the mark also lets the kernel grow the socket's receive buffer to hold it (twice
HOLD_BYTES, capped at half of net.ipv4.tcp_rmem's maximum); receive autotuning grows it
further for a fast publisher far away, as before.

Plain TCP on Linux only (a TLS transport's reads are records, and batching is plain TCP's
alone; elsewhere lowering the mark need not wake the poller). Where the option cannot be
set, `ReceiveHold.of` gives None and the caller pauses the transport instead. A hold is
made for a publisher's first batch, never for a stranger: it costs a descriptor. The hold sets the option through a duplicate of the socket's
descriptor, its own to close (uvloop's transport socket makes a socket object and asks
the kernel for its name at every call; closing a socket object made on the transport's
own descriptor could close another connection's that reused the number).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

#: While held, the socket reads only once this much waits: ~4 intervals of a 4.4 Mbit/s
#: stream, two fifths of one of a 50 Mbit/s stream (read early, a few times per interval).
HOLD_BYTES = 256 * 1024


class ReceiveHold:
    """Holds one TCP socket's input in its receive queue (hold) until release()."""

    __slots__ = ("_sock", "held")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock  # a duplicate of the transport's descriptor (see above): ours to close
        self.held = False

    @classmethod
    def of(cls, transport: asyncio.BaseTransport) -> ReceiveHold | None:
        """A hold on the transport's socket, or None (TLS, not TCP, or the option refused)."""
        if not sys.platform.startswith("linux"):
            return None  # elsewhere lowering the mark may not wake the poller: data could wait for the next packet
        if transport.get_extra_info("sslcontext") is not None or transport.get_extra_info("ssl_object") is not None:
            return None
        sock = transport.get_extra_info("socket")
        if sock is None or getattr(sock, "type", None) != socket.SOCK_STREAM:
            return None
        try:
            fd = os.dup(sock.fileno())
        except OSError:
            return None  # out of descriptors: pausing does without one
        try:
            own = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            return None
        try:
            own.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)  # the default: proves the option is there
        except OSError:
            own.close()
            return None
        return cls(own)

    def hold(self) -> bool:
        """Read nothing more until release() (or until HOLD_BYTES wait). False if the option failed."""
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, HOLD_BYTES)
        except OSError:
            return False  # a socket closing under us: the caller pauses the transport instead
        self.held = True
        return True

    def release(self) -> None:
        """Read what waits, now, and as data comes."""
        if not self.held:
            return
        self.held = False
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
        except OSError:
            pass  # closed meanwhile: nothing left to read

    def close(self) -> None:
        """The connection is over: close the duplicate descriptor (the socket stays the transport's)."""
        self.held = False
        self._sock.close()
