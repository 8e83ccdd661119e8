"""The database file: created 0600 in WAL mode, migrated, a live stream saved and loaded whole, a failed
write leaves nothing, a newer schema refused. (A SIGKILL during writes: tests/e2e/test_mux_api.py.)"""

from __future__ import annotations

import sqlite3
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from relay.secret import Secret
from relay.store.database import FILE_NAME, Database, StoreError
from relay.store.records import LiveStreamRecord, TargetRecord, new_id, new_stream_key
from relay.store.schema import MIGRATIONS, SCHEMA_VERSION
from relay.store.store import Store


def record(targets: int = 2) -> LiveStreamRecord:
    return LiveStreamRecord(
        id=new_id(), stream_key=new_stream_key(), passthrough="show", reconnect_window=30.0,
        recording={"enabled": True, "format": "flv"}, created_at=1_700_000_000,
        reconnect_slate={"enabled": True, "image": "/etc/simulcast-relay/slate.png"},
        targets=tuple(TargetRecord(id=new_id(), url=f"rtmp://127.0.0.1:{1935 + i}/live",
                                   stream_key=Secret(f"target-key-{i}"), passthrough=f"t{i}",
                                   enabled=i % 2 == 0, created_at=1_700_000_001) for i in range(targets)))


def same(a: LiveStreamRecord, b: LiveStreamRecord) -> bool:
    keys = [(a.stream_key, b.stream_key)] + [(x.stream_key, y.stream_key) for x, y in zip(a.targets, b.targets)]
    return a == b and all(x.reveal() == y.reveal() for x, y in keys)


def test_a_new_file_is_private_in_wal_mode_at_the_current_version(tmp_path: Path) -> None:
    db = Database(tmp_path / "state" / FILE_NAME)
    assert stat.S_IMODE((tmp_path / "state" / FILE_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.version == SCHEMA_VERSION and db.check() == "ok"
    db.close()


def test_a_live_stream_is_saved_and_loaded_whole_and_replaced_in_place(tmp_path: Path) -> None:
    db = Database(tmp_path / FILE_NAME)
    first, second = record(), record(targets=0)
    db.save(first)
    db.save(second)
    changed = replace(first, reconnect_window=0.0, targets=first.targets[1:], enabled=False,
                      reconnect_slate={"enabled": False, "image": None})
    db.save(changed)
    db.close()
    loaded = Database(tmp_path / FILE_NAME).load()
    assert [r.id for r in loaded] == [first.id, second.id]
    assert same(loaded[0], changed) and same(loaded[1], second)


def test_delete_removes_the_targets_too(tmp_path: Path) -> None:
    db = Database(tmp_path / FILE_NAME)
    kept, gone = record(), record()
    db.save(kept)
    db.save(gone)
    db.delete(gone.id)
    assert [r.id for r in db.load()] == [kept.id]
    assert db.conn.execute("SELECT count(*) FROM simulcast_targets").fetchone()[0] == len(kept.targets)


def test_a_write_that_fails_half_way_leaves_the_previous_record(tmp_path: Path) -> None:
    db = Database(tmp_path / FILE_NAME)
    first = record()
    db.save(first)
    # Two targets with one id: the second insert fails after the row and the first target were written.
    duplicate = first.targets[0]
    broken = replace(first, reconnect_window=1.0, targets=(duplicate, replace(duplicate, url="rtmp://x/y")))
    with pytest.raises(sqlite3.IntegrityError):
        db.save(broken)
    (loaded,) = db.load()
    assert same(loaded, first)


def test_a_file_of_version_1_is_migrated_and_its_live_streams_get_no_slate_section(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / FILE_NAME)
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO live_streams VALUES ('old', 'old-key-0123456789', NULL, 60, '{}', 1, 1700000000)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    db = Database(tmp_path / FILE_NAME)
    assert db.version == SCHEMA_VERSION and db.check() == "ok"
    (old,) = db.load()
    assert old.id == "old" and old.reconnect_slate == {} and old.stream_key.reveal() == "old-key-0123456789"
    db.save(replace(old, reconnect_slate={"enabled": True}))
    assert db.load()[0].reconnect_slate == {"enabled": True}
    db.close()


def test_a_file_from_a_newer_relay_is_refused(tmp_path: Path) -> None:
    Database(tmp_path / FILE_NAME).close()
    conn = sqlite3.connect(tmp_path / FILE_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer relay"):
        Database(tmp_path / FILE_NAME)


def test_a_folder_that_cannot_be_written_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError):
        Database(blocker / "state" / FILE_NAME)


async def test_the_store_runs_on_its_own_thread_in_order(tmp_path: Path) -> None:
    store = await Store.open(tmp_path)
    records = [record(targets=1) for _ in range(20)]
    for r in records:
        await store.save(r)
    await store.delete(records[0].id)
    assert [r.id for r in await store.load()] == [r.id for r in records[1:]]
    await store.close()
