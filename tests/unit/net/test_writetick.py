"""One timer for the whole process: each target flushed when due, in due order, however many there are."""

from __future__ import annotations

import asyncio

from relay.net.writetick import WriteTicker, write_ticker


class Recorder:
    def __init__(self, name: str, log: list[str], done: asyncio.Event | None = None) -> None:
        self.name = name
        self.log = log
        self.done = done

    def flush(self) -> None:
        self.log.append(self.name)
        if self.done is not None:
            self.done.set()


class CountingTicker(WriteTicker):
    """Counts the timers it arms."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.armed = 0

    def _arm(self, due: float) -> None:
        self.armed += 1
        super()._arm(due)


async def test_one_timer_serves_every_target() -> None:
    ticker = CountingTicker(asyncio.get_running_loop())
    log: list[str] = []
    done = asyncio.Event()
    targets = [Recorder(f"t{i}", log) for i in range(200)]
    for target in targets:
        ticker.schedule(target, 0.02)
    ticker.schedule(Recorder("last", log, done), 0.02)
    assert ticker.armed == 1  # one timer for all of them (every later entry is due later)
    assert ticker.scheduled == 201
    await asyncio.wait_for(done.wait(), 2)
    assert log == [t.name for t in targets] + ["last"]  # in the order they became pending
    assert ticker.scheduled == 0


async def test_targets_with_different_intervals_go_in_due_order() -> None:
    ticker = WriteTicker(asyncio.get_running_loop())
    log: list[str] = []
    done = asyncio.Event()
    ticker.schedule(Recorder("slow", log, done), 0.06)
    ticker.schedule(Recorder("fast", log), 0.01)
    ticker.schedule(Recorder("middle", log), 0.03)
    await asyncio.wait_for(done.wait(), 2)
    assert log == ["fast", "middle", "slow"]


async def test_soon_and_interval_0_run_on_the_next_iteration() -> None:
    ticker = WriteTicker(asyncio.get_running_loop())
    log: list[str] = []
    done = asyncio.Event()
    ticker.soon(Recorder("a", log))
    ticker.schedule(Recorder("b", log, done), 0)
    assert log == []
    await asyncio.wait_for(done.wait(), 1)
    assert log == ["a", "b"]


async def test_a_failing_flush_does_not_stop_the_others() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    ticker = WriteTicker(loop)
    log: list[str] = []
    done = asyncio.Event()

    class Broken:
        def flush(self) -> None:
            raise RuntimeError("bug")

    ticker.schedule(Broken(), 0.01)
    ticker.schedule(Recorder("ok", log, done), 0.01)
    await asyncio.wait_for(done.wait(), 2)
    assert log == ["ok"] and len(errors) == 1 and isinstance(errors[0]["exception"], RuntimeError)


async def test_one_ticker_per_running_loop() -> None:
    assert write_ticker() is write_ticker()
    assert write_ticker().loop is asyncio.get_running_loop()
