"""The HTTP side of the relay: status API, Prometheus metrics, health check, reload, status page.

aiohttp serves it on the relay's own event loop, so it must never hold that loop up:
- every handler works on one frozen snapshot (`source.snapshot()`), whose cost depends
  on the number of live streams and targets, never on how long the relay has run;
- requests are bounded (`max_request_bytes`, aiohttp's header limits), a client gets
  `request_timeout` seconds to send a whole request (a slow-loris connection is cut),
  idle keep-alive connections are closed, and at most MAX_CONNECTIONS are open at once
  (more are refused at accept).

A bearer token (`http.token`), when set, guards everything but /healthz, compared in
constant time. Browsers cannot send a bearer header when opening a page, so GET
requests may also carry the token in a cookie, set by the small sign-in form that GET /
shows to a browser without it (SameSite=Strict, HttpOnly); POST /api/v1/reload takes
the header only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from typing import Any, Protocol, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from relay.config import HttpConfig
from relay.api.history import RateHistory
from relay.runtime.logs import get_logger
from relay.api.metrics import CONTENT_TYPE, RelayCollector, make_registry, render
from relay.api.webhooks import WebhookStats
from relay.secret import Secret, redact
from relay.status import RelaySnapshot, ReloadResult

MAX_CONNECTIONS = 64  # open HTTP connections at once; more are refused at accept
KEEPALIVE_TIMEOUT = 15.0  # seconds an idle keep-alive connection is kept (the page polls every 2 s)
SHUTDOWN_TIMEOUT = 1.0
COOKIE = "relay_token"
API = "/api/v1"
_STATIC = {"app.js": "text/javascript", "style.css": "text/css", "openapi.yaml": "application/yaml"}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"),
}
# The sign-in form: no script, and its style inline (CSP allows exactly this block by hash-free
# 'unsafe-inline' for style only on this one response).
_SIGN_IN = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>simulcast-relay: sign in</title>
<link rel="icon" href="data:,">
<style>body{font:16px system-ui,sans-serif;background:#111418;color:#e8eaed;display:grid;place-items:center;
min-height:90vh}form{background:#1b1f24;padding:1.5em;border-radius:8px;max-width:22em}input{width:100%;
box-sizing:border-box;margin:.6em 0;padding:.5em;font:inherit}button{padding:.5em 1em;font:inherit}</style>
</head><body><form method="post" action="/login"><h1>simulcast-relay</h1>
<p>This relay's status needs its HTTP token (http.token in its config).</p>
<input type="password" name="token" autocomplete="current-password" aria-label="token" autofocus>
<button type="submit">Sign in</button></form></body></html>"""


class StatusSource(Protocol):
    """What the HTTP server reads from the relay (implemented by relay.app.Relay)."""

    @property
    def history(self) -> RateHistory:
        """Bitrate samples for the sparklines."""

    def snapshot(self) -> RelaySnapshot:
        """The relay's state at this moment."""

    def health_checks(self) -> dict[str, bool]:
        """Named checks for /healthz; all must be true."""

    def reload_via_api(self) -> Awaitable[ReloadResult]:
        """Reload the config file, as SIGHUP does."""

    def known_secrets(self) -> Iterable[Secret]:
        """Every key of the current config, to scrub from responses."""

    def webhook_stats(self) -> tuple[WebhookStats, ...]:
        """Webhook counters, for metrics."""


def _static(name: str) -> bytes:
    return (resources.files("relay.api.web") / name).read_bytes()


