"""Event-loop stall monitor: how late the loop's timers fire, and a log line when one is late.

Every publisher and target shares one event loop; a callback that runs for 200 ms holds
every live stream for 200 ms, and every timer due meanwhile fires up to 200 ms late. So
the monitor measures the lateness of timers that run anyway, and wakes the loop itself
only rarely:

- while any live stream is live, the write ticker's timer fires every few milliseconds
  (relay/runtime/writetick.py): it reports the time it was due (`observe`), and its
  lateness is the sample;
- besides, the monitor's own timer fires every IDLE_INTERVAL (1 s): an idle relay wakes
  for it once a second instead of 50 times (a 20 ms timer cost an idle relay 8 ms of CPU
  a second, issue #21), and it keeps /healthz and the watchdog meaningful when no
  stream is live. A stall of an idle loop is seen when it overlaps that tick.

A sample late by THRESHOLD or more is a stall, logged as `loop_stall` with
- `stall_ms`: how late the timer fired (the loop ran none of its callbacks that long), and
- `cpu_ms`: CPU time the loop's thread used since the previous sample. Close to
  `stall_ms`, the loop was busy (our code); far below it, the process was not scheduled
  (a busy machine).

Stalls are logged at most once a second: a line sums `stalls` samples and gives the
largest `stall_ms` and `cpu_ms` among them. The worst since start is kept for the
`loop_lag` line of SIGUSR1 and of shutdown.

It is also the one judge of the loop's health (/healthz, `healthy()`): unhealthy while
the last sample was over MAX_LAG late, or no sample came for IDLE_INTERVAL + MAX_LAG.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from relay.runtime.logs import get_logger

IDLE_INTERVAL = 1.0
THRESHOLD = 0.05
LOG_INTERVAL = 1.0
MAX_LAG = 1.0  # seconds late (or without a sample) before the loop counts as unhealthy (blocked or starved)


class LoopMonitor:
    """Measures the event loop's stalls while started, from its timers' lateness."""

    def __init__(self, interval: float = IDLE_INTERVAL, threshold: float = THRESHOLD) -> None:
        self.interval = interval
        self.threshold = threshold
        self.max_stall_ms = 0.0
        self.max_cpu_ms = 0.0
        self.stalls = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0  # when the monitor's own timer is due
        self._last = 0.0  # when the last sample was taken
        self._last_late = 0.0  # how late it was
        self._last_cpu = 0.0
        self._pending: list[tuple[float, float]] = []  # (stall_ms, cpu_ms) not logged yet
        self._logged_at = float("-inf")
        self.log = get_logger()

    def start(self) -> None:
        """Begin measuring on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._last_cpu = time.thread_time()
        self._arm()

    def stop(self) -> None:
        """Stop measuring; log stalls not logged yet."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush()

    def observe(self, due: float) -> None:
        """A timer that was due at `due` (the loop's clock) is running now: one sample."""
        if self._timer is not None:
            self._sample(due)

    def healthy(self) -> bool:
        """True while timers fire on time (or before the monitor started)."""
        if self._loop is None or self._timer is None:
            return True
        since = self._loop.time() - self._last
        return self._last_late <= MAX_LAG and since <= self.interval + MAX_LAG

    def _arm(self) -> None:
        assert self._loop is not None
        self._due = self._loop.time() + self.interval
        self._timer = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        self._sample(self._due)
        self._arm()

    def _sample(self, due: float) -> None:
        assert self._loop is not None
        now = self._loop.time()
        late = now - due
        if late >= self.threshold:
            cpu = time.thread_time()
            stall_ms, cpu_ms = late * 1000, (cpu - self._last_cpu) * 1000
            self.stalls += 1
            self.max_stall_ms = max(self.max_stall_ms, stall_ms)
            self.max_cpu_ms = max(self.max_cpu_ms, cpu_ms)
            self._pending.append((stall_ms, cpu_ms))
        if self._pending and now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            self._flush()
        self._last = now
        self._last_late = max(0.0, late)
        self._last_cpu = time.thread_time()  # the logging above is not part of the next sample

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
