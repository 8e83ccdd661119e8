"""One live stream's fan-out point: the publisher's tags go to every subscriber.

`publish()` runs on the publisher's read path, so it never waits: subscribers take a
tag synchronously (a target queues it, a recorder buffers it) and do their I/O later.
The same Tag object, and so the same payload bytes, goes to every subscriber.

Two kinds of subscriber:
- a `Subscriber` (a recorder, a health meter) is offered the Tag itself;
- a `Sender` (a simulcast target) gets the tag wrapped, once per tag for all senders,
  by the `wrap` the hub was made with: in the relay an rtmp EncodedMessage, whose chunk
  bytes are then built once and shared by every target. A sender that keeps up
  *follows* (feed.py): it is not offered each message but reads the feed when its write
  is due, and is told at once only of sequence headers and script data. The others
  (queueing, or writing each tag at once) are offered every message.

The wrappers of the tags a joiner needs (the init burst) are kept, so that targets
joining together share those too. They are memory the GOP holds: with `wrapper_bytes`
(what one wrapper of a tag holds), the stream state counts them against its GOP bound.
Every sequence header and script tag is fed as it comes, repeated or not: whether a
connection already has a header is a fact about that connection (primer.py), never the
hub's to judge from what it published before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, cast

from relay.fanout.feed import Feed, Follower
from relay.fanout.streamstate import StreamState
from relay.flv import SCRIPT, Tag

M = TypeVar("M")
M_contra = TypeVar("M_contra", contravariant=True)

TRIM_AT = 32  # feed length at which what every follower has read is forgotten (~0.4 s at 77 tags/s)
KEPT_OVERHEAD = 96  # a `_kept` entry: its tuple and dict slot (~80 bytes on CPython 3.11, tracemalloc)


class Subscriber(Protocol):
    """Anything that takes the live stream's tags."""

    def offer(self, tag: Tag) -> None:
        """Take one tag; must not block."""


class Sender(Protocol[M_contra]):
    """A subscriber that takes each tag as the hub's shared wrapper of it."""

    def offer_message(self, message: M_contra) -> None:
        """Take one message; must not block."""


class FollowingSender(Sender[M_contra], Follower, Protocol[M_contra]):
    """A sender that reads the feed while it keeps up (a simulcast target's send buffer)."""


def _unwrapped(tag: Tag) -> Any:
    return tag


def _weigh_with(weigh: Callable[[Tag], int], wrapper_bytes: Callable[[Tag], int]) -> Callable[[Tag], int]:
    def weigh_kept(tag: Tag) -> int:
        return weigh(tag) + KEPT_OVERHEAD + wrapper_bytes(tag)
    return weigh_kept


