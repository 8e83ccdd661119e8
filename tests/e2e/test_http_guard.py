"""The HTTP server in process, on a real socket, against clients that misbehave or lack the token.

A fake relay stands behind it (the daemon's own tests are in test_http.py); what is
checked here is the server's own job: the token guard, the sign-in cookie, the request
deadline, the connection cap, request size, error shapes and headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp
import pytest

from relay.api.history import RateHistory
from relay.api.server import HttpServer
from relay.api.webhooks import WebhookStats
from relay.config import HttpConfig, Secret
from relay.status import RelaySnapshot, ReloadResult
from testbed.ports import free_port
from tests.support.openapi import validate
from tests.unit.test_status import ACTIVE, IDLE

TOKEN = "http-guard-TOKEN-5c1e9a0b7d3f"
INGEST_KEY_IN_ERROR = "leaky-key-0a9b8c7d6e"


class FakeRelay:
    """What the server reads from the relay, with knobs."""

    def __init__(self) -> None:
        self.history = RateHistory()
        self.checks = {"event_loop": True, "rtmp_listener": True}
        self.reloads = 0
        self.secrets = [Secret(TOKEN), Secret(INGEST_KEY_IN_ERROR)]

    def snapshot(self) -> RelaySnapshot:
        return RelaySnapshot((ACTIVE, IDLE))

    def health_checks(self) -> dict[str, bool]:
        return dict(self.checks)

    async def reload_via_api(self) -> ReloadResult:
        self.reloads += 1
        return ReloadResult(False, (f"relay.yaml:4:3: live_streams[0].stream_key: {INGEST_KEY_IN_ERROR} leaked",))

    def known_secrets(self) -> Iterable[Secret]:
        return self.secrets

    def webhook_stats(self) -> tuple[WebhookStats, ...]:
        return ()


def http_config(**fields: Any) -> HttpConfig:
    return HttpConfig.model_validate({"listen": f"127.0.0.1:{free_port()}", **fields})


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    srv = HttpServer(FakeRelay(), http_config(token=TOKEN, request_timeout=1, max_request_bytes=2048,
                                              limits={"max_connections": 4, "max_connections_per_address": 4}))
    await srv.start()
    yield srv
    await srv.stop()


def base(srv: HttpServer) -> str:
    return f"http://127.0.0.1:{srv.port}"


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_the_token_guards_everything_but_healthz(server: HttpServer) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/api/v1/live-streams", "/api/v1/live-streams/studio-a", "/api/v1/history", "/metrics",
                     "/static/app.js", "/api/v1/openapi.yaml"):
            async with session.get(base(server) + path) as response:
                assert response.status == 401, path
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                validate(await response.json(), "/api/v1/live-streams", "get", 401)
            async with session.get(base(server) + path,
                                   headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"}) as response:
                assert response.status == 401, path
            async with session.get(base(server) + path, headers=AUTH) as response:
                assert response.status == 200, path
        async with session.post(base(server) + "/api/v1/reload") as response:
            assert response.status == 401
        async with session.get(base(server) + "/healthz") as response:
            assert response.status == 200
            validate(await response.json(), "/healthz", "get", 200)


async def test_a_browser_signs_in_with_a_form_and_a_cookie(server: HttpServer) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: cookies for an IP address host
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(base(server) + "/") as response:
            assert response.status == 401
            page = await response.text()
            assert '<form method="post" action="/login">' in page and TOKEN not in page
        async with session.post(base(server) + "/login", data={"token": "wrong"}, allow_redirects=False) as response:
            assert response.status == 401
        async with session.post(base(server) + "/login", data={"token": TOKEN}, allow_redirects=False) as response:
            assert response.status == 303
            cookie = response.cookies["relay_token"]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
        async with session.get(base(server) + "/") as response:
            assert response.status == 200
            assert '<script src="/static/app.js"' in await response.text()
        async with session.get(base(server) + "/api/v1/live-streams") as response:
            assert response.status == 200
        # The cookie is for reading: changing things takes the bearer header (no cross-site POSTs).
        async with session.post(base(server) + "/api/v1/reload") as response:
            assert response.status == 401


async def test_no_token_configured_means_no_guard_on_loopback() -> None:
    srv = HttpServer(FakeRelay(), http_config())
    await srv.start()
    try:
        async with aiohttp.ClientSession() as session, session.get(base(srv) + "/api/v1/live-streams") as response:
            assert response.status == 200
            validate(await response.json(), "/api/v1/live-streams", "get", 200)
    finally:
        await srv.stop()


async def test_responses_are_scrubbed_of_known_keys_and_documented(server: HttpServer) -> None:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.post(base(server) + "/api/v1/reload") as response:
            assert response.status == 422
            text = await response.text()
            body = await response.json()
    assert INGEST_KEY_IN_ERROR not in text
    assert "<redacted:" in body["data"]["problems"][0]
    validate(body, "/api/v1/reload", "post", 422)


async def test_unknown_live_stream_is_a_documented_404(server: HttpServer) -> None:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(base(server) + "/api/v1/live-streams/nope") as response:
            assert response.status == 404
            validate(await response.json(), "/api/v1/live-streams/{name}", "get", 404)
        async with session.get(base(server) + "/api/v1/nothing-here") as response:
            assert response.status == 404
            assert (await response.json())["error"]["type"] == "not_found"


async def test_healthz_is_503_when_a_check_fails() -> None:
    relay = FakeRelay()
    relay.checks["rtmp_listener"] = False
    srv = HttpServer(relay, http_config())
    await srv.start()
    try:
        async with aiohttp.ClientSession() as session, session.get(base(srv) + "/healthz") as response:
            assert response.status == 503
            body = await response.json()
            validate(body, "/healthz", "get", 503)
            assert body["checks"]["rtmp_listener"] is False
    finally:
        await srv.stop()


async def test_pages_carry_security_headers(server: HttpServer) -> None:
    async with aiohttp.ClientSession(headers=AUTH) as session, session.get(base(server) + "/") as response:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_a_request_larger_than_max_request_bytes_is_refused(server: HttpServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(base(server) + "/login", data={"token": "x" * 4096}) as response:
            assert response.status == 413


async def read_until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (TimeoutError if it never does)."""
    async with asyncio.timeout(timeout):
        data = b""
        while chunk := await reader.read(4096):
            data += chunk
        return data


async def test_a_client_that_dribbles_its_request_is_cut_at_the_deadline(server: HttpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    await writer.drain()
    # Meanwhile the server answers others.
    async with aiohttp.ClientSession() as session, session.get(base(server) + "/healthz") as response:
        assert response.status == 200

    assert await read_until_closed(reader, timeout=10) == b""
    writer.close()
    assert server.guard.timed_out >= 1


async def test_a_silent_connection_is_cut_too(server: HttpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

    assert await read_until_closed(reader, timeout=10) == b""
    writer.close()


async def test_connections_over_the_cap_are_refused_and_served_again_once_one_closes(server: HttpServer) -> None:
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(4)]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            await read_until_closed(reader, timeout=5)
        except ConnectionResetError:
            pass  # refused with a reset: as good as a close
        writer.close()
        assert server.guard.refused >= 1
    finally:
        for _, w in held:
            w.close()
    # The held ones close (client side); the server frees their slots.
    async with asyncio.timeout(10):
        while server.guard.open:
            await asyncio.sleep(0.02)
    async with aiohttp.ClientSession() as session, session.get(base(server) + "/healthz") as response:
        assert response.status == 200
