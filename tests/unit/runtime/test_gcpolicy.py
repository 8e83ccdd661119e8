"""The collector's settings once the relay has started (relay/runtime/gcpolicy.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from relay.runtime.gcpolicy import GEN0_THRESHOLD, settle_after_start


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_collections_spaced_out(restored_gc: None) -> None:
    _, gen1, gen2 = gc.get_threshold()
    assert gc.get_freeze_count() == 0

    settle_after_start()

    assert gc.get_freeze_count() > 1000  # the modules, config and app made so far: out of the collector's sight
    assert gc.get_threshold() == (GEN0_THRESHOLD, gen1, gen2)


def test_cycles_made_after_start_are_still_collected(restored_gc: None) -> None:
    settle_after_start()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
