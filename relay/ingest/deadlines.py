"""The deadlines of one ingest connection: which applies now, and what passing it means.

Theory of operation. A connection is in one of three phases, and its replies are paused
or not (the peer stopped reading them, replyflow.py):

- HANDSHAKING: the RTMP handshake within `handshake_timeout` of the transport being made
  (for RTMPS, of the end of the TLS handshake), and publishing within `publish_timeout`
  of the TCP accept;
- CONNECTED (handshake done, not publishing): publishing within `publish_timeout` of the
  accept, or of the publisher's unpublish (a stream it stopped does not keep it in);
- PUBLISHING: a publisher that sends nothing for `idle_timeout` is gone (a dead link
  sends no FIN); its silence counts only while we read it (`last_data` is given as "now"
  while we hold its input ourselves, and no earlier than when we read again);
- paused: we stopped reading the peer ourselves, so its silence is not idleness (nor is
  a handshake it cannot finish): it must read our replies within `idle_timeout` (STALL);
  a stranger's publish deadline still holds.

The connection keeps one timer, armed at `next_deadline()`; when it fires, `expired()`
says whether a deadline has passed (close, with that reason) or not (arm again). Both
are tables below, the clock passed in. CHECKED holds more than ARMED: the timer of a
paused stranger is not armed for its handshake, but when it fires for another deadline
a handshake deadline passed meanwhile is the reason given (as for a paused publisher's
idleness, after the stall).

Nothing here runs per tag: the timer is armed when the phase changes, and a publisher's
idle deadline is found moved on (by its reads) when the timer fires, then armed again.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.config import IngestLimits

# Phases
HANDSHAKING = "handshaking"
CONNECTED = "connected"
PUBLISHING = "publishing"

# Deadlines
HANDSHAKE = "handshake"  # the RTMP handshake is not done
PUBLISH = "publish"  # not publishing
IDLE = "idle"  # a publisher sent nothing
STALL = "stall"  # the peer has not read our replies

#: The log event of a connection closed at a deadline.
TIMEOUT_EVENT = "ingest_timeout"

#: (phase, replies paused) -> the deadlines the timer is armed for (the earliest of them).
ARMED: dict[tuple[str, bool], tuple[str, ...]] = {
    (HANDSHAKING, False): (PUBLISH, HANDSHAKE),
    (CONNECTED, False): (PUBLISH,),
    (PUBLISHING, False): (IDLE,),
    (HANDSHAKING, True): (STALL, PUBLISH),
    (CONNECTED, True): (STALL, PUBLISH),
    (PUBLISHING, True): (STALL,),
}

#: (phase, replies paused) -> the deadlines checked when the timer fires, the first passed wins.
CHECKED: dict[tuple[str, bool], tuple[str, ...]] = {
    (HANDSHAKING, False): (HANDSHAKE, PUBLISH),
    (CONNECTED, False): (PUBLISH,),
    (PUBLISHING, False): (IDLE,),
    (HANDSHAKING, True): (STALL, HANDSHAKE, PUBLISH),
    (CONNECTED, True): (STALL, PUBLISH),
    (PUBLISHING, True): (STALL, IDLE),
}


@dataclass(frozen=True, slots=True)
class DeadlineState:
    """What the deadlines of one connection depend on; times on the loop's clock."""

    handshaking: bool  # the RTMP handshake is not done
    publishing: bool  # a key claimed a live stream
    handshake_from: float  # the transport was made (RTMPS: the TLS handshake ended)
    publish_from: float  # the TCP accept, or the publisher's last unpublish
    last_data: float  # the last read (or when we last read again after holding the peer's input)
    paused_since: float | None = None  # replies paused (the peer does not read) since then

    @property
    def phase(self) -> str:
        if self.publishing:
            return PUBLISHING
        return HANDSHAKING if self.handshaking else CONNECTED


@dataclass(frozen=True, slots=True)
class Deadline:
    """When the timer must fire, and for which deadline."""

    at: float
    kind: str


@dataclass(frozen=True, slots=True)
class Timeout:
    """A deadline passed: log `event` with `reason`, then abort the connection."""

    kind: str
    reason: str
    event: str = TIMEOUT_EVENT


def _due(kind: str, state: DeadlineState, limits: IngestLimits) -> float:
    if kind == HANDSHAKE:
        return state.handshake_from + limits.handshake_timeout
    if kind == PUBLISH:
        return state.publish_from + limits.publish_timeout
    if kind == IDLE:
        return state.last_data + limits.idle_timeout
    assert state.paused_since is not None  # STALL is armed and checked only while paused
    return state.paused_since + limits.idle_timeout


def _key(state: DeadlineState) -> tuple[str, bool]:
    return state.phase, state.paused_since is not None


def next_deadline(state: DeadlineState, limits: IngestLimits) -> Deadline:
    """The earliest deadline that applies now (the first of ARMED on a tie)."""
    kinds = ARMED[_key(state)]
    return min((Deadline(_due(kind, state, limits), kind) for kind in kinds), key=lambda d: d.at)


def expired(state: DeadlineState, limits: IngestLimits, now: float) -> Timeout | None:
    """The deadline that has passed at `now` (None: none has, arm the timer again)."""
    for kind in CHECKED[_key(state)]:
        if now >= _due(kind, state, limits):
            return Timeout(kind, _reason(kind, state, limits, now))
    return None


def _reason(kind: str, state: DeadlineState, limits: IngestLimits, now: float) -> str:
    if kind == HANDSHAKE:
        return f"RTMP handshake not done {limits.handshake_timeout:g} s after connecting"
    if kind == PUBLISH:
        return f"not publishing {limits.publish_timeout:g} s after connecting"
    if kind == IDLE:
        return f"no data from the publisher for {now - state.last_data:.0f} s"
    assert state.paused_since is not None
    return f"the peer has not read our replies for {now - state.paused_since:.0f} s"
