"""Admission: connection counts in total and per address, key-guessing blocks, one summary line a second."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from relay.addresses import address_key
from relay.config import IngestLimits
from relay.ingest.admission import (
    BLOCK_SECONDS,
    FAILURE_WINDOW,
    GUESSING_KEYS,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_FROM_ADDRESS,
    Admission,
    PeerLogBudget,
)
from tests.support.logcapture import LogStream, log_out  # noqa: F401  (log_out: a fixture)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def events(out: io.StringIO, name: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, out.getvalue().splitlines()) if e["event"] == name]


def limits(**fields: Any) -> IngestLimits:
    return IngestLimits(**fields)


@pytest.mark.parametrize(("host", "key"), [
    ("192.0.2.7", "192.0.2.7"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("not-an-address", "not-an-address"),
])
def test_addresses_count_by_ipv4_address_or_ipv6_slash_64(host: str, key: str) -> None:
    assert address_key(host) == key


async def test_connections_are_limited_per_address_and_in_total(log_out: io.StringIO) -> None:
    admission = Admission(limits(max_connections=5, max_connections_per_address=2), Clock())

    assert [admission.admit("a") for _ in range(3)] == [True, True, False]
    assert [admission.admit("b") for _ in range(2)] == [True, True]
    assert admission.admit("c") is True
    assert admission.admit("d") is False  # 5 open in total
    admission.release("a")
    assert admission.admit("d") is True
    assert admission.open == 5 and dict(admission.per_address) == {"a": 1, "b": 2, "c": 1, "d": 1}
    for address in ("a", "b", "b", "c", "d"):
        admission.release(address)
    assert admission.open == 0 and not admission.per_address

    admission.flush_log()
    (line,) = events(log_out, "ingest_refused")
    assert line["refused"] == 2
    assert line["reasons"] == {TOO_MANY_FROM_ADDRESS: 1, TOO_MANY_CONNECTIONS: 1}


async def test_a_flood_of_refusals_is_one_summary_line(log_out: LogStream) -> None:
    admission = Admission(limits(max_connections=1), Clock(), log_interval=0.05)
    assert admission.admit("a")

    for i in range(5000):
        assert not admission.admit(f"10.0.{i // 250}.{i % 250}")
    assert events(log_out, "ingest_refused") == []  # summed, not written per connection
    await asyncio.wait_for(log_out.written.wait(), timeout=5)  # the summary's own timer

    (line,) = events(log_out, "ingest_refused")
    assert line["refused"] == 5000 and line["addresses"] == 5000
    assert len(line["top_addresses"]) == 3


async def test_key_guessing_blocks_the_address_for_a_minute(log_out: io.StringIO) -> None:
    clock = Clock()
    admission = Admission(limits(failed_publishes_per_minute=3), clock)

    assert [admission.publish_failed("a") for _ in range(4)] == [False, False, False, True]

    assert admission.is_blocked("a") and not admission.is_blocked("b")
    assert admission.admit("a") is False
    assert admission.admit("b") is True
    (line,) = events(log_out, "ingest_address_blocked")
    assert line["address"] == "a" and line["failed_publishes"] == 4
    clock.now += BLOCK_SECONDS
    assert admission.admit("a") is True
    admission.flush_log()
    assert events(log_out, "ingest_refused")[0]["reasons"] == {GUESSING_KEYS: 1}


async def test_failures_older_than_the_window_do_not_count() -> None:
    clock = Clock()
    admission = Admission(limits(failed_publishes_per_minute=2), clock)
    for _ in range(10):
        assert admission.publish_failed("a") is False
        clock.now += FAILURE_WINDOW / 2 + 0.1  # never more than two in one window


async def test_a_reload_changes_the_limits_for_the_next_connection() -> None:
    admission = Admission(limits(max_connections_per_address=1), Clock())
    assert admission.admit("a") and not admission.admit("a")
    admission.limits = limits(max_connections_per_address=2)
    assert admission.admit("a")


async def test_the_peer_log_budget_sums_what_it_suppresses(log_out: io.StringIO) -> None:
    clock = Clock()
    budget = PeerLogBudget(per_second=3, clock=clock)

    allowed = [budget.allow("ingest_timeout") for _ in range(10)]
    budget.flush()

    assert allowed == [True] * 3 + [False] * 7
    (line,) = events(log_out, "ingest_log_suppressed")
    assert line["lines"] == 7 and line["events"] == {"ingest_timeout": 7}
    clock.now += 1.0
    assert budget.allow("ingest_timeout")


class FakeStranger:
    def __init__(self, name: str) -> None:
        self.name = name
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True


async def test_a_full_house_of_strangers_makes_room_for_a_newcomer_oldest_first(log_out: io.StringIO) -> None:
    admission = Admission(limits(max_connections=4, max_connections_per_address=2), Clock())
    idle = [FakeStranger(f"s{i}") for i in range(4)]
    for i, stranger in enumerate(idle):
        assert admission.admit(f"10.0.0.{i // 2}", stranger)
    publisher = FakeStranger("obs")
    assert admission.admit("192.0.2.1", publisher)  # the house is full: the oldest stranger goes
    assert [s.evicted for s in idle] == [True, False, False, False]
    assert admission.open == 4 and admission.per_address["10.0.0.0"] == 1
    admission.trusted(publisher)  # it published with a valid key
    for i in range(3):
        assert admission.admit("10.0.0.9" if i < 2 else "10.0.0.8", FakeStranger(f"n{i}"))
    assert all(s.evicted for s in idle) and not publisher.evicted  # a publisher is never evicted
    admission.flush_log()
    (line,) = events(log_out, "ingest_refused")
    assert line["reasons"] == {"evicted_for_newcomer": 4}


async def test_with_every_place_a_publishers_the_newcomer_is_refused() -> None:
    admission = Admission(limits(max_connections=2), Clock())
    for name in ("a", "b"):
        stranger = FakeStranger(name)
        assert admission.admit(name, stranger)
        admission.trusted(stranger)
    assert not admission.admit("c", FakeStranger("c"))
    assert admission.open == 2


async def test_an_address_at_its_own_cap_evicts_nobody() -> None:
    admission = Admission(limits(max_connections=3, max_connections_per_address=2), Clock())
    first = [FakeStranger("x"), FakeStranger("y"), FakeStranger("z")]
    assert admission.admit("a", first[0]) and admission.admit("a", first[1]) and admission.admit("b", first[2])
    assert not admission.admit("a", FakeStranger("more"))
    assert not any(s.evicted for s in first)
