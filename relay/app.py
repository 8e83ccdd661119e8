"""The daemon: config -> live streams and listeners; signals; orderly shutdown.

Shutdown (SIGINT/SIGTERM): stop accepting, shut publishers out, let every target flush,
unpublish and close, wait at most SHUTDOWN_TIMEOUT, cancel what is left, exit 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl

from relay.config import RelayConfig
from relay.logs import get_logger, set_known_secrets
from relay.net.ingest import IngestProtocol, start_ingest
from relay.net.livestream import LiveStream

SHUTDOWN_TIMEOUT = 4.0  # the unit's stop timeout is longer; exit 0 within 5 s


class Relay:
    """All the running parts for one config."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.live_streams = {ls.name: LiveStream(ls) for ls in config.live_streams}
        self.connections: set[IngestProtocol] = set()
        self.servers: list[asyncio.Server] = []
        self.log = get_logger()
        self._stopping = asyncio.Event()

    def find(self, stream_key: str) -> LiveStream | None:
        """The live stream whose ingest key this is (constant-time over all keys)."""
        found = self.config.find_live_stream(stream_key)
        return None if found is None else self.live_streams[found.name]

    async def start(self) -> None:
        """Bind the listeners."""
        server = self.config.server
        self.servers.append(await start_ingest(server.listen_host, server.listen_port, server.app, self.find,
                                               self.connections))
        self._log_listening("rtmp", self.servers[-1])
        if server.tls_listen_host is not None and server.tls_listen_port is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            assert server.tls_cert_file and server.tls_key_file
            context.load_cert_chain(server.tls_cert_file, server.tls_key_file)
            self.servers.append(await start_ingest(server.tls_listen_host, server.tls_listen_port, server.app,
                                                   self.find, self.connections, ssl_context=context))
            self._log_listening("rtmps", self.servers[-1])

    def _log_listening(self, scheme: str, server: asyncio.Server) -> None:
        for sock in server.sockets:
            host, port = sock.getsockname()[:2]
            self.log.info("relay_listening", scheme=scheme, host=host, port=port, app=self.config.server.app)

    def stop(self) -> None:
        """Ask the daemon to shut down (signal handler)."""
        self._stopping.set()

    async def run_until_stopped(self) -> None:
        """Serve until stop(), then shut down in order."""
        await self._stopping.wait()
        self.log.info("relay_stopping")
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            conn.close()
        for live in self.live_streams.values():
            for target in live.targets:
                target.request_stop()
        await asyncio.gather(*(live.wait_targets_stopped(SHUTDOWN_TIMEOUT) for live in self.live_streams.values()))
        self.log.info("relay_stopped")


async def serve(config: RelayConfig) -> None:
    """Run the relay for a validated config until SIGINT or SIGTERM."""
    set_known_secrets(config.all_secrets())
    log = get_logger()
    for warning in config.warnings:
        log.warning("config_warning", message=warning)
    relay = Relay(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, relay.stop)
    await relay.start()
    _sd_notify("READY=1")
    await relay.run_until_stopped()
    _sd_notify("STOPPING=1")


def _sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) about our state, when it is listening."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError:
            pass


def run(config: RelayConfig) -> None:
    """Run the event loop (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
