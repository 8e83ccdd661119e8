"""A webhook receiver's answer is read up to a bound and no further: a receiver that answers
with hundreds of megabytes is cut off after MAX_ANSWER_BYTES, and the relay holds none of the rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from relay.api.webhooks import MAX_ANSWER_BYTES, _discard_answer

HUGE = 200 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def receiver(handler: Handler) -> AsyncIterator[str]:
    """A webhook receiver answering POST /hook with `handler`; its url."""
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


async def post(url: str) -> aiohttp.ClientResponse:
    """POST to `url`, the answer read as the relay reads it."""
    async with aiohttp.ClientSession() as session, session.post(url, data=b"{}") as response:
        await _discard_answer(response)
        return response


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

    async with receiver(flood) as url:
        response = await post(url)
        assert response.status == 200
        await asyncio.wait_for(finished.wait(), 30)
    assert sent < HUGE // 4  # the relay stopped reading: the receiver could not send it all


async def test_a_small_answer_is_read_whole() -> None:
    async def small(request: web.Request) -> web.Response:
        return web.Response(text="ok" * 1000)

    async with receiver(small) as url:
        response = await post(url)
    assert response.status == 200 and response.content.at_eof() and MAX_ANSWER_BYTES > 2000