class _Connection(asyncio.Protocol):
    """aiohttp's protocol for one connection, with a cap on connections and a request deadline.

    aiohttp has no deadline for receiving a request's headers: the timer here starts when
    the connection opens, and again when a later request's first bytes arrive, and stops
    when aiohttp hands the request to the handlers (the middleware calls
    `request_started`); a client that says nothing, or dribbles its request, is cut when
    it runs out. Idle keep-alive connections are aiohttp's (KEEPALIVE_TIMEOUT).
    """

    def __init__(self, inner: RequestHandler, guard: _Guard) -> None:
        self.inner = inner
        self.guard = guard
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._in_request = False
        self._accepted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self.guard
        if len(guard.open) >= guard.max_connections:
            guard.refused += 1
            cast(asyncio.Transport, transport).abort()
            return
        self._accepted = True
        self.transport = cast(asyncio.Transport, transport)
        guard.open[transport] = self
        self._arm()
        self.inner.connection_made(transport)

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.guard.request_timeout, self._expire)

    def data_received(self, data: bytes) -> None:
        if not self._accepted:
            return
        if not self._in_request and self._timer is None:
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
        self._cancel_timer()
        self.guard.open.pop(self.transport, None)
        self.inner.connection_lost(exc)

    def request_started(self) -> None:
        self._cancel_timer()
        self._in_request = True

    def request_done(self) -> None:
        self._in_request = False

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self.guard.timed_out += 1
        if self.transport is not None:
            self.transport.abort()


class _Guard:
    """Open connections and the limits they live under."""

    def __init__(self, max_connections: int, request_timeout: float) -> None:
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self.open: dict[object, _Connection] = {}
        self.refused = 0
        self.timed_out = 0


