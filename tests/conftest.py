"""Shared fixtures: the test clip, a recording nginx-rtmp, a one-shot ffmpeg RTMP server, a test CA and stunnel,
the relay daemon, and a fake network for target links.

Helpers live in tests/support/ (FLV comparison, TLS, fake platforms...) and, when the benchmarks use them
too, in testbed/ (free ports, publishing with ffmpeg, nginx-rtmp, the relay as a process, the clip).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, settings

from testbed.ffmpeg import FfmpegListener, FfmpegProcess, start_publish
from testbed.media import SOURCE_CLIP_ARGS, cached_clip, source_clip
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import distinct_ports, free_port
from testbed.relay_proc import RelayProcess, write_config
from tests.support.fakenetwork import FakeNetwork
from tests.support.tls import Stunnel, TestPki, make_pki

_BIND_ATTEMPTS = 3  # a free port can be taken by someone else between our probe and the server's bind

# Hypothesis times each example (a 200 ms deadline) and its data generation (the too_slow
# health check). The suite runs its tests in parallel on a machine that may have 2 cores:
# a test then waits for the CPU, which says nothing about the code. Tests assert behaviour,
# never time (a test that must bound work counts it: tests/unit/rtmp/test_hostile_input.py).
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Whatever logging configuration a test sets up (the level, the stream, console or JSON) ends with it:
    a test that captures debug lines must not depend on which tests its worker ran before."""
    from relay.runtime import logs
    saved, console = structlog.get_config(), logs._console
    yield
    structlog.configure(**saved)
    logs._console = console


@pytest.fixture(scope="session")
def source_flv() -> Path:
    """The 6 s H.264 High + AAC-LC test clip (FLV), cached in .cache/media/."""
    return source_clip()


@pytest.fixture(scope="session")
def long_clip() -> Path:
    """The test clip's recipe, 50 s long (cached too): a publisher that stays live through a long scenario."""
    args = list(SOURCE_CLIP_ARGS)
    args[args.index("-t") + 1] = "50"
    return cached_clip(tuple(args), "source-h264-50s")


@pytest.fixture
def nginx_rtmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., NginxRtmp]]:
    """Factory: `nginx_rtmp()` starts nginx with app `live` recording every stream; pass RtmpApp(...)s for more.

    Every instance is stopped gracefully at teardown.
    """
    started: list[NginxRtmp] = []

    def start(*apps: RtmpApp, server_directives: str = "chunk_size 4096;") -> NginxRtmp:
        for attempt in range(_BIND_ATTEMPTS):
            nginx = NginxRtmp(
                tmp_path_factory.mktemp("nginx"),
                apps or (RtmpApp("live", record=True),),
                server_directives=server_directives,
            )
            started.append(nginx)
            try:
                nginx.start()
                return nginx
            except RuntimeError:  # nginx exited: retry only if it lost the race for the port
                if "Address already in use" not in nginx.log_text() or attempt == _BIND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    yield start
    for nginx in started:
        nginx.stop()


