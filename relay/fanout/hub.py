"""One live stream's fan-out point: the publisher's tags go to every subscriber.

`publish()` runs on the publisher's read path, so it never waits: subscribers take a
tag synchronously (a target queues it, a recorder buffers it) and do their I/O later.
The same Tag object, and so the same payload bytes, goes to every subscriber.

Two kinds of subscriber:
- a `Subscriber` (a recorder, a health meter) is offered the Tag itself;
- a `Sender` (a simulcast target) is offered the tag wrapped, once per tag for all
  senders, by the `wrap` the hub was made with: in the relay an rtmp EncodedMessage,
  whose chunk bytes are then built once and shared by every target. The wrappers of
  the tags a joiner needs (the init burst) are kept too, so that targets joining
  together share those as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, cast

from relay.fanout.streamstate import StreamState
from relay.flv import Tag

M = TypeVar("M")
M_contra = TypeVar("M_contra", contravariant=True)


class Subscriber(Protocol):
    """Anything that takes the live stream's tags."""

    def offer(self, tag: Tag) -> None:
        """Take one tag; must not block."""


class Sender(Protocol[M_contra]):
    """A subscriber that takes each tag as the hub's shared wrapper of it."""

    def offer_message(self, message: M_contra) -> None:
        """Take one message; must not block."""


def _unwrapped(tag: Tag) -> Any:
    return tag


class Hub(Generic[M]):
    """Fan-out of one live stream's tags, with the state a late joiner needs."""

    __slots__ = ("name", "state", "_wrap", "_subscribers", "_senders", "_kept", "_kept_frames")

    def __init__(self, name: str, state: StreamState | None = None,
                 wrap: Callable[[Tag], M] | None = None) -> None:
        self.name = name
        self.state = state if state is not None else StreamState()
        self._wrap: Callable[[Tag], M] = wrap if wrap is not None else cast(Callable[[Tag], M], _unwrapped)
        self._subscribers: tuple[Subscriber, ...] = ()
        self._senders: tuple[Sender[M], ...] = ()
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
        """Subscribe a sender, returning the init burst, wrapped."""
        if sender not in self._senders:
            self._senders = (*self._senders, sender)
        return self._wrapped(self.state.init_burst())

    def headers(self) -> list[M]:
        """Metadata and sequence headers, wrapped: what a new connection needs before a keyframe."""
        state = self.state
        return self._wrapped([t for t in (state.metadata, state.video_header, state.audio_header) if t is not None])

    def leave(self, subscriber: Subscriber | Sender[M]) -> None:
        """Unsubscribe; unknown subscribers are ignored."""
        self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)
        self._senders = tuple(s for s in self._senders if s is not subscriber)

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        """The current subscribers (senders not included)."""
        return self._subscribers

    @property
    def senders(self) -> tuple[Sender[M], ...]:
        """The current senders."""
        return self._senders

    def publish(self, tag: Tag) -> None:
        """Record the tag in the join state and offer it to every subscriber and sender."""
        self.state.update(tag)
        for subscriber in self._subscribers:  # a tuple: leave() during the loop is safe
            subscriber.offer(tag)
        senders = self._senders
        if senders:
            message = self._wrap(tag)
            self._keep(tag, message)
            for sender in senders:
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
        state = self.state
        heads = (state.metadata, state.video_header, state.audio_header)
        self._kept = {key: entry for key, entry in self._kept.items() if any(entry[0] is h for h in heads)}
        self._kept_frames = 0

    def _forget_replaced_headers(self) -> None:
        state = self.state
        heads = (state.metadata, state.video_header, state.audio_header)
        gop_ids = {id(t) for t in state.gop}
        self._kept = {key: entry for key, entry in self._kept.items()
                      if key in gop_ids or any(entry[0] is h for h in heads)}

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
