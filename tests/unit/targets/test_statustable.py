"""A target's status and retry policy, as a table: (status, event) -> (status, action)."""

from __future__ import annotations

import itertools

import pytest

from relay.fanout.backoff import Backoff
from relay.targets.statustable import (
    BROADCASTING,
    CONNECT,
    CONNECTED,
    ERRORED,
    FAILED,
    FATAL,
    FATAL_REFUSALS,
    FINISH,
    GIVE_UP,
    IDLE,
    NORMAL,
    REFUSED,
    RETRY,
    SEND,
    START,
    STARTING,
    STOP,
    SWITCHED,
    TABLE,
    WAIT_RETRY,
    WAIT_STOP,
    TargetStatus,
    TransitionError,
)

STATUSES = (IDLE, STARTING, BROADCASTING, ERRORED)
REPORTED = (START, CONNECTED, SWITCHED, FAILED, REFUSED, RETRY, STOP)  # GIVE_UP is derived from REFUSED

# The whole table, spelled out: a change to it must change this test too.
EXPECTED = {
    (IDLE, START): (STARTING, CONNECT),
    (IDLE, STOP): (IDLE, FINISH),
    (STARTING, CONNECTED): (BROADCASTING, SEND),
    (STARTING, FAILED): (ERRORED, WAIT_RETRY),
    (STARTING, REFUSED): (ERRORED, WAIT_RETRY),
    (STARTING, GIVE_UP): (ERRORED, WAIT_STOP),
    (STARTING, STOP): (IDLE, FINISH),
    (BROADCASTING, SWITCHED): (BROADCASTING, SEND),
    (BROADCASTING, FAILED): (ERRORED, WAIT_RETRY),
    (BROADCASTING, REFUSED): (ERRORED, WAIT_RETRY),
    (BROADCASTING, GIVE_UP): (ERRORED, WAIT_STOP),
    (BROADCASTING, STOP): (IDLE, FINISH),
    (ERRORED, RETRY): (STARTING, CONNECT),
    (ERRORED, STOP): (IDLE, FINISH),
}


def policy(initial: float = 1.0, maximum: float = 30.0, reset_after: float = 60.0) -> TargetStatus:
    return TargetStatus(Backoff(initial, maximum, lambda: 1.0 - 1e-9), reset_after)  # jitter at its top


def in_status(status: str) -> TargetStatus:
    """A policy brought to `status` by real events."""
    p = policy()
    path = {IDLE: [], STARTING: [START], BROADCASTING: [START, CONNECTED], ERRORED: [START, FAILED]}[status]
    for event in path:
        p.handle(event, 0.0, "boom")
    assert p.status == status
    return p


def test_the_table_is_as_designed() -> None:
    assert TABLE == EXPECTED
    assert {event for _status, event in TABLE} == {*REPORTED, GIVE_UP}


@pytest.mark.parametrize(("status", "event"), list(itertools.product(STATUSES, REPORTED)))
def test_each_entry_and_each_missing_one(status: str, event: str) -> None:
    p = in_status(status)
    expected = EXPECTED.get((status, event))  # for REFUSED: the first one, not yet fatal
    if expected is None:
        with pytest.raises(TransitionError):
            p.handle(event, 100.0, "why")
        assert p.status == status  # unchanged
        return
    transition = p.handle(event, 100.0, "why")
    assert (transition.before, transition.after, transition.action) == (status, *expected)
    assert p.status == expected[0]


def test_errored_retries_with_a_growing_delay_and_the_reason() -> None:
    p = policy(initial=1.0, maximum=4.0)
    p.handle(START, 0.0)
    delays = []
    for i in range(5):
        t = p.handle(FAILED, 10.0 * i, f"connection refused #{i}")
        assert (t.after, t.action, t.severity, t.reason) == (ERRORED, WAIT_RETRY, NORMAL, f"connection refused #{i}")
        assert t.retry_in is not None and p.next_attempt_at == 10.0 * i + t.retry_in
        assert p.last_error == f"connection refused #{i}" and p.severity == NORMAL
        delays.append(t.retry_in)
        t = p.handle(RETRY, 10.0 * i + t.retry_in)
        assert (t.after, t.action) == (STARTING, CONNECT) and p.next_attempt_at is None and p.severity is None
    assert delays == pytest.approx([1.0, 2.0, 4.0, 4.0, 4.0])


def test_three_refusals_in_a_row_are_fatal() -> None:
    p = policy()
    p.handle(START, 0.0)
    severities = []
    for i in range(FATAL_REFUSALS):
        t = p.handle(REFUSED, float(i), "the platform refused the stream key (NetStream.Publish.BadName)")
        severities.append(t.severity)
        if t.action == WAIT_RETRY:
            p.handle(RETRY, float(i))
    assert severities == [NORMAL, NORMAL, FATAL]
    assert (t.after, t.action, t.retry_in) == (ERRORED, WAIT_STOP, None)
    assert p.next_attempt_at is None
    assert t.reason is not None and "refused 3 times in a row" in t.reason and "BadName" in t.reason
    # The next publish session starts over.
    p.handle(STOP, 10.0)
    t = p.handle(START, 20.0)
    assert (t.after, t.action) == (STARTING, CONNECT) and p.severity is None and p.last_error is None
    assert p.handle(REFUSED, 21.0, "again").severity == NORMAL


