"""The daemon: config -> live streams and listeners; signals; reload; orderly shutdown.

SIGHUP reloads the config file. A file that does not validate is logged with every
problem and ignored: the relay keeps running on its last good config. Live streams and
targets whose config did not change keep broadcasting through a reload.

SIGUSR1 writes the status snapshot (every live stream and target) to the log.

SIGINT/SIGTERM: stop accepting, shut publishers out, let every target flush, unpublish
and close, wait at most SHUTDOWN_TIMEOUT, cancel what is left, exit 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
from typing import Any

from relay.config import ConfigError, RelayConfig, load_config
from relay.logs import get_logger, set_known_secrets
from relay.net.ingest import IngestProtocol, start_ingest
from relay.net.livestream import LiveStream
from relay.status import LiveStreamSnapshot, RelaySnapshot

SHUTDOWN_TIMEOUT = 4.0  # exit 0 within 5 s of SIGTERM
EXIT_LISTEN_FAILED = 1


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
        return None if found is None else self.live_streams.get(found.name)

    async def start(self) -> None:
        """Bind the listeners (OSError if a port is taken)."""
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

    def reload(self, path: str) -> None:
        """Re-read the config file and apply it; keep the current one if it is invalid."""
        try:
            new = load_config(path)
        except ConfigError as exc:
            self.log.error("config_reload_failed", problems=list(exc.problems), kept="last good config")
            return
        for warning in new.warnings:
            self.log.warning("config_warning", message=warning)
        if new.server != self.config.server:
            self.log.warning("config_server_unchanged", reason="listen, app and TLS settings apply on restart")
            new = new.model_copy(update={"server": self.config.server})
        set_known_secrets([*self.config.all_secrets(), *new.all_secrets()])
        wanted = {ls.name: ls for ls in new.live_streams}
        for name in [n for n in self.live_streams if n not in wanted]:
            self.live_streams.pop(name).shut_down("live stream removed from the config")
        for name, ls_config in wanted.items():
            live = self.live_streams.get(name)
            if live is None:
                self.live_streams[name] = LiveStream(ls_config)
            elif live.config != ls_config:
                live.reconfigure(ls_config)
        self.config = new
        self.log.info("config_reloaded", live_streams=len(self.live_streams))

    def snapshot(self) -> RelaySnapshot:
        """The state of every live stream and target, at this moment."""
        streams = []
        for live in self.live_streams.values():
            targets = tuple(t.snapshot() for t in live.targets)
            streams.append(LiveStreamSnapshot(
                name=live.name, status=live.status, publisher_connected=live.publisher is not None,
                awaiting_publisher=live.awaiting_publisher, sessions=live.sessions, simulcast_targets=targets,
            ))
        return RelaySnapshot(tuple(streams))

    def log_status(self) -> None:
        """Write the snapshot to the log (SIGUSR1), for operators without the status API."""
        self.log.info("relay_status", **self.snapshot().to_dict())

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
            live.shut_down("relay shutting down")
        await asyncio.gather(*(live.wait_targets_stopped(SHUTDOWN_TIMEOUT) for live in self.live_streams.values()))
        self.log.info("relay_stopped")


async def serve(config: RelayConfig, path: str) -> int:
    """Run the relay until SIGINT or SIGTERM; the exit status."""
    set_known_secrets(config.all_secrets())
    log = get_logger()
    for warning in config.warnings:
        log.warning("config_warning", message=warning)
    relay = Relay(config)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_log_unhandled)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, relay.stop)
    loop.add_signal_handler(signal.SIGHUP, relay.reload, path)
    loop.add_signal_handler(signal.SIGUSR1, relay.log_status)
    try:
        await relay.start()
    except OSError as exc:
        log.error("listen_failed", error=exc.strerror or str(exc))
        for server in relay.servers:
            server.close()
        return EXIT_LISTEN_FAILED
    _sd_notify("READY=1")
    await relay.run_until_stopped()
    _sd_notify("STOPPING=1")
    return 0


def _log_unhandled(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Errors nobody caught in a callback or task: one structured, key-scrubbed log line."""
    exc = context.get("exception")
    get_logger().error("unhandled_error", message=str(context.get("message", "")),
                       exc_info=exc if isinstance(exc, BaseException) else None)


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


def run(config: RelayConfig, path: str) -> int:
    """Run the event loop (uvloop when installed); the exit status."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(config, path))
    return uvloop.run(serve(config, path))
