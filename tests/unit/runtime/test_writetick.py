"""One timer for the whole process: each target flushed at its phase of its interval, on a clock the test holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from relay.runtime.writetick import PHASES, STREAMS_PER_PHASE, WriteTicker, write_ticker


class FakeLoop:
    """Just the loop calls the ticker makes, on a clock that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, Callable[[], None], Handle]] = []
        self.soon: list[Callable[[], None]] = []
        self.errors: list[dict[str, Any]] = []
        self.armed = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        handle = Handle()
        self.timers.append((when, callback, handle))
        self.armed += 1
        return handle

    def call_soon(self, callback: Callable[[], None]) -> Handle:
        self.soon.append(callback)
        return Handle()

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    @property
    def live_timers(self) -> list[tuple[float, Callable[[], None], Handle]]:
        return [t for t in self.timers if not t[2].cancelled]

    def run_timers_until(self, until: float) -> int:
        """Fire due timers in time order, moving the clock to each; the number fired."""
        fired = 0
        while True:
            live = sorted(self.live_timers, key=lambda t: t[0])
            assert len(live) <= 1, "more than one timer armed"
            if not live or live[0][0] > until:
                self.now = until
                return fired
            when, callback, handle = live[0]
            handle.cancelled = True  # it runs now
            self.now = max(self.now, when)
            callback()
            fired += 1


class Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Recorder:
    def __init__(self, name: str, loop: FakeLoop, log: list[tuple[str, float]]) -> None:
        self.name = name
        self.loop = loop
        self.log = log

    def flush(self) -> None:
        self.log.append((self.name, self.loop.now))


def ticker_on(loop: FakeLoop) -> WriteTicker:
    return WriteTicker(loop)  # type: ignore[arg-type]


def test_one_timer_fires_at_most_once_per_phase_however_many_targets() -> None:
    loop = FakeLoop()
    ticker = ticker_on(loop)
    log: list[tuple[str, float]] = []
    targets = [Recorder(f"t{i}", loop, log) for i in range(200)]
    start = loop.now
    for target in targets:
        ticker.schedule(target, 0.1, ticker.new_phase())
    assert ticker.scheduled == 200
    fired = loop.run_timers_until(start + 0.1)
    assert fired <= PHASES  # not one timer per target
    assert sorted(name for name, _ in log) == sorted(t.name for t in targets)  # each flushed once
    assert all(start <= at <= start + 0.1 for _, at in log)  # within one interval of becoming pending
    assert len({at for _, at in log}) == PHASES  # spread over the interval's phases, not all at once
    assert ticker.scheduled == 0 and loop.live_timers == []


def test_a_target_writes_at_most_once_per_interval() -> None:
    loop = FakeLoop()
    ticker = ticker_on(loop)
    log: list[tuple[str, float]] = []
    target = Recorder("a", loop, log)
    phase = ticker.new_phase()
    ticker.schedule(target, 0.05, phase)
    loop.run_timers_until(loop.now + 0.05)
    (_, first), = log
    ticker.schedule(target, 0.05, phase)  # something pending again right after the write
    loop.run_timers_until(first + 0.2)
    assert [at for _, at in log] == [first, first + 0.05]


def test_intervals_have_their_own_wheels_and_go_in_due_order() -> None:
    loop = FakeLoop()
    ticker = ticker_on(loop)
    log: list[tuple[str, float]] = []
    start = loop.now
    ticker.schedule(Recorder("slow", loop, log), 0.1, 9)
    ticker.schedule(Recorder("fast", loop, log), 0.01, 9)
    loop.run_timers_until(start + 0.2)
    assert [name for name, _ in log] == ["fast", "slow"]
    assert log[0][1] <= start + 0.01 and log[1][1] <= start + 0.1


def test_after_an_idle_time_a_target_waits_at_most_one_interval() -> None:
    loop = FakeLoop()
    ticker = ticker_on(loop)
    log: list[tuple[str, float]] = []
    ticker.schedule(Recorder("early", loop, log), 0.1, 0)
    loop.run_timers_until(loop.now + 0.1)
    loop.now += 3600.5  # an hour with nothing to send
    pending_at = loop.now
    ticker.schedule(Recorder("late", loop, log), 0.1, 4)
    fired = loop.run_timers_until(pending_at + 0.1)
    assert fired == 1 and log[-1][0] == "late" and pending_at <= log[-1][1] <= pending_at + 0.1


def test_soon_and_interval_0_run_on_the_next_iteration_with_one_callback() -> None:
    loop = FakeLoop()
    ticker = ticker_on(loop)
    log: list[tuple[str, float]] = []
    ticker.soon(Recorder("a", loop, log))
    ticker.schedule(Recorder("b", loop, log), 0, 0)
    assert log == [] and len(loop.soon) == 1
    loop.soon.pop()()
    assert [name for name, _ in log] == ["a", "b"]


def test_a_failing_flush_does_not_stop_the_others() -> None:
    loop = FakeLoop()
    ticker = ticker_on(loop)
    log: list[tuple[str, float]] = []

    class Broken:
        def flush(self) -> None:
            raise RuntimeError("bug")

    ticker.schedule(Broken(), 0.01, 3)
    ticker.schedule(Recorder("ok", loop, log), 0.01, 3)
    loop.run_timers_until(loop.now + 0.01)
    assert [name for name, _ in log] == ["ok"]
    assert len(loop.errors) == 1 and isinstance(loop.errors[0]["exception"], RuntimeError)


async def test_on_a_real_loop() -> None:
    ticker = write_ticker()
    assert ticker is write_ticker() and ticker.loop is asyncio.get_running_loop()
    done = asyncio.Event()

    class Target:
        def flush(self) -> None:
            done.set()

    ticker.schedule(Target(), 0.01, ticker.new_phase())
    await asyncio.wait_for(done.wait(), 2)


def test_a_member_is_flushed_at_each_of_its_slots_until_removed() -> None:
    loop = FakeLoop()
    ticker = ticker_on(loop)
    log: list[tuple[str, float]] = []
    member = Recorder("m", loop, log)
    start = loop.now
    ticker.add(member, 0.1, 3)
    ticker.add(member, 0.1, 3)  # twice: once
    fired = loop.run_timers_until(start + 0.5)
    times = [at for _, at in log]
    assert len(times) == 5 and fired == 5  # once per interval, one timer fire each
    assert all(b - a == pytest.approx(0.1) for a, b in zip(times, times[1:]))
    ticker.remove(member, 0.1, 3)
    loop.run_timers_until(start + 1.0)
    assert len(log) == 5 and loop.live_timers == [] and ticker.scheduled == 0


def test_a_live_streams_targets_share_a_phase_and_live_streams_pack_then_spread() -> None:
    ticker = ticker_on(FakeLoop())
    groups = PHASES * STREAMS_PER_PHASE
    phases = [ticker.phase_for(f"stream-{i}") for i in range(groups + 2)]
    # A few live streams share a wakeup; more take the next phases, then wrap round.
    assert phases[:groups] == [i // STREAMS_PER_PHASE for i in range(groups)]
    assert phases[groups:] == [0, 0]
    assert ticker.phase_for("stream-5") == 1  # the same live stream, the same phase, for all its targets
