"""`relay status`'s table: what an operator reads during a show."""

from __future__ import annotations

from typing import Any

from relay.api.client import render_table

NOW = 1_800_000_000.0


def _stream(recording: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": "studio", "status": "active", "awaiting_publisher": False, "active_since": NOW - 65,
        "ingest": None, "health": {"status": "ok", "reasons": []}, "recording": recording,
        "simulcast_targets": [{
            "passthrough": "YouTube", "status": "broadcasting", "error_severity": None, "last_error": None,
            "url": "rtmp://a.rtmp.youtube.com/live2", "connected_since": NOW - 60, "bytes_sent": 2_500_000,
            "dropped_frames": 0, "reconnects": 0,
        }],
    }


def test_an_active_recording_shows_its_file_and_size() -> None:
    table = render_table([_stream({"status": "recording", "path": "/rec/studio/20261129T181653Z.flv.part",
                                   "bytes": 12_345_678, "started_at": NOW - 65, "last_error": None})], NOW)
    line = next(line for line in table.splitlines() if "(recording)" in line)
    assert "/rec/studio/20261129T181653Z.flv.part" in line
    assert "12.3 MB" in line
    assert "1m05s" in line


def test_an_errored_recording_shows_why() -> None:
    table = render_table([_stream({"status": "errored", "path": "/rec/studio/x.flv", "bytes": 10,
                                   "started_at": NOW - 5, "last_error": "the disk is full (ENOSPC)"})], NOW)
    line = next(line for line in table.splitlines() if "(recording)" in line)
    assert "errored" in line and "the disk is full" in line


def test_no_recording_row_without_a_recording() -> None:
    assert "(recording)" not in render_table([_stream(None)], NOW)
    idle = {"status": "idle", "path": None, "bytes": 0, "started_at": None, "last_error": None}
    assert "(recording)" not in render_table([_stream(idle)], NOW)


def test_a_failing_target_shows_its_attempts_and_when_it_last_connected() -> None:
    stream = _stream(None)
    stream["simulcast_targets"][0].update(status="errored", error_severity="normal", connected_since=None,
                                          last_error="connection refused", attempts=12,
                                          last_connected_at=NOW - 3720)
    line = next(line for line in render_table([stream], NOW).splitlines() if "YouTube" in line)
    assert line.endswith("12 attempts, last connected 1h02m ago: connection refused")
    stream["simulcast_targets"][0].update(attempts=1, last_connected_at=None)
    line = next(line for line in render_table([stream], NOW).splitlines() if "YouTube" in line)
    assert line.endswith("1 attempt, never connected: connection refused")