@pytest.fixture
def ffmpeg_listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., FfmpegListener]]:
    """Factory: `ffmpeg_listener(app="live", stream_key="test-key")` is listening when returned; `.url`, `.output`."""
    started: list[FfmpegListener] = []

    def start(app: str = "live", stream_key: str = "test-key", output: Path | None = None) -> FfmpegListener:
        for attempt in range(_BIND_ATTEMPTS):
            out = output or tmp_path_factory.mktemp("ffmpeg-listener") / "received.flv"
            listener = FfmpegListener(out, app=app, stream_key=stream_key)
            started.append(listener)
            try:
                listener.wait_listening()
                return listener
            except RuntimeError:
                if "Address already in use" not in listener.stderr_text() or attempt == _BIND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    yield start
    for listener in started:
        listener.stop()


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """A trustme CA and a server certificate it issued for localhost and 127.0.0.1 (PEM files in tmp)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def stunnel(tmp_path_factory: pytest.TempPathFactory, test_pki: TestPki) -> Iterator[Callable[..., Stunnel]]:
    """Factory: `stunnel(nginx.port)` is a stunnel4 TLS server (test CA's certificate) in front of that port.

    Accepting connections when returned; stopped at teardown.
    """
    started: list[Stunnel] = []

    def start(connect_port: int, service_options: str = "") -> Stunnel:
        for attempt in range(_BIND_ATTEMPTS):
            tunnel = Stunnel(tmp_path_factory.mktemp("stunnel"), test_pki, connect_port,
                             service_options=service_options)
            started.append(tunnel)
            try:
                tunnel.start()
                return tunnel
            except RuntimeError:
                if "Address already in use" not in tunnel.log_text() or attempt == _BIND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    yield start
    for tunnel in started:
        tunnel.stop()


@pytest.fixture
def relay_daemon(tmp_path: Path) -> Iterator[Callable[..., RelayProcess]]:
    """Factory: the relay daemon with one live stream `studio` and these targets.

    `relay_daemon(targets, ingest_key=..., secrets=..., server={...}, reconnect_window=0, extra={...})`;
    `extra` adds top-level sections (http, webhooks, health...).
    At teardown the daemon is killed and everything it wrote is searched for the ingest
    key and every key in `secrets` (none may appear), and every line must be a JSON log event.
    """
    started: list[tuple[RelayProcess, tuple[str, ...]]] = []

    def start(targets: list[dict[str, Any]], *, ingest_key: str, secrets: Iterable[str] = (),
              server: dict[str, Any] | None = None, reconnect_window: float = 0,
              extra: dict[str, Any] | None = None, live_stream: dict[str, Any] | None = None) -> RelayProcess:
        rtmp_port, http_port = distinct_ports()  # the OS may hand the same port out twice in a row
        given_http = str((extra or {}).get("http", {}).get("listen", ""))
        while given_http.endswith(f":{rtmp_port}") or rtmp_port == http_port:  # an http port chosen by the caller
            rtmp_port = free_port()
        config = {
            "server": {"listen": f"127.0.0.1:{rtmp_port}", "app": "live", **(server or {})},
            "http": {"listen": f"127.0.0.1:{http_port}"},
            "live_streams": [{"name": "studio", "stream_key": ingest_key, "reconnect_window": reconnect_window,
                              "simulcast_targets": targets, **(live_stream or {})}],
            **(extra or {}),
        }
        proc = RelayProcess(write_config(tmp_path / f"relay{len(started)}.yaml", config))
        started.append((proc, (ingest_key, *secrets)))
        return proc

    yield start
    for proc, keys in started:
        proc.kill()
        leaked = [key for key in keys if key in proc.output]
        assert not leaked, f"{len(leaked)} stream key(s) leaked into the relay's output"
        # Every failure must be a log event, not a traceback from a default handler.
        unparsed = [e["line"] for e in proc.events if e.get("event") == "<unparsed>"]
        assert not unparsed, "the relay wrote lines that are not JSON log events:\n" + "".join(unparsed)[:3000]


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    """Every target link the supervisor opens runs over a fake transport to an in-process platform (no sockets)."""
    net = FakeNetwork()
    monkeypatch.setattr("relay.targets.supervisor.open_link", net.open_link)  # each attempt's link
    monkeypatch.setattr("relay.targets.switch.open_link", net.open_link)  # a reconnect request's second link
    return net


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `long` first: in a parallel run (scripts/test: pytest-xdist, one test at a
    time to each worker in this order) a one-minute test started last would leave the other
    workers idle while it ends. The rest keep their order; a serial run is unchanged but for
    the order."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture
def publishers() -> Iterator[Callable[[Path, str], FfmpegProcess]]:
    """Factory: start an ffmpeg publisher in real time; any still running are stopped at teardown."""
    started: list[FfmpegProcess] = []

    def start(source: Path, url: str) -> FfmpegProcess:
        proc = start_publish(url, source, realtime=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
