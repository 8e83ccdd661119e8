"""The ingest connection's deadlines (relay/ingest/deadlines.py): which is armed, and which has passed.

Limits: handshake 10 s, publish 30 s, idle 20 s. The TCP accept at 100 s; the transport
made (for RTMPS: the TLS handshake done) at 102 s.
"""

from __future__ import annotations

import pytest

from relay.config import IngestLimits
from relay.ingest.deadlines import (
    ARMED,
    CHECKED,
    HANDSHAKE,
    IDLE,
    PUBLISH,
    STALL,
    TIMEOUT_EVENT,
    Deadline,
    DeadlineState,
    expired,
    next_deadline,
)

LIMITS = IngestLimits(handshake_timeout=10, publish_timeout=30, idle_timeout=20)


def state(*, handshaking: bool = False, publishing: bool = False, handshake_from: float = 102.0,
          publish_from: float = 100.0, last_data: float = 100.0, paused_since: float | None = None) -> DeadlineState:
    return DeadlineState(handshaking=handshaking, publishing=publishing, handshake_from=handshake_from,
                         publish_from=publish_from, last_data=last_data, paused_since=paused_since)


HANDSHAKING = state(handshaking=True)
CONNECTED = state()
PUBLISHING = state(publishing=True, last_data=150.0)

NEXT = [
    # state -> the deadline the timer is armed for
    pytest.param(HANDSHAKING, Deadline(112.0, HANDSHAKE), id="handshaking: the handshake first"),
    pytest.param(state(handshaking=True, handshake_from=125.0), Deadline(130.0, PUBLISH),
                 id="a slow TLS handshake: publishing still counts from the TCP accept"),
    pytest.param(CONNECTED, Deadline(130.0, PUBLISH), id="connected: publish"),
    pytest.param(state(publish_from=200.0), Deadline(230.0, PUBLISH), id="unpublished: publish again"),
    pytest.param(PUBLISHING, Deadline(170.0, IDLE), id="publishing: idle after the last read"),
    pytest.param(state(publishing=True, last_data=150.0, paused_since=160.0), Deadline(180.0, STALL),
                 id="a paused publisher: its silence is not idleness"),
    pytest.param(state(handshaking=True, paused_since=105.0), Deadline(125.0, STALL),
                 id="a paused stranger in its handshake: the stall, not the handshake"),
    pytest.param(state(paused_since=120.0), Deadline(130.0, PUBLISH), id="a paused stranger: publish still holds"),
]


@pytest.mark.parametrize(("deadline_state", "deadline"), NEXT)
def test_next_deadline(deadline_state: DeadlineState, deadline: Deadline) -> None:
    assert next_deadline(deadline_state, LIMITS) == deadline


EXPIRED = [
    # state, now -> the deadline passed and the reason logged (None: none, arm again)
    pytest.param(HANDSHAKING, 111.9, None, id="handshaking, in time"),
    pytest.param(HANDSHAKING, 112.0, (HANDSHAKE, "RTMP handshake not done 10 s after connecting"),
                 id="handshaking, at the handshake deadline"),
    pytest.param(HANDSHAKING, 131.0, (HANDSHAKE, "RTMP handshake not done 10 s after connecting"),
                 id="handshaking, past both: the handshake is the reason"),
    pytest.param(CONNECTED, 129.9, None, id="connected, in time"),
    pytest.param(CONNECTED, 130.0, (PUBLISH, "not publishing 30 s after connecting"), id="connected, too late"),
    pytest.param(PUBLISHING, 169.9, None, id="publishing, in time"),
    pytest.param(PUBLISHING, 171.4, (IDLE, "no data from the publisher for 21 s"), id="publishing, silent"),
    pytest.param(PUBLISHING, 1000.0, (IDLE, "no data from the publisher for 850 s"),
                 id="publishing, silent for long"),
    pytest.param(state(publishing=True, last_data=150.0, paused_since=160.0), 180.2,
                 (STALL, "the peer has not read our replies for 20 s"), id="a paused publisher, stalled"),
    pytest.param(state(publishing=True, last_data=150.0, paused_since=160.0), 175.0,
                 (IDLE, "no data from the publisher for 25 s"), id="a paused publisher, not stalled yet, silent"),
    pytest.param(state(handshaking=True, paused_since=105.0), 125.0,
                 (STALL, "the peer has not read our replies for 20 s"), id="a paused stranger, stalled"),
    pytest.param(state(handshaking=True, paused_since=111.0), 130.0,
                 (HANDSHAKE, "RTMP handshake not done 10 s after connecting"),
                 id="a paused stranger at its publish deadline: the handshake it never finished is the reason"),
    pytest.param(state(paused_since=120.0), 129.0, None, id="a paused stranger, in time"),
    pytest.param(state(paused_since=120.0), 130.0, (PUBLISH, "not publishing 30 s after connecting"),
                 id="a paused stranger, too late"),
]


@pytest.mark.parametrize(("deadline_state", "now", "passed"), EXPIRED)
def test_expired(deadline_state: DeadlineState, now: float, passed: tuple[str, str] | None) -> None:
    timeout = expired(deadline_state, LIMITS, now)
    if passed is None:
        assert timeout is None
    else:
        assert timeout is not None and (timeout.kind, timeout.reason) == passed
        assert timeout.event == TIMEOUT_EVENT


@pytest.mark.parametrize("deadline_state", [row.values[0] for row in NEXT])
def test_a_timer_that_fires_at_its_deadline_always_has_a_verdict(deadline_state: DeadlineState) -> None:
    # Otherwise it would be armed again for the same instant, and spin.
    at = next_deadline(deadline_state, LIMITS).at
    assert expired(deadline_state, LIMITS, at) is not None


def test_every_phase_has_its_deadlines_and_checks_what_it_arms() -> None:
    assert ARMED.keys() == CHECKED.keys()
    assert len(ARMED) == 6  # three phases, paused or not
    for key, kinds in ARMED.items():
        assert set(kinds) <= set(CHECKED[key]), key


def test_timeouts_are_written_as_configured() -> None:
    limits = IngestLimits(handshake_timeout=2.5, publish_timeout=45, idle_timeout=20)
    handshake = expired(HANDSHAKING, limits, 104.5)
    publish = expired(CONNECTED, limits, 145.0)
    assert handshake is not None and handshake.reason == "RTMP handshake not done 2.5 s after connecting"
    assert publish is not None and publish.reason == "not publishing 45 s after connecting"
