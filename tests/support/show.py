"""A live show for the status tests: a publisher that keeps going, one target broadcasting
(nginx-rtmp), one that cannot be reached, and the relay's HTTP API behind a token.

`live_show()` is a context manager, so a test module can share one show between its
tests (a module-scoped fixture): starting it takes seconds, asking it questions does not.
At the end everything the daemon wrote is searched for the keys and the token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.ffmpeg import FfmpegProcess
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import free_port, wait_until
from testbed.relay_proc import RelayProcess, write_config

INGEST_KEY = "show-ingest-KEY-71c0e5a9f2"
TARGET_KEY = "show-target-KEY-0d4b8e61aa"
DEAD_KEY = "show-dead-KEY-92f1c3b7e0"
TOKEN = "show-http-TOKEN-4f7a09c2e18d"
SECRETS = (INGEST_KEY, TARGET_KEY, DEAD_KEY, TOKEN)


@dataclass
class Show:
    """The running show and a small client for its API."""

    daemon: RelayProcess
    nginx: NginxRtmp
    publisher: FfmpegProcess
    config_path: Path
    config: dict[str, Any]
    http_port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def request(self, path: str, *, method: str = "GET", token: str | None = TOKEN) -> tuple[int, bytes, Any]:
        """(status, raw body, headers) of one call."""
        req = urllib.request.Request(self.base + path, method=method, data=b"" if method == "POST" else None)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers

    def get_json(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, body, _ = self.request(path, **kwargs)
        return status, json.loads(body)

    def live_stream(self) -> dict[str, Any]:
        status, body = self.get_json("/api/v1/live-streams/studio")
        assert status == 200, body
        data: dict[str, Any] = body["data"]
        return data

    def wait_for_status(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0,
                        what: str = "a status") -> dict[str, Any]:
        """Poll the API until `predicate(live stream)` holds (the API is the thing under test)."""
        found: dict[str, Any] = {}

        def check() -> bool:
            nonlocal found
            found = self.live_stream()
            return predicate(found)

        wait_until(check, timeout, what, interval=0.2, abort=self._exited)
        return found

    def _exited(self) -> str | None:
        return "the relay exited" if self.daemon.proc.poll() is not None else None


def target(live: dict[str, Any], passthrough: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in live["simulcast_targets"] if t["passthrough"] == passthrough)
    return found


@contextmanager
def live_show(workdir: Path, source_flv: Path, http: dict[str, Any] | None = None) -> Iterator[Show]:
    """Start nginx, the relay and a looping publisher; wait until both targets show their status."""
    nginx = NginxRtmp(workdir / "nginx", (RtmpApp("live", record=False),))
    (workdir / "nginx").mkdir()
    nginx.start()
    http_port = free_port()
    config = {
        "server": {"listen": f"127.0.0.1:{free_port()}", "app": "live"},
        "http": {"listen": f"127.0.0.1:{http_port}", "token": TOKEN, "request_timeout": 1, **(http or {})},
        "live_streams": [{
            "name": "studio", "stream_key": INGEST_KEY, "reconnect_window": 0,
            "simulcast_targets": [
                {"url": nginx.url("live"), "stream_key": TARGET_KEY, "passthrough": "nginx"},
                {"url": "rtmp://127.0.0.1:1/app", "stream_key": DEAD_KEY, "passthrough": "nowhere",
                 "reconnect": {"initial_delay": 1, "max_delay": 2}},
            ],
        }],
    }
    path = write_config(workdir / "relay.yaml", config)
    daemon = RelayProcess(path)
    publisher: FfmpegProcess | None = None
    try:
        port = daemon.port
        daemon.wait_for("relay_listening", scheme="http")
        publisher = FfmpegProcess(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-re",
                                   "-stream_loop", "-1", "-i", str(source_flv), "-c", "copy", "-f", "flv",
                                   f"rtmp://127.0.0.1:{port}/live/{INGEST_KEY}"])
        daemon.wait_for("target_status", target="nginx", to="broadcasting", timeout=30)
        daemon.wait_for("target_status", target="nowhere", to="errored", timeout=30)
        yield Show(daemon, nginx, publisher, path, config, http_port)
    finally:
        if publisher is not None:
            publisher.stop()
        daemon.kill()
        nginx.stop()
    leaked = [key for key in SECRETS if key in daemon.output]
    assert not leaked, f"{len(leaked)} secret(s) leaked into the relay's output"
    unparsed = [e["line"] for e in daemon.events if e.get("event") == "<unparsed>"]
    assert not unparsed, "the relay wrote lines that are not JSON log events:\n" + "".join(unparsed)[:3000]
