"""RTMPS end to end: targets behind a real stunnel4 (test CA from trustme), and the RTMPS ingest.

What stunnel forwards is recorded by nginx-rtmp and compared with the published clip, tag
payload for tag payload. Failures (untrusted certificate, a server that does not speak
TLS) must put the target in `errored` with a reason an operator can act on.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testbed.ffmpeg import FfmpegProcess, publish_with_ffmpeg, start_publish
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import free_port
from testbed.relay_proc import REPO, RelayProcess, write_config
from tests.support.flvcheck import assert_same_media
from tests.support.tls import Stunnel, TestPki, make_pki

pytestmark = pytest.mark.e2e

INGEST_KEY = "tls-ingest-KEY-4c2e9b17d0a3"
TARGET_KEY = "tls-target-KEY-7f31aa"
ALL_KEYS = (INGEST_KEY, TARGET_KEY)
FAST_RETRY = {"initial_delay": 0.2, "max_delay": 0.5}
# What a Python exception looks like when it is pasted into a message instead of explained.
PYTHON_NAMES = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|\bSSL[A-Z][a-zA-Z]+\b|Errno|\[SSL")


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    """The shared daemon factory with this module's keys (checked for leaks at teardown)."""
    return functools.partial(relay_daemon, ingest_key=INGEST_KEY, secrets=ALL_KEYS)


def ingest_url(relay: RelayProcess) -> str:
    return f"rtmp://127.0.0.1:{relay.port}/live/{INGEST_KEY}"


def errored_reasons(daemon: RelayProcess, target: str) -> list[str]:
    return [e.get("reason", "") for e in daemon.events
            if e.get("event") == "target_status" and e.get("target") == target and e.get("to") == "errored"]


def wait_errored_then_retried(daemon: RelayProcess, target: str) -> str:
    """Wait for `errored` and the `starting` of the retry after it; the errored reason."""
    errored = daemon.wait_for("target_status", target=target, to="errored")
    after: dict[str, Any] = {"from": "errored", "to": "starting"}  # `from` is a keyword
    daemon.wait_for("target_status", target=target, **after)
    return str(errored.get("reason", ""))


