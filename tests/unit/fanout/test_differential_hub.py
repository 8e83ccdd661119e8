"""The compiled Hub (relay/fanout/_speedups.pyx) against the pure-Python reference (hub.py).

The same calls in the same order (publish of any kind of tag, joins, follows, reads, leaves,
a GOP bound that drops) must give the same answers, offer the same messages in the same
order, ask the same followers for an urgent write, and leave the same join state, weighed
the same. The tags are the relay's own (EncodedMessage: the hub publishes, keeps and feeds
that one object), and each log names a tag by its index, so both hubs are compared on which
objects they hand out.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.fanout import hub
from relay.fanout.streamstate import StreamState
from relay.flv import AUDIO, SCRIPT, VIDEO, Tag
from relay.rtmp.encoded import EncodedMessage, held_bytes

_speedups = pytest.importorskip("relay.fanout._speedups", reason="the compiled twin is not built")

TAGS = [
    EncodedMessage(SCRIPT, 0, b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09"),
    EncodedMessage(VIDEO, 0, b"\x17\x00\x00\x00\x00" + bytes(30)),  # AVC sequence header
    EncodedMessage(AUDIO, 0, b"\xaf\x00\x12\x10"),  # AAC sequence header
    EncodedMessage(VIDEO, 33, b"\x17\x01\x00\x00\x00" + bytes(500)),  # keyframe
    EncodedMessage(VIDEO, 66, b"\x27\x01\x00\x00\x00" + bytes(200)),  # inter frame
    EncodedMessage(AUDIO, 40, b"\xaf\x01" + bytes(100)),
    EncodedMessage(SCRIPT, 50, b"\x02\x00\x0aonCuePoint\x05"),  # script data that is not metadata
]


def named(tags: list[Any]) -> list[int]:
    """Which of TAGS each is: the very object, not an equal one."""
    return [next(i for i, t in enumerate(TAGS) if t is tag) for tag in tags]


class Party:
    """A subscriber, a sender and a follower at once, noting everything it is told."""

    def __init__(self, name: int, log: list[Any]) -> None:
        self.name = name
        self.position = 0
        self.log = log

    def offer(self, tag: Tag) -> None:
        self.log.append(("offer", self.name, named([tag])))

    def offer_message(self, message: Any) -> None:
        self.log.append(("message", self.name, named([message])))

    def urgent(self) -> None:
        self.log.append(("urgent", self.name))


_op = st.one_of(
    st.tuples(st.just("publish"), st.integers(0, len(TAGS) - 1), st.integers(1, 40)),
    st.tuples(st.sampled_from(["join", "join_sender", "follow", "unfollow", "read", "leave"]), st.integers(0, 3),
              st.just(0)),
    st.tuples(st.just("headers"), st.just(0), st.just(0)),
)


def play(make: Any, ops: list[tuple[str, int, int]], max_gop_tags: int) -> list[Any]:
    log: list[Any] = []
    parties = [Party(i, log) for i in range(4)]
    h = make("studio", StreamState(max_gop_tags=max_gop_tags, weigh=held_bytes))
    for what, arg, repeat in ops:
        if what == "publish":
            for _ in range(repeat):
                h.publish(TAGS[arg])
        elif what == "headers":
            log.append(named(h.headers()))
        elif what in ("join", "join_sender", "unfollow", "read"):
            log.append(named(getattr(h, what)(parties[arg])))
        else:
            log.append(getattr(h, what)(parties[arg]))
        log.append((len(h.subscribers), len(h.senders), [p.name for p in h.followers], h.feed.base,
                    named(h.feed.messages), [p.position for p in parties], h.state.gop_bytes, named(h.state.gop)))
    return log


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(_op, max_size=30), max_gop_tags=st.sampled_from([8, 8192]))
def test_same_calls_same_answers(ops: list[tuple[str, int, int]], max_gop_tags: int) -> None:
    assert play(_speedups.Hub, ops, max_gop_tags) == play(hub.Hub, ops, max_gop_tags)
