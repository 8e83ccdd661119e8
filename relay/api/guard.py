"""The HTTP server's guard: who may hold a connection, and which requests are the relay's own.

Connections (`Connections`, counted before any request or token is seen):
- at most `max_connections_per_address` from one address (an IPv6 address counts by its
  /64, the block one subscriber gets), so one address cannot fill the total;
- at most `max_connections` in all. When it is full, a newcomer takes the place of the
  oldest idle connection (not inside a handler) of the address holding the most, if that
  address holds at least two more than the newcomer's; otherwise it is refused. Idle and
  dribbling connections cost their holder their place first, so a stranger cannot keep
  /healthz, /metrics or the API from everyone else.
- aiohttp has no deadline for a request's headers: `GuardedConnection` starts one
  (`request_timeout`) when the connection opens, and again when a later request's first
  bytes arrive, and stops it when the handlers get the request.
Refusals and evictions are summed into one `http_connections_refused` line per
LOG_INTERVAL.

Requests (`host_refusal`, `origin_refusal`): a browser page on another site must neither
read the API by DNS rebinding (its Host header then names the attacker's domain: refused
unless it is an IP address, localhost, the listen host or in `allowed_hosts`) nor change
anything by a cross-site request (a POST, PUT, PATCH or DELETE whose Origin is not the
Host, or that says `Sec-Fetch-Site: cross-site`, is refused; browsers send Origin on
every cross-site POST).

Wrong tokens (`SignInFailures`): counted per address; past `failed_sign_ins_per_minute`
the address is answered 429 until its minute is over. One `http_sign_in_failed` line for
the first, then at most one summary line per LOG_INTERVAL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import Counter
from typing import Any, cast
from urllib.parse import urlsplit

from aiohttp.web_protocol import RequestHandler

from relay.addresses import address_key
from relay.config.policy import HttpLimits
from relay.runtime.logs import get_logger

#: At most one summary line per kind this often, in seconds.
LOG_INTERVAL = 60.0
#: The window wrong tokens are counted over, in seconds; past the limit, the address waits it out.
FAILURE_WINDOW = 60.0
#: Addresses whose failures are remembered at most (a flood from many addresses stays bounded).
MAX_TRACKED_ADDRESSES = 4096
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SummaryLog:
    """One line for the first occurrence, then at most one summary line per `interval` (counts by field)."""

    def __init__(self, event: str, interval: float = LOG_INTERVAL, **context: Any) -> None:
        self.event = event
        self.interval = interval
        self.log = get_logger(**context)
        self.counts: Counter[str] = Counter()
        self.addresses: Counter[str] = Counter()
        self.lines = 0
        self._timer: asyncio.TimerHandle | None = None

    def hit(self, reason: str, address: str, **fields: Any) -> None:
        """Count one occurrence; log it at once if no line was written within the interval."""
        if self._timer is None:
            self._write({reason: 1}, {address: 1}, **fields)
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)
            return
        self.counts[reason] += 1
        if len(self.addresses) < MAX_TRACKED_ADDRESSES or address in self.addresses:
            self.addresses[address] += 1

    def flush(self) -> None:
        """Write the summary of what was counted since the last line; stop the timer when nothing was."""
        self._timer = None
        if self.counts:
            self._write(dict(self.counts), dict(self.addresses.most_common(3)), interval_s=self.interval,
                        addresses=len(self.addresses))
            self.counts.clear()
            self.addresses.clear()
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def _write(self, counts: dict[str, int], top: dict[str, int], **fields: Any) -> None:
        self.lines += 1
        self.log.warning(self.event, count=sum(counts.values()), reasons=counts, top_addresses=top, **fields)

    def close(self) -> None:
        """Stop the timer (the server stops)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, admitted by `Connections`, with a request deadline."""

    def __init__(self, inner: RequestHandler, guard: Connections) -> None:
        self.inner = inner
        self.guard = guard
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self._timer: asyncio.TimerHandle | None = None
        self.in_request = False
        self._accepted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.address = address_key(str(peer[0])) if isinstance(peer, tuple) and peer else "?"
        self.transport = cast(asyncio.Transport, transport)
        if not self.guard.admit(self):
            self.transport.abort()
            return
        self._accepted = True
        self._arm()
        self.inner.connection_made(transport)

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.guard.request_timeout, self._expire)

    def data_received(self, data: bytes) -> None:
        if not self._accepted:
            return
        if not self.in_request and self._timer is None:
            self._arm()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._accepted:
            self.inner.eof_received()
        return None

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._accepted:
            return
        self._accepted = False
        self._cancel_timer()
        self.guard.release(self)
        self.inner.connection_lost(exc)

    def request_started(self) -> None:
        self._cancel_timer()
        self.in_request = True

    def request_done(self) -> None:
        self.in_request = False

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self.guard.timed_out += 1
        self.abort()

    def abort(self) -> None:
        """Close the connection at once."""
        if self.transport is not None:
            self.transport.abort()


class Connections:
    """Open connections, by transport and by address, under the caps of `limits`."""

    def __init__(self, limits: HttpLimits, request_timeout: float) -> None:
        self.limits = limits
        self.request_timeout = request_timeout
        self.open: dict[object, GuardedConnection] = {}
        self.by_address: dict[str, dict[GuardedConnection, None]] = {}  # oldest first
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0
        self.summary = SummaryLog("http_connections_refused")

    def admit(self, conn: GuardedConnection) -> bool:
        """Count `conn` in (maybe evicting another), or refuse it (False)."""
        mine = self.by_address.get(conn.address, {})
        if len(mine) >= self.limits.max_connections_per_address:
            return self._refuse(conn.address, "max_connections_per_address")
        if len(self.open) >= self.limits.max_connections and not self._evict_for(len(mine)):
            return self._refuse(conn.address, "max_connections")
        self.open[conn.transport] = conn
        self.by_address.setdefault(conn.address, {})[conn] = None
        return True

    def release(self, conn: GuardedConnection) -> None:
        """A connection that admit() let in has closed."""
        self.open.pop(conn.transport, None)
        mine = self.by_address.get(conn.address)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self.by_address[conn.address]

    def _evict_for(self, newcomer_holds: int) -> bool:
        address, held = max(self.by_address.items(), key=lambda item: len(item[1]), default=("", {}))
        if len(held) < newcomer_holds + 2:
            return False
        victim = next((c for c in held if not c.in_request), None)
        if victim is None:
            return False
        self.evicted += 1
        self.summary.hit("evicted", address)
        self.release(victim)
        victim.abort()
        return True

    def _refuse(self, address: str, reason: str) -> bool:
        self.refused += 1
        self.summary.hit(reason, address)
        return False

    def close(self) -> None:
        """Close every connection (the server stops)."""
        self.summary.close()
        for conn in list(self.open.values()):
            conn.abort()


def _split_host(authority: str) -> tuple[str, int | None] | None:
    """(host, port) of a Host header value or an Origin's authority; None if it does not parse."""
    try:
        parts = urlsplit(f"//{authority}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return host.rstrip(".").lower(), port


def host_refusal(host_header: str | None, listen_host: str, allowed: tuple[str, ...]) -> str | None:
    """Why a request naming `host_header` is not for this relay (DNS rebinding), or None if it is."""
    if host_header is None:
        return None  # HTTP/1.0 without Host: not a browser
    split = _split_host(host_header)
    if split is None:
        return "the Host header does not parse"
    host = split[0]
    try:
        ipaddress.ip_address(host)
        return None  # an address cannot be rebound
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost") or host == listen_host.lower() or host in allowed:
        return None
    return "this relay is not reached by that host name; add it to http.allowed_hosts"


def origin_refusal(method: str, headers: Any) -> str | None:
    """Why a request that changes something comes from another site, or None if it does not."""
    if method not in STATE_CHANGING:
        return None
    if headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return "cross-site requests may not change anything"
    origin = headers.get("Origin")
    if origin is None:
        return None  # not a browser (curl, relay reload, Prometheus)
    if origin == "null" and headers.get("Sec-Fetch-Site", "").lower() == "same-origin":
        return None  # a browser's own form under a strict referrer policy (a page cannot set Sec-Fetch-*)
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return "the Origin header does not parse"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "requests from an opaque origin may not change anything"
    host = _split_host(headers.get("Host", ""))
    default = 443 if parts.scheme == "https" else 80
    if host is None or host[0] != parts.hostname.rstrip(".").lower() \
            or (host[1] or default) != (origin_port or default):
        return "requests from another origin may not change anything"
    return None


class SignInFailures:
    """Wrong tokens per address in fixed one-minute windows; an address past the limit waits its minute out."""

    def __init__(self, limits: HttpLimits, clock: Any = None) -> None:
        self.limits = limits
        self._clock = clock or time.monotonic
        self._windows: dict[str, tuple[float, int]] = {}  # address -> (window start, failures)
        self.summary = SummaryLog("http_sign_in_failed")

    def blocked(self, address: str) -> bool:
        """Whether `address` used up its wrong tokens for this minute."""
        window = self._windows.get(address)
        if window is None:
            return False
        if self._clock() - window[0] >= FAILURE_WINDOW:
            del self._windows[address]
            return False
        return window[1] >= self.limits.failed_sign_ins_per_minute

    def failed(self, address: str, how: str) -> None:
        """Count one wrong token from `address`, given `how` (form, header, cookie)."""
        now = self._clock()
        start, count = self._windows.get(address, (now, 0))
        if now - start >= FAILURE_WINDOW:
            start, count = now, 0
        self._windows[address] = (start, count + 1)
        self.summary.hit(how, address)
        if len(self._windows) > MAX_TRACKED_ADDRESSES:
            for stale in [a for a, (s, _) in self._windows.items() if now - s >= FAILURE_WINDOW]:
                del self._windows[stale]
            while len(self._windows) > MAX_TRACKED_ADDRESSES:
                del self._windows[next(iter(self._windows))]

    def refused(self, address: str) -> None:
        """Count a request from a blocked address (in the summary line)."""
        self.summary.hit("blocked", address)
