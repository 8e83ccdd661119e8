"""The daemon: config -> live streams and listeners; signals; reload; orderly shutdown.

Reload (SIGHUP, and the HTTP API) goes through `Relay.reload_from(path)`, one at a time,
and is carried out by relay/reload.py: prepared beside the running config, then swapped
in all or nothing.

The HTTP server (status API, metrics, page: relay/api/server.py), the webhook dispatcher
and the 2-s sampler (stream health, sparkline samples) run on the same loop; they read
only snapshots. `http` settings apply on restart, like the listen addresses, except its
token, which follows a reload (relay/reload.py); webhooks follow a reload.

SIGUSR1 writes the status snapshot (every live stream and target) and the event loop's
worst stall to the log.

SIGINT/SIGTERM: stop accepting, shut publishers out, let every target flush, unpublish
and close, wait at most SHUTDOWN_TIMEOUT, cancel what is left, exit 0.

Recordings (relay/recording/sessions.py): once listening, the relay finishes in the
background what an earlier run left (`.part` files); at shutdown the recordings' files
are finalised (patch, fsync, rename) inside the same deadline as the targets, and a remux
still running is cancelled and left for the next start.

Once listening, the relay logs `relay_ready`: what to put in OBS, the live streams by name
and the status page (relay/runtime/announce.py). Under systemd (Type=notify) it reports
READY=1 then, RELOADING=1 ... READY=1 around a reload, STOPPING=1 at shutdown, a STATUS=
line, and watchdog pings from this event loop (relay/runtime/sdnotify.py).
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import time
from collections.abc import Iterable
from typing import Any

from relay.api.history import RateHistory
from relay.api.sampler import Sampler
from relay.api.server import HttpServer
from relay.api.video.catalog import Catalog
from relay.api.video.opening import open_catalog
from relay.api.webhooks import WebhookDispatcher, WebhookStats
from relay.config import Bound, LiveStreamConfig, RelayConfig, Secret
from relay.ingest.listeners import Ingest, Listener, server_tls_context
from relay.ingest.publisher import IngestProtocol
from relay.live.stream import LiveStream
from relay.recording.sessions import Recordings
from relay.reload import reload_config
from relay.runtime.announce import announce_ready
from relay.runtime.fdlimit import needed_fds, raise_nofile_limit, under_systemd
from relay.runtime.gcpolicy import settle_after_start
from relay.runtime.logs import add_known_secrets, get_logger
from relay.runtime.loopmonitor import LoopMonitor
from relay.runtime.memtrim import malloc_trim, rss_kb
from relay.runtime.sdnotify import Notifier, summary_line
from relay.runtime.writetick import write_ticker
from relay.status import RecordingReady, RelaySnapshot, ReloadResult
from relay.store.store import StoreError

SHUTDOWN_TIMEOUT = 4.0  # exit 0 within 5 s of SIGTERM
WEBHOOK_DRAIN = 0.5  # seconds the last webhooks get at shutdown (inside the 5 s)
EXIT_LISTEN_FAILED = 1
# Every HOUSEKEEPING_INTERVAL seconds: once a burst of at least BURST_CONNECTIONS ingest
# connections (a flood, a scan) has come and mostly gone, give the memory it freed back to
# the system (memtrim.py).
HOUSEKEEPING_INTERVAL = 5.0
BURST_CONNECTIONS = 32


class Relay:
    """All the running parts for one config."""

    def __init__(self, config: RelayConfig, path: str | None = None) -> None:
        self.config = config
        self.path = path
        self.webhooks = WebhookDispatcher(config.webhooks, self.known_secrets)
        self.recordings = Recordings(lambda: self.config)
        self.recordings.on_ready.append(self._recording_ready)
        self.live_streams = {ls.name: self.new_live_stream(ls) for ls in config.live_streams}
        self.ingest = Ingest(config.server, self.find)
        self.sampler = Sampler(lambda: self.live_streams.values())
        self.loop_monitor = LoopMonitor()
        self.http: HttpServer | None = None
        self.catalog: Catalog | None = None  # the /video/v1 API's live streams (relay/api/video/)
        self.disabled: set[str] = set()  # live streams disabled through the API: their key is refused
        self.bound: list[Bound] = []  # every listening socket, for relay_ready
        self.log = get_logger()
        self._stopping = asyncio.Event()
        self._reloading = asyncio.Lock()
        # systemd's notify socket, when run under it (a no-op otherwise): reloads by SIGHUP and
        # by the HTTP API both report RELOADING=1 ... READY=1.
        self.notifier = Notifier()
        self._housekeeping: asyncio.TimerHandle | None = None

    def new_live_stream(self, config: LiveStreamConfig) -> LiveStream:
        """A live stream of this relay (its recordings, its webhooks), not running yet."""
        live = LiveStream(config, self.recordings)
        live.observers.append(self.webhooks.notify)
        return live

    def _recording_ready(self, ready: RecordingReady) -> None:
        """A recording is final (this run's, or a leftover finalised at start): tell its live stream's webhooks."""
        live = self.live_streams.get(ready.live_stream)
        if live is not None:
            live.recording_ready(ready)

    @property
    def connections(self) -> set[IngestProtocol]:
        """Every ingest connection."""
        return self.ingest.connections

    @property
    def servers(self) -> list[Listener]:
        """The listeners."""
        return self.ingest.servers

    def find(self, stream_key: str) -> LiveStream | None:
        """The live stream whose ingest key this is (constant-time over all keys, the API's too)."""
        found: LiveStream | None = None
        for live in self.live_streams.values():  # no early exit
            if live.config.stream_key.matches(stream_key) and live.name not in self.disabled:
                found = live
        return found

    async def start(self) -> None:
        """Bind the listeners (OSError if a port is taken, ssl.SSLError if the certificate does not load)."""
        server = self.config.server
        await self.ingest.listen(server.listen_host, server.listen_port)
        self._log_listening("rtmp", self.servers[-1].sockets)
        if server.tls_listen_host is not None and server.tls_listen_port is not None:
            assert server.tls_cert_file and server.tls_key_file
            self.ingest.tls_context = await asyncio.to_thread(server_tls_context, server.tls_cert_file,
                                                              server.tls_key_file)
            await self.ingest.listen_tls(server.tls_listen_host, server.tls_listen_port)
            self._log_listening("rtmps", self.servers[-1].sockets)
        self.sampler.start()
        await self.webhooks.start()
        self.catalog = await open_catalog(self, self.webhooks.notify)
        http = self.config.http
        if http.listen_port is not None:
            self.http = HttpServer(self, http, token=lambda: self.config.http.token, catalog=lambda: self.catalog,
                                   access_tokens=lambda: self.config.http.access_tokens)
            await self.http.start()
            self._log_listening("http", self.http.sockets)
        self.recordings.recover()

    def _log_listening(self, scheme: str, sockets: Iterable[Any]) -> None:
        for sock in sockets:
            host, port = sock.getsockname()[:2]
            app = {"app": self.config.server.app} if scheme != "http" else {}
            self.log.info("relay_listening", scheme=scheme, host=host, port=port, **app)
            self.bound.append(Bound(scheme, host, port))

    # -- reload (relay/reload.py) ------------------------------------------------------------

    async def reload_via_api(self) -> ReloadResult:
        """POST /api/v1/reload: the same reload as SIGHUP."""
        if self.path is None:
            return ReloadResult(False, ("the relay was not started from a config file",))
        return await self.reload_from(self.path)

    async def reload_from(self, path: str) -> ReloadResult:
        """Re-read the config file and apply it all or nothing; keep the current one if anything is wrong.

        Under systemd: RELOADING=1 (with MONOTONIC_USEC) before, READY=1 with the new summary after,
        whatever the outcome."""
        async with self._reloading:
            with self.notifier.reloading(lambda: summary_line(self.snapshot())):
                return await reload_config(self, path)

    # -- status --------------------------------------------------------------------------

    def snapshot(self) -> RelaySnapshot:
        """The state of every live stream and target, at this moment."""
        return RelaySnapshot(tuple(live.snapshot() for live in self.live_streams.values()), taken_at=time.time())

    @property
    def history(self) -> RateHistory:
        """Bitrate samples of every live stream and target (the status page's sparklines)."""
        return self.sampler.history

    def health_checks(self) -> dict[str, bool]:
        """/healthz: the event loop keeps time, and every listener accepts connections."""
        checks = {"event_loop": self.loop_monitor.healthy()}
        for i, server in enumerate(self.servers):
            checks["rtmp_listener" if i == 0 else "rtmps_listener"] = server.is_serving()
        if self.http is not None:
            checks["http_listener"] = self.http.serving()
        return checks

    def known_secrets(self) -> Iterable[Secret]:
        """Every key of the current config and of the API's live streams."""
        api = tuple(self.catalog.secrets()) if self.catalog is not None else ()
        return (*self.config.all_secrets(), *api)

    def api_live_streams(self) -> frozenset[str]:
        """The live streams the /video/v1 API made (a reload keeps them)."""
        return frozenset(self.catalog.records) if self.catalog is not None else frozenset()

    def api_conflicts(self, config: RelayConfig) -> list[str]:
        """Why a reloaded file cannot run beside the API's live streams (a name or a key of theirs)."""
        return self.catalog.conflicts(config) if self.catalog is not None else []

    def api_configs(self, config: RelayConfig) -> dict[str, LiveStreamConfig]:
        """The API's live streams as they run under a reloaded file's defaults."""
        return self.catalog.running_configs(config) if self.catalog is not None else {}

    def webhook_stats(self) -> tuple[WebhookStats, ...]:
        """Counters of every webhook endpoint."""
        return self.webhooks.stats()

    def log_status(self) -> None:
        """Write the snapshot to the log (SIGUSR1), for operators without the status API."""
        self.log.info("relay_status", **self.snapshot().to_dict())
        self.log.info("loop_lag", **self.loop_monitor.summary(), ingest_connections=len(self.connections))

    # -- lifecycle -------------------------------------------------------------------------

    def start_housekeeping(self) -> None:
        """Look every HOUSEKEEPING_INTERVAL seconds for a burst of connections that has passed."""
        self._housekeeping = asyncio.get_running_loop().call_later(HOUSEKEEPING_INTERVAL, self._housekeep)

    def _housekeep(self) -> None:
        admission = self.ingest.settings.admission
        if admission.burst_passed(BURST_CONNECTIONS):
            arrived = admission.arrived
            admission.reset_burst()
            before = rss_kb()
            started = time.perf_counter()
            if malloc_trim():
                took_ms = (time.perf_counter() - started) * 1000
                self.log.info("memory_trimmed", rss_kb_before=before, rss_kb_after=rss_kb(),
                              took_ms=round(took_ms, 1), connections=arrived, open_connections=admission.open)
        self.start_housekeeping()

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the daemon to shut down (signal handler)."""
        self._stopping.set()

    async def run_until_stopped(self) -> None:
        """Serve until stop(), then shut down in order."""
        await self._stopping.wait()
        self.log.info("relay_stopping")
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        self.ingest.close()
        for live in self.live_streams.values():
            live.shut_down("relay shutting down")
        # The HTTP server closes while the targets flush and unpublish, inside the same 4 s.
        await asyncio.gather(*(live.wait_targets_stopped(SHUTDOWN_TIMEOUT) for live in self.live_streams.values()),
                             self.recordings.wait_finalised(SHUTDOWN_TIMEOUT),
                             *([self.http.stop()] if self.http is not None else []))
        await self.recordings.close()
        if self.catalog is not None:
            await self.catalog.store.close()
        await self.sampler.stop()
        await self.webhooks.close(WEBHOOK_DRAIN)
        self.loop_monitor.stop()
        self.log.info("loop_lag", **self.loop_monitor.summary())
        self.log.info("relay_stopped")


def _check_fd_limit(config: RelayConfig) -> None:
    log = get_logger()
    systemd = under_systemd()
    limit = raise_nofile_limit(raise_soft=not systemd)
    fields: dict[str, Any] = {"soft": limit.soft, "hard": limit.hard, "set_by": "LimitNOFILE" if systemd else "relay"}
    if limit.before != limit.soft:
        fields["raised_from"] = limit.before
    log.info("fd_limit", **fields)
    targets = sum(len(ls.simulcast_targets) for ls in config.live_streams)
    needed = needed_fds(config.server.limits.max_connections, targets, len(config.live_streams))
    if limit.soft < needed:
        log.warning("fd_limit_low", soft=limit.soft, needed=needed,
                    reason="server.limits.max_connections and the targets can need more file descriptors; "
                           "raise LimitNOFILE= (systemd) or ulimit -Hn, or lower max_connections")


async def serve(config: RelayConfig, path: str) -> int:
    """Run the relay until SIGINT or SIGTERM; the exit status."""
    add_known_secrets(config.all_secrets())
    log = get_logger()
    for warning in config.warnings:
        log.warning("config_warning", message=warning)
    _check_fd_limit(config)
    relay = Relay(config, path)
    notifier = relay.notifier
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_log_unhandled)
    reloads: set[asyncio.Task[ReloadResult]] = set()

    def summary() -> str:
        return summary_line(relay.snapshot())

    def stop() -> None:
        notifier.stopping()
        relay.stop()

    def reload() -> None:
        if relay.stopping:
            return  # shutting down (or never started): the loop's executor may be gone already
        task = loop.create_task(relay.reload_from(path))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGUSR1, relay.log_status)
    try:
        await relay.start()
    except (OSError, ssl.SSLError, StoreError) as exc:
        if isinstance(exc, StoreError):
            log.error("store_failed", error=str(exc))
        else:
            log.error("listen_failed", error=exc.strerror or str(exc))
        relay.stop()  # a SIGHUP from now on is ignored
        relay.ingest.close()
        if relay.http is not None:
            await relay.http.stop()
        await relay.sampler.stop()
        await relay.webhooks.close(0)
        return EXIT_LISTEN_FAILED
    settle_after_start()  # before the loop monitor: its one full collection is start-up, not a stall
    relay.loop_monitor.start()
    write_ticker().observer = relay.loop_monitor.observe  # its lateness is the loop's, while streams are live
    relay.start_housekeeping()
    announce_ready(relay.config, relay.bound)
    notifier.ready(summary())
    keep_alive = loop.create_task(notifier.keep_alive(summary), name="sd_notify keep-alive")
    try:
        await relay.run_until_stopped()
    finally:
        keep_alive.cancel()
        notifier.close()
    return 0


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
