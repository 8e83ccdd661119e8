"""The RTMPS ingest's front door: admit the TCP connection, then the TLS handshake, with a deadline.

With `create_server(ssl=...)` asyncio does the TLS handshake before the protocol sees the
connection: a stranger holds a socket for asyncio's default 60 s without counting against
any connection limit, and the publish deadline starts only after it. Here the RTMPS
listener accepts plain TCP, counts the connection in (admission.py) at once, then
upgrades it with `start_tls` within `tls_handshake_timeout`, and hands the TLS transport to
an IngestProtocol whose publish deadline runs from the TCP accept.

A TLS handshake costs the server a signature (about a millisecond with an RSA key), done
on the event loop: at most MAX_HANDSHAKES run at once, so that a crowd of strangers
starting TLS together cannot hold the loop; the others wait for a place, within the same
deadline.

The SSLContext is read when each connection arrives, so a reload (SIGHUP) that loads a
renewed certificate applies to every new connection, and never to one in progress.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import cast

from relay.logs import get_logger, peer_text
from relay.net.admission import address_key
from relay.net.ingest import IngestProtocol, IngestSettings, drop_frames

#: TLS handshakes in progress at once, over all RTMPS connections.
MAX_HANDSHAKES = 16


class TlsGate(asyncio.Protocol):
    """The raw TCP side of one RTMPS connection, until its TLS handshake is done."""

    def __init__(self, settings: IngestSettings, context: Callable[[], ssl.SSLContext],
                 handshakes: set[asyncio.Task[None]], slots: asyncio.Semaphore) -> None:
        self.settings = settings
        self.context = context
        self.handshakes = handshakes
        self.slots = slots
        self.loop = asyncio.get_running_loop()
        self.accepted_at = self.loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if peer else "?"
        address = address_key(host)
        if not self.settings.admission.admit(address):
            transport.abort()
            return
        # The ClientHello may arrive before start_tls runs (next loop iteration): leave it in
        # the socket until the TLS protocol takes the transport over (start_tls resumes reading).
        transport.pause_reading()
        task = self.loop.create_task(self._upgrade(transport, address, f"{host}:{peer[1]}" if peer else "?"))
        self.handshakes.add(task)
        task.add_done_callback(self.handshakes.discard)

    def data_received(self, data: bytes) -> None:
        pass  # reading is paused until start_tls has taken the transport over

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # after start_tls, the TLS protocol is told instead

    async def _upgrade(self, transport: asyncio.Transport, address: str, peer: str) -> None:
        settings = self.settings
        protocol = IngestProtocol(settings, accepted_at=self.accepted_at, admitted_address=address)
        timeout = settings.limits.tls_handshake_timeout
        try:
            async with asyncio.timeout_at(self.accepted_at + timeout), self.slots:
                tls = await self.loop.start_tls(transport, protocol, self.context(), server_side=True,
                                                ssl_handshake_timeout=timeout)
        except asyncio.CancelledError:
            transport.abort()
            protocol.release_admission()
            raise
        except (OSError, ssl.SSLError, TimeoutError, EOFError, RuntimeError) as exc:
            # A scanner, a plain-RTMP client on the RTMPS port, a handshake that never ends.
            # (The TLS protocol may or may not tell `protocol` the connection was lost: the
            # release happens once either way.)
            transport.abort()
            protocol.release_admission()
            if settings.log_budget.allow("ingest_tls_failed"):
                get_logger(peer=peer).warning("ingest_tls_failed", **peer_text("reason", _reason(exc)))
            drop_frames(exc)
            return
        if tls is None:  # the connection closed as the handshake finished
            transport.abort()
            protocol.release_admission()
            return
        protocol.connection_made(tls)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "TLS handshake not done in time"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.__class__.__name__
    return str(exc) or exc.__class__.__name__
