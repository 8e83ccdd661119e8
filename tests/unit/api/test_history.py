"""Sparkline samples: rates from byte counters, bounded rings, gaps and resets."""

from __future__ import annotations

from relay.api.history import RateHistory


def test_rates_come_from_counter_deltas() -> None:
    history = RateHistory(size=10, interval=2.0)

    assert history.sample("a", 0, 0.0) is None  # nothing to compare with yet
    assert history.sample("a", 500_000, 2.0) == 2000.0
    assert history.sample("a", 750_000, 4.0) == 1000.0
    assert history.series("a") == [None, 2000.0, 1000.0]
    assert history.latest("a") == 1000.0


def test_a_stopped_series_leaves_a_gap_and_restarts_cleanly() -> None:
    history = RateHistory()
    history.sample("t", 0, 0.0)
    history.sample("t", 1000, 2.0)
    history.sample("t", None, 4.0)
    history.sample("t", 10, 6.0)  # the counter restarted (a new session): no rate yet

    assert history.series("t") == [None, 4.0, None, None]


def test_a_counter_that_went_down_counts_from_zero() -> None:
    history = RateHistory()
    history.sample("t", 1_000_000, 0.0)

    assert history.sample("t", 250, 2.0) == 1.0


def test_rings_are_bounded_and_forgotten_series_are_dropped() -> None:
    history = RateHistory(size=5)
    for i in range(100):
        history.sample("a", i * 1000, float(i))
        history.sample("b", i * 1000, float(i))

    assert len(history.series("a")) == 5
    history.keep_only(["a"])
    assert history.series("b") == [] and len(history.series("a")) == 5
