"""The live stream's recent messages, read by every caught-up target at its own moment.

Offering each message to each target costs a call per tag and target, the largest
per-tag cost left once writes are gathered (bench/RESULTS.md). A target that keeps up
does not need to be told about each message: it needs them all, once per write
interval. So the hub appends each message once to the feed, and each following target
keeps only a position in it; when its write is due it takes everything since its
position in one slice. The feed keeps what the slowest follower has not read yet, and
no more (`trim`).
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

M = TypeVar("M")


class Follower(Protocol):
    """A reader of the feed: its position is the absolute index of the next message it reads."""

    position: int

    def urgent(self) -> None:
        """A message that must not wait for the next write (a sequence header, script data) was fed."""


class Feed(Generic[M]):
    """Messages in order, with absolute positions (`base` is the position of messages[0])."""

    __slots__ = ("messages", "base")

    def __init__(self) -> None:
        self.messages: list[M] = []
        self.base = 0

    @property
    def end(self) -> int:
        """The position the next message will have."""
        return self.base + len(self.messages)

    def since(self, position: int) -> list[M]:
        """The messages from `position` on (a new list)."""
        return self.messages[position - self.base:]

    def trim(self, position: int) -> None:
        """Forget the messages before `position` (everyone has read them)."""
        drop = position - self.base
        if drop > 0:
            del self.messages[:drop]
            self.base = position

    def clear(self) -> None:
        """Forget every message (nobody follows); positions go on from the end."""
        self.base += len(self.messages)
        self.messages.clear()
