"""When a target's status change is logged, and at which level: (state, event) -> (state, action)."""

from __future__ import annotations

import itertools
import random

import pytest

from relay.targets import statustable as ts
from relay.fanout.backoff import Backoff
from relay.targets.logpolicy import (
    CONNECTED,
    DEBUG,
    FAILED,
    FAILED_DUE,
    FAILING,
    GAVE_UP,
    INFO,
    LEVELS,
    QUIET,
    RECOVERY,
    RETRYING,
    SILENT,
    STARTED,
    STOPPED,
    SUMMARY,
    SWITCHED,
    TABLE,
    WARN,
    LogPolicyError,
    TargetLogPolicy,
    event_of,
    log_line,
)
from relay.targets.statustable import TargetStatus, Transition

EXPECTED = {
    (QUIET, STARTED): (QUIET, DEBUG),
    (QUIET, CONNECTED): (QUIET, INFO),
    (QUIET, SWITCHED): (QUIET, SILENT),
    (QUIET, FAILED): (FAILING, WARN),
    (QUIET, GAVE_UP): (FAILING, WARN),
    (QUIET, STOPPED): (QUIET, INFO),
    (FAILING, RETRYING): (FAILING, DEBUG),
    (FAILING, FAILED): (FAILING, DEBUG),
    (FAILING, FAILED_DUE): (FAILING, SUMMARY),
    (FAILING, GAVE_UP): (FAILING, WARN),
    (FAILING, CONNECTED): (QUIET, RECOVERY),
    (FAILING, STOPPED): (QUIET, RECOVERY),
}
INTERVAL = 300.0


