"""A live stream: its hub, its targets, and which publisher (if any) holds its key.

Statuses use Mux's words: a live stream is `active` while a publisher holds it, `idle`
otherwise. One publisher at a time: a second one on the same key is refused and the
first is not disturbed.
"""

from __future__ import annotations

import asyncio

from relay.config import LiveStreamConfig
from relay.fanout.hub import Hub
from relay.flv import Tag
from relay.logs import get_logger
from relay.net.target import Target

IDLE = "idle"
ACTIVE = "active"


class LiveStream:
    """Runtime state of one configured live stream."""

    def __init__(self, config: LiveStreamConfig) -> None:
        self.config = config
        self.name = config.name
        self.hub = Hub(config.name)
        self.targets = [Target(config.name, t, self.hub) for t in config.simulcast_targets]
        self.publisher: object | None = None
        self.log = get_logger(live_stream=config.name)

    @property
    def status(self) -> str:
        """`active` while a publisher holds the stream, else `idle`."""
        return ACTIVE if self.publisher is not None else IDLE

    def claim(self, publisher: object) -> bool:
        """Make `publisher` the stream's publisher; False if another one holds it."""
        if self.publisher is not None:
            return False
        self.publisher = publisher
        self.hub.state.reset()
        self.log.info("live_stream_status", from_status=IDLE, to_status=ACTIVE)
        for target in self.targets:
            target.start()
        return True

    def publish(self, tag: Tag) -> None:
        """One tag from the publisher, to every target."""
        self.hub.publish(tag)

    def release(self, publisher: object, reason: str) -> None:
        """The publisher is gone: end every target's session (flush, unpublish, close)."""
        if self.publisher is not publisher:
            return
        self.publisher = None
        self.log.info("live_stream_status", from_status=ACTIVE, to_status=IDLE, reason=reason)
        for target in self.targets:
            target.request_stop()

    async def wait_targets_stopped(self, timeout: float) -> None:
        """Wait until every target has closed (cancelled past `timeout`)."""
        await asyncio.gather(*(t.wait_stopped(timeout) for t in self.targets))
