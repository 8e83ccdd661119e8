"""The ingest against misbehaving peers, in process: garbage, silence, floods, key guessing, non-readers.

Each must cost the relay one closed connection and at most a log line, never a crash or a
connection held open forever. The limits are the config's `server.limits`, set small for
the test; the behaviour is the daemon's (the same Ingest the daemon runs).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

from relay.runtime import logs
from relay.config import parse_config
from relay.ingest.listeners import Ingest, server_tls_context
from relay.live.stream import LiveStream
from relay.rtmp import messages as m
from relay.rtmp.chunkwriter import encode_message
from relay.rtmp.client import ClientConnection
from relay.rtmp.events import PublishStarted, Refused
from relay.secret import Secret
from tests.support.tls import TestPki

INGEST_KEY = "ingest-peers-KEY-0c41f7aa"
WRONG_KEYS = [f"guessed-KEY-{n:04d}-5b1e" for n in range(6)]
# Deadlines short enough for quick tests, long enough that the in-process peers (on the server's own
# event loop) finish a handshake and a publish well inside them on a loaded machine. A test that waits
# for the server to close a peer waits up to CLOSE_WITHIN: a deadline for the test, not a measurement.
FAST = {"handshake_timeout": 2, "tls_handshake_timeout": 2, "publish_timeout": 3, "idle_timeout": 3}
CLOSE_WITHIN = 15.0
# For tests in which no deadline may fire: a close seen within CLOSE_WITHIN is then never a deadline's.
PATIENT = {"handshake_timeout": 60, "tls_handshake_timeout": 60, "publish_timeout": 60, "idle_timeout": 60}


class Harness:
    """An Ingest on 127.0.0.1 with one live stream, logging JSON to a file."""

    def __init__(self, ingest: Ingest, live: LiveStream, log_path: Path) -> None:
        self.ingest = ingest
        self.live = live
        self.log_path = log_path
        self.port = 0
        self.tls_port = 0

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in map(json.loads, self.log_path.read_text().splitlines()) if e["event"] == name]

    async def open(self, tls: bool = False) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if not tls:
            return await asyncio.open_connection("127.0.0.1", self.port)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return await asyncio.open_connection("127.0.0.1", self.tls_port, ssl=context, server_hostname="localhost")


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def ingest_server(tmp_path: Path, test_pki: TestPki) -> AsyncIterator[HarnessFactory]:
    """Factory: `await ingest_server(**limits)` starts an RTMP and an RTMPS listener."""
    log_path = tmp_path / "relay.log"
    log_file = log_path.open("w", buffering=1)
    logs.configure("info", json=True, stream=log_file)
    logs.add_known_secrets([Secret(INGEST_KEY)])
    started: list[Harness] = []

    async def start(**limits: Any) -> Harness:
        config = parse_config(json.dumps({
            "server": {"limits": {**FAST, **limits}},
            "live_streams": [{"name": "studio", "stream_key": INGEST_KEY, "reconnect_window": 0,
                              "simulcast_targets": []}],
        }), "test.yaml")
        live = LiveStream(config.live_streams[0])
        ingest = Ingest(config.server, lambda key: live if config.find_live_stream(key) else None,
                        server_tls_context(str(test_pki.cert_file), str(test_pki.key_file)))
        harness = Harness(ingest, live, log_path)
        harness.port = (await ingest.listen("127.0.0.1", 0)).sockets[0].getsockname()[1]
        harness.tls_port = (await ingest.listen_tls("127.0.0.1", 0)).sockets[0].getsockname()[1]
        started.append(harness)
        return harness

    try:
        yield start
    finally:
        for harness in started:
            harness.ingest.close()
        structlog.reset_defaults()
        logs.reset_known_secrets()
        log_file.close()
        text = log_path.read_text()
        assert INGEST_KEY not in text
        assert not [key for key in WRONG_KEYS if key in text], "an attempted key reached the log"


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = CLOSE_WITHIN) -> bool:
    """Read until EOF or reset: True if the server closed the connection within `timeout`, else False."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    except TimeoutError:
        return False
    return True


