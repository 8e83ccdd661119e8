"""Webhooks: every status change POSTed, signed as Mux signs its webhooks, to each configured url.

The dispatcher is an observer of the live streams' status changes (`notify`, which
never blocks and never awaits): it renders the event's JSON body once and appends it to
each endpoint's own bounded queue. Each endpoint has one worker task that delivers its
queue in order (so events of a live stream arrive in the order they happened), retrying
a failed delivery with exponential backoff and jitter until it succeeds. When the
receiver stays down and the queue reaches `max_queue`, the oldest event is dropped and
counted. The relay never waits for a receiver.

Signature (Mux's documented scheme): `Mux-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>" keyed with the webhook's secret>`, computed for each attempt. Bodies
never carry a stream key: they are built from status snapshots (which hold none), and
the string values of every body are scrubbed of known keys as a last line of defence
(never its field names: relay/api/redaction.py). A webhook's url is shown, in logs and
answers, as its origin only (scheme://host[:port]): its path is often a secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from relay import __version__
from relay.api.redaction import scrub_values
from relay.config import WebhookConfig
from relay.config.values import url_origin
from relay.fanout.backoff import Backoff
from relay.runtime.logs import get_logger
from relay.secret import Secret
from relay.status import StatusChange

SIGNATURE_HEADER = "Mux-Signature"
RETRY_INITIAL = 1.0  # seconds before the first retry
RETRY_MAX = 60.0
DROP_LOG_INTERVAL = 1.0


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The Mux-Signature header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, now: float, tolerance: float = 300.0) -> bool:
    """Check a Mux-Signature header, as a receiver does (used by tests and the README's example)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def event_body(change: StatusChange) -> dict[str, object]:
    """The JSON body of a webhook, in Mux's shape: type, id, created_at, object, data."""
    live = change.live_stream
    if change.recording is not None:
        obj = {"type": "recording", "id": f"{live.name}/{os.path.basename(change.recording.path)}"}
        data = {**change.recording.to_json(), "live_stream_id": live.name, "live_stream": live.to_json()}
    elif change.target is None:
        obj = {"type": "live_stream", "id": live.name}
        data = live.to_json()
    else:
        obj = {"type": "simulcast_target", "id": f"{live.name}/{change.target.passthrough}"}
        data = {**change.target.to_json(), "live_stream_id": live.name, "live_stream": live.to_json()}
    created = datetime.fromtimestamp(change.at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"type": change.type, "id": str(uuid.uuid4()), "created_at": created, "object": obj, "data": data}


# What the relay reads of a receiver's answer; the rest is never read (its status is all that counts).
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(slots=True)
class _Event:
    type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class WebhookStats:
    """Counters of one endpoint, for metrics."""

    index: int
    host: str
    queued: int
    delivered: int
    failed_attempts: int
    dropped: int


class WebhookEndpoint:
    """One receiver: its queue, its worker, its counters."""

    def __init__(self, index: int, config: WebhookConfig, session: aiohttp.ClientSession,
                 retry_initial: float, retry_max: float, rand: Callable[[], float]) -> None:
        self.index = index
        self.config = config
        self.session = session
        self.host = urlsplit(config.url).hostname or "?"
        # The url may carry a token in its path (many chat services' hooks do): logs get the host.
        self.log = get_logger(webhook=index, host=self.host)
        self.queue: deque[_Event] = deque()
        self.delivered = 0
        self.failed_attempts = 0
        self.dropped = 0
        self._backoff = Backoff(retry_initial, retry_max, rand)
        self._wake = asyncio.Event()
        self._drop_logged_at = 0.0
        self._drops_logged = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start delivering."""
        self._task = asyncio.create_task(self._run(), name=f"webhook {self.index}")

    def push(self, event: _Event) -> None:
        """Queue one event (never blocks); the oldest goes when the queue is full."""
        queue = self.queue
        while len(queue) >= self.config.max_queue:
            queue.popleft()
            self.dropped += 1
            self._log_drops()
        queue.append(event)
        self._wake.set()

    def _log_drops(self) -> None:
        now = time.monotonic()
        if now - self._drop_logged_at >= DROP_LOG_INTERVAL:
            self.log.warning("webhook_events_dropped", dropped=self.dropped,
                             new_drops=self.dropped - self._drops_logged, max_queue=self.config.max_queue,
                             reason="the receiver is not taking events")
            self._drop_logged_at = now
            self._drops_logged = self.dropped

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            event = self.queue[0]
            if await self._deliver(event):
                self._backoff.reset()
                self.delivered += 1
                if self.queue and self.queue[0] is event:  # not dropped meanwhile
                    self.queue.popleft()
                continue
            self.failed_attempts += 1
            await asyncio.sleep(self._backoff.next_delay())

    async def _deliver(self, event: _Event) -> bool:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"simulcast-relay/{__version__}",
            SIGNATURE_HEADER: sign(self.config.secret.reveal(), event.body, timestamp),
        }
        try:
            async with self.session.post(self.config.url, data=event.body, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                                         allow_redirects=False) as response:
                await _discard_answer(response)
                if 200 <= response.status < 300:
                    return True
                reason = f"the receiver answered HTTP {response.status}"
        except TimeoutError:
            reason = f"no answer within {self.config.timeout:g} s"
        except aiohttp.ClientError as exc:
            reason = self._without_url(f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
        self.log.warning("webhook_delivery_failed", type=event.type, reason=reason, queued=len(self.queue),
                         attempt=self._backoff.attempt + 1)
        return False

    def _without_url(self, text: str) -> str:
        """`text` with the url, in any of the forms a URL library writes it, cut to its origin."""
        url = self.config.url
        try:
            forms = {url, str(URL(url)), URL(url).human_repr()}
            path = URL(url).raw_path_qs
        except (ValueError, TypeError):
            forms, path = {url}, ""
        origin = url_origin(url)
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, origin)
        return text.replace(path, "/…") if len(path) > 1 else text

    async def close(self, timeout: float) -> None:
        """Deliver what is queued for up to `timeout` seconds, then stop."""
        task = self._task
        if task is None:
            return
        if timeout > 0 and self.queue:
            deadline = time.monotonic() + timeout
            while self.queue and time.monotonic() < deadline and not task.done():
                await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def stats(self) -> WebhookStats:
        """This endpoint's counters."""
        return WebhookStats(self.index, self.host, len(self.queue), self.delivered, self.failed_attempts,
                            self.dropped)


class WebhookDispatcher:
    """Fans status changes out to every webhook endpoint; an observer of the live streams."""

    def __init__(self, configs: Iterable[WebhookConfig], secrets: Callable[[], Iterable[Secret]],
                 retry_initial: float = RETRY_INITIAL, retry_max: float = RETRY_MAX,
                 rand: Callable[[], float] = random.random) -> None:
        self._secrets = secrets
        self._retry = (retry_initial, retry_max)
        self._rand = rand
        self._session: aiohttp.ClientSession | None = None
        self._configs = tuple(configs)
        self.endpoints: list[WebhookEndpoint] = []

    async def start(self) -> None:
        """Open the HTTP client and start a worker per endpoint."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=16, limit_per_host=4),
            skip_auto_headers=("User-Agent",),
        )
        self._apply(self._configs)

    def _apply(self, configs: tuple[WebhookConfig, ...]) -> None:
        assert self._session is not None
        current = {e.config: e for e in self.endpoints}
        endpoints = []
        for index, config in enumerate(configs):
            endpoint = current.pop(config, None)
            if endpoint is None:
                endpoint = WebhookEndpoint(index, config, self._session, *self._retry, self._rand)
                endpoint.start()
            endpoint.index = index
            endpoints.append(endpoint)
        for gone in current.values():
            asyncio.create_task(gone.close(0))
        self.endpoints = endpoints

    def reconfigure(self, configs: Iterable[WebhookConfig]) -> None:
        """Apply a reloaded config: unchanged endpoints keep their queue."""
        self._configs = tuple(configs)
        if self._session is not None:
            self._apply(self._configs)

    def notify(self, change: StatusChange) -> None:
        """Queue the event for every endpoint (never blocks)."""
        if not self.endpoints:
            return
        body = json.dumps(scrub_values(event_body(change), self._secrets()), separators=(",", ":")).encode()
        event = _Event(change.type, body)
        for endpoint in self.endpoints:
            endpoint.push(event)

    def stats(self) -> tuple[WebhookStats, ...]:
        """Every endpoint's counters."""
        return tuple(e.stats() for e in self.endpoints)

    async def close(self, timeout: float = 1.0) -> None:
        """Give queued events `timeout` seconds, then stop every worker and the client."""
        await asyncio.gather(*(e.close(timeout) for e in self.endpoints))
        if self._session is not None:
            await self._session.close()


async def _discard_answer(response: aiohttp.ClientResponse) -> None:
    """Read and drop the receiver's answer, at most MAX_ANSWER_BYTES of it: only its status counts.
    A longer one closes the connection instead (a receiver's 200 MB answer took the relay to 461 MB)."""
    left = MAX_ANSWER_BYTES
    while left > 0:
        chunk = await response.content.read(min(left, 16384))
        if not chunk:
            return
        left -= len(chunk)
    response.close()
