"""What one target connection has been sent, and the guard that no frame goes out undecodable.

A platform decodes a connection's media only if that connection carried onMetaData and the
track's sequence header first. What a connection needs is a fact about the connection,
not about the live stream: a new session after Stop Streaming, a reconnect, a switch to
a new link, a target added by reload each start a connection that has been sent nothing,
whatever the feed carried before. So each connection has a Primer, and everything written
on it passes through `admit`, in order:

- a sequence header identical to the last one this connection sent is left out (a
  publisher that came back inside the reconnect window sends the same configuration
  again; the platform's decoder already has it); any other header goes out and is
  recorded;
- onMetaData goes out and is recorded;
- a media frame of a track whose header is in force (the stream state holds one) but
  was never sent on this connection is a bug upstream. The Primer repairs it rather than
  pass it on: at that track's next decodable frame (a video keyframe; any audio frame)
  it sends the header in force first (and onMetaData, if this connection has none yet),
  and the video frames before that keyframe are left out. Each such frame is counted
  (`faults`) so that the owner logs the bug once, and what was left out is handed to the
  owner's drop counters (`take_skipped`).

Cost: one attribute and one set test per message once the connection is primed.
Pure code: the stream state is passed in, nothing is logged here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from relay.fanout.streamstate import StreamState
from relay.flv import SCRIPT, VIDEO, TagLike, is_metadata

M = TypeVar("M", bound=TagLike)


class Primer(Generic[M]):
    """The headers one connection has sent, and the repair of a frame sent without them."""

    __slots__ = ("headers", "metadata_sent", "primed", "faults", "_skipped_frames", "_skipped_bytes")

    def __init__(self) -> None:
        self.headers: dict[int, bytes] = {}  # per track, the payload of the last sequence header sent
        self.metadata_sent = False
        # Tracks whose frames may go out as they are: the header sent, and onMetaData if the stream had one.
        self.primed: set[int] = set()
        self.faults = 0  # frames found without their header in force (repaired, or left out)
        self._skipped_frames = 0  # video frames left out until the keyframe a repair waits for
        self._skipped_bytes = 0  # their payload bytes

    def admit(self, messages: Sequence[M], state: StreamState[Any], in_force: Callable[[], Sequence[M]]) -> Sequence[M]:
        """What to write of `messages`, in order: `messages` itself when nothing needs changing.

        `in_force` gives the stream's onMetaData and sequence headers now, as messages
        (the hub's `headers()`), for a repair.
        """
        primed = self.primed
        out: list[M] | None = None  # made at the first change
        for index, message in enumerate(messages):
            kind = message.kind
            if kind in primed and not message.is_header:
                if out is not None:
                    out.append(message)
                continue
            keep: list[M] | None = self._judge(message, state, in_force)
            if keep is None:  # as it is
                if out is not None:
                    out.append(message)
                continue
            if out is None:
                out = list(messages[:index])
            out.extend(keep)
        return messages if out is None else out

    def _judge(self, message: M, state: StreamState[Any], in_force: Callable[[], Sequence[M]]) -> list[M] | None:
        """None to send the message as it is, else what to send in its place (maybe nothing)."""
        kind = message.kind
        if message.is_header:
            if self.headers.get(kind) == message.payload:
                return []  # this connection has this very configuration already
            self.headers[kind] = message.payload
            self._prime(kind, state)
            return None
        if kind == SCRIPT:
            if is_metadata(message.payload):
                self.metadata_sent = True
                self.primed = {k for k in self.headers}
            return None
        header = state.video_header if kind == VIDEO else state.audio_header
        if kind in self.headers or header is None:
            # Its header went out (onMetaData is what is missing), or the track has none (MP3, say).
            if not self.metadata_sent and state.metadata is not None:
                return self._repaired(message, [m for m in in_force() if m.kind == SCRIPT])
            self._prime(kind, state)
            return None
        if kind == VIDEO and not message.is_keyframe:
            self.faults += 1
            self._skipped_frames += 1
            self._skipped_bytes += len(message.payload)
            return []  # undecodable until the next keyframe, which gets the header first
        wanted = [m for m in in_force() if (m.kind == kind and m.is_header)
                  or (m.kind == SCRIPT and not self.metadata_sent)]
        return self._repaired(message, wanted)

    def take_skipped(self) -> tuple[int, int]:
        """The (frames, payload bytes) left out since the last call."""
        skipped = (self._skipped_frames, self._skipped_bytes)
        self._skipped_frames = self._skipped_bytes = 0
        return skipped

    def _repaired(self, message: M, first: list[M]) -> list[M]:
        self.faults += 1
        for head in first:
            if head.is_header:
                self.headers[head.kind] = head.payload
            else:
                self.metadata_sent = True
        self.primed = {k for k in self.headers} if self.metadata_sent else set()
        return [*first, message]

    def _prime(self, kind: int, state: StreamState[Any]) -> None:
        if self.metadata_sent or state.metadata is None:
            self.primed.add(kind)
