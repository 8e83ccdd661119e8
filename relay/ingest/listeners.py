"""The ingest listeners (RTMP, and RTMPS when configured) and the connections they accepted.

One `Ingest` per daemon. Its settings (app, limits) and its TLS context are replaced by a
reload and apply to connections that arrive afterwards; the listen addresses are bound
once, at start.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Protocol

from relay.config import IngestLimits, ServerConfig
from relay.ingest.admission import Admission, PeerLogBudget
from relay.ingest.publisher import IngestProtocol, IngestSettings
from relay.live.stream import LiveStream
from relay.ingest.tlsgate import TlsListener

#: The kernel's queue of connections not accepted yet. Python's default (100) fills under a
#: burst of scanners, and then the real publisher's SYN waits behind them.
LISTEN_BACKLOG = 1024


class Listener(Protocol):
    """What the relay needs of a listener: an asyncio.Server, or the RTMPS TlsListener."""

    @property
    def sockets(self) -> Sequence[socket.socket]:
        """The listening sockets."""

    def is_serving(self) -> bool:
        """True while accepting connections."""

    def close(self) -> None:
        """Stop accepting."""


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A fresh SSLContext for the RTMPS ingest with this chain and key (ssl.SSLError, OSError if unusable).

    Reads files: call it off the event loop (asyncio.to_thread) once the relay runs.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class Ingest:
    """Listeners, shared settings and live connections of the ingest."""

    def __init__(self, server: ServerConfig, find: Callable[[str], LiveStream | None],
                 tls_context: ssl.SSLContext | None = None) -> None:
        self.settings = IngestSettings(server.app, server.limits, find, Admission(server.limits), PeerLogBudget())
        self.tls_context = tls_context
        self.servers: list[Listener] = []

    @property
    def connections(self) -> set[IngestProtocol]:
        """Every ingest connection past admission (and past TLS, for RTMPS)."""
        return self.settings.connections

    async def listen(self, host: str, port: int) -> asyncio.Server:
        """Listen for RTMP publishers (OSError if the address is taken)."""
        settings = self.settings
        server = await asyncio.get_running_loop().create_server(
            lambda: IngestProtocol(settings), host, port, reuse_address=True, backlog=LISTEN_BACKLOG)
        self.servers.append(server)
        return server

    async def listen_tls(self, host: str, port: int) -> TlsListener:
        """Listen for RTMPS publishers; needs tls_context."""
        listener = TlsListener(self.settings, self._context, LISTEN_BACKLOG)
        await listener.start(host, port)
        self.servers.append(listener)
        return listener

    def _context(self) -> ssl.SSLContext:
        assert self.tls_context is not None
        return self.tls_context

    def reconfigure(self, app: str, limits: IngestLimits, tls_context: ssl.SSLContext | None) -> None:
        """Apply a reload to connections that arrive from now on."""
        settings = self.settings
        settings.app = app
        settings.limits = limits
        settings.admission.limits = limits
        if tls_context is not None:
            self.tls_context = tls_context

    def close(self) -> None:
        """Stop listening, end TLS handshakes in progress, shut every connection."""
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            conn.close()
        self.settings.admission.flush_log()
        self.settings.log_budget.flush()
