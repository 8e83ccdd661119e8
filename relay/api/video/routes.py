"""The /video/v1 routes: Mux's live stream and simulcast target API, at Mux's paths and codes.

Every route checks the caller's access token first (access.py: HTTP Basic; a read token
may list and get, a write token may also change), counts a wrong one against its address
as a wrong bearer token is counted (past the limit: 429), then reads the body (bounded by
`http.max_request_bytes`), checks it (requests.py) and hands it to the catalog. Answers
are `{"data": ...}` and errors `{"error": {"type", "messages"}}` with Mux's codes: 201 for
a creation and a new stream key, 204 for a deletion, 400 for bad input, 401, 403, 404,
and 409 for a change to a live stream of the config file.

Answers are scrubbed of every known key (relay/api/redaction.py), and only then is the
live stream's own key put in, for a write token, on create, get and reset-stream-key, as
Mux does. A target's key is never in an answer.
"""

from __future__ import annotations

import asyncio

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from relay.addresses import address_key
from relay.api.guard import SignInFailures
from relay.api.redaction import scrub_values
from relay.api.video.access import Access, access_of, basic_credential
from relay.api.video.catalog import Catalog
from relay.api.video.errors import MuxError
from relay.api.video.requests import CreateBody, TargetBody, TargetUpdateBody, UpdateBody, page_query, parse
from relay.config.sections import AccessToken
from relay.secret import Secret

PREFIX = "/video/v1"
_LS = f"{PREFIX}/live-streams/{{live_stream_id}}"
_TARGET = f"{_LS}/simulcast-targets/{{target_id}}"
Handler = Callable[[web.Request, Catalog], Awaitable[web.Response]]


