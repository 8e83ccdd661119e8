"""A simulcast target's status and retry policy, as a transition table.

Statuses are Mux's: `idle` (no publish session), `starting` (connecting and publishing),
`broadcasting` (the platform accepted the publish) and `errored` (the last attempt or
connection failed). An errored target has a severity: `normal`, it retries after a
backoff delay (exponential with jitter, backoff.py); `fatal`, the platform refused the
stream key FATAL_REFUSALS times in a row, so it waits for the next publish session (or
a config change, which makes a new target) instead of hammering the platform.

The asyncio target (relay/targets/supervisor.py) reports what happened as events and carries
out the action the table returns; every decision is here, with the clock passed in.

Counters are per publish session where a person reads them per session: START (a new
publish session of the live stream) sets `connections`, `reconnects` and `attempts` to
zero, so the first connection of a session is never a reconnect, even after the
publisher's Stop. Lifetime totals (`connections_total`, `reconnects_total`: what
Prometheus counts) and `last_connected_at` carry on across sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.errors import RelayError
from relay.fanout.backoff import Backoff

IDLE = "idle"
STARTING = "starting"
BROADCASTING = "broadcasting"
ERRORED = "errored"

NORMAL = "normal"
FATAL = "fatal"
FATAL_REFUSALS = 3  # consecutive stream-key refusals before retrying stops

# Events
START = "start"  # a publish session of the live stream began
CONNECTED = "connected"  # the platform accepted the publish
SWITCHED = "switched"  # a second connection (Enhanced RTMP reconnect request) took over
FAILED = "failed"  # an attempt or the connection failed
REFUSED = "refused"  # the platform refused the stream key or the connect
GIVE_UP = "give_up"  # REFUSED for the FATAL_REFUSALS-th time in a row (derived here, never reported)
RETRY = "retry"  # the backoff delay is over
STOP = "stop"  # the publish session ended

# Actions: what the asyncio target does next
CONNECT = "connect"  # open a connection and publish
SEND = "send"  # send the live stream until the connection ends or the session stops
WAIT_RETRY = "wait_retry"  # wait `retry_in` seconds (or for the session to stop), then report RETRY
WAIT_STOP = "wait_stop"  # wait for the session to stop: no retries
FINISH = "finish"  # the session is over

TABLE: dict[tuple[str, str], tuple[str, str]] = {
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


class TransitionError(RelayError):
    """An event the table has no entry for in the current status (a bug in the caller)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """What one event did: from which status to which, and what the target must do now."""

    before: str
    after: str
    action: str
    reason: str | None = None
    severity: str | None = None  # when errored
    retry_in: float | None = None  # seconds, with WAIT_RETRY


class TargetStatus:
    """The status of one target, its counters, and when it tries next."""

    def __init__(self, backoff: Backoff, reset_after: float) -> None:
        self.backoff = backoff
        self.reset_after = reset_after  # seconds connected after which the backoff starts over
        self.status = IDLE
        self.severity: str | None = None  # NORMAL or FATAL while errored
        self.last_error: str | None = None
        self.next_attempt_at: float | None = None  # wall clock, while waiting to retry
        self.connected_since: float | None = None  # wall clock, while broadcasting
        self.connections = 0  # successful connections in this publish session
        self.connections_total = 0  # successful connections, over the target's lifetime
        self.reconnects_total = 0  # successful connections after a session's first, over the lifetime
        self.attempts = 0  # connection attempts since the last success in this session (the current one too)
        self.last_connected_at: float | None = None  # wall clock of the last success, in any session
        self.failing_since: float | None = None  # wall clock of the first failure since the last success
        self.refusals = 0  # consecutive

    @property
    def reconnects(self) -> int:
        """Successful connections after the first one of this publish session."""
        return max(0, self.connections - 1)

    def handle(self, event: str, now: float, reason: str | None = None) -> Transition:
        """Apply an event at wall-clock time `now`; `reason` says why for FAILED and REFUSED."""
        if event == REFUSED:
            self.refusals += 1
            if self.refusals >= FATAL_REFUSALS:
                event = GIVE_UP
        elif event in (FAILED, CONNECTED):
            self.refusals = 0
        before = self.status
        try:
            after, action = TABLE[(before, event)]
        except KeyError:
            raise TransitionError(f"event {event!r} in status {before!r}") from None
        if event == START:  # a new publish session starts over
            self.backoff.reset()
            self.refusals = 0
            self.last_error = None
            self.connections = self.attempts = 0
            self.failing_since = None
        elif event in (CONNECTED, SWITCHED):
            if self.connections:
                self.reconnects_total += 1
            self.connections += 1
            self.connections_total += 1
            self.attempts = 0
            self.last_connected_at = now
            self.failing_since = None
        elif event in (FAILED, REFUSED, GIVE_UP):
            if self.failing_since is None:
                self.failing_since = now
            if before == BROADCASTING and self.connected_since is not None \
                    and now - self.connected_since >= self.reset_after:
                self.backoff.reset()  # it was healthy for a while: start over at the initial delay
        if action == CONNECT:
            self.attempts += 1
        self.status = after
        self.connected_since = (self.connected_since if before == BROADCASTING else now) if after == BROADCASTING \
            else None
        retry_in: float | None = None
        if action == WAIT_RETRY:
            retry_in = self.backoff.next_delay()
        elif action == WAIT_STOP:
            reason = (f"{reason}; refused {self.refusals} times in a row, so no more retries "
                      "until the next publish session or a config change")
        self.next_attempt_at = None if retry_in is None else now + retry_in
        self.severity = (FATAL if action == WAIT_STOP else NORMAL) if after == ERRORED else None
        if after == ERRORED:
            self.last_error = reason
        return Transition(before, after, action, reason if after == ERRORED else None, self.severity, retry_in)
