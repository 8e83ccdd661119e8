"""Who may open an ingest connection: limits per source address and in total, key guessing.

An RTMP port on the internet is scanned within minutes. Before a peer shows a stream key
it gets a bounded share of the relay: at most `max_connections` ingest connections in
total and `max_connections_per_address` from one address (an IPv6 address counts by its
/64, the block one subscriber gets). An address that publishes with a wrong key more than
`failed_publishes_per_minute` times within a minute is refused for BLOCK_SECONDS.

The total cap must never lock out the real publisher: strangers could fill it with idle
sockets from many addresses, each under its own cap. So a connection that has not yet
published with a valid key is a *stranger* and may be evicted: when the total cap is
reached, a newcomer (from an address under its own cap) takes the place of the oldest
stranger, which is closed. A stranger holds a place for at most its handshake and
publish deadlines anyway; a connection that published is never evicted. Idle sockets
thus only ever delay each other, and a publisher that arrives gets in at once and has
its own deadlines to publish in.

A refused connection is closed at once (abort: no handshake, no reply) and costs no log
line of its own: refusals are summed and logged as one `ingest_refused` line at most every
REFUSAL_LOG_INTERVAL seconds, so a flood cannot flood the log. The same goes for the
warning lines of connections that fail before publishing (`PeerLogBudget`).

Nothing here ever sees a stream key: the ingest reports a failed publish by address only.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from typing import Protocol

from relay.addresses import address_key
from relay.config import IngestLimits
from relay.runtime.linebudget import LineBudget
from relay.runtime.logs import get_logger

#: How long an address that guessed keys is refused, in seconds ("refused for a minute").
BLOCK_SECONDS = 60.0
#: The window failed publishes are counted over, in seconds.
FAILURE_WINDOW = 60.0
#: At most one `ingest_refused` summary line this often, in seconds.
REFUSAL_LOG_INTERVAL = 1.0

# Why a connection was refused (the `reasons` field of `ingest_refused`).
TOO_MANY_CONNECTIONS = "max_connections"
TOO_MANY_FROM_ADDRESS = "max_connections_per_address"
GUESSING_KEYS = "failed_publishes_per_minute"


class Stranger(Protocol):
    """A connection admitted before it published: the one evicted when a newcomer needs its place."""

    def evict(self) -> None:
        """Close now: Admission has counted it out already (it must not call release())."""


class Admission:
    """Connection counts and key-guessing blocks for the ingest listeners (plain and RTMPS)."""

    def __init__(self, limits: IngestLimits, clock: Callable[[], float] | None = None,
                 log_interval: float = REFUSAL_LOG_INTERVAL) -> None:
        self.limits = limits  # replaced by a reload; read at every decision
        self._clock = clock or asyncio.get_running_loop().time
        self.log_interval = log_interval
        self.open = 0
        self.arrived = 0  # connections admitted or refused since reset_burst()
        self.peak = 0  # most connections open at once since reset_burst()
        self.per_address: Counter[str] = Counter()
        self._failures: dict[str, deque[float]] = {}
        self.blocked_until: dict[str, float] = {}
        self._refused: Counter[str] = Counter()
        self._refused_from: Counter[str] = Counter()
        self._flush: asyncio.TimerHandle | None = None
        self.refused_total = 0
        self.evicted_total = 0
        # Admitted connections that have not published, oldest first (a dict keeps insertion order).
        self._strangers: dict[Stranger, str] = {}
        self.log = get_logger()

    def admit(self, address: str, stranger: Stranger | None = None) -> bool:
        """Count a new connection from `address` (an address_key) in, or refuse it (False).

        With `stranger`, the connection may be evicted for a newcomer until `trusted()`;
        a full house evicts its oldest stranger for the newcomer rather than refuse it."""
        limits = self.limits
        self.arrived += 1
        reason = None
        until = self.blocked_until.get(address)
        if until is not None:
            if self._clock() < until:
                reason = GUESSING_KEYS
            else:
                del self.blocked_until[address]
        if reason is None:
            if self.per_address[address] >= limits.max_connections_per_address:
                reason = TOO_MANY_FROM_ADDRESS
            elif self.open >= limits.max_connections and not self._evict_oldest():
                reason = TOO_MANY_CONNECTIONS
        if reason is not None:
            self._count_refusal(address, reason)
            return False
        self.open += 1
        self.peak = max(self.peak, self.open)
        self.per_address[address] += 1
        if stranger is not None:
            self._strangers[stranger] = address
        return True

    def refused(self, address: str, reason: str) -> None:
        """A connection refused by another limit (the RTMPS gate's): in the same summary line."""
        self._count_refusal(address, reason)

    def trusted(self, stranger: Stranger) -> None:
        """The connection published with a valid key: never evicted from now on."""
        self._strangers.pop(stranger, None)

    def release(self, address: str, stranger: Stranger | None = None) -> None:
        """A connection that admit() let in has closed."""
        if stranger is not None:
            self._strangers.pop(stranger, None)
        self.open -= 1
        left = self.per_address[address] - 1
        if left > 0:
            self.per_address[address] = left
        else:
            del self.per_address[address]

    @property
    def strangers(self) -> int:
        """Connections admitted that have not published."""
        return len(self._strangers)

    def _evict_oldest(self) -> bool:
        """Make room: count the oldest stranger out and close it; False if every place is a publisher's."""
        if not self._strangers:
            return False
        stranger, address = next(iter(self._strangers.items()))
        self.release(address, stranger)
        self.evicted_total += 1
        self._refused["evicted_for_newcomer"] += 1
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.log_interval, self.flush_log)
        stranger.evict()
        return True

    def burst_passed(self, size: int) -> bool:
        """Whether at least `size` connections arrived since reset_burst() and under half the peak are still open."""
        return self.arrived >= size and self.open <= self.peak // 2

    def reset_burst(self) -> None:
        """Start counting the next burst."""
        self.arrived = 0
        self.peak = self.open

    def publish_failed(self, address: str) -> bool:
        """A publish from `address` named no live stream's key; True if the address is now blocked."""
        now = self._clock()
        failures = self._failures.setdefault(address, deque())
        failures.append(now)
        while failures and failures[0] <= now - FAILURE_WINDOW:
            failures.popleft()
        if len(failures) <= self.limits.failed_publishes_per_minute:
            self._forget_old_failures(now)
            return False
        del self._failures[address]
        self.blocked_until[address] = now + BLOCK_SECONDS
        # Never the key: the address and how many attempts, which is what an operator acts on.
        self.log.warning("ingest_address_blocked", address=address, failed_publishes=len(failures),
                         window_s=FAILURE_WINDOW, blocked_for_s=BLOCK_SECONDS,
                         reason="too many publishes with a wrong stream key")
        return True

    def is_blocked(self, address: str) -> bool:
        """Whether `address` is refused for key guessing right now."""
        until = self.blocked_until.get(address)
        return until is not None and self._clock() < until

    def _forget_old_failures(self, now: float) -> None:
        # Bounded memory under a flood from many addresses: drop stale entries as we go.
        if len(self._failures) > 4 * self.limits.max_connections:
            for address in [a for a, f in self._failures.items() if not f or f[-1] <= now - FAILURE_WINDOW]:
                del self._failures[address]
        if len(self.blocked_until) > 4 * self.limits.max_connections:
            for address in [a for a, until in self.blocked_until.items() if until <= now]:
                del self.blocked_until[address]

    def _count_refusal(self, address: str, reason: str) -> None:
        self.refused_total += 1
        self._refused[reason] += 1
        if len(self._refused_from) < 10_000 or address in self._refused_from:
            self._refused_from[address] += 1
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.log_interval, self.flush_log)

    def flush_log(self) -> None:
        """Write the `ingest_refused` summary of refusals since the last one (if any)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if not self._refused:
            return
        top = self._refused_from.most_common(3)
        self.log.warning("ingest_refused", refused=sum(self._refused.values()), reasons=dict(self._refused),
                         addresses=len(self._refused_from), top_addresses=dict(top),
                         open_connections=self.open, interval_s=self.log_interval)
        self._refused.clear()
        self._refused_from.clear()


class PeerLogBudget(LineBudget):
    """At most `per_second` warning lines a second about peers that never published; the rest summed.

    A peer that fails before publishing (garbage, a timeout, a wrong key) is worth a line,
    but a thousand such peers are worth one line that says a thousand.
    """

    __slots__ = ()

    def __init__(self, per_second: int = 10, clock: Callable[[], float] | None = None) -> None:
        super().__init__(per_second, "ingest_log_suppressed", "too many peers failing before they publish",
                         clock, get_logger())
