"""The soak of issue #8 in its 60 s version (bench/soak.py runs it for 10 minutes).

Selected with `-m soak`, left out with `-m "not soak"`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.soak import Soak

pytestmark = [pytest.mark.e2e, pytest.mark.soak, pytest.mark.long]


def test_a_minute_of_churn_leaves_no_trace(tmp_path: Path) -> None:
    figures = Soak(60, tmp_path).run()

    report = json.dumps({k: v for k, v in figures.items() if k != "samples"}, indent=1)
    assert figures["problems"] == [], report
    events = figures["log_events"]
    # The churn did happen: a publisher lost and back inside its window, and not; a target's
    # server gone and back; a slow target dropping; reloads, one refused.
    assert events.get("publisher_resumed", 0) >= 1 and events.get("publisher_lost", 0) >= 2, report
    assert events.get("target_dropping", 0) >= 1, report
    assert events.get("config_reloaded", 0) >= 2 and events.get("config_reload_failed", 0) == 1, report
    assert figures["counters"]["slow"]["dropped_bytes"] > 0, report
    assert set(figures["decoded"]) >= {"steady", "slow", "stable"}, report
