"""A publisher's reads, once per write interval (relay/ingest/readbatch.py).

First the batcher alone, on the write ticker's fake clock; then a real ingest listener on
a real socket, with the project's ClientConnection as the publisher: its input is held
(in the kernel, relay/ingest/rcvhold.py) after a read that emptied the socket, let go at
the live stream's slot, and every tag arrives, in order, whatever was sent while it was held.
"""

from __future__ import annotations

import asyncio

import pytest

from relay.config import LiveStreamConfig, ServerConfig
from relay.flv import AUDIO, Tag
from relay.ingest import session as ingest
from relay.ingest.listeners import Ingest
from relay.live.stream import LiveStream
from relay.ingest.readbatch import READ_LARGE, ReadBatch
from relay.rtmp.client import ClientConnection
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.events import PublishStarted
from tests.unit.runtime.test_writetick import FakeLoop, ticker_on

INGEST_KEY = "batch-ingest-KEY-5e4d3c2b1a"
TARGET_KEY = "batch-target-KEY-0a9b8c7d6e"
WAIT = 10.0


class Owner:
    def __init__(self, loop: FakeLoop) -> None:
        self.loop = loop
        self.log: list[tuple[str, float]] = []

    def pause_batch(self) -> None:
        self.log.append(("pause", self.loop.now))

    def resume_batch(self) -> None:
        self.log.append(("resume", self.loop.now))


def test_a_read_that_empties_the_socket_pauses_until_the_streams_slot() -> None:
    loop = FakeLoop()
    ticker = ticker_on(loop)
    owner = Owner(loop)
    batch = ReadBatch(owner, ticker)
    start = loop.now
    assert batch.after_read(7000, 0.1, phase=3) is True  # complete: the caller writes the targets now
    assert owner.log == [("pause", start)] and batch.waiting
    assert batch.after_read(100, 0.1, phase=3) is False  # already waiting: nothing booked twice
    loop.run_timers_until(start + 0.1)
    (_, resumed_at), = owner.log[1:]
    assert start < resumed_at <= start + 0.1 and not batch.waiting  # at the slot, within one interval
    assert ticker.scheduled == 0 and loop.live_timers == []


def test_a_large_read_reads_again_before_pausing() -> None:
    loop = FakeLoop()
    owner = Owner(loop)
    batch = ReadBatch(owner, ticker_on(loop))
    assert batch.after_read(READ_LARGE, 0.1, phase=0) is False  # more may be in the socket
    assert batch.after_read(READ_LARGE * 3, 0.1, phase=0) is False
    assert owner.log == [] and not batch.waiting
    assert batch.after_read(READ_LARGE - 1, 0.1, phase=0) is True
    assert [what for what, _ in owner.log] == ["pause"]


def test_reads_are_not_batched_when_a_target_writes_each_tag_at_once() -> None:
    loop = FakeLoop()
    owner = Owner(loop)
    batch = ReadBatch(owner, ticker_on(loop))
    assert batch.after_read(100, 0.0, phase=0) is False
    assert owner.log == [] and loop.live_timers == []


def test_cancel_reads_again_at_once_and_the_booked_slot_does_nothing() -> None:
    loop = FakeLoop()
    owner = Owner(loop)
    batch = ReadBatch(owner, ticker_on(loop))
    batch.after_read(100, 0.1, phase=0)
    batch.cancel()
    loop.run_timers_until(loop.now + 1.0)
    assert [what for what, _ in owner.log] == ["pause", "resume"]


# -- a real socket --------------------------------------------------------------------

class Seen:
    """A hub subscriber: the tags of the live stream, and an event when `want` have come."""

    def __init__(self) -> None:
        self.tags: list[Tag] = []
        self.want = 0
        self.enough = asyncio.Event()

    def offer(self, tag: Tag) -> None:
        self.tags.append(tag)
        if len(self.tags) >= self.want:
            self.enough.set()

    async def wait_for(self, count: int) -> None:
        self.want = count
        self.enough.clear()
        if len(self.tags) < count:
            await asyncio.wait_for(self.enough.wait(), WAIT)


def live_config(write_interval: float) -> LiveStreamConfig:
    # The target is unreachable: only the publisher's side is looked at.
    return LiveStreamConfig.model_validate({
        "name": "studio", "stream_key": INGEST_KEY,
        "simulcast_targets": [{"url": "rtmp://127.0.0.1:9/app", "stream_key": TARGET_KEY, "passthrough": "t",
                               "write_interval": write_interval}],
    })


