"""Every 2 s: stream-health checks, bitrate samples for the sparklines, and a loop heartbeat.

One task for the whole relay. Its own lateness is the event loop's health: a tick that
comes much later than asked means something blocked the loop, which /healthz reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from relay.fanout.samples import SAMPLE_INTERVAL, RateHistory
from relay.net.livestream import LiveStream

MAX_LAG = 1.0  # seconds late for a tick before the loop counts as unhealthy


class Monitor:
    """The periodic checks; `history` holds the sparklines' samples."""

    def __init__(self, live_streams: Callable[[], Iterable[LiveStream]], interval: float = SAMPLE_INTERVAL) -> None:
        self._live_streams = live_streams
        self.interval = interval
        self.history = RateHistory(interval=interval)
        self.lag = 0.0
        self.last_tick: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin ticking."""
        self._task = asyncio.create_task(self._run(), name="monitor")

    async def stop(self) -> None:
        """Stop ticking."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def loop_healthy(self) -> bool:
        """True while ticks come on time (the event loop is not blocked or starved)."""
        if self.last_tick is None:
            return True
        late = asyncio.get_running_loop().time() - self.last_tick - self.interval
        return self.lag <= MAX_LAG and late <= MAX_LAG

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self.tick(loop.time())
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.lag = max(0.0, now - due)
            self.tick(now)

    def tick(self, now: float) -> None:
        """One round of checks and samples."""
        self.last_tick = now
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
