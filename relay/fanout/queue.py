"""A target's bounded send queue, and what it drops when the target falls behind.

Tags wait here between the publisher's read path and the target's socket: while the
socket's buffer is full (flow control) or until the next flush. The bound is in bytes
and in stream time, whichever is reached first. When it is passed, every queued frame
is dropped, audio and video alike, so that the tracks stay in sync, and the target
resumes at the next video keyframe (nginx-rtmp's live module does the same: a decoder
fed inter frames without their reference shows garbage). Sequence headers and metadata
are never dropped: without them nothing after decodes.
"""

from __future__ import annotations

from collections import deque

from relay.flv import SCRIPT, VIDEO, Tag

_WRAP = 1 << 32


class TargetQueue:
    """Bounded FIFO of tags with resync-at-keyframe dropping and counters."""

    __slots__ = (
        "max_bytes", "max_duration_ms", "_tags", "bytes", "waiting_for_keyframe", "has_video",
        "dropped_frames", "dropped_bytes", "drop_events", "behind_since", "skipped_frames", "_resyncing",
    )

    def __init__(self, max_bytes: int, max_duration_ms: int) -> None:
        self.max_bytes = max_bytes
        self.max_duration_ms = max_duration_ms
        self._tags: deque[Tag] = deque()
        self.bytes = 0
        self.waiting_for_keyframe = False
        self.has_video = False
        self.dropped_frames = 0
        self.dropped_bytes = 0
        self.drop_events = 0
        # Source timestamp at which the target first fell behind, None while it keeps up.
        self.behind_since: int | None = None
        # Frames skipped while resyncing after the publisher changed: not a sign of falling behind.
        self.skipped_frames = 0
        self._resyncing = False

    def __len__(self) -> int:
        return len(self._tags)

    def push(self, tag: Tag) -> None:
        """Queue a tag, or drop it (and maybe what is queued) per the policy above."""
        if tag.is_header or tag.kind == SCRIPT:
            self._append(tag)
            return
        if tag.kind == VIDEO:
            self.has_video = True
        if self.waiting_for_keyframe:
            if tag.is_keyframe or (not self.has_video):
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
            self._drop_frames(keep_last=tag.is_keyframe)

    def pop_all(self) -> list[Tag]:
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

    def clear(self) -> None:
        """Forget everything queued without counting it as dropped (a new connection starts)."""
        self._tags.clear()
        self.bytes = 0
        self.waiting_for_keyframe = False
        self._resyncing = False
        self.behind_since = None

    def _append(self, tag: Tag) -> None:
        self._tags.append(tag)
        self.bytes += len(tag.payload)

    def _duration(self) -> int:
        """Stream time from the oldest queued frame to the newest (called right after a frame is queued).

        Headers and metadata are skipped: they keep the timestamp they were published with,
        so the ones at the front of a joiner's init burst can be hours older than its GOP.
        """
        tags = self._tags
        newest = tags[-1]
        for oldest in tags:
            if not (oldest.is_header or oldest.kind == SCRIPT):
                break
        diff = (newest.timestamp - oldest.timestamp) % _WRAP
        return diff if diff < (1 << 31) else 0

    def _count_drop(self, tag: Tag) -> None:
        self.dropped_frames += 1
        self.dropped_bytes += len(tag.payload)
        if self.behind_since is None:
            self.behind_since = tag.timestamp

    def _drop_frames(self, keep_last: bool) -> None:
        """Drop every queued frame (not headers), keeping the newest tag if it is a keyframe."""
        newest = self._tags[-1]
        kept: deque[Tag] = deque()
        dropped = self.dropped_frames
        for tag in self._tags:
            if tag.is_header or tag.kind == SCRIPT or (keep_last and tag is newest):
                kept.append(tag)
            else:
                self._count_drop(tag)
        if self.dropped_frames != dropped:  # a keyframe alone over the bound loses nothing
            self.drop_events += 1
        self._tags = kept
        self.bytes = sum(len(t.payload) for t in kept)
        self.waiting_for_keyframe = not keep_last and self.has_video
