"""The RTMPS ingest's front door: admit the TCP connection, then the TLS handshake, with a deadline.

With `create_server(ssl=...)` asyncio does the TLS handshake before the protocol sees the
connection: a stranger holds a socket for asyncio's default 60 s without counting against
any connection limit, and the publish deadline starts only after it. So the RTMPS listener
accepts the TCP connections itself: each is counted in (admission.py) at once, or closed;
then `connect_accepted_socket(ssl=...)` does the TLS handshake within
`tls_handshake_timeout` and hands the TLS transport to an IngestProtocol whose publish
deadline runs from the TCP accept. (Upgrading an accepted transport with start_tls lost
the ClientHello when it came in the same read as the accept: uvloop reads before the
protocol can pause it.)

A TLS handshake costs the server a signature (about a millisecond with an RSA key), done
on the event loop: at most MAX_HANDSHAKES run at once, so that a crowd of strangers
starting TLS together cannot hold the loop; the others wait for a place, within the same
deadline. Silent sockets must not keep the real publisher out of those places either:
one address has at most MAX_HANDSHAKES_PER_ADDRESS handshakes under way, and when every
place is taken, a newcomer ends the oldest handshake in a place (every connection still
in its TLS handshake is a stranger; a real client's takes milliseconds).

The SSLContext is read when each connection arrives, so a reload (SIGHUP) that loads a
renewed certificate applies to every new connection, and never to one in progress.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import socket
import ssl
from collections import Counter
from collections.abc import Callable

from relay.runtime.logs import get_logger, peer_text
from relay.addresses import address_key
from relay.ingest.publisher import IngestProtocol, IngestSettings
from relay.ingest.session import drop_frames

#: TLS handshakes in progress at once, over all RTMPS connections.
MAX_HANDSHAKES = 16
#: TLS handshakes under way at once from one address (admission.py's address_key).
MAX_HANDSHAKES_PER_ADDRESS = 4
#: Seconds the listener waits after accept() failed for want of resources (file descriptors,
#: memory), as asyncio's own listeners do: retrying at once would spin.
ACCEPT_RETRY_DELAY = 1.0
# A connection that was reset before we took it, or a signal: try the next one at once.
_ACCEPT_AGAIN = {errno.ECONNABORTED, errno.EPROTO, errno.EINTR, errno.EAGAIN, errno.EWOULDBLOCK}


class TlsListener:
    """A listening socket for RTMPS; looks like an asyncio.Server to its owner."""

    def __init__(self, settings: IngestSettings, context: Callable[[], ssl.SSLContext], backlog: int) -> None:
        self.settings = settings
        self.context = context
        self.backlog = backlog
        self.slots = asyncio.Semaphore(MAX_HANDSHAKES)
        self.handshakes: set[asyncio.Task[None]] = set()
        self._per_address: Counter[str] = Counter()  # handshakes under way, per address
        self._in_place: dict[asyncio.Task[None], None] = {}  # handshakes holding a place, oldest first
        self.sockets: list[socket.socket] = []
        self._accepting: asyncio.Task[None] | None = None
        self.log = get_logger()

    async def start(self, host: str, port: int) -> None:
        """Bind and listen (OSError if the address is taken), then accept in a task."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(self.backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sockets = [sock]
        self._accepting = loop.create_task(self._accept(sock), name="rtmps accept")

    def is_serving(self) -> bool:
        """True while accepting connections."""
        return self._accepting is not None and not self._accepting.done()

    def close(self) -> None:
        """Stop accepting and end the handshakes in progress."""
        if self._accepting is not None:
            self._accepting.cancel()
        for task in list(self.handshakes):
            task.cancel()
        for sock in self.sockets:
            sock.close()

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, peer = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno in _ACCEPT_AGAIN:
                    continue
                # EMFILE and the like: the listener must not die of it (nor spin).
                self.log.error("ingest_accept_failed", error=exc.strerror or str(exc), retry_in_s=ACCEPT_RETRY_DELAY)
                await asyncio.sleep(ACCEPT_RETRY_DELAY)
                continue
            accepted_at = loop.time()
            host = str(peer[0]) if peer else "?"
            address = address_key(host)
            admission = self.settings.admission
            if self._per_address[address] >= MAX_HANDSHAKES_PER_ADDRESS:
                admission.refused(address, "max_tls_handshakes_per_address")
                _reset(sock)
                continue
            protocol = IngestProtocol(self.settings, accepted_at=accepted_at, admitted_address=address)
            if not admission.admit(address, protocol):
                _reset(sock)
                continue
            if self.slots.locked() and self._in_place:
                # Every place taken: the oldest handshake makes room (out of the list at once, so that
                # the next newcomer, before it has ended, does not pick it again).
                oldest = next(iter(self._in_place))
                del self._in_place[oldest]
                oldest.cancel()
            task = loop.create_task(self._handshake(sock, protocol, address, f"{host}:{peer[1]}"))
            protocol.on_evict = functools.partial(_cancel, task)  # evicted for a newcomer during its handshake
            self._per_address[address] += 1
            self.handshakes.add(task)
            task.add_done_callback(functools.partial(self._handshake_over, address=address))

    def _handshake_over(self, task: asyncio.Task[None], address: str) -> None:
        self.handshakes.discard(task)
        self._in_place.pop(task, None)
        left = self._per_address[address] - 1
        if left > 0:
            self._per_address[address] = left
        else:
            del self._per_address[address]

    async def _handshake(self, sock: socket.socket, protocol: IngestProtocol, address: str, peer: str) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        accepted_at = protocol.accepted_at
        timeout = settings.limits.tls_handshake_timeout
        handed_over = False  # from then on the transport owns the socket, and closes it
        try:
            async with asyncio.timeout_at(accepted_at + timeout), self.slots:
                current = asyncio.current_task()
                assert current is not None
                self._in_place[current] = None
                handed_over = True
                await loop.connect_accepted_socket(lambda: protocol, sock, ssl=self.context(),
                                                   ssl_handshake_timeout=timeout)
            protocol.on_evict = None
        except asyncio.CancelledError:
            if not handed_over:
                _reset(sock)
            protocol.release_admission()
            raise
        except (OSError, ssl.SSLError, TimeoutError, EOFError, RuntimeError) as exc:
            # A scanner, a plain-RTMP client on the RTMPS port, a handshake that never ends.
            # (The TLS protocol may or may not tell `protocol` the connection was lost: the
            # release happens once either way.)
            if not handed_over:
                _reset(sock)
            protocol.release_admission()
            if settings.log_budget.allow("ingest_tls_failed"):
                get_logger(peer=peer).warning("ingest_tls_failed", **peer_text("reason", _reason(exc)))
            drop_frames(exc)


def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()


def _reset(sock: socket.socket) -> None:
    """Close at once, without a FIN handshake (SO_LINGER 0): a refused stranger gets nothing."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    sock.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "TLS handshake not done in time"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.__class__.__name__
    return str(exc) or exc.__class__.__name__