async def still_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """True if the server has not closed the connection (it answers a handshake)."""
    writer.write(b"\x03" + bytes(1536))
    data = await asyncio.wait_for(reader.readexactly(1 + 1536), timeout=5)
    return data[0] == 3


async def publish(port: int, key: str, app: str = "live", *, receive_buffer: int | None = None
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, PublishStarted | Refused]:
    """Handshake, connect and publish with our own RTMP client; the first PublishStarted or Refused.

    `receive_buffer`: the socket's SO_RCVBUF, set before connecting (so it bounds the window it offers).
    """
    if receive_buffer is None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
    client = ClientConnection(app, f"rtmp://127.0.0.1:{port}/{app}", key)
    writer.write(client.data_to_send())
    async with asyncio.timeout(5):
        while True:
            data = await reader.read(65536)
            assert data, "closed before answering"
            client.receive_data(data)
            while (event := client.next_event()) is not None:
                if isinstance(event, (PublishStarted, Refused)):
                    return reader, writer, event
            writer.write(client.data_to_send())


async def admission_down_to(harness: Harness, count: int, timeout: float = 5.0) -> None:
    """Wait until at most `count` connections are counted in, woken by each release (no polling)."""
    admission = harness.ingest.settings.admission
    released = asyncio.Event()
    original = admission.release

    def release(address: str, stranger: Any = None) -> None:
        original(address, stranger)
        released.set()

    admission.release = release  # type: ignore[method-assign]
    try:
        async with asyncio.timeout(timeout):
            while admission.open > count:
                released.clear()
                await released.wait()
    finally:
        del admission.release  # the class's method again


def handshaken_chunks(*messages: bytes) -> bytes:
    """C0 C1 C2 and then raw chunk-stream bytes."""
    return b"\x03" + bytes(1536) + bytes(1536) + b"".join(messages)


async def test_garbage_gets_the_connection_closed(ingest_server: HarnessFactory) -> None:
    harness = await ingest_server()
    reader, writer = await harness.open()

    writer.write(b"\x06" + bytes(1536))  # RTMPE: a version byte this relay refuses

    assert await closed_by_server(reader)
    writer.close()
    assert harness.events("ingest_protocol_error")


async def test_a_peer_that_never_shakes_hands_is_closed_at_the_handshake_deadline(
        ingest_server: HarnessFactory) -> None:
    harness = await ingest_server(publish_timeout=30)
    reader, writer = await harness.open()
    writer.write(b"\x03" + bytes(700))  # half of C1, then nothing (slowloris)

    assert await closed_by_server(reader)
    writer.close()
    (timeout,) = harness.events("ingest_timeout")
    assert "handshake" in timeout["reason"]


async def test_a_peer_that_never_publishes_is_closed_at_the_publish_deadline(ingest_server: HarnessFactory) -> None:
    harness = await ingest_server()
    reader, writer = await harness.open()
    writer.write(b"\x03" + bytes(1536) + bytes(1536))  # a handshake, then nothing

    assert await closed_by_server(reader)
    writer.close()
    (timeout,) = harness.events("ingest_timeout")
    assert "not publishing" in timeout["reason"]


async def test_a_publisher_that_goes_silent_is_closed_and_releases_the_stream(
        ingest_server: HarnessFactory) -> None:
    harness = await ingest_server()
    reader, writer, event = await publish(harness.port, INGEST_KEY)
    assert isinstance(event, PublishStarted)
    assert harness.live.status == "active"

    # Then nothing more: no media, no FCUnpublish, no FIN (a dead uplink).
    assert await closed_by_server(reader)
    assert harness.live.status == "idle"
    writer.close()
    assert "no data from the publisher" in harness.events("ingest_timeout")[0]["reason"]


