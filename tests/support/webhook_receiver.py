"""A real webhook receiver: an aiohttp server on its own loop that checks every Mux-Signature.

It checks signatures with its own few lines (`receiver_accepts`, Mux's documented scheme),
never with the relay's `sign`/`verify`: a mistake shared by the relay's signer and its
verifier would otherwise pass. `fail_first=N` answers HTTP 500 to the first N deliveries (a
receiver having trouble); start it later than the relay, on a port reserved with free_port(),
for one that is down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from testbed.background import BackgroundServer

SIGNATURE_HEADER = "Mux-Signature"
TOLERANCE_S = 300  # the age past which a receiver refuses a delivery as a replay (Mux's examples use 5 min)


def receiver_accepts(secret: str, body: bytes, header: str, now: float) -> bool:
    """Mux's receiver check: header `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`, recent enough."""
    fields: dict[str, list[str]] = {}
    for item in header.split(","):
        name, equals, value = item.partition("=")
        if equals:
            fields.setdefault(name.strip(), []).append(value.strip())
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit() or abs(now - int(stamps[0])) > TOLERANCE_S:
        return False
    mac = hmac.new(secret.encode(), stamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(mac, v1) for v1 in fields.get("v1", []))


class WebhookReceiver(BackgroundServer):
    """Collects the events whose signature verifies; counts the rest."""

    thread_name = "webhook-receiver"

    def __init__(self, secret: str, port: int = 0, fail_first: int = 0) -> None:
        super().__init__()
        self.secret = secret
        self.port = port
        self.fail_first = fail_first
        self.events: list[dict[str, Any]] = []
        self.raw_bodies: list[bytes] = []
        self.bad_signatures = 0
        self.refused = 0
        self._cond = threading.Condition()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers.get(SIGNATURE_HEADER, "")
        with self._cond:
            if not receiver_accepts(self.secret, body, header, time.time()):
                self.bad_signatures += 1
                self._cond.notify_all()
                return web.Response(status=400, text="bad signature")
            if self.fail_first > 0:
                self.fail_first -= 1
                self.refused += 1
                self._cond.notify_all()
                return web.Response(status=500, text="not now")
            self.raw_bodies.append(body)
            self.events.append(json.loads(body))
            self._cond.notify_all()
        return web.Response(status=204)

    async def _listen(self, ready: threading.Event) -> None:
        assert self._stop is not None
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = runner.addresses[0][1]
        ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_until(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 20.0,
                   what: str = "events") -> list[dict[str, Any]]:
        """Wait until `predicate(events)` holds; the events then."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.events), timeout):
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; got "
                                     f"{[e['type'] for e in self.events]} ({self.bad_signatures} bad signatures)")
            return list(self.events)

    def types(self) -> list[str]:
        with self._cond:
            return [e["type"] for e in self.events]
