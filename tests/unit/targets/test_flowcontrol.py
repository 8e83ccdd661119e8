"""Flow control of one transport: paused or writable, drain(), and the deadline on staying paused."""

from __future__ import annotations

import asyncio

from relay.targets.flowcontrol import FlowControl


async def test_pause_resume_and_drain() -> None:
    loop = asyncio.get_running_loop()
    stalls: list[str] = []
    flow = FlowControl(loop, 60.0, lambda: stalls.append("stall"))
    assert flow.writable
    await flow.drain()  # not paused: returns at once
    flow.pause_writing()
    assert not flow.writable and flow.paused
    waiter = asyncio.ensure_future(flow.drain())
    await asyncio.sleep(0)  # let it start waiting (a step of the loop, not a wait for something)
    assert not waiter.done()
    flow.resume_writing()
    await asyncio.wait_for(waiter, 1)
    assert flow.writable and stalls == []


async def test_connection_lost_wakes_every_waiter() -> None:
    flow = FlowControl(asyncio.get_running_loop(), 60.0, lambda: None)
    flow.pause_writing()
    waiters = [asyncio.ensure_future(flow.drain()) for _ in range(3)]
    await asyncio.sleep(0)
    flow.connection_lost()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    assert not flow.writable and flow.closed
    await asyncio.wait_for(flow.drain(), 1)  # and nobody waits on a dead transport


async def test_staying_paused_past_the_deadline_calls_on_stall_once() -> None:
    stalled = asyncio.Event()
    calls: list[int] = []

    def on_stall() -> None:
        calls.append(1)
        stalled.set()

    flow = FlowControl(asyncio.get_running_loop(), 0.01, on_stall)
    flow.pause_writing()
    flow.pause_writing()  # a second pause does not start a second deadline
    await asyncio.wait_for(stalled.wait(), 2)
    assert calls == [1]


async def test_resuming_in_time_cancels_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    calls: list[int] = []
    flow = FlowControl(loop, 0.01, lambda: calls.append(1))
    flow.pause_writing()
    flow.resume_writing()
    later = asyncio.Event()
    loop.call_later(0.05, later.set)  # well past the deadline
    await asyncio.wait_for(later.wait(), 2)
    assert calls == []
