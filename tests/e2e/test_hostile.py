"""Hostile input at scale (issue #8) against a running daemon on 127.0.0.1.

Garbage at scale: while a real ffmpeg publisher is live to nginx-rtmp, hundreds of
connections throw every finding of issue #8 at the daemon, from many source addresses
(any 127.x.y.z is this machine): random bytes, truncated handshakes, slowloris at one byte
a second, Set Chunk Size 1, a 16 MiB command before connect, ping floods and Set Peer
Bandwidth games from a peer that never reads, Window Ack Size 1, megabyte app names, AMF
nesting, absurd csids and lengths, zero-length floods, floods over the connection limits,
key guessing, and garbage and silence on the RTMPS port. Then:

- the publisher's target is byte-exact (tests/support/flvcheck.py);
- every attacking connection was closed by the daemon (none held open past its deadline);
- its open fds return exactly to the baseline, and it gives memory back once the burst passed
  (`memory_trimmed`);
- the log stays small: refusals and peer failures are summed, not one line each (the
  budgets the relay enforces, and says so: `ingest_refused`, `ingest_log_suppressed`).

Figures that depend on the machine (RSS before and after, the longest callback's CPU, log
lines per second of attack) are not asserted here: `bench/hostile.py` runs this test, reads
the HOSTILE_FIGURES line it prints and checks them against their budgets.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import re
import resource
import signal
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from relay.rtmp import amf0
from relay.rtmp import messages as m
from relay.rtmp.chunkwriter import encode_header, encode_message
from relay.rtmp.client import ClientConnection
from relay.rtmp.events import PublishStarted, Refused
from testbed.ffmpeg import FfmpegProcess, publish_args
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import distinct_ports, wait_until
from testbed.relay_proc import RelayProcess
from tests.support.flvcheck import assert_same_media
from tests.support.tls import TestPki

pytestmark = pytest.mark.e2e

INGEST_KEY = "hostile-ingest-KEY-61c0d2e4b7"
TARGET_KEY = "hostile-target-KEY-3f9a05"
GUESSES = [f"hostile-guess-{n:03d}-KEY-e1" for n in range(20)]
ALL_KEYS = (INGEST_KEY, TARGET_KEY, *GUESSES)
LIMITS = {"handshake_timeout": 3, "tls_handshake_timeout": 2, "publish_timeout": 6}
CLOSE_TIMEOUT = 20.0  # an attacking connection must be closed by the daemon within this
HANDSHAKE = b"\x03" + bytes(1536) + bytes(1536)  # C0 C1 C2 (a plain handshake)


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    """The shared daemon factory with this module's keys (checked for leaks at teardown)."""
    return functools.partial(relay_daemon, ingest_key=INGEST_KEY, secrets=ALL_KEYS)


# --- the daemon from outside: /proc ------------------------------------------------------------

def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- the attacks ------------------------------------------------------------------------------

class Sources:
    """Distinct source addresses on this machine: 127.N.x.y, a fresh N per round."""

    def __init__(self, network: int = 1) -> None:
        self.network = network
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"127.{self.network}.{self.n // 250}.{self.n % 250 + 1}"


@dataclass
class Tally:
    """What was thrown and how each connection ended."""

    thrown: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    left_open: list[str] = field(default_factory=list)