def test_a_failure_that_is_not_a_refusal_resets_the_count() -> None:
    p = policy()
    p.handle(START, 0.0)
    for event in (REFUSED, RETRY, REFUSED, RETRY, FAILED, RETRY, REFUSED, RETRY, REFUSED):
        t = p.handle(event, 0.0, "x")
    assert t.severity == NORMAL  # never three refusals in a row


def test_a_long_healthy_connection_resets_the_backoff() -> None:
    p = policy(initial=1.0, maximum=30.0, reset_after=60.0)
    p.handle(START, 0.0)
    for _ in range(3):
        p.handle(FAILED, 0.0, "x")
        p.handle(RETRY, 0.0)
    p.handle(CONNECTED, 100.0)
    short = p.handle(FAILED, 130.0, "dropped after 30 s")
    assert short.retry_in == pytest.approx(8.0)  # not healthy long enough: the delay keeps growing
    p.handle(RETRY, 140.0)
    p.handle(CONNECTED, 140.0)
    long = p.handle(FAILED, 200.0, "dropped after 60 s")
    assert long.retry_in == pytest.approx(1.0)


def test_counters_and_times() -> None:
    p = policy()
    assert (p.connections, p.reconnects, p.connected_since, p.last_connected_at) == (0, 0, None, None)
    p.handle(START, 0.0)
    p.handle(CONNECTED, 5.0)
    assert (p.connections, p.reconnects, p.connected_since, p.last_connected_at) == (1, 0, 5.0, 5.0)
    p.handle(SWITCHED, 9.0)  # a reconnect request moved the stream to a second connection
    assert (p.connections, p.reconnects, p.connected_since, p.last_connected_at) == (2, 1, 5.0, 9.0)
    p.handle(FAILED, 12.0, "reset by peer")
    assert p.connected_since is None and p.failing_since == 12.0
    p.handle(RETRY, 13.0)
    p.handle(CONNECTED, 14.0)
    assert (p.connections, p.reconnects, p.connected_since, p.failing_since) == (3, 2, 14.0, None)
    assert p.last_error == "reset by peer"  # kept while broadcasting again: the latest error seen
    p.handle(STOP, 20.0)
    assert (p.status, p.connected_since, p.severity) == (IDLE, None, None)


def test_a_new_publish_session_is_not_a_reconnect() -> None:
    """The publisher's Stop, then Start: the second session's first connection is its first, not a reconnect."""
    p = policy()
    p.handle(START, 0.0)
    p.handle(CONNECTED, 1.0)
    p.handle(FAILED, 2.0, "reset by peer")
    p.handle(RETRY, 3.0)
    p.handle(CONNECTED, 4.0)
    p.handle(STOP, 10.0)
    assert (p.connections, p.reconnects, p.connections_total, p.reconnects_total) == (2, 1, 2, 1)
    # The counters of the ended session stay readable while idle...
    assert (p.status, p.last_connected_at) == (IDLE, 4.0)
    # ...and start over with the next one; the lifetime totals carry on.
    p.handle(START, 20.0)
    assert (p.connections, p.reconnects, p.attempts) == (0, 0, 1)
    p.handle(CONNECTED, 21.0)
    assert (p.connections, p.reconnects, p.connections_total, p.reconnects_total) == (1, 0, 3, 1)
    p.handle(SWITCHED, 22.0)
    assert (p.reconnects, p.reconnects_total) == (1, 2)


def test_attempts_count_since_the_last_success() -> None:
    p = policy()
    p.handle(START, 100.0)
    assert (p.attempts, p.failing_since) == (1, None)  # the first attempt is under way
    for i in range(3):
        p.handle(FAILED, 101.0 + i, "connection refused")
        assert p.attempts == i + 1 and p.failing_since == 101.0  # since the first failure
        p.handle(RETRY, 101.5 + i)
        assert p.attempts == i + 2
    p.handle(CONNECTED, 110.0)
    assert (p.attempts, p.failing_since, p.last_connected_at) == (0, None, 110.0)
    p.handle(FAILED, 120.0, "reset by peer")  # a drop is not an attempt
    assert (p.attempts, p.failing_since) == (0, 120.0)
    p.handle(RETRY, 121.0)
    assert p.attempts == 1
    p.handle(STOP, 122.0)
    p.handle(START, 200.0)  # a new session: attempts and the failing episode start over
    assert (p.attempts, p.failing_since, p.last_connected_at) == (1, None, 110.0)
