"""The loop-stall monitor: a callback that holds the loop is seen, with the CPU it used."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import pytest

from relay.runtime.loopmonitor import LoopMonitor
from tests.support.logcapture import LogStream, log_out  # noqa: F401  (log_out: a fixture)


def stalls(out: io.StringIO) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, out.getvalue().splitlines()) if e["event"] == "loop_stall"]


def spin(seconds: float) -> None:
    """Hold the event loop with `seconds` of work (CPU time of this thread), as a slow callback would.

    Counted in CPU time, not wall-clock time: on a busy machine (the suite runs its tests in
    parallel) a wall-clock spin is descheduled part of the time and does less work than asked.
    """
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def test_a_busy_callback_is_logged_as_a_stall_with_its_cpu(log_out: LogStream) -> None:
    monitor = LoopMonitor(interval=0.01, threshold=0.05)
    monitor.start()
    try:
        asyncio.get_running_loop().call_soon(spin, 0.15)
        await asyncio.wait_for(log_out.written.wait(), timeout=5)
    finally:
        monitor.stop()

    line = max(stalls(log_out), key=lambda e: e["stall_ms"])
    assert line["stall_ms"] >= 140  # the tick due 10 ms after the last one ran that much later
    assert line["cpu_ms"] >= 100  # the loop's thread was working, not waiting
    assert monitor.summary()["max_stall_ms"] >= 140 and monitor.summary()["max_cpu_ms"] >= 100


async def test_a_process_that_is_not_scheduled_shows_little_cpu(log_out: LogStream) -> None:
    monitor = LoopMonitor(interval=0.01, threshold=0.05)
    monitor.start()
    try:
        asyncio.get_running_loop().call_soon(time.sleep, 0.15)  # blocked without using the CPU
        await asyncio.wait_for(log_out.written.wait(), timeout=5)
    finally:
        monitor.stop()

    line = max(stalls(log_out), key=lambda e: e["stall_ms"])
    assert line["stall_ms"] >= 140 and line["cpu_ms"] < 50


async def test_short_callbacks_are_not_busy_stalls(log_out: LogStream) -> None:
    monitor = LoopMonitor(interval=0.01, threshold=0.05)
    monitor.start()
    for _ in range(20):
        asyncio.get_running_loop().call_soon(spin, 0.005)
        await asyncio.sleep(0.01)  # paces the callbacks; nothing is waited for
    monitor.stop()

    # A busy machine may delay a tick (a stall with little CPU), but no gap holds 50 ms of work.
    assert all(line["cpu_ms"] < 50 for line in stalls(log_out))


async def test_the_loop_is_unhealthy_after_a_long_stall_and_healthy_again_after_it() -> None:
    from relay.runtime.loopmonitor import MAX_LAG
    monitor = LoopMonitor(interval=0.01, threshold=10.0)
    assert monitor.healthy()  # not started: nothing to judge
    monitor.start()
    loop = asyncio.get_running_loop()

    def block() -> None:
        end = time.monotonic() + MAX_LAG + 0.2
        while time.monotonic() < end:
            pass
        assert not monitor.healthy()  # no tick for over MAX_LAG
    loop.call_soon(block)
    while monitor._last_late <= MAX_LAG:  # the tick after the stall measured it
        await asyncio.sleep(0.01)
    assert not monitor.healthy()
    while monitor._last_late > MAX_LAG:
        await asyncio.sleep(0.01)
    assert monitor.healthy()
    monitor.stop()


async def test_the_write_tickers_timer_is_a_sample_and_an_idle_loop_wakes_once_a_second() -> None:
    monitor = LoopMonitor(threshold=0.05)
    monitor.start()
    loop = asyncio.get_running_loop()
    try:
        assert monitor._timer is not None and monitor._due - loop.time() > 0.9  # its own tick: 1 s away
        monitor.observe(loop.time() - 0.2)  # a ticker firing 200 ms after it was due
        assert monitor.stalls == 1 and monitor.max_stall_ms >= 200
        assert monitor.healthy()  # a stall, not an unhealthy loop: MAX_LAG is 1 s
        monitor.observe(loop.time() - 1.5)
        assert not monitor.healthy()
        monitor.observe(loop.time())
        assert monitor.healthy() and monitor.stalls == 2
    finally:
        monitor.stop()

