"""The database's tables and their versions: migration N brings a file at version N-1 to N.

A migration is SQL run inside the transaction that also sets `PRAGMA user_version`, so a
file is at one version or the next, never between. A file newer than this code is refused
(an older relay must not rewrite what a newer one wrote).
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: live streams and their targets.
    """
    CREATE TABLE live_streams (
        id TEXT PRIMARY KEY,
        stream_key TEXT NOT NULL,
        passthrough TEXT,
        reconnect_window REAL NOT NULL,
        recording TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE simulcast_targets (
        id TEXT PRIMARY KEY,
        live_stream_id TEXT NOT NULL REFERENCES live_streams(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        url TEXT NOT NULL,
        stream_key TEXT NOT NULL,
        passthrough TEXT,
        enabled INTEGER NOT NULL,
        settings TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX simulcast_targets_by_live_stream ON simulcast_targets(live_stream_id, position);
    """,
    # 2: a live stream's reconnect slate (its reconnect_slate section as JSON: enabled, image).
    """
    ALTER TABLE live_streams ADD COLUMN reconnect_slate TEXT NOT NULL DEFAULT '{}';
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