async def publish(port: int) -> tuple[ClientConnection, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = ClientConnection("live", f"rtmp://127.0.0.1:{port}/live", INGEST_KEY)
    while True:
        while (event := conn.next_event()) is not None:
            if isinstance(event, PublishStarted):
                return conn, reader, writer
        writer.write(conn.data_to_send())  # what the events called for too
        await writer.drain()
        data = await asyncio.wait_for(reader.read(65536), WAIT)
        assert data, "the relay closed the connection before publishing"
        conn.receive_data(data)


def audio(i: int) -> EncodedMessage:
    return EncodedMessage(AUDIO, i * 23, bytes((0xAF, 0x01)) + i.to_bytes(4, "big") * 50)


async def run_ingest(write_interval: float) -> tuple[LiveStream, Seen, Ingest, asyncio.Server]:
    live = LiveStream(live_config(write_interval))
    seen = Seen()
    live.hub.join(seen)
    server_config = ServerConfig.model_validate({"listen": "127.0.0.1:1935"})  # listened on port 0 below
    listeners = Ingest(server_config, lambda key: live if key == INGEST_KEY else None)
    server = await listeners.listen("127.0.0.1", 0)
    return live, seen, listeners, server


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


class LoggedBatch(ReadBatch):
    """The relay's ReadBatch, with a log of its pauses and resumes (the slot time is not the test's)."""

    log: list[str] = []

    def after_read(self, size: int, interval: float, phase: int) -> bool:
        complete = super().after_read(size, interval, phase)
        if complete:
            self.log.append("pause")
        return complete

    def flush(self) -> None:
        if self.waiting:
            self.log.append("resume")
        super().flush()


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    log: list[str] = []
    monkeypatch.setattr(LoggedBatch, "log", log)
    monkeypatch.setattr(ingest, "ReadBatch", LoggedBatch)
    return log


async def test_a_publishers_reads_pause_between_slots_and_lose_nothing(batches: list[str]) -> None:
    live, seen, listeners, server = await run_ingest(0.1)
    idle = asyncio.Event()
    live.observers.append(lambda change: idle.set() if change.type == "video.live_stream.idle" else None)
    conn, reader, writer = await publish(port_of(server))
    try:
        conn.send_message(audio(0), 0)
        writer.write(conn.data_to_send())
        await seen.wait_for(1)
        assert batches[:1] == ["pause"]  # read, then paused until the stream's slot

        # Sent while reading is paused: all of it arrives once the slot comes, in order.
        for i in range(1, 40):
            conn.send_message(audio(i), i * 23)
        writer.write(conn.data_to_send())
        await seen.wait_for(40)
        assert [t.payload for t in seen.tags] == [audio(i).payload for i in range(40)]
        assert batches[:3] == ["pause", "resume", "pause"]  # the slot came, the rest was read in a batch
        (protocol,) = listeners.connections
        # Held in the kernel, not paused: the transport reads on (rcvhold.py; Linux).
        assert protocol.intake.receive_hold is not None and "batch" not in protocol.intake.paused_for

        # Unpublishing ends the batching: the connection reads as data comes.
        conn.unpublish()
        writer.write(conn.data_to_send())
        await asyncio.wait_for(idle.wait(), WAIT)
        assert protocol.live is None and not protocol.intake.held and "batch" not in protocol.intake.paused_for
    finally:
        writer.close()
        server.close()
        live.shut_down("test over")
        await live.wait_targets_stopped(WAIT)


async def test_a_publishers_reads_are_not_paused_when_a_target_writes_each_tag_at_once(batches: list[str]) -> None:
    live, seen, listeners, server = await run_ingest(0.0)
    conn, reader, writer = await publish(port_of(server))
    try:
        for i in range(3):
            conn.send_message(audio(i), i * 23)
            writer.write(conn.data_to_send())
            await seen.wait_for(i + 1)
        (protocol,) = listeners.connections
        assert batches == [] and not protocol.intake.paused_for
        assert protocol.intake.receive_hold is None  # never held: no descriptor of its own either
    finally:
        writer.close()
        server.close()
        live.shut_down("test over")
        await live.wait_targets_stopped(WAIT)

