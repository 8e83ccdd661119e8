"""Attacks on the HTTP server from the open internet and from other sites, on a real socket.

- one address holding idle connections must not take /healthz away from everyone else;
- a page on another site must neither read the API by DNS rebinding (Host) nor change
  anything by a cross-site request (Origin, Sec-Fetch-Site), token or not;
- a token guesser gets a bounded number of log lines, then 429s.

On Linux the whole of 127/8 is loopback: a client socket bound to 127.0.0.2 is another
address to the server.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from relay.api.server import HttpServer
from tests.e2e.test_http_guard import TOKEN, FakeRelay, base, http_config
from tests.support.openapi import validate

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def start(relay: FakeRelay | None = None, **fields: Any) -> HttpServer:
    srv = HttpServer(relay or FakeRelay(), http_config(**fields))
    await srv.start()
    return srv


@pytest.fixture
async def open_relay() -> AsyncIterator[HttpServer]:
    """No token, on loopback: the case a browser on another site could reach."""
    srv = await start(request_timeout=120)
    yield srv
    await srv.stop()


async def hold(port: int, source: str, count: int) -> list[socket.socket]:
    """`count` idle connections to `port` from the address `source` (each sends nothing)."""
    held = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        held.append(sock)
    return held


async def until(condition: Any, what: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def healthz(srv: HttpServer) -> int:
    async with aiohttp.ClientSession() as session, session.get(base(srv) + "/healthz") as response:
        return response.status


async def test_64_idle_sockets_from_one_address_leave_healthz_to_everyone_else(open_relay: HttpServer) -> None:
    held = await hold(open_relay.port, "127.0.0.2", 64)
    try:
        # The accept loop is the server's: wait until it has seen all 64.
        await until(lambda: len(open_relay.guard.open) + open_relay.guard.refused >= 64, "64 connections seen")
        assert len(open_relay.guard.by_address["127.0.0.2"]) == 16
        assert open_relay.guard.refused == 48

        assert await healthz(open_relay) == 200
        async with aiohttp.ClientSession() as session, \
                session.get(base(open_relay) + "/api/v1/live-streams") as response:
            assert response.status == 200
    finally:
        for sock in held:
            sock.close()


async def test_a_full_house_makes_room_by_evicting_the_biggest_holders_idle_connection(
        open_relay: HttpServer) -> None:
    held = []
    try:
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
            held += await hold(open_relay.port, source, 16)
        await until(lambda: len(open_relay.guard.open) == 64, "64 connections open")

        assert await healthz(open_relay) == 200
        assert open_relay.guard.evicted >= 1 and len(open_relay.guard.open) <= 64
    finally:
        for sock in held:
            sock.close()


async def test_connection_refusals_are_summed_in_one_log_line() -> None:
    with capture_logs() as captured:
        srv = await start(request_timeout=120, limits={"max_connections_per_address": 2})
        held = await hold(srv.port, "127.0.0.2", 50)
        try:
            await until(lambda: srv.guard.refused >= 48, "48 refusals")
        finally:
            for sock in held:
                sock.close()
            await srv.stop()
    lines = [e for e in captured if e["event"] == "http_connections_refused"]
    assert len(lines) == 1 and lines[0]["reasons"] == {"max_connections_per_address": 1}


async def post(srv: HttpServer, path: str, headers: dict[str, str], **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, \
            session.post(base(srv) + path, headers=headers, allow_redirects=False, **kwargs) as response:
        text = await response.text()
        return response.status, json.loads(text) if response.content_type == "application/json" else text


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:1"},  # same host, another port: another origin
    {"Sec-Fetch-Site": "cross-site"},
])
async def test_a_cross_site_post_changes_nothing(open_relay: HttpServer, headers: dict[str, str]) -> None:
    relay: FakeRelay = open_relay.source  # type: ignore[assignment]
    status, body = await post(open_relay, "/api/v1/reload", headers)

    assert status == 403 and relay.reloads == 0
    assert body["error"]["type"] == "forbidden"
    validate(body, "/api/v1/reload", "post", 403)


async def test_a_same_origin_post_and_one_without_origin_go_through(open_relay: HttpServer) -> None:
    relay: FakeRelay = open_relay.source  # type: ignore[assignment]
    own = f"http://127.0.0.1:{open_relay.port}"
    # A browser's own form under a strict referrer policy says "null", and same-origin.
    for headers in ({"Origin": own, "Sec-Fetch-Site": "same-origin"}, {"Origin": "null", "Sec-Fetch-Site":
                                                                         "same-origin"}, {}):
        status, body = await post(open_relay, "/api/v1/reload", headers)
        assert status == 422, body  # the fake relay's file is broken: the reload was tried
    assert relay.reloads == 3


async def test_a_cross_site_sign_in_is_refused_too() -> None:
    srv = await start(token=TOKEN)
    try:
        status, _ = await post(srv, "/login", {"Origin": "https://evil.example"}, data={"token": TOKEN})
        assert status == 403
    finally:
        await srv.stop()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8935", "rebind.attacker.test."])
async def test_dns_rebinding_reads_nothing(open_relay: HttpServer, host: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/api/v1/live-streams", "/metrics", "/", "/api/v1/history"):
            async with session.get(base(open_relay) + path, headers={"Host": host}) as response:
                assert response.status == 421, path
                body = await response.json()
                assert body["error"]["type"] == "misdirected_request"
                if path.startswith("/api"):
                    validate(body, path, "get", 421)
                assert "studio" not in json.dumps(body)
        async with session.get(base(open_relay) + "/healthz", headers={"Host": host}) as response:
            assert response.status == 200  # nothing to read there; load balancers name the host freely


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8935", "127.0.0.1", "[::1]:1", "relay.example.com"])
async def test_the_relays_own_names_are_served(host: str) -> None:
    srv = await start(allowed_hosts=["relay.example.com"])
    try:
        async with aiohttp.ClientSession() as session, \
                session.get(base(srv) + "/api/v1/live-streams", headers={"Host": host}) as response:
            assert response.status == 200
            validate(await response.json(), "/api/v1/live-streams", "get", 200)
    finally:
        await srv.stop()


async def test_a_token_guesser_gets_bounded_log_lines_then_429() -> None:
    with capture_logs() as captured:
        srv = await start(token=TOKEN)
        statuses = []
        try:
            async with aiohttp.ClientSession() as session:
                for i in range(50):
                    async with session.post(base(srv) + "/login", data={"token": f"guess-{i}"}) as response:
                        statuses.append(response.status)
                    async with session.get(base(srv) + "/metrics",
                                           headers={"Authorization": f"Bearer guess-{i}"}) as response:
                        statuses.append(response.status)
                # The right token from the guessing address waits its minute out too.
                async with session.get(base(srv) + "/metrics", headers=AUTH) as response:
                    assert response.status == 429
                    body = await response.json()
                    assert body["error"]["type"] == "too_many_requests"
                    validate(body, "/metrics", "get", 429)
        finally:
            await srv.stop()
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    lines = [e for e in captured if e["event"].startswith("http_sign_in")]
    assert len(lines) == 1, lines  # the first; the rest are summed into the next minute's line
    assert "guess" not in repr(captured)
