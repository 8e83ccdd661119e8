"""How recordings are named, and which files in a folder are ours.

Each publish session is `<UTC start, ISO 8601 basic>.flv.part` while it is written
(`20261129T181653Z.flv.part`), `.flv` once final, `.mp4` after a remux (with an empty
`.mp4.part` beside it as the marker of a remux still to do; ffmpeg itself writes into a
`.remux-XXXXXXXX` folder of its own, made for each remux). Two sessions starting in the
same second get `-1`, `-2`... The names sort in time order, and nothing else in the
folder matches them, so retention never touches a file the relay did not write.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Container
from dataclasses import dataclass

PART = ".part"
FLV = ".flv"
MP4 = ".mp4"
REMUX_DIR_PREFIX = ".remux-"  # a remux's own folder (remux.py); one left by a crash is removed at start
_NAME = re.compile(r"^(?P<stem>(?P<start>\d{8}T\d{6}Z)(?:-(?P<n>[1-9]\d{0,5}))?)(?P<ext>\.flv|\.mp4)(?P<part>\.part)?$")


@dataclass(frozen=True, slots=True)
class RecordingName:
    """A file name the relay writes, taken apart."""

    stem: str  # "20261129T181653Z" or "20261129T181653Z-1"
    started_at: float  # Unix time of the session's start (whole seconds)
    extension: str  # FLV or MP4
    part: bool  # still being written (or left by a crash)


def stem_for(started_at: float) -> str:
    """The stem for a session that started at this Unix time."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_at))


def unique_stem(started_at: float, taken: Container[str]) -> str:
    """A stem for this start time whose .flv, .flv.part, .mp4 and .mp4.part names are all free."""
    base = stem_for(started_at)
    n = 0
    while True:
        stem = base if n == 0 else f"{base}-{n}"
        if not any(f"{stem}{ext}{part}" in taken for ext in (FLV, MP4) for part in ("", PART)):
            return stem
        n += 1


def parse(name: str) -> RecordingName | None:
    """The parts of a recording's file name, or None for any other file."""
    match = _NAME.match(name)
    if match is None:
        return None
    try:
        started = float(calendar.timegm(time.strptime(match["start"], "%Y%m%dT%H%M%SZ")))
    except (ValueError, OverflowError):
        return None
    return RecordingName(match["stem"], started, match["ext"], match["part"] is not None)
