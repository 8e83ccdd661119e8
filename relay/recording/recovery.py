"""Finishing a `.part` recording that a crash left behind: find its last complete tag.

A complete tag is its 11-byte header, its payload and its PreviousTagSize back-pointer
(FLV spec E.3), which must equal payload size + 11. The file is walked from the start,
tag header to tag header (one small read per tag, never the payloads), and cut after the
last tag that passes: a tag cut short by the crash, or bytes that are not a tag, and
everything after them, go. The same walk gives what the patches need (duration, which
tracks exist, where onMetaData keeps its duration and filesize), so a recovered file is
finished exactly like one whose session ended normally.

`read_at(offset, size)` is how the walk reads: the net layer passes `os.pread`, tests a
slice of bytes. It returns fewer bytes than asked at the end of the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from relay.flv import (
    AUDIO,
    FLV_HEADER_SIZE,
    SCRIPT,
    VIDEO,
    FLVError,
    is_audio_sequence_header,
    is_video_sequence_header,
)
from relay.recording import metadata
from relay.recording.flvfile import BACK_POINTER_SIZE, TAG_HEADER_SIZE, DurationClock, Patch, finishing_patches

ReadAt = Callable[[int, int], bytes]

MAX_METADATA_SIZE = 1 << 20  # an onMetaData larger than this is not ours: its fields are not patched
_PEEK = 2  # payload bytes read with each header: enough to tell a sequence header from a frame
_WRAP = 1 << 32
_HALF = 1 << 31


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a walk of a `.part` found, and how to finish it."""

    size: int  # the file's size before recovery
    keep: int  # bytes to keep: the end of the last complete tag (0: nothing usable)
    tags: int  # complete tags
    frames: int  # complete audio/video frames
    duration_ms: int
    patches: tuple[Patch, ...]

    @property
    def torn_bytes(self) -> int:
        """Bytes after the last complete tag, cut off."""
        return self.size - self.keep


def scan(read_at: ReadAt, size: int) -> Recovery:
    """Walk a recording of `size` bytes; FLVError if it is not an FLV file at all."""
    head = read_at(0, FLV_HEADER_SIZE)
    if len(head) < 3 or head[:3] != b"FLV":
        raise FLVError("not an FLV file (no 'FLV' signature)")
    if len(head) < FLV_HEADER_SIZE:
        return Recovery(size, 0, 0, 0, 0, ())
    pos = int.from_bytes(head[5:9], "big") + BACK_POINTER_SIZE  # DataOffset, then PreviousTagSize0
    if pos > size:
        return Recovery(size, 0, 0, 0, 0, ())
    keep = pos
    tags = frames = 0
    has_audio = has_video = False
    clock = DurationClock()
    offsets: tuple[int, int] | None = None
    raw_before = elapsed = 0  # timestamps unwrapped across 2^32 ms, as Timeline does
    chunk = read_at(pos, TAG_HEADER_SIZE + _PEEK)
    while len(chunk) >= TAG_HEADER_SIZE:
        kind = chunk[0]
        if kind not in (AUDIO, VIDEO, SCRIPT) or chunk[8:11] != b"\x00\x00\x00":
            break  # not a tag header: the torn tail, or bytes that were never a tag
        payload_size = int.from_bytes(chunk[1:4], "big")
        end = pos + TAG_HEADER_SIZE + payload_size
        if end + BACK_POINTER_SIZE > size:
            break
        after = read_at(end, BACK_POINTER_SIZE + TAG_HEADER_SIZE + _PEEK)
        if int.from_bytes(after[:BACK_POINTER_SIZE], "big") != payload_size + TAG_HEADER_SIZE:
            break
        raw = int.from_bytes(chunk[4:7], "big") | (chunk[7] << 24)
        if tags == 0:
            raw_before = raw
            if kind == SCRIPT and payload_size <= MAX_METADATA_SIZE:
                offsets = _metadata_offsets(read_at(pos + TAG_HEADER_SIZE, payload_size), pos + TAG_HEADER_SIZE)
        step = (raw - raw_before) % _WRAP
        elapsed += step - _WRAP if step >= _HALF else step
        raw_before = raw
        peek = chunk[TAG_HEADER_SIZE : TAG_HEADER_SIZE + min(_PEEK, payload_size)]
        if kind == VIDEO:
            has_video = True
            if not is_video_sequence_header(peek):
                clock.frame(kind, elapsed)
                frames += 1
        elif kind == AUDIO:
            has_audio = True
            if not is_audio_sequence_header(peek):
                clock.frame(kind, elapsed)
                frames += 1
        tags += 1
        pos = keep = end + BACK_POINTER_SIZE
        chunk = after[BACK_POINTER_SIZE:]
    duration_ms = clock.duration_ms
    patches = finishing_patches(size=keep, duration_ms=duration_ms, has_audio=has_audio, has_video=has_video,
                                duration_at=offsets[0] if offsets else None,
                                filesize_at=offsets[1] if offsets else None)
    return Recovery(size, keep, tags, frames, duration_ms, tuple(patches))


def _metadata_offsets(payload: bytes, at: int) -> tuple[int, int] | None:
    found = metadata.locate(payload)
    return None if found is None else (at + found[0], at + found[1])
