"""The bytes of one FLV recording, tag by tag, and the patches that finish it.

Layout (FLV spec v10.1, annex E): the 9-byte header and PreviousTagSize0 (E.2, E.3), then
onMetaData as the first tag (E.5; metadata.py keeps `duration` and `filesize` at known
offsets), then every tag the publisher sent, each followed by its PreviousTagSize
back-pointer (tag size + 11). Audio and video payloads are the publisher's bytes, handed
on as they are (the writer returns them as separate pieces, never copied); only the
11-byte tag headers carry the recording's own timestamps.

The file is playable at every tag boundary: that is what makes a `.part` left by a crash
readable (recovery.py). Three things are known only at the end and are patched in place,
none of which moves a byte: the header's audio/video flags (written as "both" until we
know), and onMetaData's duration and filesize.

Later onMetaData tags (a publisher that rejoins sends its own again) are not written: a
second onMetaData would restate duration 0 mid-file, and players would believe it. Other
script tags (cue points, captions) are written like media.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from relay.flv import AUDIO, SCRIPT, VIDEO, Tag, file_header, is_metadata
from relay.recording import metadata

FILE_START = 13  # the 9-byte header and PreviousTagSize0
FLAGS_AT = 4  # TypeFlags: 0x04 audio, 0x01 video (E.2)
TAG_HEADER_SIZE = 11
BACK_POINTER_SIZE = 4
_TAG_HEADER = struct.Struct(">BBHBBBBxxx")  # type, size (24), timestamp (24 + 8 extended), stream id (0)
_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Patch:
    """Bytes to write over the file at an offset (in place: the file never grows)."""

    offset: int
    data: bytes


def tag_header(kind: int, size: int, timestamp: int) -> bytes:
    """An FLV tag header (E.4.1): the timestamp's low 24 bits, then its top 8 (TimestampExtended)."""
    ts = timestamp & 0xFFFFFFFF
    return _TAG_HEADER.pack(kind, size >> 16, size & 0xFFFF, (ts >> 16) & 0xFF, (ts >> 8) & 0xFF, ts & 0xFF,
                            ts >> 24)


def header_flags(has_audio: bool, has_video: bool) -> int:
    """The header's TypeFlags byte."""
    return (0x04 if has_audio else 0) | (0x01 if has_video else 0)


class DurationClock:
    """How long a recording lasts: from its first frame to the end of its last one.

    The end of a track is its last timestamp plus its last frame interval (a frame lasts
    until the next one), the way muxers compute a file's duration from pts + duration.
    Sequence headers and script tags are not frames and do not count.
    """

    __slots__ = ("first", "_last", "_step")

    def __init__(self) -> None:
        self.first: int | None = None
        self._last: dict[int, int] = {}
        self._step: dict[int, int] = {}

    def frame(self, kind: int, timestamp: int) -> None:
        """One audio or video frame at this (recording) timestamp."""
        if self.first is None or timestamp < self.first:
            self.first = timestamp
        last = self._last.get(kind)
        if last is None or timestamp >= last:
            if last is not None and timestamp > last:
                self._step[kind] = timestamp - last
            self._last[kind] = timestamp

    @property
    def duration_ms(self) -> int:
        """Milliseconds from the first frame to the end of the last one (0 before any frame)."""
        if self.first is None:
            return 0
        return max(last + self._step.get(kind, 0) for kind, last in self._last.items()) - self.first


def finishing_patches(*, size: int, duration_ms: int, has_audio: bool, has_video: bool,
                      duration_at: int | None, filesize_at: int | None) -> list[Patch]:
    """The in-place writes that finish a recording of `size` bytes."""
    patches = [Patch(FLAGS_AT, bytes((header_flags(has_audio, has_video),)))]
    if duration_at is not None:
        patches.append(Patch(duration_at, metadata.number(duration_ms / 1000)))
    if filesize_at is not None:
        patches.append(Patch(filesize_at, metadata.number(float(size))))
    return patches


class FlvFileWriter:
    """Turns a session's tags (with their recording timestamps) into the pieces of one FLV file."""

    __slots__ = ("size", "tags", "frames", "has_audio", "has_video", "clock", "duration_at", "filesize_at",
                 "_started")

    def __init__(self) -> None:
        self.size = 0  # bytes handed out so far
        self.tags = 0  # tags written, onMetaData included
        self.frames = 0  # audio and video frames (not sequence headers)
        self.has_audio = False
        self.has_video = False
        self.clock = DurationClock()
        self.duration_at: int | None = None  # file offsets of the doubles to patch
        self.filesize_at: int | None = None
        self._started = False

    def add(self, tag: Tag, timestamp: int) -> list[bytes]:
        """The pieces to append for one tag (the file header and onMetaData come with the first)."""
        pieces: list[bytes] = []
        kind = tag.kind
        if kind == SCRIPT and is_metadata(tag.payload):
            if not self._started:
                pieces = self._begin(tag.payload)
            return pieces  # a later onMetaData is left out (see the module's docstring)
        if not self._started:
            pieces = self._begin(None)
        if kind == AUDIO or kind == VIDEO:
            if kind == AUDIO:
                self.has_audio = True
            else:
                self.has_video = True
            if not tag.is_header:
                self.clock.frame(kind, timestamp)
                self.frames += 1
        pieces.extend(self._tag(kind, timestamp, tag.payload))
        return pieces

    def _begin(self, publisher_metadata: bytes | None) -> list[bytes]:
        self._started = True
        prepared = metadata.prepare(publisher_metadata)
        # Both flags until the end: the header is patched with what the file really holds.
        header = file_header(has_audio=True, has_video=True)
        body = FILE_START + TAG_HEADER_SIZE
        self.duration_at = body + prepared.duration_at
        self.filesize_at = body + prepared.filesize_at
        self.size = len(header)
        return [header, *self._tag(SCRIPT, 0, prepared.payload)]

    def _tag(self, kind: int, timestamp: int, payload: bytes) -> list[bytes]:
        size = len(payload)
        self.size += TAG_HEADER_SIZE + size + BACK_POINTER_SIZE
        self.tags += 1
        return [tag_header(kind, size, timestamp), payload, _U32.pack(size + TAG_HEADER_SIZE)]

    @property
    def started(self) -> bool:
        """True once the file header has been handed out."""
        return self._started

    def patches(self) -> list[Patch]:
        """What to write in place once every piece is on disk."""
        return finishing_patches(size=self.size, duration_ms=self.clock.duration_ms, has_audio=self.has_audio,
                                 has_video=self.has_video, duration_at=self.duration_at,
                                 filesize_at=self.filesize_at)
