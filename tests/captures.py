"""Where the real RTMP sessions live: `../shared/captures/` next to the repository (see its README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest


def captures_dir() -> Path:
    """Return the captures folder, or skip the calling test when this checkout has none."""
    path = (Path(__file__).resolve().parents[1] / ".." / "shared" / "captures").resolve()
    if not path.is_dir():
        pytest.skip(f"no real RTMP captures at {path} (they live beside the repository, not in it)")
    return path


def read_capture(name: str) -> bytes:
    """Return the bytes of one capture file, e.g. "ffmpeg-h264.c2s"; skip when it is missing."""
    path = captures_dir() / name
    if not path.is_file():
        pytest.skip(f"capture {name} is missing from {path.parent}")
    return path.read_bytes()
