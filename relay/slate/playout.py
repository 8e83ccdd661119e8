"""The slate's playout: which of the clip's tags to feed at a given moment, with which timestamps.

The clip (what ffmpeg wrote, read back as tags) is its sequence headers and its frames, the
first a video keyframe, with timestamps from 0 to under its `period` (its frames at the
frame rate: 2 s). Played out, the clip loops: round k of frame f has the timestamp
`base + k * period + f.timestamp` and is due `k * period + f.timestamp` ms after the
playout started, so audio and video go out together, in timestamp order, in real time.
`base` is where the publisher stopped plus the time it has been away, so the targets'
timelines go on without a gap and never backwards (they measure each step from the
previous frame: relay/fanout/timeline.py). Each round starts with a keyframe, so the loop
is a loop of whole GOPs. Audio frames at or past the period (the encoder's last frame
overhangs the video by a few ms) are left out, so a round never overlaps the next.

Timestamps are 32-bit like RTMP's: they wrap, and the timelines downstream unwrap them.
What is fed is the live stream's kind of tag, the message the targets send (an rtmp
EncodedMessage, as the publisher's tags are), made anew for each round's timestamps; the
clip itself is plain Tags.

Pure: the clock (`now_ms`, any monotonic millisecond count) is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from relay.flv import AUDIO, VIDEO, Tag
from relay.rtmp.encoded import EncodedMessage

_WRAP = 1 << 32


class ClipError(ValueError):
    """What ffmpeg wrote is not a clip the slate can loop."""


@dataclass(frozen=True, slots=True)
class Clip:
    """A slate clip as tags: sequence headers, then frames with timestamps in [0, period)."""

    headers: tuple[Tag, ...]
    frames: tuple[Tag, ...]
    period: int  # ms

    @property
    def size(self) -> int:
        """Payload bytes held."""
        return sum(len(t.payload) for t in (*self.headers, *self.frames))


def clip_from_tags(tags: Iterable[Tag], period: int) -> Clip:
    """The clip in the tags of an FLV file: its headers, and its frames from the first keyframe on."""
    if period <= 0:
        raise ClipError("a clip's period must be positive")
    headers: dict[int, Tag] = {}
    frames: list[Tag] = []
    start: int | None = None
    for tag in tags:
        if tag.kind not in (AUDIO, VIDEO):
            continue  # the clip's onMetaData: the publisher's stays in force
        if tag.is_header:
            headers.setdefault(tag.kind, tag)
            continue
        if _sequence_end(tag):
            continue  # the encoder's end of stream: the loop goes on
        if start is None:
            if not (tag.kind == VIDEO and tag.is_keyframe):
                continue
            start = tag.timestamp
        offset = tag.timestamp - start
        if 0 <= offset < period:
            frames.append(Tag(tag.kind, offset, tag.payload))
    if VIDEO not in headers or start is None:
        raise ClipError("no video sequence header and keyframe in the clip")
    if any(f.kind == AUDIO for f in frames) and AUDIO not in headers:
        raise ClipError("audio frames without an audio sequence header in the clip")
    frames.sort(key=lambda f: (f.timestamp, f.kind != VIDEO))  # stable: a video frame before audio at a tie
    return Clip(headers=tuple(headers[k] for k in (VIDEO, AUDIO) if k in headers), frames=tuple(frames),
                period=period)


def _sequence_end(tag: Tag) -> bool:
    """An AVC/HEVC end-of-sequence (classic AVCPacketType 2, Enhanced SequenceEnd)."""
    payload = tag.payload
    if tag.kind != VIDEO or len(payload) < 2:
        return False
    if payload[0] & 0x80:
        return payload[0] & 0x0F == 2
    return payload[0] & 0x0F in (7, 12) and payload[1] == 2


class Playout:
    """One playing of a clip, looped from `started_ms`, its timestamps from `base`."""

    __slots__ = ("clip", "base", "started_ms", "round", "index", "headers_sent", "last_due_ms")

    def __init__(self, clip: Clip, base: int, started_ms: int) -> None:
        self.clip = clip
        self.base = base
        self.started_ms = started_ms
        self.round = 0
        self.index = 0  # the next frame of the current round
        self.headers_sent = False
        self.last_due_ms: int | None = None  # when the latest tag fed was due

    def due(self, now_ms: int) -> list[EncodedMessage]:
        """The tags due by `now_ms` not fed yet, in order, with their timestamps on the stream."""
        clip = self.clip
        out: list[EncodedMessage] = []
        if not self.headers_sent:
            self.headers_sent = True
            out.extend(EncodedMessage(h.kind, self.base % _WRAP, h.payload) for h in clip.headers)
        elapsed = now_ms - self.started_ms
        frames = clip.frames
        while True:
            if self.index == len(frames):
                self.round += 1
                self.index = 0
            frame = frames[self.index]
            at = self.round * clip.period + frame.timestamp
            if at > elapsed:
                return out
            out.append(EncodedMessage(frame.kind, (self.base + at) % _WRAP, frame.payload))
            self.last_due_ms = self.started_ms + at
            self.index += 1

    def since_last(self, now_ms: int) -> int | None:
        """Milliseconds from the latest tag fed being due to `now_ms`: how far the stream's
        timeline must move on for what comes next; None if nothing was fed."""
        if self.last_due_ms is None:
            return None
        return max(0, now_ms - self.last_due_ms)


def continue_from(last_timestamp: int | None, away_ms: int) -> int:
    """The timestamp the slate starts at: `away_ms` after the publisher's last one."""
    return ((last_timestamp or 0) + max(0, away_ms)) % _WRAP


def later(timestamp: int, than: int) -> bool:
    """True if `timestamp` is after `than` on a 32-bit timeline that wraps."""
    diff = (timestamp - than) % _WRAP
    return 0 < diff < (1 << 31)
