"""The HTTP side of the relay: status API, Prometheus metrics, health check, reload, status page.

aiohttp serves it on the relay's own event loop, so it must never hold that loop up:
- every handler works on one frozen snapshot (`source.snapshot()`), whose cost depends
  on the number of live streams and targets, never on how long the relay has run;
- requests are bounded (`max_request_bytes`, aiohttp's header limits), a client gets
  `request_timeout` seconds to send a whole request (a slow-loris connection is cut),
  idle keep-alive connections are closed, and connections are capped per address and in
  total (guard.py);
- a request whose Host is not this relay's (DNS rebinding) is answered 421, and one that
  changes something from another site (Origin, Sec-Fetch-Site) 403 (guard.py).

A bearer token (`http.token`), when set, guards everything but /healthz, compared in
constant time; it follows a config reload (the token source is read at every request).
Browsers cannot send a bearer header when opening a page, so GET requests may also carry
the token in a cookie, set by the small sign-in form that GET / shows to a browser
without it (SameSite=Strict, HttpOnly); POST /api/v1/reload takes the header only. Wrong
tokens are counted per address: past `failed_sign_ins_per_minute`, 429 for the minute.

Answers are built from objects that hold no key; their string values (never their
names) are scrubbed once more on the way out (redaction.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from typing import Any, Protocol

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from relay.api.guard import (
    Connections,
    GuardedConnection,
    SignInFailures,
    host_refusal,
    origin_refusal,
)
from relay.addresses import address_key
from relay.api.history import RateHistory
from relay.api.metrics import CONTENT_TYPE, RelayCollector, make_registry, render
from relay.api.redaction import ScrubbedMetrics, scrub_values
from relay.api.video.catalog import Catalog
from relay.api.video.routes import PREFIX as VIDEO, VideoRoutes
from relay.api.webhooks import WebhookStats
from relay.config import HttpConfig
from relay.config.sections import AccessToken
from relay.runtime.logs import get_logger
from relay.secret import Secret
from relay.status import RelaySnapshot, ReloadResult

KEEPALIVE_TIMEOUT = 15.0  # seconds an idle keep-alive connection is kept (the page polls every 2 s)
SHUTDOWN_TIMEOUT = 1.0
COOKIE = "relay_token"
API = "/api/v1"
_STATIC = {"app.js": "text/javascript", "steer.js": "text/javascript", "style.css": "text/css",
           "openapi.yaml": "application/yaml"}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: browsers then send the page's own Origin on its POSTs
    # (no-referrer makes it "null", which the Origin check cannot tell from a sandboxed frame's).
    "Referrer-Policy": "same-origin",
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


class HttpServer:
    """The status API, metrics, health check, reload and page, on one listening socket."""

    def __init__(self, source: StatusSource, config: HttpConfig,
                 token: Callable[[], Secret | None] | None = None,
                 catalog: Callable[[], Catalog | None] = lambda: None,
                 access_tokens: Callable[[], Iterable[AccessToken]] | None = None) -> None:
        assert config.listen_host is not None and config.listen_port is not None, "HTTP is turned off"
        self.host, self.port = config.listen_host, config.listen_port
        self.source = source
        self.config = config
        # Read at every request: a reload may rotate the token (relay/reload.py).
        self.token = token or (lambda: config.token)
        self.log = get_logger()
        self.guard = Connections(config.limits, config.request_timeout)
        self.sign_ins = SignInFailures(config.limits)
        self.registry = make_registry(RelayCollector(source.snapshot, source.history, source.webhook_stats))
        self._pages = {name: _static(name) for name in (*_STATIC, "index.html")}
        self._server: asyncio.Server | None = None
        self._runner: web.AppRunner | None = None
        app = web.Application(client_max_size=config.max_request_bytes,
                              middlewares=[self._guard_middleware, self._site_middleware, self._auth_middleware])
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
        # Mux's management API: its own credentials (HTTP Basic access tokens), checked by its routes.
        VideoRoutes(catalog, access_tokens or (lambda: config.access_tokens), self.sign_ins,
                    source.known_secrets, config.request_timeout).register(app)
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
            lambda: GuardedConnection(handler_factory(), self.guard), self.host, self.port,
            reuse_address=True, backlog=128)

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.guard.close()
        self.sign_ins.summary.close()

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
            if request.path.startswith((API, VIDEO)):
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
    async def _site_middleware(self, request: web.Request,
                               handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                               ) -> web.StreamResponse:
        """Requests for another host (DNS rebinding) and changes from another site are refused."""
        if request.path != "/healthz":
            reason = host_refusal(request.headers.get("Host"), self.host, self.config.allowed_hosts)
            if reason is not None:
                return _error(421, reason)
        reason = origin_refusal(request.method, request.headers)
        if reason is not None:
            return _error(403, reason)
        return await handler(request)

    @web.middleware
    async def _auth_middleware(self, request: web.Request,
                               handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                               ) -> web.StreamResponse:
        token = self.token()
        if token is None or request.path in ("/healthz", "/login") or request.path.startswith(f"{VIDEO}/"):
            return await handler(request)
        given, how = self._credential(request)
        if given is not None:
            address = address_key(request.remote or "?")
            if self.sign_ins.blocked(address):
                self.sign_ins.refused(address)
                return _error(429, "too many wrong tokens from this address; wait a minute")
            if token.matches(given):
                return await handler(request)
            self.sign_ins.failed(address, how)
        if request.method == "GET" and request.path == "/":
            response = _sign_in_page()
        else:
            response = _error(401, "a valid bearer token is required (Authorization: Bearer <http.token>)")
        response.headers["WWW-Authenticate"] = 'Bearer realm="simulcast-relay"'
        if how == "cookie":
            response.del_cookie(COOKIE, path="/")  # a stale cookie is not sent again (and not counted again)
        return response

    @staticmethod
    def _credential(request: web.Request) -> tuple[str | None, str]:
        """The token the request carries, and how: the bearer header, or (to read only) the cookie."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), "header"
        cookie = request.cookies.get(COOKIE)
        if request.method in ("GET", "HEAD") and cookie:
            return cookie, "cookie"
        return None, ""

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
        token = self.token()
        if token is None:
            return web.Response(status=303, headers={"Location": "/"})
        address = address_key(request.remote or "?")
        if self.sign_ins.blocked(address):
            self.sign_ins.refused(address)
            return _sign_in_page(429)
        async with asyncio.timeout(self.config.request_timeout):
            form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not given or not token.matches(given):
            self.sign_ins.failed(address, "form")
            return _sign_in_page()
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(COOKIE, given, httponly=True, samesite="Strict", path="/")
        return response

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        checks = self.source.health_checks()
        healthy = all(checks.values())
        return web.json_response({"status": "ok" if healthy else "unhealthy", "checks": checks},
                                 status=200 if healthy else 503, headers={"Cache-Control": "no-store"})

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        body = render(ScrubbedMetrics(self.registry, self.source.known_secrets()))
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})

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
        text = json.dumps(scrub_values(data, self.source.known_secrets()), separators=(",", ":"))
        return web.Response(text=text, status=status, content_type="application/json",
                            headers={"Cache-Control": "no-store"})


def _error(status: int, message: str) -> web.Response:
    """An error in Mux's shape: {"error": {"type": ..., "messages": [...]}}."""
    kinds = {400: "invalid_parameters", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed",
             413: "too_large", 421: "misdirected_request", 422: "invalid_config", 429: "too_many_requests",
             500: "internal_error"}
    body = {"error": {"type": kinds.get(status, "error"), "messages": [message]}}
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


def _sign_in_page(status: int = 401) -> web.Response:
    """The sign-in form (its style inline: the only answer whose CSP allows that)."""
    response = web.Response(status=status, text=_SIGN_IN, content_type="text/html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    return response
