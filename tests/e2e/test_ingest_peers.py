"""The ingest against misbehaving peers, in process: garbage, silence, a publisher that goes quiet.

Each must cost the relay one closed connection and a log line, never a crash or a
connection held open forever. The deadlines are shortened for the test; the behaviour is
the daemon's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from relay import logs
from relay.config import parse_config
from relay.net import ingest
from relay.net.ingest import IngestProtocol, start_ingest
from relay.net.livestream import LiveStream
from relay.rtmp.connection import ClientConnection
from relay.rtmp.events import PublishStarted, Refused

INGEST_KEY = "ingest-peers-KEY-0c41f7aa"


@pytest.fixture
async def ingest_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[tuple[int, LiveStream]]:
    monkeypatch.setattr(ingest, "PUBLISH_DEADLINE", 0.5)
    monkeypatch.setattr(ingest, "IDLE_TIMEOUT", 0.5)
    log_file = (tmp_path / "relay.log").open("w")
    logs.configure("info", json=True, stream=log_file)
    config = parse_config(
        f'live_streams: [{{name: studio, stream_key: "{INGEST_KEY}", reconnect_window: 0, simulcast_targets: []}}]',
        "test.yaml",
    )
    live = LiveStream(config.live_streams[0])
    connections: set[IngestProtocol] = set()
    server = await start_ingest("127.0.0.1", 0, "live", lambda key: live if key == INGEST_KEY else None, connections)
    try:
        yield server.sockets[0].getsockname()[1], live
    finally:
        server.close()
        for conn in list(connections):
            conn.close()
        structlog.reset_defaults()
        log_file.close()
        assert INGEST_KEY not in (tmp_path / "relay.log").read_text()


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """Read until EOF or reset; True if the server closed the connection in time."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
    except ConnectionResetError:
        pass
    return True


async def test_garbage_gets_the_connection_closed(ingest_server: tuple[int, LiveStream]) -> None:
    port, _ = ingest_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    writer.write(b"\x06" + bytes(1536))  # RTMPE: a version byte this relay refuses

    assert await closed_by_server(reader)
    writer.close()


async def test_a_peer_that_never_publishes_is_closed_after_the_deadline(
        ingest_server: tuple[int, LiveStream]) -> None:
    port, _ = ingest_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    assert await closed_by_server(reader)  # it sent nothing at all
    writer.close()


async def test_a_publisher_that_goes_silent_is_closed_and_releases_the_stream(
        ingest_server: tuple[int, LiveStream]) -> None:
    port, live = ingest_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = ClientConnection("live", f"rtmp://127.0.0.1:{port}/live", INGEST_KEY)
    writer.write(client.data_to_send())
    async with asyncio.timeout(5):
        published = False
        while not published:
            client.receive_data(await reader.read(65536))
            while (event := client.next_event()) is not None:
                published = published or isinstance(event, PublishStarted)
            writer.write(client.data_to_send())
    assert live.status == "active"

    # Then nothing more: no media, no FCUnpublish, no FIN (a dead uplink).
    assert await closed_by_server(reader)
    assert live.status == "idle"
    writer.close()


async def test_a_wrong_application_is_rejected_without_logging_what_follows_it(
        ingest_server: tuple[int, LiveStream], tmp_path: Path) -> None:
    port, live = ingest_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # An encoder whose server url was set to rtmp://host/other/KEY.
    client = ClientConnection(f"other/{INGEST_KEY}", f"rtmp://127.0.0.1:{port}/other/{INGEST_KEY}", INGEST_KEY)
    writer.write(client.data_to_send())

    refused = None
    async with asyncio.timeout(5):
        while refused is None:
            data = await reader.read(65536)
            assert data, "closed before answering connect"
            client.receive_data(data)
            while (event := client.next_event()) is not None:
                if isinstance(event, Refused):
                    refused = event
            writer.write(client.data_to_send())

    assert refused.stage == "connect" and refused.code == "NetConnection.Connect.Rejected"
    assert await closed_by_server(reader)
    assert live.status == "idle"
    assert '"app": "other"' in (tmp_path / "relay.log").read_text()
    writer.close()
