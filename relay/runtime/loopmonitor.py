"""Event-loop stall monitor: a timer every INTERVAL seconds, and a log line when one comes late.

Every publisher and target shares one event loop; a callback that runs for 200 ms holds
every live stream for 200 ms. The monitor re-arms a timer every INTERVAL seconds and
measures the gap between two ticks: no callback can have run longer than that gap. A gap
of THRESHOLD or more is logged as `loop_stall`, with

- `stall_ms`: the gap (an upper bound on the longest time the loop ran no timer), and
- `cpu_ms`: CPU time the loop's thread used in that gap. Close to `stall_ms`, the loop
  was busy (our code); far below it, the process was not scheduled (a busy machine).

It is also the one judge of the loop's health (/healthz, `healthy()`): unhealthy while
the last gap, or the time since the last tick, is over MAX_LAG.

Stalls are logged at most once a second: a line sums `stalls` gaps and gives the largest
`stall_ms` and the largest `cpu_ms` among them. The
worst since start is kept for the `loop_lag` line of SIGUSR1 and of shutdown. Each tick
costs a few microseconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from relay.runtime.logs import get_logger

INTERVAL = 0.02
THRESHOLD = 0.05
LOG_INTERVAL = 1.0
MAX_LAG = 1.0  # seconds without a tick before the loop counts as unhealthy (blocked or starved)


class LoopMonitor:
    """Measures the event loop's stalls while started."""

    def __init__(self, interval: float = INTERVAL, threshold: float = THRESHOLD) -> None:
        self.interval = interval
        self.threshold = threshold
        self.max_stall_ms = 0.0
        self.max_cpu_ms = 0.0
        self.stalls = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last = 0.0
        self._last_gap = 0.0
        self._last_cpu = 0.0
        self._pending: list[tuple[float, float]] = []  # (stall_ms, cpu_ms) not logged yet
        self._logged_at = float("-inf")
        self.log = get_logger()

    def start(self) -> None:
        """Begin ticking on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._last_cpu = time.thread_time()
        self._timer = self._loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        """Stop ticking; log stalls not logged yet."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush()

    def healthy(self) -> bool:
        """True while ticks come on time (or before the monitor started)."""
        if self._loop is None or self._timer is None:
            return True
        since = self._loop.time() - self._last
        return self._last_gap <= MAX_LAG and since <= self.interval + MAX_LAG

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        cpu = time.thread_time()
        gap = self._last_gap = now - self._last
        if gap >= self.threshold:
            stall_ms, cpu_ms = gap * 1000, (cpu - self._last_cpu) * 1000
            self.stalls += 1
            self.max_stall_ms = max(self.max_stall_ms, stall_ms)
            self.max_cpu_ms = max(self.max_cpu_ms, cpu_ms)
            self._pending.append((stall_ms, cpu_ms))
        if self._pending and now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            self._flush()
        self._last = now
        self._last_cpu = time.thread_time()  # the logging above is not part of the next gap
        self._timer = self._loop.call_later(self.interval, self._tick)

    def _flush(self) -> None:
        if not self._pending:
            return
        stall_ms = max(stall for stall, _ in self._pending)
        cpu_ms = max(cpu for _, cpu in self._pending)
        self.log.warning("loop_stall", stall_ms=round(stall_ms, 1), cpu_ms=round(cpu_ms, 1),
                         stalls=len(self._pending), threshold_ms=self.threshold * 1000)
        self._pending = []

    def summary(self) -> dict[str, Any]:
        """The worst stall since start, for a `loop_lag` line."""
        return {"max_stall_ms": round(self.max_stall_ms, 1), "max_cpu_ms": round(self.max_cpu_ms, 1),
                "stalls": self.stalls, "threshold_ms": self.threshold * 1000}
