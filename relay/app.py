"""The daemon: config -> live streams and listeners; signals; reload; orderly shutdown.

SIGHUP reloads the config file. A file that does not validate is logged with every
problem and ignored: the relay keeps running on its last good config. Live streams and
targets whose config did not change keep broadcasting through a reload.

SIGUSR1 writes the status snapshot (every live stream and target) to the log.

The HTTP server (status API, metrics, page: relay/net/http.py), the webhook dispatcher
and the 2-s monitor (stream health, sparkline samples) run on the same loop; they read
only snapshots. `http` settings apply on restart, like `server`; webhooks follow a reload.

SIGINT/SIGTERM: stop accepting, shut publishers out, let every target flush, unpublish
and close, wait at most SHUTDOWN_TIMEOUT, cancel what is left, exit 0.

Recordings (relay/net/recordings.py): once listening, the relay finishes in the
background what an earlier run left (`.part` files); at shutdown the recordings' files
are finalised (patch, fsync, rename) inside the same deadline as the targets, and a remux
still running is cancelled and left for the next start.

Under systemd (Type=notify) the relay reports READY=1 once listening, RELOADING=1 ...
READY=1 around a reload, STOPPING=1 at shutdown, a STATUS= line, and watchdog pings from
this event loop (relay/net/sdnotify.py).
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

from relay.config import ConfigError, LiveStreamConfig, RelayConfig, Secret, load_config, summarize
from relay.fanout.samples import RateHistory
from relay.logs import get_logger, set_known_secrets
from relay.net.http import HttpServer
from relay.net.ingest import IngestProtocol, start_ingest
from relay.net.livestream import LiveStream
from relay.net.monitor import Monitor
from relay.net.recordings import Recordings
from relay.net.sdnotify import Notifier, summary_line
from relay.net.webhook import WebhookDispatcher, WebhookStats
from relay.status import RecordingReady, RelaySnapshot, ReloadResult

SHUTDOWN_TIMEOUT = 4.0  # exit 0 within 5 s of SIGTERM
WEBHOOK_DRAIN = 0.5  # seconds the last webhooks get at shutdown (inside the 5 s)
EXIT_LISTEN_FAILED = 1


class Relay:
    """All the running parts for one config."""

    def __init__(self, config: RelayConfig, path: str | None = None) -> None:
        self.config = config
        self.path = path
        self.webhooks = WebhookDispatcher(config.webhooks, self.known_secrets)
        self.recordings = Recordings(lambda: self.config)
        self.recordings.on_ready.append(self._recording_ready)
        self.live_streams = {ls.name: self._new_live_stream(ls) for ls in config.live_streams}
        self.connections: set[IngestProtocol] = set()
        self.servers: list[asyncio.Server] = []
        self.log = get_logger()
        self.monitor = Monitor(lambda: self.live_streams.values())
        self.http: HttpServer | None = None
        self._stopping = asyncio.Event()

    def _new_live_stream(self, config: LiveStreamConfig) -> LiveStream:
        live = LiveStream(config, self.recordings)
        live.observers.append(self.webhooks.notify)
        return live

    def _recording_ready(self, ready: RecordingReady) -> None:
        """A recording is final (this run's, or a leftover finalised at start): tell its live stream's webhooks."""
        live = self.live_streams.get(ready.live_stream)
        if live is not None:
            live.recording_ready(ready)

    def find(self, stream_key: str) -> LiveStream | None:
        """The live stream whose ingest key this is (constant-time over all keys)."""
        found = self.config.find_live_stream(stream_key)
        return None if found is None else self.live_streams.get(found.name)

    async def start(self) -> None:
        """Bind the listeners (OSError if a port is taken)."""
        server = self.config.server
        self.servers.append(await start_ingest(server.listen_host, server.listen_port, server.app, self.find,
                                               self.connections))
        self._log_listening("rtmp", self.servers[-1].sockets)
        if server.tls_listen_host is not None and server.tls_listen_port is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            assert server.tls_cert_file and server.tls_key_file
            context.load_cert_chain(server.tls_cert_file, server.tls_key_file)
            self.servers.append(await start_ingest(server.tls_listen_host, server.tls_listen_port, server.app,
                                                   self.find, self.connections, ssl_context=context))
            self._log_listening("rtmps", self.servers[-1].sockets)
        self.monitor.start()
        await self.webhooks.start()
        http = self.config.http
        if http.listen_port is not None:
            self.http = HttpServer(self, http)
            await self.http.start()
            self._log_listening("http", self.http.sockets)
        self.recordings.recover()

    def _log_listening(self, scheme: str, sockets: Iterable[Any]) -> None:
        for sock in sockets:
            host, port = sock.getsockname()[:2]
            app = {"app": self.config.server.app} if scheme != "http" else {}
            self.log.info("relay_listening", scheme=scheme, host=host, port=port, **app)

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
        if new.http != self.config.http:
            self.log.warning("config_http_unchanged", reason="http settings apply on restart")
            new = new.model_copy(update={"http": self.config.http})
        self.webhooks.reconfigure(new.webhooks)
        set_known_secrets([*self.config.all_secrets(), *new.all_secrets()])
        wanted = {ls.name: ls for ls in new.live_streams}
        for name in [n for n in self.live_streams if n not in wanted]:
            self.live_streams.pop(name).shut_down("live stream removed from the config")
        for name, ls_config in wanted.items():
            live = self.live_streams.get(name)
            if live is None:
                self.live_streams[name] = self._new_live_stream(ls_config)
            elif live.config != ls_config:
                live.reconfigure(ls_config)
        self.config = new
        self.log.info("config_reloaded", live_streams=len(self.live_streams))

    async def reload_via_api(self) -> ReloadResult:
        """POST /api/v1/reload: the SIGHUP reload, answering with the problems of an invalid file.

        Adapter until Relay.reload_from(path) (the reload work) lands: validates off the
        event loop, then applies through reload(), which reads the file again.
        """
        if self.path is None:
            return ReloadResult(False, ("the relay was not started from a config file",))
        try:
            await asyncio.to_thread(load_config, self.path)
        except ConfigError as exc:
            self.log.error("config_reload_failed", problems=list(exc.problems), kept="last good config")
            return ReloadResult(False, tuple(exc.problems))
        self.reload(self.path)
        return ReloadResult(True, (), summarize(self.config))

    def snapshot(self) -> RelaySnapshot:
        """The state of every live stream and target, at this moment."""
        return RelaySnapshot(tuple(live.snapshot() for live in self.live_streams.values()), taken_at=time.time())

    @property
    def history(self) -> RateHistory:
        """Bitrate samples of every live stream and target (the status page's sparklines)."""
        return self.monitor.history

    def health_checks(self) -> dict[str, bool]:
        """/healthz: the event loop keeps time, and every listener accepts connections."""
        checks = {"event_loop": self.monitor.loop_healthy()}
        for i, server in enumerate(self.servers):
            checks["rtmp_listener" if i == 0 else "rtmps_listener"] = server.is_serving()
        if self.http is not None:
            checks["http_listener"] = self.http.serving()
        return checks

    def known_secrets(self) -> Iterable[Secret]:
        """Every key of the current config."""
        return self.config.all_secrets()

    def webhook_stats(self) -> tuple[WebhookStats, ...]:
        """Counters of every webhook endpoint."""
        return self.webhooks.stats()

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
        # The HTTP server closes while the targets flush and unpublish, inside the same 4 s.
        await asyncio.gather(*(live.wait_targets_stopped(SHUTDOWN_TIMEOUT) for live in self.live_streams.values()),
                             self.recordings.wait_finalised(SHUTDOWN_TIMEOUT),
                             *([self.http.stop()] if self.http is not None else []))
        await self.recordings.close()
        await self.monitor.stop()
        await self.webhooks.close(WEBHOOK_DRAIN)
        self.log.info("relay_stopped")


async def serve(config: RelayConfig, path: str) -> int:
    """Run the relay until SIGINT or SIGTERM; the exit status."""
    set_known_secrets(config.all_secrets())
    log = get_logger()
    for warning in config.warnings:
        log.warning("config_warning", message=warning)
    relay = Relay(config, path)
    notifier = Notifier()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_log_unhandled)
    reloads: set[asyncio.Task[None]] = set()

    def summary() -> str:
        return summary_line(relay.snapshot())

    def stop() -> None:
        notifier.stopping()
        relay.stop()

    def reload() -> None:
        task = loop.create_task(_reload(relay, path, notifier, summary))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGUSR1, relay.log_status)
    try:
        await relay.start()
    except OSError as exc:
        log.error("listen_failed", error=exc.strerror or str(exc))
        for server in relay.servers:
            server.close()
        if relay.http is not None:
            await relay.http.stop()
        await relay.monitor.stop()
        await relay.webhooks.close(0)
        return EXIT_LISTEN_FAILED
    notifier.ready(summary())
    keep_alive = loop.create_task(notifier.keep_alive(summary), name="sd_notify keep-alive")
    try:
        await relay.run_until_stopped()
    finally:
        keep_alive.cancel()
        notifier.close()
    return 0


async def _reload(relay: Relay, path: str, notifier: Notifier, summary: Callable[[], str]) -> None:
    """SIGHUP: reload the config file, inside RELOADING=1 ... READY=1 for systemd."""
    with notifier.reloading(summary):
        relay.reload(path)


def _log_unhandled(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Errors nobody caught in a callback or task: one structured, key-scrubbed log line."""
    exc = context.get("exception")
    get_logger().error("unhandled_error", message=str(context.get("message", "")),
                       exc_info=exc if isinstance(exc, BaseException) else None)


def run(config: RelayConfig, path: str) -> int:
    """Run the event loop (uvloop when installed); the exit status."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(config, path))
    return uvloop.run(serve(config, path))
