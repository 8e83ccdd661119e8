"""TLS for end-to-end tests: a test CA made with trustme, and a real stunnel4 in front of nginx-rtmp.

stunnel terminates RTMPS exactly as a platform's edge does (Twitch, YouTube and Facebook
run RTMPS as TLS around plain RTMP), so nginx behind it records what the relay sent
through a real TLS session.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import trustme

from testbed.ports import accepts_connections, free_port, wait_until

STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel") or "stunnel4"


@dataclass(frozen=True)
class TestPki:
    """PEM files of a test CA and of a server certificate it issued for localhost and 127.0.0.1."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    ca_file: Path  # the CA certificate: what a client trusts
    cert_file: Path  # the server's certificate chain (leaf first)
    key_file: Path  # the server's private key, unencrypted


def make_pki(directory: Path, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> TestPki:
    """A fresh CA and a server certificate for `names`, written to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*names)
    pki = TestPki(directory / "ca.pem", directory / "server-chain.pem", directory / "server-key.pem")
    ca.cert_pem.write_to_path(str(pki.ca_file))
    for i, blob in enumerate(server.cert_chain_pems):
        blob.write_to_path(str(pki.cert_file), append=i > 0)
    server.private_key_pem.write_to_path(str(pki.key_file))
    pki.key_file.chmod(0o600)
    return pki


class Stunnel:
    """stunnel4 as a TLS server on 127.0.0.1: `accept` on a free port, `connect` to a plain TCP port.

    `service_options` are extra lines for the `[rtmps]` service (say `sslVersionMax = TLSv1.2`).
    """

    def __init__(self, directory: Path, pki: TestPki, connect_port: int, *, port: int | None = None,
                 service_options: str = "") -> None:
        self.directory = directory
        self.pki = pki
        self.connect_port = connect_port
        self.port = port if port is not None else free_port()
        self.service_options = service_options
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def conf_path(self) -> Path:
        return self.directory / "stunnel.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "stunnel.log"

    def url(self, app: str, host: str = "localhost") -> str:
        """The rtmps:// URL of an app behind this stunnel (host `localhost` matches the certificate)."""
        return f"rtmps://{host}:{self.port}/{app}"

    def config(self) -> str:
        """The stunnel.conf this instance runs with."""
        return (
            "foreground = yes\n"
            "pid =\n"  # empty: no pid file (we hold the process)
            "debug = info\n"
            "[rtmps]\n"
            f"accept = 127.0.0.1:{self.port}\n"
            f"connect = 127.0.0.1:{self.connect_port}\n"
            f"cert = {self.pki.cert_file}\n"
            f"key = {self.pki.key_file}\n"
            f"{self.service_options}\n"
        )

    def log_text(self) -> str:
        """What stunnel wrote so far (it logs to stderr in the foreground)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 10.0) -> None:
        """Write the config, start stunnel, wait until its port accepts connections."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.config())
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([STUNNEL, str(self.conf_path)], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        proc = self.proc
        # The probe is a plain TCP connect that stunnel logs as a failed handshake; harmless.
        wait_until(
            lambda: accepts_connections(self.port),
            timeout,
            f"stunnel on port {self.port}",
            abort=lambda: None if proc.poll() is None else f"stunnel exited {proc.returncode}:\n{self.log_text()}",
        )

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