class Hub(Generic[M]):
    """Fan-out of one live stream's tags, with the state a late joiner needs."""

    __slots__ = ("name", "state", "feed", "_wrap", "_subscribers", "_senders", "_offered", "_followers",
                 "_kept", "_kept_frames")

    def __init__(self, name: str, state: StreamState | None = None,
                 wrap: Callable[[Tag], M] | None = None,
                 wrapper_bytes: Callable[[Tag], int] | None = None) -> None:
        self.name = name
        self.state = state if state is not None else StreamState()
        if wrapper_bytes is not None:
            # Every GOP tag may get a kept wrapper (as soon as a sender joins): count it as held.
            self.state.weigh = _weigh_with(self.state.weigh, wrapper_bytes)
        self.feed: Feed[M] = Feed()
        self._wrap: Callable[[Tag], M] = wrap if wrap is not None else cast(Callable[[Tag], M], _unwrapped)
        self._subscribers: tuple[Subscriber, ...] = ()
        self._senders: tuple[Sender[M], ...] = ()
        self._offered: tuple[Sender[M], ...] = ()  # senders that do not follow
        self._followers: tuple[FollowingSender[M], ...] = ()
        # id(tag) -> (tag, wrapper) for tags the state holds for joiners; the tag is kept in
        # the value so that its id cannot be reused while the entry exists.
        self._kept: dict[int, tuple[Tag, M]] = {}
        self._kept_frames = 0

    def join(self, subscriber: Subscriber) -> list[Tag]:
        """Subscribe, returning the init burst the subscriber must send first."""
        if subscriber not in self._subscribers:
            self._subscribers = (*self._subscribers, subscriber)
        return self.state.init_burst()

    def join_sender(self, sender: Sender[M]) -> list[M]:
        """Subscribe a sender (offered every message until it follows), returning the init burst, wrapped."""
        if sender not in self._senders:
            self._senders = (*self._senders, sender)
            self._offered = (*self._offered, sender)
        return self._wrapped(self.state.init_burst())

    def follow(self, follower: FollowingSender[M]) -> int:
        """A joined sender that keeps up reads the feed from now on; the position to read from."""
        if follower not in self._followers:
            self._followers = (*self._followers, follower)
            self._offered = tuple(s for s in self._offered if s is not follower)
        return self.feed.end

    def unfollow(self, follower: FollowingSender[M]) -> list[M]:
        """Stop following (and be offered every message again, if still joined); what it had not read."""
        if follower not in self._followers:
            return []
        unread = self.feed.since(follower.position)
        follower.position = self.feed.end
        self._followers = tuple(f for f in self._followers if f is not follower)
        if follower in self._senders and follower not in self._offered:
            self._offered = (*self._offered, follower)
        if not self._followers:
            self.feed.clear()
        return unread

    def read(self, follower: FollowingSender[M]) -> list[M]:
        """What a follower has not read yet; it has read it now."""
        feed = self.feed
        messages = feed.messages[follower.position - feed.base:]
        follower.position = feed.base + len(feed.messages)
        return messages

    def headers(self) -> list[M]:
        """Metadata and sequence headers, wrapped: what a new connection needs before a keyframe."""
        state = self.state
        return self._wrapped([t for t in (state.metadata, state.video_header, state.audio_header) if t is not None])

    def leave(self, subscriber: Subscriber | Sender[M]) -> None:
        """Unsubscribe; unknown subscribers are ignored. A follower stops following (unread messages lost)."""
        gone: object = subscriber
        self._subscribers = tuple(s for s in self._subscribers if s is not gone)
        self._senders = tuple(s for s in self._senders if s is not gone)
        self._offered = tuple(s for s in self._offered if s is not gone)
        if any(f is gone for f in self._followers):
            self._followers = tuple(f for f in self._followers if f is not gone)
            if not self._followers:
                self.feed.clear()

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        """The current subscribers (senders not included)."""
        return self._subscribers

    @property
    def senders(self) -> tuple[Sender[M], ...]:
        """The current senders, following or not."""
        return self._senders

    @property
    def followers(self) -> tuple[FollowingSender[M], ...]:
        """The senders that read the feed."""
        return self._followers

    def publish(self, tag: Tag) -> None:
        """Record the tag in the join state; offer it to every subscriber, feed it or offer it to every sender."""
        self.state.update(tag)
        for subscriber in self._subscribers:  # a tuple: leave() during the loop is safe
            subscriber.offer(tag)
        if not self._senders:
            return
        message = self._wrap(tag)
        self._keep(tag, message)
        followers = self._followers
        if followers:
            feed = self.feed.messages
            feed.append(message)
            if tag.is_header or tag.kind == SCRIPT:
                for follower in followers:
                    follower.urgent()
            # Trimmed whatever the kind: a publisher that sends only script data must not grow it.
            if len(feed) > TRIM_AT:
                self.feed.trim(min(f.position for f in followers))
        for sender in self._offered:
            sender.offer_message(message)

    def _keep(self, tag: Tag, message: M) -> None:
        """Remember the wrapper of a tag the state now holds for joiners; forget what it let go."""
        state = self.state
        gop = state.gop
        if gop and gop[-1] is tag:
            if len(gop) == 1:  # a keyframe started a new GOP: the previous one is gone
                self._forget_frames()
            self._kept[id(tag)] = (tag, message)
            self._kept_frames += 1
        elif tag is state.metadata or tag is state.video_header or tag is state.audio_header:
            self._kept[id(tag)] = (tag, message)
            self._forget_replaced_headers()
        elif not gop and self._kept_frames:
            self._forget_frames()  # the state dropped its GOP (too long)

    def _forget_frames(self) -> None:
        """Keep only the headers' wrappers (and the newest frame's, added after this)."""
        state = self.state
        kept = self._kept
        self._kept = {}
        for head in (state.metadata, state.video_header, state.audio_header):
            entry = kept.get(id(head))
            if entry is not None and entry[0] is head:
                self._kept[id(head)] = entry
        self._kept_frames = 0

    def _forget_replaced_headers(self) -> None:
        state = self.state
        current = {id(t) for t in (*state.gop, state.metadata, state.video_header, state.audio_header)}
        self._kept = {key: entry for key, entry in self._kept.items() if key in current}

    def _wrapped(self, tags: list[Tag]) -> list[M]:
        """Each tag's kept wrapper, wrapping (and keeping) those that have none yet."""
        kept = self._kept
        out: list[M] = []
        for tag in tags:
            entry = kept.get(id(tag))
            if entry is None or entry[0] is not tag:
                entry = kept[id(tag)] = (tag, self._wrap(tag))
            out.append(entry[1])
        return out
