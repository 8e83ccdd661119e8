"""Which status changes of a live stream's targets are news for its observers (the webhooks).

A target that keeps failing goes errored -> starting -> errored at every retry; observers
hear of the error once, of giving up (severity fatal) once, and of the recovery (or of
the target going idle), never of each attempt. Pure: a transition in, an event name or
None out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from relay.targets.statustable import ERRORED, IDLE, STARTING, Transition

K = TypeVar("K")

TARGET_EVENT = "video.live_stream.simulcast_target.{status}"


class TargetNews(Generic[K]):
    """The status observers last heard of, per target, and what is news after a transition."""

    __slots__ = ("_reported",)

    def __init__(self) -> None:
        self._reported: dict[K, str] = {}

    def news(self, target: K, transition: Transition) -> str | None:
        """The event to announce for this transition of `target`, or None if it is no news."""
        status = transition.after
        # An errored target that gives up (severity fatal) is news again; its retries are not.
        state = f"{status}:{transition.severity}" if status == ERRORED else status
        reported = self._reported.get(target, IDLE)
        if state == reported or (reported.startswith(ERRORED) and status == STARTING):
            return None
        self._reported[target] = state
        return TARGET_EVENT.format(status=status)

    def keep_only(self, targets: Iterable[K]) -> None:
        """Forget the targets a reload removed."""
        current = list(targets)
        self._reported = {t: s for t, s in self._reported.items() if any(t is c for c in current)}
