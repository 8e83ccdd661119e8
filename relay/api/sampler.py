"""Every 2 s: stream-health checks, and bitrate samples for the sparklines.

One task for the whole relay. Whether the event loop keeps time (/healthz) is the loop
monitor's to say (relay/runtime/loopmonitor.py), not this one's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from relay.api.history import SAMPLE_INTERVAL, RateHistory
from relay.live.stream import LiveStream


class Sampler:
    """The periodic checks; `history` holds the sparklines' samples."""

    def __init__(self, live_streams: Callable[[], Iterable[LiveStream]], interval: float = SAMPLE_INTERVAL) -> None:
        self._live_streams = live_streams
        self.interval = interval
        self.history = RateHistory(interval=interval)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin ticking."""
        self._task = asyncio.create_task(self._run(), name="sampler")

    async def stop(self) -> None:
        """Stop ticking."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self.tick(loop.time())
        while True:
            await asyncio.sleep(self.interval)
            self.tick(loop.time())

    def tick(self, now: float) -> None:
        """One round of checks and samples."""
        keys: list[tuple[str, ...]] = []
        for live in list(self._live_streams()):
            live.check_health()
            snap = live.snapshot()
            key = (snap.name,)
            keys.append(key)
            self.history.sample(key, snap.bytes_received_total if snap.publisher_connected else None, now)
            for target in snap.simulcast_targets:
                tkey = (snap.name, target.passthrough)
                keys.append(tkey)
                self.history.sample(tkey, target.bytes_sent_total if target.status == "broadcasting" else None, now)
        self.history.keep_only(keys)
