"""The real RTMP publish sessions the tests and the fuzzer read: tests/fixtures/captures/ (see its README.md).

They are committed with the project, so every checkout has them; a missing one is a test
failure, never a skip. `bash scripts/record-captures` records them again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CAPTURES_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "captures"
RERECORD = "bash scripts/record-captures (see tests/fixtures/captures/README.md)"
STREAM_KEY = "capture-key"

# Each session (NAME.c2s + NAME.s2c) -> the FLV whose audio/video payloads its publisher sent.
SOURCES: dict[str, str] = {
    "ffmpeg-h264": "source-h264-4s.flv",
    "librtmp-h264": "source-h264-4s.flv",
    "gst-rtmp2sink-h264": "source-h264-4s.gst.flv",  # GStreamer's remux of source-h264-4s.flv
    "librtmp-extts": "source-h264-extts-4s.flv",
    "librtmp-hevc-ertmp": "source-hevc-ertmp-4s.flv",
}


def captures_dir() -> Path:
    """The captures folder; fails the calling test when it is missing."""
    if not CAPTURES_DIR.is_dir():
        pytest.fail(f"no RTMP captures at {CAPTURES_DIR}: restore them from git or re-record with {RERECORD}")
    return CAPTURES_DIR


def capture_path(name: str) -> Path:
    """The path of one capture file, e.g. "ffmpeg-h264.c2s" or a source FLV; fails the test when it is missing."""
    path = captures_dir() / name
    if not path.is_file():
        pytest.fail(f"capture {name} is missing from {path.parent}: restore it from git or re-record with {RERECORD}")
    return path


def read_capture(name: str) -> bytes:
    """The bytes of one capture file (see capture_path)."""
    return capture_path(name).read_bytes()