async def test_a_wrong_application_is_rejected_without_logging_what_follows_it(
        ingest_server: HarnessFactory) -> None:
    harness = await ingest_server()
    # An encoder whose server url was set to rtmp://host/other/KEY.
    reader, writer, event = await publish(harness.port, INGEST_KEY, app=f"other/{INGEST_KEY}")

    assert isinstance(event, Refused)
    assert event.stage == "connect" and event.code == "NetConnection.Connect.Rejected"
    assert await closed_by_server(reader)
    assert harness.live.status == "idle"
    (rejected,) = harness.events("connect_rejected")
    assert rejected["app"] == "other" and rejected["tc_url_host"] == "127.0.0.1"
    writer.close()


async def test_a_megabyte_app_name_is_cut_in_the_log(ingest_server: HarnessFactory) -> None:
    harness = await ingest_server(max_command_size=4 << 20, max_unauthenticated_memory=16 << 20)
    app = "x" * 1_000_000
    reader, writer, event = await publish(harness.port, INGEST_KEY, app=app)

    assert isinstance(event, Refused)
    (rejected,) = harness.events("connect_rejected")
    assert rejected["app_len"] == 1_000_000 and len(rejected["app"]) < 300
    assert len(harness.log_path.read_text()) < 10_000
    writer.close()


async def test_connections_over_the_per_address_limit_are_refused_at_once(ingest_server: HarnessFactory) -> None:
    harness = await ingest_server(max_connections_per_address=2, **PATIENT)
    first, second = await harness.open(), await harness.open()

    reader, writer = await harness.open()
    assert await closed_by_server(reader)  # refused: every deadline is a minute away
    writer.close()

    assert await still_open(*first) and await still_open(*second)
    first[1].close()
    assert await closed_by_server(first[0])
    await admission_down_to(harness, 1)
    assert await still_open(*await harness.open())  # the freed place is taken again
    second[1].close()
    harness.ingest.settings.admission.flush_log()
    (refused,) = harness.events("ingest_refused")
    assert refused["reasons"] == {"max_connections_per_address": 1}


async def test_a_full_house_of_strangers_makes_room_for_each_newcomer_and_logs_once(
        ingest_server: HarnessFactory) -> None:
    harness = await ingest_server(max_connections=3, max_connections_per_address=100, **PATIENT)
    idle = [await harness.open() for _ in range(3)]
    newcomers = [await harness.open() for _ in range(5)]
    for reader, writer in idle:  # the oldest strangers made room, one per newcomer
        assert await closed_by_server(reader)
        writer.close()
    for conn in newcomers[:2]:
        assert await closed_by_server(conn[0])
        conn[1].close()
    for conn in newcomers[2:]:  # the three newest hold the house
        assert await still_open(*conn)
        conn[1].close()
    harness.ingest.settings.admission.flush_log()
    lines = harness.events("ingest_refused")
    assert len(lines) <= 2 and sum(line["reasons"].get("evicted_for_newcomer", 0) for line in lines) == 5


async def test_a_full_house_of_publishers_refuses_newcomers_and_logs_once(ingest_server: HarnessFactory) -> None:
    harness = await ingest_server(max_connections=1, max_connections_per_address=100, **PATIENT)
    reader, writer, event = await publish(harness.port, INGEST_KEY)
    assert isinstance(event, PublishStarted)
    refused = [await harness.open() for _ in range(50)]
    for r, w in refused:
        assert await closed_by_server(r)
        w.close()
    assert harness.live.status == "active" and harness.live.publisher is not None  # never evicted
    writer.close()
    harness.ingest.settings.admission.flush_log()
    lines = harness.events("ingest_refused")
    assert len(lines) <= 2 and sum(line["refused"] for line in lines) == 50


