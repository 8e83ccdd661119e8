"""One live stream's fan-out point: the publisher's tags go to every subscriber.

`publish()` runs on the publisher's read path, so it never waits: subscribers take a
tag synchronously (a target queues it, a recorder buffers it) and do their I/O later.

One object per tag: what the hub is given is what it keeps for joiners (streamstate.py),
feeds, and offers to every subscriber and sender. In the relay that is an rtmp
EncodedMessage, a Tag that also carries its chunk bytes, built once and shared by every
target; the hub itself only reads a tag's fields (it knows nothing of RTMP), so a hub of
plain Tags works the same. The stream state weighs what each GOP tag holds, its encoded
bytes included (the live stream passes the weight of its messages).

Two kinds of subscriber:
- a `Subscriber` (a recorder, a health meter) is offered each tag, read as a Tag;
- a `Sender` (a simulcast target) takes each tag as the message it sends. A sender that
  keeps up *follows* (feed.py): it is not offered each message but reads the feed when
  its write is due, and is told at once only of sequence headers and script data. The
  others (queueing, or writing each tag at once) are offered every message.

Every sequence header and script tag is fed as it comes, repeated or not: whether a
connection already has a header is a fact about that connection (primer.py), never the
hub's to judge from what it published before.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from relay.fanout.feed import Feed, Follower
from relay.fanout.streamstate import StreamState
from relay.flv import SCRIPT, Tag

M = TypeVar("M", bound=Tag)
M_contra = TypeVar("M_contra", bound=Tag, contravariant=True)

TRIM_AT = 32  # feed length at which what every follower has read is forgotten (~0.4 s at 77 tags/s)


class Subscriber(Protocol):
    """Anything that takes the live stream's tags."""

    def offer(self, tag: Tag) -> None:
        """Take one tag; must not block."""


class Sender(Protocol[M_contra]):
    """A subscriber that takes each tag as the message it sends (the same object for every sender)."""

    def offer_message(self, message: M_contra) -> None:
        """Take one message; must not block."""


class FollowingSender(Sender[M_contra], Follower, Protocol[M_contra]):
    """A sender that reads the feed while it keeps up (a simulcast target's send buffer)."""


class Hub(Generic[M]):
    """Fan-out of one live stream's tags, with the state a late joiner needs."""

    __slots__ = ("name", "state", "feed", "_subscribers", "_senders", "_offered", "_followers")

    def __init__(self, name: str, state: StreamState[M] | None = None) -> None:
        self.name = name
        self.state: StreamState[M] = state if state is not None else StreamState()
        self.feed: Feed[M] = Feed()
        self._subscribers: tuple[Subscriber, ...] = ()
        self._senders: tuple[Sender[M], ...] = ()
        self._offered: tuple[Sender[M], ...] = ()  # senders that do not follow
        self._followers: tuple[FollowingSender[M], ...] = ()

    def join(self, subscriber: Subscriber) -> list[M]:
        """Subscribe, returning the init burst the subscriber must send first."""
        if subscriber not in self._subscribers:
            self._subscribers = (*self._subscribers, subscriber)
        return self.state.init_burst()

    def join_sender(self, sender: Sender[M]) -> list[M]:
        """Subscribe a sender (offered every message until it follows), returning the init burst."""
        if sender not in self._senders:
            self._senders = (*self._senders, sender)
            self._offered = (*self._offered, sender)
        return self.state.init_burst()

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
        """Metadata and sequence headers: what a new connection needs before a keyframe."""
        state = self.state
        return [t for t in (state.metadata, state.video_header, state.audio_header) if t is not None]

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

    def publish(self, message: M) -> None:
        """Record the tag in the join state; offer it to every subscriber, feed it or offer it to every sender."""
        self.state.update(message)
        for subscriber in self._subscribers:  # a tuple: leave() during the loop is safe
            subscriber.offer(message)
        if not self._senders:
            return
        followers = self._followers
        if followers:
            feed = self.feed.messages
            feed.append(message)
            if message.is_header or message.kind == SCRIPT:
                for follower in followers:
                    follower.urgent()
            # Trimmed whatever the kind: a publisher that sends only script data must not grow it.
            if len(feed) > TRIM_AT:
                self.feed.trim(min(f.position for f in followers))
        for sender in self._offered:
            sender.offer_message(message)

