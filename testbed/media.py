"""The test clip: generated once by ffmpeg, cached under <repo>/.cache/media/ by a hash of its recipe."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from relay.flv import AUDIO, VIDEO, read_tags

REPO_ROOT = Path(__file__).resolve().parents[1]
MEDIA_CACHE = REPO_ROOT / ".cache" / "media"

# 6 s of 640x360 30 fps H.264 High with B-frames and a keyframe exactly every 2 s, plus
# AAC-LC 48 kHz stereo from two chirps, so that no two audio frames are equal and a
# payload pins down one position in the clip. The output file name is appended last.
SOURCE_CLIP_ARGS: tuple[str, ...] = (
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
    "-f", "lavfi", "-i",
    "aevalsrc=0.4*sin(2*PI*(220+40*t)*t)|0.4*sin(2*PI*(330+25*t)*t):s=48000:c=stereo",
    "-t", "6", "-map", "0:v", "-map", "1:a",
    "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
    "-bf", "3", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
    "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
    "-f", "flv",
)  # fmt: skip


def cached_clip(args: tuple[str, ...], name: str, cache_dir: Path = MEDIA_CACHE) -> Path:
    """The FLV that `ffmpeg ARGS OUT` makes, generated on first use and reused while ARGS stay the same.

    Safe under concurrency (pytest-xdist workers, two checkouts sharing a cache): the first
    process to want a clip makes it while holding a lock on `.NAME-DIGEST.lock`, and the
    others wait for that lock and then find the clip, instead of each encoding it again.
    """
    digest = hashlib.sha256(json.dumps(args).encode()).hexdigest()[:16]
    path = cache_dir / f"{name}-{digest}.flv"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".{name}-{digest}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed, or the process dies
        if not path.exists():  # made by whoever held the lock before us
            _make_clip(args, name, path)
    return path


def _make_clip(args: tuple[str, ...], name: str, path: Path) -> None:
    # Write next to the target and rename: an interrupted run never leaves a half-written
    # clip under the final name, and a reader that does not take the lock never sees one.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        cmd = ["ffmpeg", "-nostdin", "-y", "-hide_banner", "-loglevel", "error", *args, tmp_name]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"ffmpeg failed ({done.returncode}) making {name}:\n{done.stderr}")
        os.chmod(tmp_name, 0o644)  # mkstemp makes it 0600; other users (an nginx worker) may read it
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def source_clip(cache_dir: Path = MEDIA_CACHE) -> Path:
    """The standard 6 s H.264 + AAC test clip (see SOURCE_CLIP_ARGS), checked for the properties tests rely on."""
    path = cached_clip(SOURCE_CLIP_ARGS, "source-h264-6s", cache_dir)
    check_clip(path.read_bytes(), gop_ms=2000)
    return path


def check_clip(data: bytes, *, gop_ms: int) -> None:
    """Assert the clip has both sequence headers, regular keyframes, and distinct media payloads."""
    tags = read_tags(data)
    headers = {t.kind for t in tags if t.is_header}
    assert headers == {AUDIO, VIDEO}, f"clip lacks a sequence header: has {sorted(headers)}"
    # The last video tag is ffmpeg's AVC end-of-sequence (packet type 2), not a frame.
    keys = [t.timestamp for t in tags if t.is_keyframe and t.payload[1:2] == b"\x01"]
    assert keys and all(k == i * gop_ms for i, k in enumerate(keys)), f"keyframes at {keys} ms"
    media = [t.payload for t in tags if t.kind in (AUDIO, VIDEO) and not t.is_header]
    assert len(set(media)) == len(media), "clip has repeated media payloads"
