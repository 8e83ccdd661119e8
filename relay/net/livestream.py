"""A live stream: its hub, its targets, and which publisher (if any) holds its key.

Statuses use Mux's words: a live stream is `active` while a publisher holds it (or may
come back: see below), `idle` otherwise. One publisher at a time: a second one on the
same key is refused and the first is not disturbed.

Reconnect window (Mux's `reconnect_window`): when the publisher's connection drops
without FCUnpublish/deleteStream, the stream stays active and the targets stay connected
for that many seconds. If the same key publishes again in time, every target continues
the same broadcast from the new session's first keyframe, its timestamps moving forward
by the time the publisher was away. A clean stop (OBS's "Stop Streaming") ends at once.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from relay.config import LiveStreamConfig
from relay.fanout.hub import Hub
from relay.flv import Tag
from relay.logs import get_logger
from relay.net.target import Target
from relay.rtmp.encoded import EncodedMessage

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
        self.hub = Hub(config.name, wrap=EncodedMessage)  # each tag encoded once for every target
        self.targets = [Target(config.name, t, self.hub) for t in config.simulcast_targets]
        self.publisher: Publisher | None = None
        self.log = get_logger(live_stream=config.name)
        self.sessions = 0
        self._retired: list[Target] = []  # removed by a reload, still closing
        self._window: asyncio.TimerHandle | None = None  # the reconnect window, while it runs
        self._publisher_lost_at = 0.0

    @property
    def status(self) -> str:
        """`active` while a publisher holds the stream or may still come back, else `idle`."""
        return ACTIVE if self.publisher is not None or self._window is not None else IDLE

    @property
    def awaiting_publisher(self) -> bool:
        """True while the reconnect window runs."""
        return self._window is not None

    def claim(self, publisher: Publisher) -> bool:
        """Make `publisher` the stream's publisher; False if another one holds it."""
        if self.publisher is not None:
            return False
        self.publisher = publisher
        self.sessions += 1
        self.hub.state.reset()
        loop = asyncio.get_running_loop()
        if self._window is not None:
            self._window.cancel()
            self._window = None
            away_ms = int((loop.time() - self._publisher_lost_at) * 1000)
            self.log.info("publisher_resumed", away_ms=away_ms)
            for target in self.targets:
                target.resync(away_ms)
            return True
        self.log.info("live_stream_status", **{"from": IDLE, "to": ACTIVE})
        for target in self.targets:
            target.start()
        return True

    def publish(self, tag: Tag) -> None:
        """One tag from the publisher, to every target."""
        self.hub.publish(tag)

    def release(self, publisher: Publisher, reason: str, clean: bool) -> None:
        """The publisher is gone: end the broadcast, or hold it for the reconnect window."""
        if self.publisher is not publisher:
            return
        self.publisher = None
        window = self.config.reconnect_window
        if clean or window <= 0:
            self._end(reason)
            return
        loop = asyncio.get_running_loop()
        self._publisher_lost_at = loop.time()
        self._window = loop.call_later(window, self._end, f"the publisher did not come back within {window:g} s")
        self.log.info("publisher_lost", reason=reason, reconnect_window_s=window)

    def _end(self, reason: str) -> None:
        if self._window is not None:
            self._window.cancel()
            self._window = None
        self.log.info("live_stream_status", reason=reason, **{"from": ACTIVE, "to": IDLE})
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
            if self.status == ACTIVE:
                target.start()
        for target in current.values():
            self._retire(target)
        self.targets = targets
        self.config = config

    def shut_down(self, reason: str) -> None:
        """Kick the publisher and stop every target (the live stream left the config, or we exit)."""
        publisher = self.publisher
        if publisher is not None:
            self.release(publisher, reason, clean=True)
            publisher.close()
        elif self._window is not None:
            self._end(reason)
        for target in self.targets:
            target.request_stop()

    def _retire(self, target: Target) -> None:
        target.request_stop()
        self._retired = [t for t in self._retired if not t.stopped] + [target]

    async def wait_targets_stopped(self, timeout: float) -> None:
        """Wait until every target has closed (cancelled past `timeout`)."""
        await asyncio.gather(*(t.wait_stopped(timeout) for t in [*self.targets, *self._retired]))