async def wait_closed(reader: asyncio.StreamReader, timeout: float = CLOSE_TIMEOUT) -> bool:
    """Read and discard until the daemon closes; False if it is still open after `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
        return True
    except (ConnectionError, ssl.SSLError, OSError):
        return True
    except TimeoutError:
        return False


async def write_until_closed(writer: asyncio.StreamWriter, chunk: bytes, tally: Tally, limit: int,
                             timeout: float = CLOSE_TIMEOUT) -> bool:
    """Write `chunk` again and again without ever reading, until the daemon closes (True) or `limit` bytes."""
    try:
        async with asyncio.timeout(timeout):
            sent = 0
            while sent < limit:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
                tally.bytes_sent += len(chunk)
            # Everything went in; wait for the close without reading.
            while not writer.transport.is_closing():
                await asyncio.sleep(0.05)
                writer.write(b"\x00")
                await writer.drain()
        return True
    except (ConnectionError, OSError):
        return True
    except TimeoutError:
        return False


def command(name: str, tid: float, *args: Any, chunk_size: int = 128, csid: int = 3) -> bytes:
    return encode_message(csid, 0, m.COMMAND_AMF0, 0, amf0.encode(name, tid, *args), chunk_size)


def control(type_id: int, payload: bytes) -> bytes:
    return encode_message(2, 0, type_id, 0, payload, 128)


CONNECT = command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live", "flashVer": "FMLE/3.0"})


class Attack:
    """Every finding of issue #8 as a small script; each opens its own connection(s)."""

    def __init__(self, port: int, tls_port: int, tally: Tally, sources: Sources, rng: random.Random) -> None:
        self.port = port
        self.tls_port = tls_port
        self.tally = tally
        self.sources = sources
        self.rng = rng

    async def _open(self, name: str, source: str | None = None, *, port: int | None = None
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.tally.thrown[name] += 1
        return await asyncio.open_connection("127.0.0.1", port or self.port,
                                             local_addr=(source or self.sources.next(), 0))

    async def _send_and_wait(self, name: str, data: bytes, source: str | None = None) -> None:
        reader, writer = await self._open(name, source)
        try:
            writer.write(data)
            self.tally.bytes_sent += len(data)
            closed = await wait_closed(reader)
        except (ConnectionError, OSError):
            closed = True
        self._outcome(name, closed)
        writer.close()

    def _outcome(self, name: str, closed: bool) -> None:
        self.tally.outcomes["closed by the daemon" if closed else "left open"] += 1
        if not closed:
            self.tally.left_open.append(name)

    # Each script: one connection.

    async def random_bytes(self) -> None:
        await self._send_and_wait("random bytes", self.rng.randbytes(self.rng.randint(1, 64 * 1024)))

    async def random_after_handshake(self) -> None:
        await self._send_and_wait("random bytes after a good handshake",
                                  HANDSHAKE + self.rng.randbytes(self.rng.randint(1, 32 * 1024)))

    async def truncated_handshake(self) -> None:
        await self._send_and_wait("truncated handshake", HANDSHAKE[: self.rng.randint(1, len(HANDSHAKE) - 1)])

    async def handshake_then_silence(self) -> None:
        await self._send_and_wait("handshake, then silence", HANDSHAKE)

    async def connect_then_silence(self) -> None:
        await self._send_and_wait("connect, then silence", HANDSHAKE + CONNECT)

    async def chunk_size_1(self) -> None:
        # Set Chunk Size 1, then a 16 MiB message in 1-byte chunks (issue #8's first finding).
        set_one = control(m.SET_CHUNK_SIZE, (1).to_bytes(4, "big"))
        header = encode_header(4, 0, 0xFFFFFF, m.AUDIO, 1)
        body = b"".join(b"\xc4\x00" for _ in range(50_000))
        await self._send_and_wait("Set Chunk Size 1", HANDSHAKE + set_one + header + body)

    async def huge_command_before_connect(self) -> None:
        header = encode_header(3, 0, 16 * 1024 * 1024 - 1, m.COMMAND_AMF0, 0)
        reader, writer = await self._open("16 MiB command before connect")
        writer.write(HANDSHAKE + header)
        closed = await write_until_closed(writer, bytes(64 * 1024), self.tally, 16 * 1024 * 1024)
        self._outcome("16 MiB command before connect", closed)
        writer.close()

    async def ping_flood_never_reading(self) -> None:
        ping = control(m.USER_CONTROL, m.UserControl(m.PING_REQUEST, 7).to_payload())
        reader, writer = await self._open("ping flood, never reading")
        writer.write(HANDSHAKE + CONNECT)
        closed = await write_until_closed(writer, ping * 1000, self.tally, 32 * 1024 * 1024)
        self._outcome("ping flood, never reading", closed)
        writer.close()

    async def peer_bandwidth_games(self) -> None:
        games = b"".join(control(m.SET_PEER_BANDWIDTH, m.SetPeerBandwidth(1000 + i % 2, 2).to_payload())
                         for i in range(1000))
        reader, writer = await self._open("Set Peer Bandwidth games, never reading")
        writer.write(HANDSHAKE)
        closed = await write_until_closed(writer, games, self.tally, 32 * 1024 * 1024)
        self._outcome("Set Peer Bandwidth games, never reading", closed)
        writer.close()

    async def window_ack_size_1(self) -> None:
        window = control(m.WINDOW_ACK_SIZE, (1).to_bytes(4, "big"))
        audio = encode_message(4, 0, m.AUDIO, 1, bytes(100), 128)
        reader, writer = await self._open("Window Ack Size 1")
        writer.write(HANDSHAKE + window + CONNECT)
        closed = await write_until_closed(writer, audio * 200, self.tally, 8 * 1024 * 1024)
        self._outcome("Window Ack Size 1", closed)
        writer.close()

    async def megabyte_app_name(self) -> None:
        connect = command("connect", 1.0, {"app": "x" * 1_000_000, "tcUrl": "rtmp://h/" + "y" * 1_000_000},
                          chunk_size=128)
        await self._send_and_wait("megabyte app name", HANDSHAKE + connect)

    async def amf_nesting(self) -> None:
        # 16,000 objects, each the value of the one before: far past the decoder's depth limit.
        body = amf0.encode("connect", 1.0) + b"\x03" + b"\x00\x01a\x03" * 16_000
        await self._send_and_wait("AMF nesting", HANDSHAKE + encode_message(3, 0, m.COMMAND_AMF0, 0, body, 128))

    async def absurd_csids(self) -> None:
        ack = (1).to_bytes(4, "big")
        data = b"".join(encode_message(csid, 0, m.ACKNOWLEDGEMENT, 0, ack, 128)
                        for csid in self.rng.sample(range(2, 65600), 2000))
        await self._send_and_wait("absurd chunk stream ids", HANDSHAKE + data)

    async def absurd_lengths(self) -> None:
        headers = b"".join(encode_header(csid, 0xFFFFFF, 0xFFFFFF, kind, 0xFFFFFFFF)
                           for csid, kind in ((3, m.COMMAND_AMF0), (4, m.AUDIO), (5, m.DATA_AMF0), (6, 22)))
        await self._send_and_wait("absurd lengths and timestamps", HANDSHAKE + headers + bytes(300_000))

    async def zero_length_flood(self) -> None:
        empty = encode_header(4, 0, 0, m.AUDIO, 1)
        await self._send_and_wait("zero-length message flood", HANDSHAKE + empty + b"\xc4" * 200_000)

    async def slowloris(self) -> None:
        reader, writer = await self._open("slowloris (one byte a second)")
        closed = False
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                for byte in HANDSHAKE:
                    writer.write(bytes((byte,)))
                    await writer.drain()
                    self.tally.bytes_sent += 1
                    try:
                        # One byte a second; the read ends at once if the daemon closes.
                        if not await asyncio.wait_for(reader.read(65536), 1.0):
                            closed = True
                            break
                    except TimeoutError:
                        continue
        except (ConnectionError, OSError):
            closed = True
        except TimeoutError:
            closed = False
        self._outcome("slowloris (one byte a second)", closed)
        writer.close()

    async def key_guess(self, source: str, key: str) -> str:
        """One publish with a wrong key from `source`: 'rejected', 'refused at accept', or 'accepted' (a bug)."""
        try:
            reader, writer = await self._open("key guessing", source)
        except OSError:
            return "refused at accept"
        client = ClientConnection("live", f"rtmp://127.0.0.1:{self.port}/live", key)
        writer.write(client.data_to_send())
        result = "refused at accept"
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                while data := await reader.read(65536):
                    client.receive_data(data)
                    while (event := client.next_event()) is not None:
                        if isinstance(event, PublishStarted):
                            result = "accepted"
                        elif isinstance(event, Refused):
                            result = "rejected"
                    writer.write(client.data_to_send())
        except (ConnectionError, OSError):
            pass
        self._outcome("key guessing", True)
        writer.close()
        return result

    async def idle_flood(self, source: str) -> None:
        """A connection that sends nothing (a port scanner, a connection-limit flood)."""
        try:
            reader, writer = await self._open("connection flood", source)
        except OSError:
            self._outcome("connection flood", True)
            return
        self._outcome("connection flood", await wait_closed(reader))
        writer.close()

    async def tls_garbage(self) -> None:
        reader, writer = await self._open("RTMPS: random bytes", port=self.tls_port)
        writer.write(self.rng.randbytes(self.rng.randint(1, 16 * 1024)))
        self._outcome("RTMPS: random bytes", await wait_closed(reader))
        writer.close()

    async def tls_silence(self) -> None:
        reader, writer = await self._open("RTMPS: no TLS handshake", port=self.tls_port)
        self._outcome("RTMPS: no TLS handshake", await wait_closed(reader))
        writer.close()

    async def tls_then_garbage(self) -> None:
        self.tally.thrown["RTMPS: random bytes after TLS"] += 1
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.tls_port, ssl=context,
                                                           local_addr=(self.sources.next(), 0))
        except (ConnectionError, OSError):
            self._outcome("RTMPS: random bytes after TLS", True)
            return
        writer.write(self.rng.randbytes(4096))
        self._outcome("RTMPS: random bytes after TLS", await wait_closed(reader))
        writer.close()


