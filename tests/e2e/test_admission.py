"""The real publisher always gets in: strangers holding every ingest place (idle or slow, from many
addresses), or every TLS handshake place (silent sockets), do not keep ffmpeg with the right key out,
over RTMP and over RTMPS. Each idle stranger is evicted, oldest first, to make room (admission.py,
tlsgate.py)."""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relay.rtmp.handshake import ClientHandshake
from testbed.ffmpeg import FfmpegProcess, start_publish
from testbed.ports import free_port
from testbed.relay_proc import RelayProcess
from tests.support.tls import TestPki

pytestmark = pytest.mark.e2e

INGEST_KEY = "admission-ingest-KEY-5b8e2f"
PLACES = 32
PER_ADDRESS = 4
ADDRESSES = [f"127.0.0.{i}" for i in range(2, 2 + PLACES // PER_ADDRESS)]


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    return functools.partial(relay_daemon, ingest_key=INGEST_KEY)


@pytest.fixture
def strangers() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def connect_from(address: str, port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(address, 0))
    return sock


def slow_stranger(address: str, port: int) -> socket.socket:
    """A peer that does the RTMP handshake's first half, gets the server's answer, then says nothing."""
    sock = connect_from(address, port)
    handshake = ClientHandshake()
    sock.sendall(handshake.data_to_send())
    wanted = 1 + 1536 + 1536  # S0 S1 S2: the server counted us in and answered
    got = b""
    while len(got) < wanted:
        chunk = sock.recv(wanted - len(got))
        assert chunk, "the relay closed a stranger before the house was full"
        got += chunk
    return sock


def limits(tls_handshake_timeout: float = 10.0) -> dict[str, object]:
    return {"limits": {"max_connections": PLACES, "max_connections_per_address": PER_ADDRESS,
                       "handshake_timeout": 60, "publish_timeout": 60,
                       "tls_handshake_timeout": tls_handshake_timeout}}


def test_a_full_house_of_slow_strangers_does_not_keep_the_publisher_out(
        source_flv: Path, relay: Callable[..., RelayProcess], strangers: list[socket.socket]) -> None:
    daemon = relay([], server=limits())
    for address in ADDRESSES:
        for _ in range(PER_ADDRESS):
            strangers.append(slow_stranger(address, daemon.port))
    publisher = start_publish(f"rtmp://127.0.0.1:{daemon.port}/live/{INGEST_KEY}", source_flv)
    try:
        daemon.wait_for("publish_started", timeout=30)
        refused = daemon.wait_for("ingest_refused", timeout=30)
        assert refused["reasons"].get("evicted_for_newcomer", 0) >= 1  # the house was full: a stranger made room
    finally:
        publisher.stop()


def test_silent_tls_sockets_holding_every_handshake_place_do_not_keep_the_publisher_out(
        source_flv: Path, test_pki: TestPki, relay: Callable[..., RelayProcess],
        strangers: list[socket.socket]) -> None:
    # A handshake deadline far longer than the test's wait: without a place, ffmpeg could not get in.
    tls_port = free_port()
    daemon = relay([], server={**limits(tls_handshake_timeout=120), "tls_listen": f"127.0.0.1:{tls_port}",
                               "tls_cert_file": str(test_pki.cert_file), "tls_key_file": str(test_pki.key_file)})
    daemon.wait_for("relay_listening", scheme="rtmps")
    for address in ADDRESSES[:4]:  # 16 silent sockets, 4 from each of 4 addresses: every place taken
        for _ in range(PER_ADDRESS):
            strangers.append(connect_from(address, tls_port))
    for _ in range(PER_ADDRESS + 2):  # one more address: 4 handshakes take places, 2 past its share refused
        strangers.append(connect_from(ADDRESSES[5], tls_port))
    publisher = FfmpegProcess(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-re",
                               "-i", str(source_flv), "-c", "copy", "-f", "flv", "-tls_verify", "1",
                               "-ca_file", str(test_pki.ca_file), f"rtmps://localhost:{tls_port}/live/{INGEST_KEY}"])
    try:
        daemon.wait_for("publish_started", timeout=30)
    finally:
        publisher.stop()
