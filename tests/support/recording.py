"""Shared by the recording tests (unit and end to end): a small show of hand-made tags, and file checks."""

from __future__ import annotations

import os
from pathlib import Path

from relay.flv import AUDIO, SCRIPT, VIDEO, Tag, read_tags
from relay.rtmp import amf0
from tests.support.tags import audio, audio_header, inter, keyframe, video_header


def on_metadata() -> Tag:
    return Tag(SCRIPT, 0, amf0.encode("onMetaData", amf0.ECMAArray({"width": 640.0, "duration": 6.0})))


def show(frames: int = 30, start: int = 0, size: int = 200) -> list[Tag]:
    """onMetaData, sequence headers, then video every 40 ms (a keyframe every 10) and audio every 20 ms."""
    tags = [on_metadata(), video_header(start), audio_header(start)]
    for i in range(frames):
        ts = start + i * 40
        tags.append(keyframe(ts, size) if i % 10 == 0 else inter(ts, size + i))
        tags.append(audio(ts, 50 + i))
        tags.append(audio(ts + 20, 80 + i))
    return tags


def media(tags: list[Tag]) -> list[Tag]:
    """Audio and video frames: no sequence headers, no script data."""
    return [t for t in tags if t.kind in (AUDIO, VIDEO) and not t.is_header]


def recording_files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def metadata_of(path: Path | str) -> dict[str, object]:
    tags = read_tags(Path(path).read_bytes())
    name, values = amf0.decode(tags[0].payload)
    assert name == "onMetaData"
    return dict(values)


def assert_tracks_monotonic(tags: list[Tag]) -> None:
    for kind in (AUDIO, VIDEO):
        stamps = [t.timestamp for t in tags if t.kind == kind]
        assert stamps == sorted(stamps), f"{'audio' if kind == AUDIO else 'video'} timestamps go backwards"
