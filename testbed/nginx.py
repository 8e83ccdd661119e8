"""A real nginx with the RTMP module, in a private prefix directory on a free port.

Used as a recording sink (`record all`) to check what a relay delivered, and, with raw
directives such as `push rtmp://...;`, as the reference relay the benchmark compares with.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testbed.ports import accepts_connections, free_port, wait_until

NGINX_RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


@dataclass(frozen=True)
class RtmpApp:
    """One `application NAME { ... }` block: raw directives, plus recording of every stream when `record`."""

    name: str
    directives: str = "live on;"
    record: bool = False


class NginxRtmp:
    """nginx + nginx-rtmp under `prefix`; `start()` returns once the port accepts connections."""

    def __init__(
        self,
        prefix: Path,
        apps: Sequence[RtmpApp] = (RtmpApp("live", record=True),),
        *,
        server_directives: str = "chunk_size 4096;",
        port: int | None = None,
        worker_connections: int = 256,
        main_directives: str = "",
    ) -> None:
        self.prefix = prefix
        self.apps = {app.name: app for app in apps}
        self.server_directives = server_directives
        self.worker_connections = worker_connections
        self.main_directives = main_directives  # top-level blocks, e.g. an `http {}` with rtmp_stat
        self.port = port if port is not None else free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    # --- paths and URLs ----------------------------------------------------------------

    @property
    def conf_path(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    @property
    def record_dir(self) -> Path:
        """Recordings land in record_dir/APP/STREAM.flv."""
        return self.prefix / "record"

    def url(self, app: str = "live", stream_key: str | None = None) -> str:
        """rtmp://127.0.0.1:PORT/APP, or .../APP/KEY when a stream key is given."""
        base = f"rtmp://127.0.0.1:{self.port}/{app}"
        return base if stream_key is None else f"{base}/{stream_key}"

    def recorded_flv(self, stream_key: str, app: str | None = None) -> Path:
        """Where the recording of `stream_key` is (the only recording app unless `app` is given)."""
        if app is None:
            recording = [a.name for a in self.apps.values() if a.record]
            if len(recording) != 1:
                raise ValueError(f"say which app: recording apps are {recording}")
            app = recording[0]
        return self.record_dir / app / f"{stream_key}.flv"

    def log_text(self) -> str:
        """The error log (level info: connects, publishes, disconnects) so far."""
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    # --- lifecycle -----------------------------------------------------------------------

    def config(self) -> str:
        """The nginx.conf this instance runs with."""
        apps = []
        for app in self.apps.values():
            record = ""
            if app.record:
                record = f"record all; record_path {self.record_dir / app.name}; record_unique off; record_suffix .flv;"
            apps.append(
                f"        application {app.name} {{\n            {app.directives}\n            {record}\n        }}"
            )
        # A master running as root would drop its worker to `nobody`, which cannot write
        # into pytest's 0700 temp dirs.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return (
            f"daemon off;\nmaster_process on;\nworker_processes 1;\n{user}"
            f"pid {self.prefix / 'nginx.pid'};\nerror_log {self.error_log} info;\n"
            f"load_module {NGINX_RTMP_MODULE};\n"
            f"events {{ worker_connections {self.worker_connections}; }}\n"
            f"{self.main_directives}"
            "rtmp {\n    server {\n"
            f"        listen 127.0.0.1:{self.port};\n        {self.server_directives}\n"
            + "\n".join(apps)
            + "\n    }\n}\n"
        )

    def start(self, timeout: float = 10.0) -> None:
        """Write the config, start nginx in the foreground, wait until the port accepts connections."""
        if not NGINX_RTMP_MODULE.exists():
            raise FileNotFoundError(f"{NGINX_RTMP_MODULE} missing: install libnginx-mod-rtmp (scripts/test does)")
        self.prefix.mkdir(parents=True, exist_ok=True)
        for app in self.apps.values():
            if app.record:
                (self.record_dir / app.name).mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.config())
        cmd = ["nginx", "-p", str(self.prefix), "-c", str(self.conf_path), "-e", str(self.error_log)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        proc = self.proc
        wait_until(
            lambda: accepts_connections(self.port),
            timeout,
            f"nginx-rtmp on port {self.port}",
            abort=lambda: None if proc.poll() is None else f"nginx exited {proc.returncode}:\n{self.log_text()}",
        )

    def stop(self, grace: float = 3.0, timeout: float = 5.0) -> None:
        """SIGQUIT (graceful: sessions end, recordings close); SIGTERM after `grace` s; SIGKILL after `timeout` more.

        A graceful nginx waits for connected clients, which a test that failed half-way may
        still have: hence the short grace. Recordings lose nothing either way, since
        nginx-rtmp writes every tag as it arrives.
        """
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGQUIT, grace), (signal.SIGTERM, timeout)):
            proc.send_signal(sig)
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                pass
        proc.kill()
        proc.wait()

    # --- waiting on what nginx did ---------------------------------------------------------

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait until the error log has a line matching the regex `pattern`; return the first match."""
        found: list[re.Match[str]] = []

        def seen() -> bool:
            match = re.search(pattern, self.log_text(), re.MULTILINE)
            if match:
                found.append(match)
            return match is not None

        wait_until(seen, timeout, f"nginx log line /{pattern}/ in {self.error_log}", interval=0.05)
        return found[0]

    def publishers(self, stream_key: str) -> dict[int, bool]:
        """nginx connection number -> has it disconnected, for every client that published `stream_key`."""
        log = self.log_text()
        conns = [int(n) for n in re.findall(rf"\*(\d+) publish: name='{re.escape(stream_key)}'", log)]
        return {n: re.search(rf"\*{n} disconnect", log) is not None for n in conns}

    def wait_published(self, stream_key: str, timeout: float = 10.0) -> None:
        """Wait until some client has published `stream_key`."""
        wait_until(
            lambda: bool(self.publishers(stream_key)), timeout, f"a publisher of {stream_key!r} on nginx", interval=0.05
        )

    def wait_unpublished(self, stream_key: str, timeout: float = 10.0) -> None:
        """Wait until `stream_key` was published and every publisher of it has disconnected.

        nginx-rtmp writes each tag to the recording as it arrives and closes the file when
        the publisher goes, so the recording is then complete.
        """
        wait_until(
            lambda: (p := self.publishers(stream_key)) != {} and all(p.values()),
            timeout,
            f"the publisher of {stream_key!r} to leave nginx",
            interval=0.05,
        )
