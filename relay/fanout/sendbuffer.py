"""What one simulcast target has to send, and when it must go out.

Loopback and real TCP cost per write far more than per byte (bench/RESULTS.md: one
6.7 KB tag per write costs three times the CPU of four per write), and platforms buffer
seconds of video. So a target that keeps up does not write each tag as it comes: it
*follows* the hub's feed (feed.py) and its owner writes everything new in the feed once
per `write_interval`, at the target's phase of it (one process-wide timer:
relay/runtime/writetick.py). Following costs nothing per tag and target: the hub appends
each message once, and the target takes a slice when its write is due. Sequence headers
and script data are not held back: the hub tells followers at once, and they write
what they have. With `write_interval: 0` a caught-up target is offered every message and
hands each one to its owner as it comes, as before.

A target that does not keep up (its link paused by flow control or not up yet, a
connection switch waiting for a keyframe, a resync after the publisher came back) is
offered every message and queues it, under the bounded queue's drop policy (queue.py);
the queue drains whenever the link takes data, and once it is empty the target is
caught up (`live`) again, and follows.

Pure code: the owner (relay/targets/writer.py) does the writing and the timing.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from relay.fanout.hub import Hub
from relay.fanout.queue import TargetQueue
from relay.flv import VIDEO, Tag, TagLike

M = TypeVar("M", bound=Tag)
M_contra = TypeVar("M_contra", bound=TagLike, contravariant=True)


class SendOwner(Protocol[M_contra]):
    """What a send buffer asks of the target that owns it."""

    def send_soon(self) -> None:
        """Something is waiting: write within the write interval (call take() then)."""

    def send_now(self) -> None:
        """Write now (call take())."""

    def send_message(self, message: M_contra) -> None:
        """Write this one message now, nothing before it pending (write_interval 0, caught up)."""

    def frames_dropped(self, newest: TagLike) -> None:
        """The queue dropped frames while taking `newest` (log it, check how far behind)."""

    def set_following(self, following: bool) -> None:
        """Following starts (write at each of the target's slots from now on) or stops."""


class SendBuffer(Generic[M]):
    """The sending state of one target: following the feed while caught up, its bounded queue while not."""

    __slots__ = ("hub", "queue", "owner", "immediate", "live", "following", "draining", "position", "pending",
                 "_armed", "_drops_seen")

    def __init__(self, hub: Hub[M], queue: TargetQueue[M], owner: SendOwner[M], immediate: bool = False) -> None:
        self.hub = hub
        self.queue = queue
        self.owner = owner
        self.immediate = immediate  # write_interval 0: every message goes out as it comes
        self.live = False  # caught up: following the feed (or, immediate, writing each message at once)
        self.following = False
        self.draining = False  # the link takes data: the queue is drained as it fills
        self.position = 0  # in the hub's feed, while following
        self.pending: list[M] = []  # read from the feed but not written yet (when the target stopped following)
        self._armed = False  # the owner was asked to send_soon and has not taken yet
        self._drops_seen = 0

    # -- the hub's side: runs on the publisher's read path ----------------------------------

    def offer_message(self, message: M) -> None:
        """Take one message of the live stream (offered: not following)."""
        if self.live:  # immediate: each message goes out as it comes
            self.owner.send_message(message)
            return
        queue = self.queue
        queue.push(message)
        if queue.dropped_frames != self._drops_seen:
            self._drops_seen = queue.dropped_frames
            self.owner.frames_dropped(message)
        if self.draining and not self._armed:
            self._armed = True
            self.owner.send_soon()

    def urgent(self) -> None:
        """Following: a sequence header or script data was fed; it and what came before it go now."""
        self.owner.send_now()

    # -- the owner's side ------------------------------------------------------------------

    def take(self, writable: bool) -> list[M]:
        """What to write now, oldest first: what was read and not written, what is new in the feed,
        then what the queue holds if the link takes data. Call settle() after writing them."""
        self._armed = False
        out = self.pending
        if out:
            self.pending = []
        if self.following:
            fed = self.hub.read(self)
            if fed:
                out = out + fed if out else fed
        queue = self.queue
        if out and not queue.has_video:
            # Fed messages bypass the queue, but it must know the stream has video: a later
            # drop then resumes at a keyframe rather than at any frame.
            queue.has_video = any(m.kind == VIDEO for m in out)
        if writable and len(queue):
            held = queue.pop_all()
            out = out + held if out else held
        return out

    def settle(self, writable: bool, switching: bool = False) -> None:
        """After a write: caught up again if the link takes data and nothing holds the target back."""
        queue = self.queue
        self.draining = writable
        if writable and not switching and not queue.waiting_for_keyframe and not len(queue) and not self.pending:
            if not self.live:
                self.live = True
                if not self.immediate:
                    self.following = True
                    self.position = self.hub.follow(self)
                    self.owner.set_following(True)
        else:
            self._stop_following()

    def block(self) -> None:
        """The link stopped taking data (paused, failing): queue from now on."""
        self._stop_following()
        self.draining = False

    def hold(self) -> None:
        """Queue from now on, draining at each write (a connection switch waits for a keyframe)."""
        self._stop_following()

    def join(self) -> None:
        """A new connection: join the hub and queue its init burst (write it, then settle()). What the
        last connection left unwritten is counted as dropped: the new one starts from the burst."""
        self._stop_following()
        self.abandon()
        self.queue.clear()
        self.draining = self._armed = False
        for message in self.hub.join_sender(self):
            self.offer_message(message)

    def leave(self) -> None:
        """Leave the hub (the session ends); what was fed and not written stays pending."""
        self._stop_following()
        self.hub.leave(self)

    def abandon(self) -> tuple[int, int]:
        """Count everything taken or queued and not written as dropped, and forget it (the connection
        is over); the (frames, bytes) counted."""
        pending, self.pending = self.pending, []
        return self.queue.abandon(pending)

    @property
    def idle(self) -> bool:
        """Following, with every message fed read and written: a write now has nothing to send."""
        return self.following and not self.pending and self.position == self.hub.feed.end

    @property
    def backlog(self) -> bool:
        """True while something taken from the stream is not written yet."""
        return bool(self.pending) or len(self.queue) > 0

    def resync(self) -> None:
        """The publisher came back: queue and skip frames until its first keyframe.

        What the old source (the last publisher, or the slate) left unwritten, a link that was
        paused still holds: sent now, it would go after the timeline's jump, and the new source's
        timestamps could not follow it (they would stall until they caught up). It is counted as
        dropped instead; the new source sends its own headers."""
        self._stop_following()
        self.abandon()
        self.queue.resync()

    def _stop_following(self) -> None:
        """Be offered every message from now on; what was fed and not read is pending."""
        self.live = False
        if self.following:
            self.following = False
            self.owner.set_following(False)
            unread = self.hub.unfollow(self)
            if unread:
                self.pending.extend(unread)
