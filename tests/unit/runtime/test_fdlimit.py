"""The open-file limit: the soft limit goes up to the hard one outside systemd, never under it."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from relay.runtime.fdlimit import needed_fds, raise_nofile_limit, under_systemd


@pytest.fixture
def low_soft_limit() -> Iterator[int]:
    """The soft limit lowered (an unprivileged change) for the test, put back after it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(soft, 512)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    yield low
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_limit_is_raised_to_the_hard_one(low_soft_limit: int) -> None:
    limit = raise_nofile_limit()

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert limit.before == low_soft_limit
    assert limit.soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert limit.soft == hard or hard == resource.RLIM_INFINITY


def test_under_systemd_the_limit_is_left_to_the_unit(low_soft_limit: int) -> None:
    limit = raise_nofile_limit(raise_soft=False)

    assert limit.soft == limit.before == low_soft_limit == resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_systemd_is_recognised_by_its_invocation_id() -> None:
    assert under_systemd({"INVOCATION_ID": "0123abcd"}) and not under_systemd({})


def test_what_the_config_can_need() -> None:
    assert needed_fds(256, 6) > 256 + 6
    assert needed_fds(256, 6, live_streams=4) == needed_fds(256, 6) + 4  # a publisher's held batch: a second one
