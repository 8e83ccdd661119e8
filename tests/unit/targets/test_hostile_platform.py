"""A hostile platform against one target, over the fake network (issue #18): its input is fed in
slices within the loop's budget, not at all while it does not read, its status messages cost a
bounded number of log lines, and malformed input fails the link with a reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncio

import pytest
from structlog.testing import capture_logs

from relay.fanout.hub import Hub
from relay.rtmp import messages as m
from relay.rtmp.chunkwriter import encode_message
from relay.rtmp.encoded import EncodedMessage
from relay.runtime.workbudget import IterationBudget
from relay.targets.intake import FEED_SLICE, Intake
from relay.runtime.linebudget import LineBudget
from relay.targets.supervisor import Target
from tests.support.fakenetwork import KEY, FakeNetwork, FakeTransport, target_config
from tests.support.hostileplatform import deep_on_status, huge_info, on_status, ping_burst, status_burst
from tests.support.tags import audio_header, metadata, video_header


class Reader:
    """Just the reading half of a transport."""

    def __init__(self) -> None:
        self.reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return False


async def until(condition: Callable[[], bool], iterations: int = 10_000) -> None:
    """Run loop iterations until `condition` holds (what is deferred runs in a later iteration)."""
    for _ in range(iterations):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition did not hold")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_input_is_fed_in_slices_and_waits_for_a_later_iteration_past_the_budget() -> None:
    clock = Clock()
    budget = IterationBudget(per_iteration=0.010, clock=clock)
    fed: list[int] = []

    def feed(piece: memoryview) -> bool:
        fed.append(len(piece))
        clock.now += 0.004  # each slice costs 4 ms
        return True

    intake = Intake(asyncio.get_running_loop(), feed, budget)
    reader = Reader()
    intake.attach(reader)  # type: ignore[arg-type]
    intake.received(bytes(10 * FEED_SLICE))
    # 3 slices (12 ms) in this iteration, then reading pauses and the rest waits.
    assert fed == [FEED_SLICE] * 3 and not reader.reading and intake.pending == 7 * FEED_SLICE
    await until(lambda: intake.pending == 0)
    assert fed == [FEED_SLICE] * 10 and reader.reading and budget.deferred >= 3


async def test_a_platform_that_does_not_read_is_not_read_either() -> None:
    fed: list[int] = []
    intake = Intake(asyncio.get_running_loop(), lambda piece: fed.append(len(piece)) is None)
    reader = Reader()
    intake.attach(reader)  # type: ignore[arg-type]
    intake.hold()
    intake.received(b"x" * 100)
    assert fed == [] and not reader.reading and intake.pending == 100
    intake.release()
    assert fed == [100] and reader.reading and intake.pending == 0


async def test_a_failed_link_feeds_nothing_more() -> None:
    fed: list[int] = []

    def feed(piece: memoryview) -> bool:
        fed.append(len(piece))
        return False

    intake = Intake(asyncio.get_running_loop(), feed)
    intake.received(bytes(3 * FEED_SLICE))
    intake.received(b"more")
    assert fed == [FEED_SLICE] and intake.closed and intake.pending == 0


async def test_lines_past_the_rate_are_counted_in_one_summary() -> None:
    clock = Clock()
    budget = LineBudget(3, "target_log_suppressed", "a flood", clock)
    with capture_logs() as logs:
        from relay.runtime.logs import get_logger
        log = get_logger(target="t")
        for _ in range(10):
            budget.line(log, "debug", "target_status_message", code="x")
        clock.now = 1.0  # the next second: three more
        for _ in range(5):
            budget.line(log, "debug", "target_status_message", code="y")
        budget.flush()
    events = [e["event"] for e in logs]
    assert events.count("target_status_message") == 6
    [summary] = [e for e in logs if e["event"] == "target_log_suppressed"]
    assert summary["lines"] == 9 and summary["events"] == {"target_status_message": 9}


# -- a Target over the fake network, its platform hostile -------------------------------------------

@pytest.fixture
async def target(network: FakeNetwork) -> AsyncIterator[Callable[..., Any]]:
    targets: list[Target] = []

    async def start(**config: Any) -> tuple[Target, FakeTransport]:
        hub: Hub[EncodedMessage] = Hub("studio")
        for tag in (metadata(), video_header(), audio_header()):
            hub.publish(tag)
        t = Target("studio", target_config(**config), hub)
        targets.append(t)
        t.start()
        transport = await network.wait_opened(len(network.transports) + 1)
        return t, transport

    yield start
    for t in targets:
        t.request_stop()
        await t.wait_stopped(5)


async def test_a_ping_flood_is_not_answered_while_the_platform_does_not_read(target: Callable[..., Any]) -> None:
    _, transport = await target()
    link = transport.link
    writes = len(transport.writes)
    link.pause_writing()  # the platform stopped reading
    link.data_received(ping_burst(256 * 1024))
    assert not transport.reading and len(transport.writes) == writes  # no answer queued, nothing read
    assert link.intake.pending > 200_000
    link.resume_writing()
    await until(lambda: link.intake.pending == 0)
    assert transport.reading


async def test_status_flood_costs_a_bounded_number_of_lines(target: Callable[..., Any]) -> None:
    with capture_logs() as logs:
        _, transport = await target(limits={"log_lines_per_second": 5})
        link = transport.link
        link.data_received(status_burst(transport.platform.out_chunk_size, 64 * 1024))
        await until(lambda: link.intake.pending == 0)
        link.lines.flush()
    lines = [e for e in logs if e["event"] == "target_status_message"]
    [summary] = [e for e in logs if e["event"] == "target_log_suppressed"]
    assert len(lines) == 5 and summary["lines"] > 500


@pytest.mark.parametrize(("payload", "reason"), [
    (lambda size: on_status(huge_info(), size), "more than 1024 AMF0 values"),
    (lambda size: deep_on_status(size), "AMF0 nesting deeper than 32"),
    (lambda size: on_status(m.status_info("status", "x", "y" * 70_000), size), "exceeds the limit 65536"),
    (lambda size: encode_message(m.CONTROL_CSID, 0, m.SET_CHUNK_SIZE, 0, m.SetChunkSize(1).to_payload(), size),
     "invalid chunk size 1"),
    (lambda size: bytes(range(256)) * 64, "protocol error from the platform"),
])
async def test_malformed_input_fails_the_link_with_a_reason(
    target: Callable[..., Any], payload: Callable[[int], bytes], reason: str,
) -> None:
    _, transport = await target()
    link = transport.link
    link.data_received(payload(transport.platform.out_chunk_size) + KEY.encode())
    failure = await link.closed
    assert reason in str(failure) and KEY not in str(failure)
