"""A target's connection with no socket: a real TargetLink and ClientConnection over a fake transport,
with the relay's own sans-I/O ServerConnection as the platform on the other end.

Every `writelines` is recorded (its pieces, as handed over) and fed to the platform, whose
replies come back to the link on the next loop iteration, as they would from a socket.
Flow control is played by calling the link's pause_writing() / resume_writing(), as a
transport does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from relay.config import TargetConfig, parse_config
from relay.flv import Tag
from relay.targets.link import Endpoint, LinkOwner, TargetLink
from relay.rtmp import messages as m
from relay.rtmp.client import ClientConnection
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.events import ConnectRequest, PublishEnded, PublishRequest
from relay.rtmp.server import ServerConnection

KEY = "target-KEY-0f9e8d7c6b5a4938"
INGEST_KEY = "ingest-KEY-1a2b3c4d5e6f7a8b"


def target_config(**overrides: Any) -> TargetConfig:
    """A validated target config (url rtmp://platform.example/live), with overrides."""
    data = {
        "server": {"listen": "127.0.0.1:1935"},
        "live_streams": [{
            "name": "studio", "stream_key": INGEST_KEY,
            "simulcast_targets": [{"url": "rtmp://platform.example/live", "stream_key": KEY, "passthrough": "t",
                                   **overrides}],
        }],
    }
    return parse_config(yaml.safe_dump(data), "test.yaml").live_streams[0].simulcast_targets[0]


@dataclass
class Write:
    """One writelines call: the pieces handed over, and the media the platform decoded from them."""

    pieces: list[bytes]
    media: list[Tag] = field(default_factory=list)


class FakeTransport:
    """Just enough of asyncio.Transport for a TargetLink, with a ServerConnection reading what it gets."""

    def __init__(self, link: TargetLink, endpoint: Endpoint) -> None:
        self.link = link
        self.endpoint = endpoint
        self.platform = ServerConnection()
        self.loop = asyncio.get_running_loop()
        self.writes: list[Write] = []
        self.media: list[Tag] = []
        self.unpublished: str | None = None
        self.connect_properties: dict[str, Any] | None = None  # what the target's connect carried
        self.closing = False
        self.reading = True  # the link's pause_reading / resume_reading
        self.written = asyncio.Event()
        self.closed = asyncio.Event()

    # -- what a transport does ---------------------------------------------------------

    def writelines(self, data: Any) -> None:
        pieces = list(data)
        write = Write(pieces)
        self.writes.append(write)
        platform = self.platform
        platform.receive_data(b"".join(pieces))
        while (event := platform.next_event()) is not None:
            if isinstance(event, ConnectRequest):
                self.connect_properties = event.properties
                platform.accept_connect()
            elif isinstance(event, PublishRequest):
                platform.accept_publish()
            elif isinstance(event, EncodedMessage):
                write.media.append(event)
                self.media.append(event)
            elif isinstance(event, PublishEnded):
                self.unpublished = self.unpublished or event.command
        reply = platform.data_to_send()
        if reply:
            self.loop.call_soon(self._reply, reply)
        self.written.set()

    def write(self, data: bytes) -> None:
        self.writelines([data])

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self._close(None)  # the platform answers a half-close by closing

    def close(self) -> None:
        self._close(None)

    def abort(self) -> None:
        self._close(ConnectionAbortedError("aborted"))

    # -- for the tests -----------------------------------------------------------------

    async def next_write(self, timeout: float = 5.0) -> Write:
        """Wait for the next writelines call."""
        count = len(self.writes)
        await self.wait_until(lambda: len(self.writes) > count, timeout)
        return self.writes[count]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds, checking after each write (never by sleeping)."""
        async def holds() -> None:
            while not predicate():
                self.written.clear()
                await self.written.wait()
        await asyncio.wait_for(holds(), timeout)

    def send_status(self, code: str, **info: Any) -> None:
        """The platform sends a NetConnection onStatus (an Enhanced RTMP reconnect request, say)."""
        self.platform._send_command("onStatus", 0, None, m.status_info("status", code, "", **info))
        self.loop.call_soon(self._reply, self.platform.data_to_send())

    def media_writes(self) -> list[Write]:
        return [w for w in self.writes if w.media]

    def _reply(self, data: bytes) -> None:
        if not self.closing:
            self.link.data_received(data)

    def _close(self, exc: Exception | None) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self.link.connection_lost, exc)
            self.closed.set()


class FakeNetwork:
    """Stands in for targetlink.open_link: every link it opens runs over a FakeTransport."""

    def __init__(self) -> None:
        self.transports: list[FakeTransport] = []
        self.opened = asyncio.Event()

    async def open_link(self, config: TargetConfig, endpoint: Endpoint, owner: LinkOwner, *,
                        enhanced: bool = False) -> TargetLink:
        conn = ClientConnection(endpoint.app, endpoint.tc_url, config.stream_key.reveal(), enhanced=enhanced)
        link = TargetLink(conn, owner, config)
        transport = FakeTransport(link, endpoint)
        self.transports.append(transport)
        link.connection_made(transport)
        await asyncio.wait_for(asyncio.shield(link.published), 5)
        self.opened.set()
        return link

    async def wait_opened(self, count: int = 1, timeout: float = 5.0) -> FakeTransport:
        """Wait until `count` links are published; the latest one's transport."""
        async def opened() -> None:
            while len(self.transports) < count or not self.transports[count - 1].link.published.done():
                self.opened.clear()
                await self.opened.wait()
        await asyncio.wait_for(opened(), timeout)
        return self.transports[count - 1]