class Clocked:
    """A target's two policies driven together, as relay/targets/supervisor.py drives them: status, then log."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.status = TargetStatus(Backoff(1.0, 30.0, lambda: 0.5), 60.0)
        self.log = TargetLogPolicy(interval)
        self.lines: list[tuple[float, str, str]] = []  # (time, action, to)

    def event(self, event: str, now: float, reason: str | None = "connection refused") -> str:
        transition = self.status.handle(event, now, reason)
        action = self.log.decide(transition, now)
        self.lines.append((now, action, transition.after))
        return action

    def warnings(self) -> list[tuple[float, str, str]]:
        return [line for line in self.lines if LEVELS[line[1]] == "warning"]


def test_the_table_is_as_designed() -> None:
    assert TABLE == EXPECTED
    assert set(LEVELS) == {action for _state, action in TABLE.values()}


def test_events_are_read_off_the_status_transitions() -> None:
    def t(before: str, after: str, severity: str | None = None) -> Transition:
        return Transition(before, after, "x", severity=severity)

    assert event_of(t(ts.IDLE, ts.STARTING)) == STARTED
    assert event_of(t(ts.ERRORED, ts.STARTING)) == RETRYING
    assert event_of(t(ts.STARTING, ts.BROADCASTING)) == CONNECTED
    assert event_of(t(ts.BROADCASTING, ts.BROADCASTING)) == SWITCHED
    assert event_of(t(ts.STARTING, ts.ERRORED, ts.NORMAL)) == FAILED
    assert event_of(t(ts.BROADCASTING, ts.ERRORED, ts.FATAL)) == GAVE_UP
    assert event_of(t(ts.ERRORED, ts.IDLE)) == STOPPED
    with pytest.raises(LogPolicyError):
        event_of(t(ts.IDLE, "connected"))


def test_a_missing_entry_raises_and_changes_nothing() -> None:
    policy = TargetLogPolicy()
    with pytest.raises(LogPolicyError):
        policy.decide(Transition(ts.ERRORED, ts.STARTING, ts.CONNECT), 0.0)  # a retry with no failure logged
    assert policy.state == QUIET


def test_a_normal_show_logs_broadcasting_and_idle_at_info_only() -> None:
    c = Clocked()
    assert [c.event(e, float(i)) for i, e in enumerate((ts.START, ts.CONNECTED, ts.SWITCHED, ts.STOP))] == [
        DEBUG, INFO, SILENT, INFO]


def test_a_target_that_keeps_failing_warns_once_then_summarises_at_the_interval() -> None:
    c = Clocked()
    c.event(ts.START, 0.0)
    now = 0.0
    while now < 1000.0:  # a failure every 7 s (a connect timeout and the backoff), for 1000 s
        now += 7.0
        c.event(ts.FAILED, now)
        c.event(ts.RETRY, now + 0.5)
    warnings = c.warnings()
    assert [action for _, action, _ in warnings] == [WARN, SUMMARY, SUMMARY, SUMMARY]
    times = [when for when, _, _ in warnings]
    assert times[0] == 7.0
    assert all(b - a >= INTERVAL for a, b in itertools.pairwise(times))  # at most one per interval
    assert all(b - a < INTERVAL + 7.0 for a, b in itertools.pairwise(times))  # at the first failure after it
    assert {action for _, action, to in c.lines if to == ts.STARTING} == {DEBUG}  # the retries
    # Over: the session ends while it fails, at info, and the next session starts quiet.
    assert c.event(ts.STOP, now + 1) == RECOVERY
    assert c.event(ts.START, now + 2) == DEBUG and c.log.state == QUIET
    assert c.event(ts.FAILED, now + 3) == WARN


def test_the_recovery_is_info_and_a_new_failure_warns_again_at_once() -> None:
    c = Clocked()
    c.event(ts.START, 0.0)
    assert c.event(ts.FAILED, 1.0) == WARN
    c.event(ts.RETRY, 2.0)
    assert c.event(ts.CONNECTED, 3.0) == RECOVERY
    assert c.event(ts.FAILED, 4.0, "reset by peer") == WARN  # a new episode, well inside the interval
    c.event(ts.RETRY, 5.0)
    assert c.event(ts.FAILED, 6.0) == DEBUG


def test_giving_up_is_news() -> None:
    c = Clocked()
    c.event(ts.START, 0.0)
    actions = []
    for i in range(ts.FATAL_REFUSALS):
        actions.append(c.event(ts.REFUSED, float(i), "the platform refused the stream key"))
        if c.status.status == ts.ERRORED and c.status.severity == ts.NORMAL:
            c.event(ts.RETRY, i + 0.5)
    assert actions == [WARN, DEBUG, WARN]
    assert c.event(ts.STOP, 10.0) == RECOVERY


@pytest.mark.parametrize("seed", range(20))
def test_every_sequence_the_status_table_allows_has_a_log_entry(seed: int) -> None:
    """Random walks through the status table: the log table never lacks an entry."""
    rand = random.Random(seed)
    c = Clocked(interval=10.0)
    for step in range(300):
        status = c.status.status
        events = [e for (s, e) in ts.TABLE if s == status and e != ts.GIVE_UP]
        c.event(rand.choice(events), float(step))
        if c.status.status == ts.IDLE:
            assert c.log.state == QUIET


def test_the_lines_say_what_happened() -> None:
    c = Clocked()
    c.event(ts.START, 1_800_000_000.0)
    transition = c.status.handle(ts.FAILED, 1_800_000_001.0, "connection refused")
    assert log_line(SILENT, transition, c.status, (1, None), 1_800_000_001.0) is None
    line = log_line(WARN, transition, c.status, (1, None), 1_800_000_001.0)
    assert line is not None
    level, event, fields = line
    assert (level, event) == ("warning", "target_status")
    assert fields == {"from": "starting", "to": "errored", "reason": "connection refused", "severity": "normal",
                      "attempts": 1, "retry_in_s": transition.retry_in}
    c.status.handle(ts.RETRY, 1_800_000_002.0)
    transition = c.status.handle(ts.FAILED, 1_800_000_400.0, "connection refused again")
    line = log_line(SUMMARY, transition, c.status, (2, 1_800_000_001.0), 1_800_000_400.0)
    assert line is not None
    level, event, fields = line
    assert (level, event) == ("warning", "target_still_failing")
    assert fields == {"attempts": 2, "last_reason": "connection refused again", "since": "2027-01-15T08:00:01Z",
                      "failing_for_s": 399, "retry_in_s": transition.retry_in}
    c.status.handle(ts.RETRY, 1_800_000_401.0)
    episode = (c.status.attempts, c.status.failing_since)
    transition = c.status.handle(ts.CONNECTED, 1_800_000_402.0)
    line = log_line(RECOVERY, transition, c.status, episode, 1_800_000_402.0)
    assert line is not None
    level, event, fields = line
    assert (level, event) == ("info", "target_status")
    assert fields == {"from": "starting", "to": "broadcasting", "attempts": 3, "failing_since": "2027-01-15T08:00:01Z"}