def test_rtmps_target_through_stunnel_is_byte_for_byte(
    source_flv: Path, test_pki: TestPki, nginx_rtmp: Callable[..., NginxRtmp],
    stunnel: Callable[..., Stunnel], relay: Callable[..., RelayProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    tunnel = stunnel(nginx.port)
    daemon = relay([{"url": tunnel.url("rec"), "stream_key": TARGET_KEY, "passthrough": "tls",
                     "tls_ca_file": str(test_pki.ca_file)}])

    publish_with_ffmpeg(ingest_url(daemon), source_flv, realtime=True, timeout=60)

    daemon.wait_for("target_status", target="tls", to="idle", timeout=20)
    nginx.wait_unpublished(TARGET_KEY)
    match = assert_same_media(nginx.recorded_flv(TARGET_KEY, "rec"), source_flv)
    assert match.start == 0
    assert errored_reasons(daemon, "tls") == []
    # The media went through stunnel, not around it: a TLS session, then stunnel's own connect to nginx.
    log = tunnel.log_text()
    assert "TLS accepted" in log and f"s_connect: connected 127.0.0.1:{nginx.port}" in log, log
    assert daemon.terminate(timeout=15) == 0


def test_rtmps_target_with_untrusted_certificate_errors_and_retries(
    source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], stunnel: Callable[..., Stunnel],
    relay: Callable[..., RelayProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    tunnel = stunnel(nginx.port)
    daemon = relay([{"url": tunnel.url("rec"), "stream_key": TARGET_KEY, "passthrough": "tls",
                     "reconnect": FAST_RETRY}])  # no tls_ca_file: the system CAs do not know the test CA
    publisher = start_publish(ingest_url(daemon), source_flv, realtime=True)
    try:
        reason = wait_errored_then_retried(daemon, "tls")
    finally:
        publisher.stop()

    assert "certificate" in reason and re.search(r"verif|not accepted", reason), reason
    assert "localhost" in reason, reason
    assert not PYTHON_NAMES.search(reason), reason
    assert nginx.publishers(TARGET_KEY) == {}


def test_rtmps_target_whose_certificate_names_another_host_errors_with_the_mismatch(
    tmp_path: Path, source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess],
) -> None:
    # A CA we trust, but a certificate it issued for another name than the one in the url.
    other = make_pki(tmp_path / "other-pki", names=("rtmp.other.example",))
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    tunnel = Stunnel(tmp_path / "stunnel", other, nginx.port)
    (tmp_path / "stunnel").mkdir()
    tunnel.start()
    try:
        daemon = relay([{"url": tunnel.url("rec"), "stream_key": TARGET_KEY, "passthrough": "mismatch",
                         "tls_ca_file": str(other.ca_file), "reconnect": FAST_RETRY}])
        publisher = start_publish(ingest_url(daemon), source_flv, realtime=True)
        try:
            reason = wait_errored_then_retried(daemon, "mismatch")
        finally:
            publisher.stop()
    finally:
        tunnel.stop()

    assert "certificate" in reason and "localhost" in reason, reason
    assert "not valid for localhost" in reason, reason
    assert not PYTHON_NAMES.search(reason), reason
    assert nginx.publishers(TARGET_KEY) == {}


@pytest.mark.parametrize(
    ("nginx_timeout", "timeouts"),
    [
        pytest.param("timeout 1s;", {"connect": 30, "handshake": 30}, id="server-closes"),
        pytest.param("", {"connect": 30, "handshake": 1}, id="server-silent"),
        pytest.param("", {"connect": 1, "handshake": 1}, id="server-silent-same-deadlines"),
    ],
)
def test_plain_rtmp_server_addressed_as_rtmps_errors_with_a_readable_reason(
    nginx_timeout: str, timeouts: dict[str, float], source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp],
    relay: Callable[..., RelayProcess],
) -> None:
    # nginx-rtmp takes our ClientHello for the start of C0+C1 and waits for the rest. With a
    # 1 s socket timeout it closes the connection in the middle of our TLS handshake;
    # without one it stays silent until our handshake deadline.
    nginx = nginx_rtmp(RtmpApp("rec", record=True), server_directives=f"chunk_size 4096; {nginx_timeout}")
    daemon = relay([{"url": f"rtmps://localhost:{nginx.port}/rec", "stream_key": TARGET_KEY,
                     "passthrough": "plain", "reconnect": FAST_RETRY, "timeouts": timeouts}])
    publisher = start_publish(ingest_url(daemon), source_flv, realtime=True)
    try:
        reason = wait_errored_then_retried(daemon, "plain")
    finally:
        publisher.stop()

    assert f"localhost:{nginx.port}" in reason, reason
    assert re.search(r"\bTLS\b", reason) and "rtmps://" in reason, reason
    assert not PYTHON_NAMES.search(reason), reason
    assert nginx.publishers(TARGET_KEY) == {}


def test_tls_verify_false_broadcasts_to_an_untrusted_server_and_warns(
    source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], stunnel: Callable[..., Stunnel],
    relay: Callable[..., RelayProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    tunnel = stunnel(nginx.port)
    daemon = relay([{"url": tunnel.url("rec"), "stream_key": TARGET_KEY, "passthrough": "unverified",
                     "tls_verify": False}])

    warning = daemon.wait_for("config_warning")
    assert "tls_verify" in warning["message"] and "unverified" in warning["message"]
    publish_with_ffmpeg(ingest_url(daemon), source_flv, realtime=True, timeout=60)

    daemon.wait_for("target_status", target="unverified", to="idle", timeout=20)
    nginx.wait_unpublished(TARGET_KEY)
    assert assert_same_media(nginx.recorded_flv(TARGET_KEY, "rec"), source_flv).start == 0
    assert errored_reasons(daemon, "unverified") == []


def rtmps_publish(url: str, flv: Path, ca_file: Path) -> FfmpegProcess:
    """ffmpeg publishing over TLS, verifying the server against `ca_file` (gnutls; host name from the URL)."""
    return FfmpegProcess(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-re", "-i", str(flv),
                          "-c", "copy", "-f", "flv", "-tls_verify", "1", "-ca_file", str(ca_file), url])


def test_rtmps_ingest_is_byte_for_byte(
    tmp_path: Path, source_flv: Path, test_pki: TestPki, nginx_rtmp: Callable[..., NginxRtmp],
    relay: Callable[..., RelayProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    daemon = relay([{"url": nginx.url("rec"), "stream_key": TARGET_KEY, "passthrough": "nginx"}],
                   server={"tls_listen": f"127.0.0.1:{free_port()}", "tls_cert_file": str(test_pki.cert_file),
                           "tls_key_file": str(test_pki.key_file)})
    tls_port = daemon.wait_for("relay_listening", scheme="rtmps")["port"]
    url = f"rtmps://localhost:{tls_port}/live/{INGEST_KEY}"

    # ffmpeg does check the certificate: against a CA that did not sign it, it refuses.
    stranger = make_pki(tmp_path / "stranger")
    refused = rtmps_publish(url, source_flv, stranger.ca_file)
    assert refused.wait(timeout=30) != 0
    assert "certificate failed verification" in refused.stderr_text()
    assert not [e for e in daemon.events if e.get("event") == "publish_started"]

    rtmps_publish(url, source_flv, test_pki.ca_file).check(timeout=60)

    daemon.wait_for("publish_started")
    daemon.wait_for("target_status", target="nginx", to="idle", timeout=20)
    nginx.wait_unpublished(TARGET_KEY)
    match = assert_same_media(nginx.recorded_flv(TARGET_KEY, "rec"), source_flv)
    assert match.start == 0
    assert daemon.terminate(timeout=15) == 0


@pytest.mark.parametrize("broken", ["tls_cert_file", "tls_key_file"])
def test_unusable_ingest_certificate_or_key_is_a_config_error(tmp_path: Path, test_pki: TestPki,
                                                               broken: str) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    other_key = make_pki(tmp_path / "other").key_file  # a valid key, but not the certificate's
    server = {"listen": f"127.0.0.1:{free_port()}", "tls_listen": f"127.0.0.1:{free_port()}",
              "tls_cert_file": str(test_pki.cert_file), "tls_key_file": str(test_pki.key_file)}
    server[broken] = str(garbage if broken == "tls_cert_file" else other_key)
    config = write_config(tmp_path / "relay.yaml", {
        "server": server,
        "live_streams": [{"name": "studio", "stream_key": INGEST_KEY,
                          "simulcast_targets": [{"url": "rtmp://127.0.0.1:1935/rec", "stream_key": TARGET_KEY}]}],
    })

    done = subprocess.run([sys.executable, "-m", "relay", "check-config", str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=30, check=False)

    assert done.returncode == 2, done.stdout + done.stderr
    assert f"server.{broken}" in done.stderr
    assert not [key for key in ALL_KEYS if key in done.stdout + done.stderr]
