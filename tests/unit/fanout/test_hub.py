"""The fan-out point: every subscriber gets the same Tag objects, in order; joiners get the init burst."""

from __future__ import annotations

from collections.abc import Callable

from relay.fanout.hub import Hub
from relay.fanout.streamstate import StreamState
from relay.flv import Tag
from tests.support.tags import (
    audio,
    audio_header,
    inter,
    keyframe,
    metadata,
    video_header,
)


class Recorder:
    """A subscriber that keeps what it is offered, and can run a callback on each offer."""

    def __init__(self, on_offer: Callable[[Tag], None] | None = None) -> None:
        self.tags: list[Tag] = []
        self.on_offer = on_offer

    def offer(self, tag: Tag) -> None:
        self.tags.append(tag)
        if self.on_offer is not None:
            self.on_offer(tag)


def _same(a: list[Tag], b: list[Tag]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def test_publish_offers_the_same_tag_objects_to_every_subscriber_in_order() -> None:
    hub = Hub("main")
    subs = [Recorder() for _ in range(6)]
    for sub in subs:
        hub.join(sub)
    tags = [metadata(), video_header(), audio_header(), keyframe(0), audio(10), inter(33)]
    for tag in tags:
        hub.publish(tag)
    for sub in subs:
        assert _same(sub.tags, tags)


def test_subscribers_are_offered_in_join_order() -> None:
    hub = Hub("main")
    order: list[str] = []

    def note(name: str) -> Callable[[Tag], None]:
        return lambda _tag: order.append(name)

    for name in ("a", "b", "c"):
        hub.join(Recorder(note(name)))
    hub.publish(keyframe())
    assert order == ["a", "b", "c"]


def test_join_returns_the_init_burst() -> None:
    hub = Hub("main")
    assert hub.join(Recorder()) == []
    meta, vh, ah, k, a, p = metadata(), video_header(), audio_header(), keyframe(0), audio(10), inter(33)
    for tag in (ah, vh, inter(0), meta, k, a, p):  # the inter frame before k is not in the burst
        hub.publish(tag)
    assert _same(hub.join(Recorder()), [meta, vh, ah, k, a, p])


def test_join_uses_the_given_state() -> None:
    state = StreamState()
    k = keyframe()
    state.update(k)
    hub = Hub("main", state)
    assert hub.state is state
    assert _same(hub.join(Recorder()), [k])


def test_a_later_subscriber_is_offered_only_later_tags() -> None:
    hub = Hub("main")
    early, late = Recorder(), Recorder()
    hub.join(early)
    before = [video_header(), keyframe(0), inter(33)]
    for tag in before:
        hub.publish(tag)
    burst = hub.join(late)
    assert _same(burst, before)  # what it missed comes as the burst, not as offers
    after = [inter(66), keyframe(2000)]
    for tag in after:
        hub.publish(tag)
    assert _same(late.tags, after)
    assert _same(early.tags, before + after)


def test_joining_twice_subscribes_once() -> None:
    hub = Hub("main")
    sub = Recorder()
    hub.join(sub)
    hub.join(sub)
    assert hub.subscribers == (sub,)
    hub.publish(keyframe())
    assert len(sub.tags) == 1


def test_leave_stops_offers_and_ignores_strangers() -> None:
    hub = Hub("main")
    a, b = Recorder(), Recorder()
    hub.join(a)
    hub.join(b)
    hub.publish(keyframe(0))
    hub.leave(a)
    hub.leave(Recorder())  # never joined: ignored
    hub.publish(inter(33))
    assert len(a.tags) == 1 and len(b.tags) == 2
    assert hub.subscribers == (b,)


def test_leave_during_publish_is_safe() -> None:
    hub = Hub("main")
    c = Recorder()
    a = Recorder(lambda _tag: hub.leave(a))  # a target that fails while taking a tag
    b = Recorder(lambda _tag: hub.leave(c))  # ... or removes another one
    for sub in (a, b, c):
        hub.join(sub)
    first = keyframe(0)
    hub.publish(first)
    # The tag in flight reaches everyone who was subscribed when it was published.
    assert _same(a.tags, [first]) and _same(b.tags, [first]) and _same(c.tags, [first])
    second = inter(33)
    hub.publish(second)
    assert _same(a.tags, [first]) and _same(b.tags, [first, second]) and _same(c.tags, [first])
    assert hub.subscribers == (b,)


def test_join_during_publish_gets_the_tag_in_flight_once() -> None:
    hub = Hub("main")
    newcomer = Recorder()
    bursts: list[list[Tag]] = []

    def let_in(_tag: Tag) -> None:
        if not bursts:
            bursts.append(hub.join(newcomer))

    host = Recorder(let_in)
    hub.join(host)
    k = keyframe(0)
    hub.publish(k)
    # The state was updated before the offers, so the newcomer's burst holds k; it is not offered k again.
    assert _same(bursts[0], [k])
    assert newcomer.tags == []
    p = inter(33)
    hub.publish(p)
    assert _same(newcomer.tags, [p])


def test_publish_without_subscribers_still_updates_the_state() -> None:
    hub = Hub("main")
    vh, k = video_header(), keyframe()
    hub.publish(vh)
    hub.publish(k)
    assert _same(hub.state.init_burst(), [vh, k])
