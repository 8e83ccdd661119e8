"""What ffprobe makes of a received file: every frame decoded, and any complaint it has on the way."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def ffprobe_streams(path: Path) -> list[dict[str, Any]]:
    """Decode every frame with ffprobe (`-v error -count_frames`); fail on any error it reports.

    Each stream as ffprobe describes it: codec_type, codec_name, width and height (video), nb_read_frames.
    """
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames",
         "-show_entries", "stream=codec_type,codec_name,width,height,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0 and not done.stderr.strip(), f"ffprobe on {path.name}: {done.stderr[-2000:]}"
    streams: list[dict[str, Any]] = json.loads(done.stdout).get("streams", [])
    return streams


def ffprobe_decode(path: Path) -> dict[str, int]:
    """Decode every frame with ffprobe; fail on any error it reports. codec_type -> frames decoded."""
    return {s["codec_type"]: int(s.get("nb_read_frames", 0)) for s in ffprobe_streams(path)}
