"""A live stream: its hub, its targets, and which publisher (if any) holds its key.

Statuses use Mux's words: a live stream is `active` while a publisher holds it, `idle`
otherwise. One publisher at a time: a second one on the same key is refused and the
first is not disturbed.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from relay.config import LiveStreamConfig
from relay.fanout.hub import Hub
from relay.flv import Tag
from relay.logs import get_logger
from relay.net.target import Target

IDLE = "idle"
ACTIVE = "active"


class Publisher(Protocol):
    """The ingest connection holding a live stream."""

    def close(self) -> None:
        """Shut the publisher out."""


class LiveStream:
    """Runtime state of one configured live stream."""

    def __init__(self, config: LiveStreamConfig) -> None:
        self.config = config
        self.name = config.name
        self.hub = Hub(config.name)
        self.targets = [Target(config.name, t, self.hub) for t in config.simulcast_targets]
        self.publisher: Publisher | None = None
        self.log = get_logger(live_stream=config.name)
        self._retired: list[Target] = []  # removed by a reload, still closing

    @property
    def status(self) -> str:
        """`active` while a publisher holds the stream, else `idle`."""
        return ACTIVE if self.publisher is not None else IDLE

    def claim(self, publisher: Publisher) -> bool:
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

    def release(self, publisher: Publisher, reason: str) -> None:
        """The publisher is gone: end every target's session (flush, unpublish, close)."""
        if self.publisher is not publisher:
            return
        self.publisher = None
        self.log.info("live_stream_status", from_status=ACTIVE, to_status=IDLE, reason=reason)
        for target in self.targets:
            target.request_stop()

    def reconfigure(self, config: LiveStreamConfig) -> None:
        """Apply a reloaded config: unchanged targets keep broadcasting, others restart."""
        current = {t.config.passthrough: t for t in self.targets}
        targets = []
        for target_config in config.simulcast_targets:
            target = current.pop(target_config.passthrough, None)
            if target is not None and target.config == target_config:
                targets.append(target)
                continue
            if target is not None:
                self._retire(target)
            target = Target(self.name, target_config, self.hub)
            targets.append(target)
            if self.publisher is not None:
                target.start()
        for target in current.values():
            self._retire(target)
        self.targets = targets
        self.config = config

    def shut_down(self, reason: str) -> None:
        """Kick the publisher and stop every target (the live stream left the config, or we exit)."""
        if self.publisher is not None:
            publisher = self.publisher
            self.release(publisher, reason)
            publisher.close()
        for target in self.targets:
            target.request_stop()

    def _retire(self, target: Target) -> None:
        target.request_stop()
        self._retired = [t for t in self._retired if not t.stopped] + [target]

    async def wait_targets_stopped(self, timeout: float) -> None:
        """Wait until every target has closed (cancelled past `timeout`)."""
        await asyncio.gather(*(t.wait_stopped(timeout) for t in [*self.targets, *self._retired]))
