"""One live stream's fan-out point: the publisher's tags go to every subscriber.

`publish()` runs on the publisher's read path, so it never waits: subscribers take a
tag synchronously (a target queues it, a recorder buffers it) and do their I/O later.
The same Tag object, and so the same payload bytes, goes to every subscriber.
"""

from __future__ import annotations

from typing import Protocol

from relay.fanout.streamstate import StreamState
from relay.flv import Tag


class Subscriber(Protocol):
    """Anything that takes the live stream's tags."""

    def offer(self, tag: Tag) -> None:
        """Take one tag; must not block."""


class Hub:
    """Fan-out of one live stream's tags, with the state a late joiner needs."""

    __slots__ = ("name", "state", "_subscribers")

    def __init__(self, name: str, state: StreamState | None = None) -> None:
        self.name = name
        self.state = state if state is not None else StreamState()
        self._subscribers: tuple[Subscriber, ...] = ()

    def join(self, subscriber: Subscriber) -> list[Tag]:
        """Subscribe, returning the init burst the subscriber must send first."""
        if subscriber not in self._subscribers:
            self._subscribers = (*self._subscribers, subscriber)
        return self.state.init_burst()

    def leave(self, subscriber: Subscriber) -> None:
        """Unsubscribe; unknown subscribers are ignored."""
        self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

    @property
    def subscribers(self) -> tuple[Subscriber, ...]:
        """The current subscribers."""
        return self._subscribers

    def publish(self, tag: Tag) -> None:
        """Record the tag in the join state and offer it to every subscriber."""
        self.state.update(tag)
        for subscriber in self._subscribers:  # a tuple: leave() during the loop is safe
            subscriber.offer(tag)