async def test_key_guessing_blocks_the_address_and_never_logs_a_key(ingest_server: HarnessFactory) -> None:
    harness = await ingest_server(failed_publishes_per_minute=3)
    for key in WRONG_KEYS[:4]:
        reader, writer, event = await publish(harness.port, key)
        assert isinstance(event, Refused) and event.code == "NetStream.Publish.BadName"
        writer.close()

    (blocked,) = harness.events("ingest_address_blocked")
    assert blocked["address"] == "127.0.0.1" and blocked["failed_publishes"] == 4
    # Blocked: even the right key is refused, at accept, for a minute.
    reader, writer = await harness.open()
    assert await closed_by_server(reader)
    writer.close()
    assert harness.live.status == "idle"
    assert [e["key_sha256"] for e in harness.events("publish_rejected")] == [
        Secret(key).fingerprint for key in WRONG_KEYS[:4]]


@pytest.mark.parametrize(("max_output_bytes", "batch", "window", "expected"), [
    # Big reads, each answered with more than the cap: a protocol error.
    (65_536, 500, None, ("ingest_protocol_error", "the peer is not reading: over 65536 bytes queued")),
    # Small reads and a small window: the transport pauses, and stays paused (nothing drains the
    # peer's full window), then the stall deadline.
    (64 << 20, 20, 8192, ("ingest_timeout", "the peer has not read our replies for")),
])
async def test_a_peer_that_never_reads_its_replies_is_closed(ingest_server: HarnessFactory, max_output_bytes: int,
                                                             batch: int, window: int | None,
                                                             expected: tuple[str, str]) -> None:
    # Pings answered to a publisher that does not read: closed when its replies pass
    # max_output_bytes, or when the relay has been paused on it for idle_timeout (3 s here).
    # With a small receive window that the peer never reads, once the relay's transport pauses
    # nothing can drain it: the relay stops reading the peer itself and stays paused, so only the
    # stall deadline applies, never the publisher's idle deadline (which a pause that ended a
    # moment before could otherwise set off: issue 22).
    harness = await ingest_server(max_output_bytes=max_output_bytes)
    reader, writer, event = await publish(harness.port, INGEST_KEY, receive_buffer=window)
    assert isinstance(event, PublishStarted)
    ping = encode_message(2, 0, m.USER_CONTROL, 0, m.UserControl(m.PING_REQUEST, 7).to_payload(), 128)

    async def flood() -> None:
        for n in range(200_000):  # up to 70 MB of pings; the reading side never reads
            writer.write(ping * batch)
            await writer.drain()
            if window is not None or n % 1000 == 999:
                # Let the server run, as a peer in another process would: drain() does not yield
                # while the kernel takes the writes. After each write for small reads; now and
                # then for big ones (the kernel gathers the writes in between into big reads).
                await asyncio.sleep(0)

    async with asyncio.timeout(CLOSE_WITHIN + 10):
        with pytest.raises((ConnectionError, OSError)):
            await flood()
    writer.close()
    assert harness.live.status == "idle"
    event_name, words = expected
    verdicts = [(e["event"], e.get("error") or e.get("reason"))
                for e in harness.events("ingest_protocol_error") + harness.events("ingest_timeout")]
    assert len(verdicts) == 1 and verdicts[0][0] == event_name and words in str(verdicts[0][1]), (
        verdicts, harness.log_path.read_text()[-2000:])


async def test_rtmps_handshake_deadline_and_connection_limits_apply_before_tls(ingest_server: HarnessFactory) -> None:
    harness = await ingest_server(max_connections_per_address=1, publish_timeout=30)
    # A TCP connection to the RTMPS port that never starts TLS.
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.tls_port)
    # It holds the address's only place: a second one is refused before any TLS.
    other_reader, other_writer = await asyncio.open_connection("127.0.0.1", harness.tls_port)
    assert await closed_by_server(other_reader)
    other_writer.close()
    harness.ingest.settings.admission.flush_log()
    (refused,) = harness.events("ingest_refused")
    assert refused["reasons"] == {"max_connections_per_address": 1}

    assert await closed_by_server(reader)  # tls_handshake_timeout (2 s), not asyncio's 60
    writer.close()
    (failed,) = harness.events("ingest_tls_failed")
    # The TLS deadline, in the relay's words or in asyncio's (its own handshake timeout, set to the same 2 s).
    assert failed["reason"] in ("TLS handshake not done in time",
                                "SSL handshake is taking longer than 2.0 seconds: aborting the connection"), failed
    await admission_down_to(harness, 0)


