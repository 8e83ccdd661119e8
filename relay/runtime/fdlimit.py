"""The open-file limit: every connection is a file descriptor.

Outside systemd, a shell's soft limit is often 1024: a few hundred scanners plus the
targets would then make accept() fail for the real publisher. The soft limit may be
raised to the hard one by any process, so the relay does that at start and logs both.
Under systemd the unit's LimitNOFILE= decides (and its syscall filter is not to be
tested): the limits are only logged. The fds the config can need are estimated for a
warning.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping

__all__ = ["NofileLimit", "needed_fds", "raise_nofile_limit", "under_systemd"]

# Files the relay keeps open besides connections: stdio, the event loop's epoll and
# self-pipe, listeners, recording files, a margin.
BASE_FDS = 64


class NofileLimit:
    """The soft and hard RLIMIT_NOFILE after raise_nofile_limit, and the soft limit before it."""

    __slots__ = ("before", "hard", "soft")

    def __init__(self, before: int, soft: int, hard: int) -> None:
        self.before = before
        self.soft = soft
        self.hard = hard


def under_systemd(environ: Mapping[str, str] = os.environ) -> bool:
    """True when started as a systemd service (systemd sets INVOCATION_ID for it)."""
    return bool(environ.get("INVOCATION_ID"))


def raise_nofile_limit(raise_soft: bool = True) -> NofileLimit:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit (an unprivileged call) when `raise_soft`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    if not raise_soft:
        return NofileLimit(before, soft, hard)
    if hard == resource.RLIM_INFINITY:
        # Linux refuses an infinite soft limit for files; nr_open is the real ceiling.
        wanted = _nr_open()
    else:
        wanted = hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # kept as it was; the caller logs what it is
    return NofileLimit(before, soft, hard)


def needed_fds(max_connections: int, targets: int, live_streams: int = 0) -> int:
    """File descriptors the config can need at once: ingest connections, a second one per publisher (its
    held batch, relay/ingest/rcvhold.py), targets, the rest."""
    return max_connections + live_streams + 2 * targets + BASE_FDS


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as file:
            return int(file.read())
    except (OSError, ValueError):
        return 1 << 20
