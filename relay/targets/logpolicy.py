"""When a target's status change is worth a log line, and at which level: a table, the clock passed in.

A target that cannot reach its platform goes errored -> starting -> errored at every backoff
delay for as long as the show lasts. Two lines per retry, forever, bury what an operator
needs, so the log tells the story of a failure instead of every attempt:

- a session's normal course: `broadcasting` (the platform took the stream) and `idle` (it let
  go) at info; `starting` at debug (nothing to act on); a switch of connection gets no
  status line (the target logs `target_switched` itself);
- the first failure of an episode at warning, with its reason; the retries (errored ->
  starting -> errored) at debug; while the target keeps failing, a `target_still_failing`
  summary at warning at most every `summary_interval` (attempts, last reason, since when);
  giving up (severity fatal) at warning: it is news;
- the end of the episode at info: broadcasting again, or idle (the session ended while it was
  failing), with how many attempts it took and since when it had been failing.

The table is (state, event) -> (state, action). State: QUIET (nothing failing is being
reported) or FAILING (a failure was logged; retries are summarised). Events are read off
the status policy's Transition (relay/targets/statustable.py); FAILED_DUE is derived here
from FAILED when the summary interval has passed, as GIVE_UP is derived from REFUSED there.
`log_line()` turns an action into the line's level, event and fields; the asyncio target
(relay/targets/target.py) only writes it.
"""

from __future__ import annotations

from typing import Any

from relay.errors import RelayError
from relay.targets.statustable import BROADCASTING, ERRORED, FATAL, IDLE, STARTING, TargetStatus, Transition
from relay.status import utc_text

# Seconds between two target_still_failing lines of one target. At the default backoff
# (1 s doubling to 30 s) that is one line per ~10 attempts; a target down all day writes
# under 300 lines, and an operator scanning the log still sees it is failing.
SUMMARY_INTERVAL = 300.0

# States
QUIET = "quiet"
FAILING = "failing"

# Events (read off a Transition)
STARTED = "started"  # idle -> starting: a publish session began
CONNECTED = "connected"  # starting -> broadcasting
SWITCHED = "switched"  # broadcasting -> broadcasting: a second connection took over
FAILED = "failed"  # -> errored (normal: it will retry)
FAILED_DUE = "failed_due"  # FAILED while failing, summary_interval after the last line (derived)
GAVE_UP = "gave_up"  # -> errored (fatal: no more retries this session)
RETRYING = "retrying"  # errored -> starting
STOPPED = "stopped"  # -> idle: the session ended

# Actions: which line the target writes
SILENT = "silent"  # none
DEBUG = "debug"  # target_status at debug
INFO = "info"  # target_status at info
WARN = "warn"  # target_status at warning
SUMMARY = "summary"  # target_still_failing at warning
RECOVERY = "recovery"  # target_status at info, with the attempts and since when it was failing

LEVELS = {SILENT: "", DEBUG: "debug", INFO: "info", WARN: "warning", SUMMARY: "warning", RECOVERY: "info"}

TABLE: dict[tuple[str, str], tuple[str, str]] = {
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


class LogPolicyError(RelayError):
    """A transition the table has no entry for (a bug: the status table cannot produce it)."""


def event_of(transition: Transition) -> str:
    """The log policy's event for a status transition."""
    before, after = transition.before, transition.after
    if after == ERRORED:
        return GAVE_UP if transition.severity == FATAL else FAILED
    if after == IDLE:
        return STOPPED
    if after == BROADCASTING:
        return SWITCHED if before == BROADCASTING else CONNECTED
    if after == STARTING:
        return RETRYING if before == ERRORED else STARTED
    raise LogPolicyError(f"no log event for {before!r} -> {after!r}")


class TargetLogPolicy:
    """Decides, one transition at a time, which line a target's status change deserves."""

    __slots__ = ("summary_interval", "state", "logged_at")

    def __init__(self, summary_interval: float = SUMMARY_INTERVAL) -> None:
        self.summary_interval = summary_interval
        self.state = QUIET
        self.logged_at = 0.0  # when the episode's last warning was written

    def decide(self, transition: Transition, now: float) -> str:
        """The action for `transition`, which happened at `now` (seconds, any clock that does not jump)."""
        event = event_of(transition)
        if event == FAILED and self.state == FAILING and now - self.logged_at >= self.summary_interval:
            event = FAILED_DUE
        try:
            state, action = TABLE[(self.state, event)]
        except KeyError:
            raise LogPolicyError(f"log event {event!r} in state {self.state!r}") from None
        if action in (WARN, SUMMARY):
            self.logged_at = now
        self.state = state
        return action


def log_line(action: str, transition: Transition, status: TargetStatus, episode: tuple[int, float | None],
             now: float) -> tuple[str, str, dict[str, Any]] | None:
    """The line for `action`: (level, event, fields); None for SILENT.

    `status` is the policy after the transition; `episode` its (attempts, failing_since) from
    before it (what a recovery ends); `now` the wall clock (Unix time).
    """
    if action == SILENT:
        return None
    retry_in = None if transition.retry_in is None else round(transition.retry_in, 2)
    if action == SUMMARY:
        since = status.failing_since
        return LEVELS[action], "target_still_failing", {
            "attempts": status.attempts, "last_reason": transition.reason, "since": utc_text(since),
            "failing_for_s": None if since is None else round(now - since), "retry_in_s": retry_in}
    fields: dict[str, Any] = {"from": transition.before, "to": transition.after}
    if transition.reason:
        fields["reason"] = transition.reason
    if transition.severity is not None:
        fields.update(severity=transition.severity, attempts=status.attempts)
    if retry_in is not None:
        fields["retry_in_s"] = retry_in
    if action == RECOVERY:
        fields.update(attempts=episode[0], failing_since=utc_text(episode[1]))
    return LEVELS[action], "target_status", fields