class HttpServer:
    """The status API, metrics, health check, reload and page, on one listening socket."""

    def __init__(self, source: StatusSource, config: HttpConfig, max_connections: int = MAX_CONNECTIONS) -> None:
        assert config.listen_host is not None and config.listen_port is not None, "HTTP is turned off"
        self.host, self.port = config.listen_host, config.listen_port
        self.source = source
        self.config = config
        self.log = get_logger()
        self.guard = _Guard(max_connections, config.request_timeout)
        self.registry = make_registry(RelayCollector(source.snapshot, source.history, source.webhook_stats))
        self._pages = {name: _static(name) for name in (*_STATIC, "index.html")}
        self._server: asyncio.Server | None = None
        self._runner: web.AppRunner | None = None
        app = web.Application(client_max_size=config.max_request_bytes,
                              middlewares=[self._guard_middleware, self._auth_middleware])
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._asset)
        app.router.add_post("/login", self._login)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get(f"{API}/live-streams", self._live_streams)
        app.router.add_get(f"{API}/live-streams/{{name}}", self._live_stream)
        app.router.add_get(f"{API}/history", self._history)
        app.router.add_post(f"{API}/reload", self._reload)
        app.router.add_get(f"{API}/openapi.yaml", self._openapi)
        self.app = app

    @property
    def sockets(self) -> list[Any]:
        """The listening sockets (for the port bound to 0 in tests, and for logging)."""
        return list(self._server.sockets) if self._server is not None else []

    def serving(self) -> bool:
        """True while the listener accepts connections."""
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        """Bind and serve (OSError if the address is taken)."""
        runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT,
                               max_line_size=8190, max_field_size=8190, max_headers=64,
                               shutdown_timeout=SHUTDOWN_TIMEOUT, handler_cancellation=True)
        await runner.setup()
        self._runner = runner
        handler_factory = runner.server
        assert handler_factory is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(handler_factory(), self.guard), self.host, self.port,
            reuse_address=True, backlog=128)

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()
        for transport in list(self.guard.open):
            transport.abort()  # type: ignore[attr-defined]

    # -- middlewares ---------------------------------------------------------------------

    @web.middleware
    async def _guard_middleware(self, request: web.Request,
                                handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                                ) -> web.StreamResponse:
        conn = self.guard.open.get(request.transport)
        if conn is not None:
            conn.request_started()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if request.path.startswith(API):
                response = _error(exc.status, exc.reason)
            else:
                response = web.Response(status=exc.status, text=exc.text, headers=exc.headers)
        except Exception:
            self.log.exception("http_handler_failed", path=request.path[:100])
            response = _error(500, "internal error; see the relay's log")
        finally:
            if conn is not None:
                conn.request_done()
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @web.middleware
    async def _auth_middleware(self, request: web.Request,
                               handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                               ) -> web.StreamResponse:
        token = self.config.token
        if token is None or request.path in ("/healthz", "/login") or self._authorized(request, token):
            return await handler(request)
        if request.method == "GET" and request.path == "/":
            response = web.Response(status=401, text=_SIGN_IN, content_type="text/html")
            response.headers["Content-Security-Policy"] = (
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
        else:
            response = _error(401, "a valid bearer token is required (Authorization: Bearer <http.token>)")
        response.headers["WWW-Authenticate"] = 'Bearer realm="simulcast-relay"'
        return response

    @staticmethod
    def _authorized(request: web.Request, token: Secret) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return token.matches(value.strip())
        cookie = request.cookies.get(COOKIE)
        return request.method in ("GET", "HEAD") and bool(cookie) and token.matches(cookie or "")

    # -- handlers ------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self._pages["index.html"], content_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=self._pages[name], content_type=_STATIC[name],
                            headers={"Cache-Control": "no-cache"})

    async def _openapi(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self._pages["openapi.yaml"], content_type="application/yaml")

    async def _login(self, request: web.Request) -> web.StreamResponse:
        token = self.config.token
        if token is None:
            return web.Response(status=303, headers={"Location": "/"})
        async with asyncio.timeout(self.config.request_timeout):
            form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not given or not token.matches(given):
            self.log.warning("http_sign_in_failed", peer=request.remote)
            response = web.Response(status=401, text=_SIGN_IN, content_type="text/html")
            response.headers["Content-Security-Policy"] = (
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
            return response
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(COOKIE, given, httponly=True, samesite="Strict", path="/")
        return response

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        checks = self.source.health_checks()
        healthy = all(checks.values())
        return web.json_response({"status": "ok" if healthy else "unhealthy", "checks": checks},
                                 status=200 if healthy else 503, headers={"Cache-Control": "no-store"})

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        body = redact(render(self.registry).decode(), self.source.known_secrets())
        return web.Response(text=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})

    async def _live_streams(self, request: web.Request) -> web.StreamResponse:
        snap = self.source.snapshot()
        return self._json({"data": [ls.to_json() for ls in snap.live_streams]})

    async def _live_stream(self, request: web.Request) -> web.StreamResponse:
        live = self.source.snapshot().live_stream(request.match_info["name"])
        if live is None:
            return _error(404, "no live stream of that name")
        return self._json({"data": live.to_json()})

    async def _history(self, request: web.Request) -> web.StreamResponse:
        history = self.source.history
        streams: dict[str, Any] = {}
        for live in self.source.snapshot().live_streams:
            streams[live.name] = {
                "ingest": history.series((live.name,)),
                "simulcast_targets": {t.passthrough: history.series((live.name, t.passthrough))
                                      for t in live.simulcast_targets},
            }
        return self._json({"data": {"interval": history.interval, "samples": history.size,
                                    "live_streams": streams}})

    async def _reload(self, request: web.Request) -> web.StreamResponse:
        result = await self.source.reload_via_api()
        self.log.info("http_reload", ok=result.ok, peer=request.remote)
        return self._json({"data": result.to_json()}, status=200 if result.ok else 422)

    def _json(self, data: Any, status: int = 200) -> web.Response:
        text = redact(json.dumps(data, separators=(",", ":")), self.source.known_secrets())
        return web.Response(text=text, status=status, content_type="application/json",
                            headers={"Cache-Control": "no-store"})


def _error(status: int, message: str) -> web.Response:
    """An error in Mux's shape: {"error": {"type": ..., "messages": [...]}}."""
    kinds = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
             422: "invalid_config", 500: "internal_error"}
    body = {"error": {"type": kinds.get(status, "error"), "messages": [message]}}
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})
