"""The open-file limit: every connection is a file descriptor.

Outside systemd (whose unit sets LimitNOFILE=), a shell's soft limit is often 1024: a
few hundred scanners plus the targets would then make accept() fail for the real
publisher. The soft limit may be raised to the hard one by any process, so the relay does
that at start and logs both. The fds the config can need are estimated for a warning.
"""

from __future__ import annotations

import resource

__all__ = ["NofileLimit", "raise_nofile_limit"]

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


def raise_nofile_limit() -> NofileLimit:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit (an unprivileged call)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
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


def needed_fds(max_connections: int, targets: int) -> int:
    """File descriptors the config can need at once: ingest connections, targets, the rest."""
    return max_connections + 2 * targets + BASE_FDS


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as file:
            return int(file.read())
    except (OSError, ValueError):
        return 1 << 20
