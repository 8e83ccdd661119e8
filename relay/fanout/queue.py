"""A target's bounded send queue, and what it drops when the target falls behind.

Tags wait here only while the target cannot take them: its link is paused by flow
control, not yet writable, switching connections, or waiting for a keyframe. A target
that keeps up never queues (sendbuffer.py). The bound is in bytes held and in stream
time, whichever is reached first. When it is passed, every queued frame is dropped,
audio and video alike, so that the tracks stay in sync, and the target resumes at the
next video keyframe (nginx-rtmp's live module does the same: a decoder fed inter frames
without their reference shows garbage).

What is held is counted as it costs memory: the payload plus TAG_OVERHEAD for the
objects around it, so that a flood of empty tags is bounded like a flood of large ones.
Sequence headers and onMetaData are never dropped (nothing after them decodes without
them), but they are bounded too: a new onMetaData replaces the one queued (only the
latest describes the stream), and when the queue drops its frames, only the newest
sequence header of each track stays (the frames that needed an older one are gone).
Other script data (cue points, captions) is dropped with the frames around it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from relay.flv import AUDIO, SCRIPT, VIDEO, TagLike, is_metadata

T = TypeVar("T", bound=TagLike)

_WRAP = 1 << 32
# Memory held per queued tag besides its payload: the message (in the relay an
# EncodedMessage: the tag with its body cache, ~500 bytes in CPython 3.11 once it has one
# body: relay/rtmp/encoded.py) and the queue's own slot. An estimate, on the high side.
TAG_OVERHEAD = 512
_METADATA = -1  # a key beside AUDIO and VIDEO for what supersedes what


def _header_key(tag: TagLike) -> int | None:
    """AUDIO / VIDEO for a sequence header, _METADATA for onMetaData, None for what may be dropped."""
    if tag.is_header:
        return tag.kind
    if tag.kind == SCRIPT and is_metadata(tag.payload):
        return _METADATA
    return None


class TargetQueue(Generic[T]):
    """Bounded FIFO of tags with resync-at-keyframe dropping and counters."""

    __slots__ = (
        "max_bytes", "max_duration_ms", "tag_overhead", "_tags", "bytes", "waiting_for_keyframe", "has_video",
        "dropped_frames", "dropped_bytes", "drop_events", "behind_since", "skipped_frames", "_resyncing",
    )

    def __init__(self, max_bytes: int, max_duration_ms: int, tag_overhead: int = TAG_OVERHEAD) -> None:
        self.max_bytes = max_bytes
        self.max_duration_ms = max_duration_ms
        self.tag_overhead = tag_overhead
        self._tags: deque[T] = deque()
        self.bytes = 0  # held: payloads plus tag_overhead each
        self.waiting_for_keyframe = False
        self.has_video = False
        self.dropped_frames = 0  # frames and droppable script data lost
        self.dropped_bytes = 0  # their payload bytes
        self.drop_events = 0
        # Source timestamp at which the target first fell behind, None while it keeps up.
        self.behind_since: int | None = None
        # Frames skipped while resyncing after the publisher changed: not a sign of falling behind.
        self.skipped_frames = 0
        self._resyncing = False

    def __len__(self) -> int:
        return len(self._tags)

    def __iter__(self) -> Iterator[T]:
        """What is queued, oldest first (left in place)."""
        return iter(self._tags)

    def push(self, tag: T) -> None:
        """Queue a tag, or drop it (and maybe what is queued) per the policy above."""
        key = _header_key(tag)
        if key is not None:
            if key == _METADATA:
                self._remove_metadata()
            self._append(tag)
            if self.bytes > self.max_bytes:
                self._drop(keep_last=False)
            return
        if tag.kind == VIDEO:
            self.has_video = True
        if self.waiting_for_keyframe:
            if tag.is_keyframe or (not self.has_video and tag.kind == AUDIO):
                # An audio-only stream has no keyframes to wait for: any audio frame resumes it.
                self.waiting_for_keyframe = False
                self._resyncing = False
            elif self._resyncing:
                self.skipped_frames += 1
                return
            else:
                self._count_drop(tag)
                return
        self._append(tag)
        if self.bytes > self.max_bytes or self._duration() > self.max_duration_ms:
            self._drop(keep_last=tag.is_keyframe)

    def pop_all(self) -> list[T]:
        """Everything queued, oldest first; the queue is then empty and caught up."""
        tags = list(self._tags)
        self._tags.clear()
        self.bytes = 0
        if not self.waiting_for_keyframe:
            self.behind_since = None
        return tags

    def resync(self) -> None:
        """The source restarted: send nothing but headers until its next keyframe (not counted as drops)."""
        if self.has_video:
            self.waiting_for_keyframe = True
            self._resyncing = True

    def abandon(self, also: Iterable[T] = ()) -> tuple[int, int]:
        """Count what is queued, and `also` (taken, never written), as dropped, and forget it: the
        platform will never get it (the connection ended first). The (frames, bytes) counted."""
        frames = size = 0
        for tag in (*also, *self._tags):
            if not tag.is_header:
                frames += 1
            size += len(tag.payload)
        self.dropped_frames += frames
        self.dropped_bytes += size
        if frames:
            self.drop_events += 1
        self._tags.clear()
        self.bytes = 0
        return frames, size

    def clear(self) -> None:
        """Forget everything queued without counting it as dropped (a new connection starts)."""
        self._tags.clear()
        self.bytes = 0
        self.waiting_for_keyframe = False
        self._resyncing = False
        self.behind_since = None

    def behind_for(self, timestamp: int) -> int:
        """Milliseconds of stream time from the first frame dropped to `timestamp`; 0 while keeping up."""
        since = self.behind_since
        if since is None:
            return 0
        diff = (timestamp - since) % _WRAP
        return diff if diff < (1 << 31) else 0

    def _append(self, tag: T) -> None:
        self._tags.append(tag)
        self.bytes += len(tag.payload) + self.tag_overhead

    def _remove_metadata(self) -> None:
        for queued in self._tags:
            if queued.kind == SCRIPT and is_metadata(queued.payload):
                self._tags.remove(queued)  # at most one is ever queued
                self.bytes -= len(queued.payload) + self.tag_overhead
                return

    def _duration(self) -> int:
        """Stream time from the oldest queued frame to the newest (called right after a frame is queued).

        Headers and script data are skipped: they keep the timestamp they were published
        with, so the ones at the front of a joiner's init burst can be hours older than its GOP.
        """
        tags = self._tags
        newest = tags[-1]
        for oldest in tags:
            if not (oldest.is_header or oldest.kind == SCRIPT):
                break
        diff = (newest.timestamp - oldest.timestamp) % _WRAP
        return diff if diff < (1 << 31) else 0

    def _count_drop(self, tag: T) -> None:
        self.dropped_frames += 1
        self.dropped_bytes += len(tag.payload)
        if self.behind_since is None and tag.kind != SCRIPT:
            self.behind_since = tag.timestamp

    def _drop(self, keep_last: bool) -> None:
        """Drop everything droppable, keeping the newest header of each kind and the newest tag
        if it is a keyframe."""
        tags = self._tags
        newest = tags[-1]
        newest_header: dict[int, T] = {}
        for tag in tags:
            key = _header_key(tag)
            if key is not None:
                newest_header[key] = tag
        kept: deque[T] = deque()
        held = 0
        dropped = self.dropped_frames
        overhead = self.tag_overhead
        for tag in tags:
            key = _header_key(tag)
            if (key is not None and newest_header[key] is tag) or (keep_last and tag is newest):
                kept.append(tag)
                held += len(tag.payload) + overhead
            elif key is None:
                self._count_drop(tag)
            # else: a header superseded by a newer one of its kind, with no frame left between them.
        if self.dropped_frames != dropped:  # a keyframe alone over the bound loses nothing
            self.drop_events += 1
            self.waiting_for_keyframe = not keep_last and self.has_video
        self._tags = kept
        self.bytes = held
