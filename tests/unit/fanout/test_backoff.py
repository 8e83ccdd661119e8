"""Reconnect delays: doubling from `initial` to `maximum`, jittered between half and all of the ceiling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.fanout.backoff import Backoff


def _const(value: float) -> Backoff:
    return Backoff(1.0, 30.0, lambda: value)


def _delays(backoff: Backoff, n: int) -> list[float]:
    return [backoff.next_delay() for _ in range(n)]


def test_random_one_half_gives_three_quarters_of_each_ceiling() -> None:
    assert _delays(_const(0.5), 7) == [0.75, 1.5, 3.0, 6.0, 12.0, 22.5, 22.5]


def test_random_zero_gives_half_the_ceiling() -> None:
    assert _delays(_const(0.0), 7) == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]


def test_random_near_one_stays_just_under_the_ceiling() -> None:
    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    for delay, ceiling in zip(_delays(_const(0.999), 7), ceilings, strict=True):
        assert delay == pytest.approx(ceiling * 0.9995)
        assert ceiling / 2 <= delay < ceiling


def test_reset_starts_again_from_initial() -> None:
    backoff = _const(0.0)
    _delays(backoff, 10)
    assert backoff.next_delay() == 15.0
    backoff.reset()
    assert backoff.attempt == 0
    assert _delays(backoff, 3) == [0.5, 1.0, 2.0]


def test_the_random_source_is_called_once_per_delay() -> None:
    calls: list[None] = []

    def rand() -> float:
        calls.append(None)
        return 0.25

    backoff = Backoff(2.0, 60.0, rand)
    assert backoff.next_delay() == 2.0 * 0.625
    assert len(calls) == 1


def test_many_failures_do_not_overflow() -> None:
    backoff = Backoff(0.5, 120.0, lambda: 0.5)
    for _ in range(10_000):
        delay = backoff.next_delay()
    assert delay == 90.0
    assert isinstance(delay, float)


@given(
    st.floats(0.001, 100.0),
    st.floats(0.0, 1.0, exclude_max=True),
    st.floats(1.0, 1000.0),
    st.lists(st.floats(0.0, 1.0, exclude_max=True), max_size=80),
)
def test_delays_stay_within_half_initial_and_max(
    initial: float, first: float, factor: float, draws: list[float]
) -> None:
    maximum = initial * factor
    values = iter([first, *draws])
    backoff = Backoff(initial, maximum, lambda: next(values))
    previous_ceiling = 0.0
    for _ in range(1 + len(draws)):
        delay = backoff.next_delay()
        assert initial / 2 <= delay <= maximum
        # The ceiling (delay / its jitter factor) never shrinks between resets.
        ceiling = min(maximum, initial * 2 ** (backoff.attempt - 1))
        assert ceiling >= previous_ceiling
        assert ceiling / 2 <= delay <= ceiling
        previous_ceiling = ceiling
