"""What a target joining a live stream mid-show needs before live media: the "init burst".

That is onMetaData, the current audio and video sequence headers, then every tag since
the latest video keyframe (the current GOP), so the target's first frame decodes and the
start of the show is not lost while a target is still connecting (nginx-rtmp's push
loses the first GOP on every target).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from relay.flv import SCRIPT, VIDEO, Tag, is_metadata

T = TypeVar("T", bound=Tag)

DEFAULT_MAX_GOP_BYTES = 32 * 1024 * 1024
# What one cached plain Tag holds besides its payload: the Tag object, the bytes object's
# header, its timestamp and the list slot (about 155 bytes on CPython 3.11, measured with
# tracemalloc). Counting payload bytes alone let a publisher grow the GOP without end with
# empty frames. A live stream's tags hold more (their chunk bytes): it weighs them with
# relay/rtmp/encoded.py's held_bytes instead.
TAG_OVERHEAD = 160
# Tags in one GOP: 60 fps video and 50 audio frames a second fill this in about 75 s, far
# past the 4 s keyframe interval platforms ask for.
DEFAULT_MAX_GOP_TAGS = 8192


def tag_weight(tag: Tag) -> int:
    """Memory one cached tag holds: its payload and TAG_OVERHEAD."""
    return len(tag.payload) + TAG_OVERHEAD


class StreamState(Generic[T]):
    """Cached metadata, sequence headers and current GOP of one live stream.

    Generic over the tag type: what it holds is what the hub published (in the relay, the
    encoded messages the targets send), so a joiner's init burst is those same objects.
    """

    __slots__ = ("metadata", "audio_header", "video_header", "gop", "gop_bytes", "max_gop_bytes", "max_gop_tags",
                 "has_video", "publisher_enhanced", "weigh")

    def __init__(self, max_gop_bytes: int = DEFAULT_MAX_GOP_BYTES, max_gop_tags: int = DEFAULT_MAX_GOP_TAGS,
                 weigh: Callable[[T], int] = tag_weight) -> None:
        self.max_gop_bytes = max_gop_bytes
        self.max_gop_tags = max_gop_tags
        self.weigh = weigh  # what a GOP tag costs in memory, all it holds included
        self.reset()

    def reset(self) -> None:
        """Forget everything: a new publish session starts from scratch."""
        self.metadata: T | None = None
        self.audio_header: T | None = None
        self.video_header: T | None = None
        self.gop: list[T] = []
        self.gop_bytes = 0  # memory the GOP holds: weigh() of each tag
        self.has_video = False
        # The publisher's connect declared Enhanced RTMP (fourCcList...): set by the live
        # stream when a publisher claims it; targets mirror it (relay/fanout/enhanced.py).
        self.publisher_enhanced = False

    def update(self, tag: T) -> None:
        """Take one tag of the live stream into account."""
        kind = tag.kind
        if tag.is_header:
            if kind == VIDEO:
                self.video_header = tag
                self.has_video = True
            else:
                self.audio_header = tag
            return
        if kind == SCRIPT:
            if is_metadata(tag.payload):
                self.metadata = tag
            return
        if kind == VIDEO:
            self.has_video = True
            if tag.is_keyframe:
                self.gop = [tag]
                self.gop_bytes = self.weigh(tag)
                return
        if not self.gop:
            return  # no keyframe yet: nothing a joiner could decode from
        self.gop.append(tag)
        self.gop_bytes += self.weigh(tag)
        if self.gop_bytes > self.max_gop_bytes or len(self.gop) > self.max_gop_tags:
            # A GOP this long is a misconfigured encoder; rather than hold it all, joiners
            # wait for the next keyframe.
            self.gop = []
            self.gop_bytes = 0

    def init_burst(self) -> list[T]:
        """The tags a joining target gets first, in order."""
        burst = [t for t in (self.metadata, self.video_header, self.audio_header) if t is not None]
        burst.extend(self.gop)
        return burst