async def test_rtmps_publish_deadline_counts_from_the_tcp_accept(ingest_server: HarnessFactory) -> None:
    # A TLS handshake finished after the publish deadline (counted from the TCP accept) has
    # passed: the relay closes the connection at once, before any RTMP byte, as not publishing;
    # not a publish_timeout after the handshake.
    harness = await ingest_server(publish_timeout=3, tls_handshake_timeout=30, handshake_timeout=30)
    raw = socket.create_connection(("127.0.0.1", harness.tls_port))  # accepted now; TLS not started
    raw.setblocking(False)
    # A plain connection opened after it, as silent: when its own publish deadline has closed it,
    # the TLS one's (which started no later) has passed too.
    first_reader, first_writer = await harness.open()
    assert await closed_by_server(first_reader, timeout=15)
    first_writer.close()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(sock=raw, ssl=context, server_hostname="localhost")
    # Another silent plain connection, opened as the TLS handshake ends: had the TLS connection's
    # deadline started then, it would not be closed before this one.
    later_reader, later_writer = await harness.open()
    assert await closed_by_server(reader, timeout=15)  # nothing sent: closed for the deadline alone
    writer.close()
    reasons = [e["reason"] for e in harness.events("ingest_timeout")]
    assert len(reasons) == 2 and all("not publishing" in r for r in reasons)  # the later one is still open
    assert await closed_by_server(later_reader, timeout=15)
    later_writer.close()


async def test_cut_off_ends_the_session_without_a_reconnect_window(ingest_server: HarnessFactory) -> None:
    harness = await ingest_server(idle_timeout=30)
    reader, writer, event = await publish(harness.port, INGEST_KEY)
    assert isinstance(event, PublishStarted)

    harness.live.cut_off("the live stream's stream key was changed by a reload")

    assert harness.live.status == "idle" and harness.live.publisher is None
    assert await closed_by_server(reader)
    writer.close()
    (ended,) = harness.events("publish_ended")
    assert ended["clean"] is True and "stream key was changed" in ended["reason"]


@pytest.mark.parametrize("way", ["paused", "held"])
async def test_a_publisher_is_silent_only_while_the_relay_reads_it(ingest_server: HarnessFactory, way: str) -> None:
    # While the relay holds a publisher's input itself (a read batch, in the kernel or by pausing;
    # the loop's budget), its silence is the relay's own: the idle deadline counts from when the
    # relay reads again.
    harness = await ingest_server(idle_timeout=1.0)
    reader, writer, event = await publish(harness.port, INGEST_KEY)
    assert isinstance(event, PublishStarted)
    (protocol,) = harness.ingest.connections
    if way == "held":
        protocol.intake.hold()
        assert protocol.intake.held and not protocol.intake.paused_for
    else:
        protocol.intake.pause("batch")
    waited = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(2.5, waited.set_result, None)  # 2.5 idle_timeouts, held by us
    await waited
    assert harness.live.publisher is not None and not harness.events("ingest_timeout")
    if way == "held":
        protocol.intake.release()  # reading again, and the publisher says nothing: now it is silent
    else:
        protocol.intake.resume("batch")
    assert await closed_by_server(reader, timeout=10)
    (timeout,) = harness.events("ingest_timeout")
    assert "no data from the publisher" in timeout["reason"]
    writer.close()
