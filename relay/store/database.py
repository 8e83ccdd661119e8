"""The SQLite file: opened with its mode, WAL and the schema brought up to date; load, save, delete.

Blocking calls, for the store's own thread (store.py). Every change is one transaction
(`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any error); `synchronous=FULL` makes a
commit durable before it returns, so what the API answered is what a restart finds. A
live stream is saved whole (its row and all its targets' rows), so no reader ever sees a
live stream with half of a change.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relay.secret import Secret
from relay.store.records import LiveStreamRecord, TargetRecord
from relay.store.schema import MIGRATIONS, SCHEMA_VERSION

FILE_NAME = "relay.sqlite3"
BUSY_TIMEOUT_MS = 5000


class StoreError(Exception):
    """The database cannot be opened or used (the message names the file and the reason)."""


class Database:
    """One open database file; not thread-safe: one thread uses it (store.py)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Created 0600 before SQLite opens it (its -wal and -shm files take the same mode).
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{self.path}: cannot use write-ahead logging (journal mode {mode})")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: {getattr(exc, 'strerror', None) or exc}") from None

    @property
    def version(self) -> int:
        """The schema version of the file."""
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.version
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer relay (schema {version}, this one knows "
                             f"{SCHEMA_VERSION}); upgrade the relay")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with self._transaction() as conn:
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def load(self) -> list[LiveStreamRecord]:
        """Every live stream with its targets, oldest first."""
        targets: dict[str, list[TargetRecord]] = {}
        for row in self.conn.execute("SELECT id, live_stream_id, url, stream_key, passthrough, enabled, settings, "
                                     "created_at FROM simulcast_targets ORDER BY live_stream_id, position"):
            targets.setdefault(row[1], []).append(TargetRecord(
                id=row[0], url=row[2], stream_key=Secret(row[3]), passthrough=row[4], enabled=bool(row[5]),
                settings=json.loads(row[6]), created_at=row[7]))
        return [LiveStreamRecord(id=row[0], stream_key=Secret(row[1]), passthrough=row[2], reconnect_window=row[3],
                                 recording=json.loads(row[4]), enabled=bool(row[5]), created_at=row[6],
                                 reconnect_slate=json.loads(row[7]), targets=tuple(targets.get(row[0], ())))
                for row in self.conn.execute("SELECT id, stream_key, passthrough, reconnect_window, recording, "
                                             "enabled, created_at, reconnect_slate FROM live_streams "
                                             "ORDER BY created_at, rowid")]

    def save(self, record: LiveStreamRecord) -> None:
        """Write the live stream and all its targets, replacing what was stored under its id; one transaction."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO live_streams (id, stream_key, passthrough, reconnect_window, recording, enabled, "
                "created_at, reconnect_slate) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "stream_key = excluded.stream_key, passthrough = excluded.passthrough, "
                "reconnect_window = excluded.reconnect_window, recording = excluded.recording, "
                "enabled = excluded.enabled, reconnect_slate = excluded.reconnect_slate",
                (record.id, record.stream_key.reveal(), record.passthrough, record.reconnect_window,
                 json.dumps(record.recording), int(record.enabled), record.created_at,
                 json.dumps(record.reconnect_slate)))
            conn.execute("DELETE FROM simulcast_targets WHERE live_stream_id = ?", (record.id,))
            conn.executemany(
                "INSERT INTO simulcast_targets (id, live_stream_id, position, url, stream_key, passthrough, "
                "enabled, settings, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(t.id, record.id, i, t.url, t.stream_key.reveal(), t.passthrough, int(t.enabled),
                  json.dumps(t.settings), t.created_at) for i, t in enumerate(record.targets)])

    def delete(self, live_stream_id: str) -> None:
        """Remove the live stream and its targets; one transaction."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM live_streams WHERE id = ?", (live_stream_id,))

    def check(self) -> str:
        """SQLite's integrity check: "ok" for a sound file."""
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        """Close the file (the WAL is checkpointed into it)."""
        self.conn.close()
