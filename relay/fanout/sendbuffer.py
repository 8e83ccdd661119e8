"""What one simulcast target has to send, and when it must go out.

Loopback and real TCP cost per write far more than per byte (bench/RESULTS.md: one
6.7 KB tag per write costs three times the CPU of four per write), and platforms buffer
seconds of video. So a target that keeps up does not write each tag as it comes: it
gathers them in `pending` and its owner writes them all at once, `write_interval` after
the first one came (one process-wide timer: relay/net/writetick.py). Sequence headers
and script data are not held back: they, and whatever is pending before them, go out at
once. With `write_interval: 0` every tag goes out at once, as it comes.

A target that does not keep up (its link paused by flow control or not up yet, a
connection switch waiting for a keyframe, a resync after the publisher came back) queues
instead, under the bounded queue's drop policy (queue.py); the queue drains whenever the
link takes data, and once it is empty the target is caught up (`live`) again.

States, and what `offer_message` does in each:
- live: append to `pending`; the first one since the last write asks the owner to
  write within the interval (`send_soon`); headers and script data ask for now.
- draining (link writable, but held back: switch or resync): queue, and ask `send_soon`.
- blocked (link paused or missing): queue only; the owner drains when the link resumes.

Pure code: the owner (relay/net/target.py) does the writing and the timing.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from relay.fanout.queue import TargetQueue
from relay.flv import SCRIPT, VIDEO, TagLike

M = TypeVar("M", bound=TagLike)


class SendOwner(Protocol):
    """What a send buffer asks of the target that owns it."""

    def send_soon(self) -> None:
        """Something is waiting: write within the write interval (call take() then)."""

    def send_now(self) -> None:
        """Write now (call take())."""

    def frames_dropped(self, newest: TagLike) -> None:
        """The queue dropped frames while taking `newest` (log it, check how far behind)."""


class SendBuffer(Generic[M]):
    """The pending messages of a caught-up target, or its bounded queue while it is behind."""

    __slots__ = ("queue", "owner", "immediate", "live", "draining", "pending", "_armed", "_headers",
                 "_drops_seen")

    def __init__(self, queue: TargetQueue[M], owner: SendOwner, immediate: bool = False) -> None:
        self.queue = queue
        self.owner = owner
        self.immediate = immediate  # write_interval 0: every message goes out as it comes
        self.live = False  # caught up: messages go to `pending`, not through the queue
        self.draining = False  # the link takes data: the queue is drained as it fills
        self.pending: list[M] = []
        self._armed = False  # the owner was asked to send_soon and has not taken yet
        self._headers: dict[int, bytes] = {}  # per kind, the last sequence header taken
        self._drops_seen = 0

    # -- the hub's side: runs on the publisher's read path, once per tag ---------------------

    def offer_message(self, message: M) -> None:
        """Take one message of the live stream."""
        if self.live and not message.is_header and message.kind != SCRIPT:
            self.pending.append(message)
            if self.immediate:
                self.owner.send_now()
            elif not self._armed:
                self._armed = True
                self.owner.send_soon()
            return
        if message.is_header and self._repeats_header(message):
            return  # the same codec configuration again (a publisher that came back)
        if self.live:  # a header or script data: it, and what is pending before it, go now
            self.pending.append(message)
            self.owner.send_now()
            return
        queue = self.queue
        queue.push(message)
        if queue.dropped_frames != self._drops_seen:
            self._drops_seen = queue.dropped_frames
            self.owner.frames_dropped(message)
        if self.draining and not self._armed:
            self._armed = True
            self.owner.send_soon()

    # -- the owner's side ------------------------------------------------------------------

    def take(self, writable: bool) -> list[M]:
        """What to write now, oldest first: the pending messages, then what the queue holds if the
        link takes data. Call settle() after writing them."""
        self._armed = False
        out = self.pending
        queue = self.queue
        if out:
            self.pending = []
            if not queue.has_video:
                # Pending messages bypass the queue, but it must know the stream has video: a
                # later drop then resumes at a keyframe rather than at any frame.
                queue.has_video = any(m.kind == VIDEO for m in out)
        if writable and len(queue):
            held = queue.pop_all()
            out = out + held if out else held
        return out

    def settle(self, writable: bool, switching: bool = False) -> None:
        """After a write: caught up again if the link takes data and nothing holds the target back."""
        queue = self.queue
        self.draining = writable
        self.live = writable and not switching and not queue.waiting_for_keyframe and not len(queue)

    def block(self) -> None:
        """The link stopped taking data (paused, failing): queue from now on."""
        self.live = False
        self.draining = False

    def hold(self) -> None:
        """Queue from now on, draining at each write (a connection switch waits for a keyframe)."""
        self.live = False

    def start(self, burst: list[M]) -> None:
        """A new connection: forget everything, queue its init burst (write it, then settle())."""
        self.pending = []
        self.queue.clear()
        self._headers = {}
        self.live = self.draining = self._armed = False
        for message in burst:
            self.offer_message(message)

    def resync(self) -> None:
        """The publisher came back: queue and skip frames until its first keyframe."""
        self.live = False
        self.queue.resync()

    def sent_headers(self, headers: list[M]) -> None:
        """A new connection was primed with these headers (a switch): they are the ones sent now."""
        self._headers = {h.kind: h.payload for h in headers if h.is_header}

    def _repeats_header(self, message: M) -> bool:
        if self._headers.get(message.kind) == message.payload:
            return True
        self._headers[message.kind] = message.payload
        return False
