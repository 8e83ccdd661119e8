"""A server on its own asyncio loop in a daemon thread, driven from a synchronous test.

The relay runs as a real process; the peers a test fakes (a platform, a slow network
path) run here, so the test thread can start them, wait on what they saw, and stop them.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self


class BackgroundServer:
    """Subclasses implement `_listen(ready)`: bind, set `self.port`, call `ready.set()`, then
    return once `self._stop` is set (after closing what they opened)."""

    thread_name = "background-server"

    def __init__(self) -> None:
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None

    def start(self, timeout: float = 10.0) -> Self:
        """Listen; returns once the port is bound."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=self.thread_name, daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or self._failure is not None:
            raise RuntimeError(f"{self.thread_name} did not start: {self._failure!r}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close everything and join the thread."""
        if self._loop is not None and self._stop is not None and self._thread is not None:
            if self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as exc:  # noqa: BLE001 (reported to the test thread by start())
            self._failure = exc
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self._listen(ready)

    async def _listen(self, ready: threading.Event) -> None:
        raise NotImplementedError