async def run_all(jobs: list[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    """Run the jobs with at most `concurrency` at a time; their results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


FLOOD_CONNECTIONS = 4 * 40 + 30 * 10  # the two floods that end each round of attack()


async def attack(port: int, tls_port: int, seed: int = 8, network: int = 1) -> tuple[Tally, dict[str, Any]]:
    """Throw everything from 127.`network`.x.y; what was thrown and how the key guessing went."""
    tally, sources, rng = Tally(), Sources(network), random.Random(seed)
    a = Attack(port, tls_port, tally, sources, rng)
    protocol: list[Callable[[], Awaitable[Any]]] = [
        *[a.random_bytes] * 80, *[a.random_after_handshake] * 40, *[a.truncated_handshake] * 40,
        *[a.handshake_then_silence] * 15, *[a.connect_then_silence] * 15, *[a.chunk_size_1] * 15,
        *[a.huge_command_before_connect] * 10, *[a.ping_flood_never_reading] * 10,
        *[a.peer_bandwidth_games] * 10, *[a.window_ack_size_1] * 10, *[a.megabyte_app_name] * 10,
        *[a.amf_nesting] * 10, *[a.absurd_csids] * 10, *[a.absurd_lengths] * 10, *[a.zero_length_flood] * 10,
        *[a.tls_garbage] * 20, *[a.tls_silence] * 15, *[a.tls_then_garbage] * 10, *[a.slowloris] * 20,
    ]
    rng.shuffle(protocol)
    # Phase 1: the protocol findings, many at once, each from its own address.
    await run_all(protocol, concurrency=150)
    # Phase 2: one address guessing keys, one publish after another; then over the limits:
    # 40 connections from each of 4 addresses (16 allowed per address) and 300 from 30
    # addresses at once (256 allowed in total). The floods come last: the test waits for
    # the daemon's memory trim after them, which a slow tail of guesses (seconds on a busy
    # machine) could otherwise catch with a guess still open.
    flood_sources = [sources.next() for _ in range(4)]
    crowd_sources = [sources.next() for _ in range(30)]
    guesser = sources.next()

    guesses = [await a.key_guess(guesser, key) for key in GUESSES]
    flood = [functools.partial(a.idle_flood, s) for s in flood_sources for _ in range(40)]
    crowd = [functools.partial(a.idle_flood, s) for s in crowd_sources for _ in range(10)]
    assert len(flood) + len(crowd) == FLOOD_CONNECTIONS
    await asyncio.gather(run_all(flood, 160), run_all(crowd, 300))
    return tally, {"guesses": Counter(guesses)}


# --- the test ---------------------------------------------------------------------------------------

def trims_since(events: list[dict[str, Any]], mark: int) -> list[dict[str, Any]]:
    """The daemon's memory_trimmed lines among events[mark:].

    The daemon trims at its first housekeeping tick (every 5 s) at which 32 connections or more
    arrived since its last trim and under half its peak are still open. A round throws over a
    thousand connections: at least one trim comes during it or, at the latest, at the first tick
    after it (a trim in mid-round starts the count again, so there may be no trim after the round).
    """
    return [e for e in events[mark:] if e.get("event") == "memory_trimmed"]


@pytest.mark.long
def test_garbage_at_scale_leaves_the_show_and_the_daemon_intact(
    tmp_path: Path, long_clip: Path, test_pki: TestPki, nginx_rtmp: Callable[..., NginxRtmp],
    relay: Callable[..., RelayProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    plain, tls = distinct_ports()
    daemon = relay([{"url": nginx.url("rec"), "stream_key": TARGET_KEY, "passthrough": "nginx"}],
                   server={"listen": f"127.0.0.1:{plain}", "tls_listen": f"127.0.0.1:{tls}",
                           "tls_cert_file": str(test_pki.cert_file),
                           "tls_key_file": str(test_pki.key_file), "limits": LIMITS})
    port = daemon.port
    tls_port = int(daemon.wait_for("relay_listening", scheme="rtmps")["port"])
    pid = daemon.proc.pid
    publisher = FfmpegProcess(publish_args(f"rtmp://127.0.0.1:{port}/live/{INGEST_KEY}", long_clip))
    try:
        daemon.wait_for("target_status", target="nginx", to="broadcasting")
        # Warm: a few seconds of the show through to nginx, then the baseline.
        recorded = nginx.recorded_flv(TARGET_KEY, "rec")
        wait_until(lambda: recorded.exists() and recorded.stat().st_size > 400_000, 20, "the show to reach nginx")
        rss_before, fds_before = rss_kb(pid), open_fds(pid)

        rounds = []
        for network in (1, 2):  # the same attack twice, from other addresses: nothing may pile up
            mark = len(daemon.events)
            started = time.monotonic()
            tally, guessing = asyncio.run(attack(port, tls_port, seed=network, network=network))
            seconds = time.monotonic() - started
            # Every attacking connection is gone from the daemon too: back to the baseline's fds;
            # and the daemon has seen the burst pass (it gives the freed memory back then).
            wait_until(lambda: open_fds(pid) <= fds_before, 15, "the daemon's fds to return to the baseline")
            daemon.wait_until(lambda events: bool(trims_since(events, mark)), timeout=30)
            rounds.append({"tally": tally, "guessing": guessing, "seconds": seconds, "fds": open_fds(pid),
                           "rss": rss_kb(pid)})
        rss_peak = int(Path(f"/proc/{pid}/status").read_text().split("VmHWM:")[1].split()[0])
        assert publisher.returncode is None, "the publisher did not survive the attack"
        publisher.check(timeout=60)
    finally:
        publisher.stop()
    daemon.wait_for("target_status", target="nginx", to="idle", timeout=20)
    nginx.wait_unpublished(TARGET_KEY)
    daemon.proc.send_signal(signal.SIGUSR1)
    lag = daemon.wait_for("loop_lag")
    first, second = rounds
    stalls = [e for e in daemon.events if e.get("event") == "loop_stall"]
    busy_ms = max((e["cpu_ms"] for e in stalls), default=0.0)
    refused_lines = [e for e in daemon.events if e.get("event") == "ingest_refused"]
    stranger_lines = [e for e in daemon.events if e.get("event") in (
        "ingest_protocol_error", "ingest_timeout", "connect_rejected", "publish_rejected", "ingest_tls_failed")]
    thrown = first["tally"].thrown + second["tally"].thrown
    figures = {
        "rounds": 2, "connections_thrown": sum(thrown.values()), "inputs": dict(thrown),
        "bytes_sent": first["tally"].bytes_sent + second["tally"].bytes_sent,
        "outcomes": dict(first["tally"].outcomes + second["tally"].outcomes),
        "attack_s": [round(r["seconds"], 1) for r in rounds], "rss_kb_before": rss_before,
        "rss_kb_after": [r["rss"] for r in rounds], "rss_kb_peak": rss_peak, "fds_before": fds_before,
        "fds_after": [r["fds"] for r in rounds],
        "loop_stall_max_ms": max((e["stall_ms"] for e in stalls), default=0.0), "loop_busy_max_ms": busy_ms,
        "loop_lag": {k: lag[k] for k in ("max_stall_ms", "max_cpu_ms", "stalls")},
        "refused_total": sum(e["refused"] for e in refused_lines), "refused_lines": len(refused_lines),
        "stranger_lines": len(stranger_lines), "suppressed_lines": sum(
            e["lines"] for e in daemon.events if e.get("event") == "ingest_log_suppressed"),
        "log_lines": len(daemon.raw_lines),
    }
    print("HOSTILE_FIGURES " + json.dumps(figures))

    # The show: byte for byte, from its first frame, through all of it.
    match = assert_same_media(nginx.recorded_flv(TARGET_KEY, "rec"), long_clip)
    assert match.start == 0
    assert len([e for e in daemon.events if e.get("event") == "publish_started"]) == 1
    for attack_round in rounds:
        # Every attacking connection was closed by the daemon, none held open.
        left_open = attack_round["tally"].left_open
        assert left_open == [], f"still open after {CLOSE_TIMEOUT} s: {Counter(left_open)}"
        # Key guessing: blocked after failed_publishes_per_minute (10) wrong keys.
        guesses = attack_round["guessing"]["guesses"]
        assert guesses["accepted"] == 0
        assert guesses["rejected"] == 11 and guesses["refused at accept"] == 9
    blocked = [e for e in daemon.events if e.get("event") == "ingest_address_blocked"]
    assert [e["failed_publishes"] for e in blocked] == [11, 11]
    # Resources: back to the baseline.
    assert first["fds"] == second["fds"] == fds_before
    # The log: refusals and failures of strangers are summed, not one line each. Refusals come in
    # summary lines (at most one per interval_s, which each line states), several to a line in a
    # flood; the lines a failing stranger is worth are budgeted per second, and what the budget
    # held back is counted in ingest_log_suppressed lines.
    refused = [e["refused"] for e in refused_lines]
    assert sum(refused) >= 100 and max(refused) > 1, refused
    assert {e["interval_s"] for e in refused_lines} == {1.0}
    assert figures["suppressed_lines"] > 0, "the per-second budget of stranger lines never held one back"
    assert max(len(line) for line in daemon.raw_lines) < 4000
    assert not [e for e in daemon.events if e.get("event") == "unhandled_error"]
    assert_fd_limit_reported(daemon.wait_for("fd_limit"), pid)


def assert_fd_limit_reported(logged: dict[str, Any], pid: int) -> None:
    """The fd_limit line says the daemon's real RLIMIT_NOFILE, and who set it: outside systemd the
    relay raised its soft limit to the hard one (or to nr_open, when the hard one is unlimited)."""
    limits = Path(f"/proc/{pid}/limits").read_text()
    soft_text, hard_text = re.search(r"^Max open files\s+(\S+)\s+(\S+)", limits, re.MULTILINE).groups()  # type: ignore[union-attr]
    soft = -1 if soft_text == "unlimited" else int(soft_text)
    hard = -1 if hard_text == "unlimited" else int(hard_text)
    assert (logged["soft"], logged["hard"]) == (soft, hard), (logged, limits)
    if os.environ.get("INVOCATION_ID"):  # the tests themselves run under systemd: the daemon thinks it does too
        assert logged["set_by"] == "LimitNOFILE", logged
    else:
        assert logged["set_by"] == "relay", logged
        assert soft == (hard if hard >= 0 else int(Path("/proc/sys/fs/nr_open").read_text())), (logged, limits)
        own_soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]  # what the daemon started with
        assert logged.get("raised_from", soft) == own_soft, (logged, own_soft)
