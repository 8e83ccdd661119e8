"""A webhook receiver's answer is read up to a bound and no further: a receiver that answers
with hundreds of megabytes is cut off after MAX_ANSWER_BYTES, and the relay holds none of the rest."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from relay.api.webhooks import MAX_ANSWER_BYTES, _discard_answer

HUGE = 200 * 1024 * 1024


async def test_a_huge_answer_is_not_read_to_the_end() -> None:
    sent = 0
    finished = asyncio.Event()

    async def flood(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(status=200)
        response.content_length = HUGE
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            while sent < HUGE:
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            finished.set()
        return response

    app = web.Application()
    app.router.add_post("/hook", flood)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/hook", data=b"{}") as response:
                await _discard_answer(response)
                assert response.status == 200
        await asyncio.wait_for(finished.wait(), 30)
        assert sent < HUGE // 4  # the relay stopped reading: the receiver could not send it all
    finally:
        await runner.cleanup()


async def test_a_small_answer_is_read_whole() -> None:
    async def small(request: web.Request) -> web.Response:
        return web.Response(text="ok" * 1000)

    app = web.Application()
    app.router.add_post("/hook", small)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/hook", data=b"{}") as response:
                await _discard_answer(response)
                assert response.content.at_eof() and MAX_ANSWER_BYTES > 2000
    finally:
        await runner.cleanup()
