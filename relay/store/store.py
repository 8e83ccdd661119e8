"""The database for the event loop: every call runs on one dedicated thread, in order.

A write costs an fsync or two (WAL, synchronous=FULL): milliseconds the event loop must
never wait for. `Store` hands each call to its single worker thread and awaits the
outcome, so the show goes on during a write, writes reach the file in the order the API
made them, and the connection is only ever used by that one thread.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from relay.store.database import FILE_NAME, Database, StoreError
from relay.store.records import LiveStreamRecord

__all__ = ["FILE_NAME", "Store", "StoreError", "exists"]


class Store:
    """The API's live streams on disk; open with `await Store.open(state_dir)`."""

    def __init__(self, database: Database, executor: ThreadPoolExecutor) -> None:
        self._db = database
        self._executor = executor

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    @classmethod
    async def open(cls, state_dir: str | os.PathLike[str]) -> Store:
        """Open (create, migrate) the database in `state_dir`; StoreError if it cannot be used."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-store")
        loop = asyncio.get_running_loop()
        try:
            database = await loop.run_in_executor(executor, Database, Path(state_dir) / FILE_NAME)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(database, executor)

    async def load(self) -> list[LiveStreamRecord]:
        """Every stored live stream."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._db.load)

    async def save(self, record: LiveStreamRecord) -> None:
        """Store the live stream whole (durable when this returns)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._db.save, record)

    async def delete(self, live_stream_id: str) -> None:
        """Remove the live stream (durable when this returns)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._db.delete, live_stream_id)

    async def close(self) -> None:
        """Close the file on its thread, then stop the thread."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=True)


def exists(state_dir: str | os.PathLike[str]) -> bool:
    """Whether a database file is in `state_dir`."""
    return (Path(state_dir) / FILE_NAME).exists()