class VideoRoutes:
    """The /video/v1 handlers of one HTTP server."""

    def __init__(self, catalog: Callable[[], Catalog | None], tokens: Callable[[], Iterable[AccessToken]],
                 sign_ins: SignInFailures, secrets: Callable[[], Iterable[Secret]], request_timeout: float) -> None:
        self.catalog = catalog
        self.tokens = tokens
        self.sign_ins = sign_ins
        self.secrets = secrets
        self.request_timeout = request_timeout

    def register(self, app: web.Application) -> None:
        """Add every route to `app`."""
        add = app.router.add_route
        add("GET", f"{PREFIX}/live-streams", self._guarded(self._list, write=False))
        add("POST", f"{PREFIX}/live-streams", self._guarded(self._create, write=True))
        add("GET", _LS, self._guarded(self._get, write=False))
        add("PATCH", _LS, self._guarded(self._update, write=True))
        add("DELETE", _LS, self._guarded(self._delete, write=True))
        add("POST", f"{_LS}/reset-stream-key", self._guarded(self._reset_key, write=True))
        add("PUT", f"{_LS}/disable", self._guarded(self._disable, write=True))
        add("PUT", f"{_LS}/enable", self._guarded(self._enable, write=True))
        add("PUT", f"{_LS}/complete", self._guarded(self._complete, write=True))
        add("POST", f"{_LS}/simulcast-targets", self._guarded(self._add_target, write=True))
        add("GET", _TARGET, self._guarded(self._get_target, write=False))
        add("PATCH", _TARGET, self._guarded(self._update_target, write=True))
        add("DELETE", _TARGET, self._guarded(self._delete_target, write=True))

    def _guarded(self, handler: Handler, *, write: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def guarded(request: web.Request) -> web.Response:
            try:
                self._authorize(request, write)
                catalog = self.catalog()
                if catalog is None:
                    raise MuxError(503, "the management API is not running (see the relay's log)")
                return await handler(request, catalog)
            except MuxError as exc:
                response = exc.response()
                if exc.status == 401:
                    response.headers["WWW-Authenticate"] = 'Basic realm="simulcast-relay"'
                return response
        return guarded

    def _authorize(self, request: web.Request, write: bool) -> None:
        credential = basic_credential(request.headers.get("Authorization", ""))
        if credential is None:
            raise MuxError(401, "an access token is required (HTTP Basic: the token's id and secret, "
                                "from http.access_tokens)")
        address = address_key(request.remote or "?")
        if self.sign_ins.blocked(address):
            self.sign_ins.refused(address)
            raise MuxError(429, "too many wrong credentials from this address; wait a minute")
        access = access_of(credential, self.tokens())
        if access is Access.NONE:
            self.sign_ins.failed(address, "access_token")
            raise MuxError(401, "unknown access token id, or wrong secret")
        request["write"] = access is Access.WRITE
        if write and access is not Access.WRITE:
            raise MuxError(403, "this access token may only read (its permissions are [read])")

    def _json(self, data: Any, status: int = 200, stream_key: str | None = None) -> web.Response:
        body = scrub_values({"data": data}, self.secrets())
        if stream_key is not None:
            body["data"]["stream_key"] = stream_key
        return web.Response(text=json.dumps(body, separators=(",", ":")), status=status,
                            content_type="application/json", headers={"Cache-Control": "no-store"})

    def _live_stream(self, request: web.Request, catalog: Catalog, live_stream_id: str, status: int = 200
                     ) -> web.Response:
        key = catalog.stream_key(live_stream_id) if request.get("write") else None
        return self._json(catalog.show(live_stream_id), status, key)

    async def _body(self, request: web.Request) -> bytes:
        """The request's body, within http.request_timeout (a body dribbled in would hold the connection)."""
        try:
            async with asyncio.timeout(self.request_timeout):
                return await request.read()
        except TimeoutError:
            raise MuxError(408, f"the request body did not arrive within {self.request_timeout:g} s") from None

    # -- live streams ---------------------------------------------------------------------

    async def _list(self, request: web.Request, catalog: Catalog) -> web.Response:
        limit, page = page_query(request.query)
        ids = catalog.ids()[(page - 1) * limit: page * limit]
        return self._json([catalog.show(i) for i in ids])

    async def _create(self, request: web.Request, catalog: Catalog) -> web.Response:
        body = parse(CreateBody, await self._body(request))
        live_stream_id = await catalog.create(body)
        return self._live_stream(request, catalog, live_stream_id, 201)

    async def _get(self, request: web.Request, catalog: Catalog) -> web.Response:
        return self._live_stream(request, catalog, request.match_info["live_stream_id"])

    async def _update(self, request: web.Request, catalog: Catalog) -> web.Response:
        live_stream_id = request.match_info["live_stream_id"]
        await catalog.update(live_stream_id, parse(UpdateBody, await self._body(request)))
        return self._json(catalog.show(live_stream_id))

    async def _delete(self, request: web.Request, catalog: Catalog) -> web.Response:
        await catalog.delete(request.match_info["live_stream_id"])
        return web.Response(status=204)

    async def _reset_key(self, request: web.Request, catalog: Catalog) -> web.Response:
        live_stream_id = request.match_info["live_stream_id"]
        await catalog.reset_stream_key(live_stream_id)
        return self._live_stream(request, catalog, live_stream_id, 201)

    async def _disable(self, request: web.Request, catalog: Catalog) -> web.Response:
        await catalog.set_enabled(request.match_info["live_stream_id"], False)
        return self._json({})

    async def _enable(self, request: web.Request, catalog: Catalog) -> web.Response:
        await catalog.set_enabled(request.match_info["live_stream_id"], True)
        return self._json({})

    async def _complete(self, request: web.Request, catalog: Catalog) -> web.Response:
        await catalog.complete(request.match_info["live_stream_id"])
        return self._json({})

    # -- simulcast targets ----------------------------------------------------------------

    async def _add_target(self, request: web.Request, catalog: Catalog) -> web.Response:
        live_stream_id = request.match_info["live_stream_id"]
        target_id = await catalog.add_target(live_stream_id, parse(TargetBody, await self._body(request)))
        return self._json(catalog.show_target(live_stream_id, target_id), 201)

    async def _get_target(self, request: web.Request, catalog: Catalog) -> web.Response:
        info = request.match_info
        return self._json(catalog.show_target(info["live_stream_id"], info["target_id"]))

    async def _update_target(self, request: web.Request, catalog: Catalog) -> web.Response:
        info = request.match_info
        body = parse(TargetUpdateBody, await self._body(request))
        await catalog.update_target(info["live_stream_id"], info["target_id"], body)
        return self._json(catalog.show_target(info["live_stream_id"], info["target_id"]))

    async def _delete_target(self, request: web.Request, catalog: Catalog) -> web.Response:
        info = request.match_info
        await catalog.delete_target(info["live_stream_id"], info["target_id"])
        return web.Response(status=204)
