"""The fan-out point: every subscriber gets the same Tag objects, in order; joiners get the init burst."""

from __future__ import annotations

from collections.abc import Callable

from relay.fanout.accel import Hub
from relay.fanout.streamstate import StreamState, tag_weight
from relay.flv import SCRIPT, VIDEO, Tag
from tests.support.tags import (
    audio,
    audio_header,
    inter,
    keyframe,
    metadata,
    same_objects,
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


def test_publish_offers_the_same_tag_objects_to_every_subscriber_in_order() -> None:
    hub = Hub("main")
    subs = [Recorder() for _ in range(6)]
    for sub in subs:
        hub.join(sub)
    tags = [metadata(), video_header(), audio_header(), keyframe(0), audio(10), inter(33)]
    for tag in tags:
        hub.publish(tag)
    for sub in subs:
        assert same_objects(sub.tags, tags)


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
    assert same_objects(hub.join(Recorder()), [meta, vh, ah, k, a, p])


def test_join_uses_the_given_state() -> None:
    state = StreamState()
    k = keyframe()
    state.update(k)
    hub = Hub("main", state)
    assert hub.state is state
    assert same_objects(hub.join(Recorder()), [k])


def test_a_later_subscriber_is_offered_only_later_tags() -> None:
    hub = Hub("main")
    early, late = Recorder(), Recorder()
    hub.join(early)
    before = [video_header(), keyframe(0), inter(33)]
    for tag in before:
        hub.publish(tag)
    burst = hub.join(late)
    assert same_objects(burst, before)  # what it missed comes as the burst, not as offers
    after = [inter(66), keyframe(2000)]
    for tag in after:
        hub.publish(tag)
    assert same_objects(late.tags, after)
    assert same_objects(early.tags, before + after)


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
    assert same_objects(a.tags, [first]) and same_objects(b.tags, [first]) and same_objects(c.tags, [first])
    second = inter(33)
    hub.publish(second)
    assert same_objects(a.tags, [first]) and same_objects(b.tags, [first, second]) and same_objects(c.tags, [first])
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
    assert same_objects(bursts[0], [k])
    assert newcomer.tags == []
    p = inter(33)
    hub.publish(p)
    assert same_objects(newcomer.tags, [p])


def test_publish_without_subscribers_still_updates_the_state() -> None:
    hub = Hub("main")
    vh, k = video_header(), keyframe()
    hub.publish(vh)
    hub.publish(k)
    assert same_objects(hub.state.init_burst(), [vh, k])


# --- senders: the same object for every target and subscriber ---------------------------------


class Sender:
    def __init__(self) -> None:
        self.messages: list[Tag] = []

    def offer_message(self, message: Tag) -> None:
        self.messages.append(message)


def test_senders_and_subscribers_are_offered_the_published_objects_themselves() -> None:
    # One object per tag: what the hub is given is what every target sends and every subscriber
    # reads (in the relay, the EncodedMessage the ingest made; never a wrapper made per tag here).
    hub: Hub[Tag] = Hub("main")
    senders = [Sender() for _ in range(6)]
    recorder = Recorder()
    hub.join(recorder)
    for sender in senders:
        assert hub.join_sender(sender) == []
    tags = [video_header(), audio_header(), keyframe(0), audio(10), inter(33)]
    for tag in tags:
        hub.publish(tag)
    for sender in senders:
        assert same_objects(sender.messages, tags)
    assert same_objects(recorder.tags, tags)
    assert hub.senders == tuple(senders) and hub.subscribers == (recorder,)


def test_joiners_get_the_published_objects_of_the_init_burst() -> None:
    hub: Hub[Tag] = Hub("main")
    first = Sender()
    hub.join_sender(first)
    meta, vh, ah, k, a, p = metadata(), video_header(), audio_header(), keyframe(0), audio(10), inter(33)
    for tag in (meta, vh, ah, inter(-33), k, a, p):
        hub.publish(tag)
    burst = hub.join_sender(Sender())
    assert same_objects(burst, [meta, vh, ah, k, a, p])
    assert same_objects(burst[3:], first.messages[4:])  # what the live fan-out sent, not copies
    assert same_objects(hub.join(Recorder()), burst)
    assert same_objects(hub.headers(), [meta, vh, ah])


def test_the_gop_bound_counts_what_the_state_weighs_each_tag() -> None:
    # The live stream's tags hold their chunk bytes too (relay/rtmp/encoded.py held_bytes): its
    # state weighs them so, and a GOP of small frames reaches the bound sooner than its payloads would.
    state: StreamState[Tag] = StreamState(max_gop_bytes=10_000, weigh=lambda tag: 1000 + len(tag.payload))
    hub: Hub[Tag] = Hub("main", state)
    hub.join_sender(Sender())
    hub.publish(keyframe(0, size=100))
    assert state.gop_bytes == 1000 + 100
    for i in range(1, 20):
        hub.publish(inter(i * 33, size=100))
    # Twenty tags of 1.1 KB held each passed the bound (their payloads and Tags alone, 5.2 KB, would not):
    # joiners wait for the next keyframe.
    assert state.gop == [] and state.gop_bytes == 0
    hub.publish(keyframe(2000, size=100))
    assert len(state.gop) == 1
    assert Hub("plain").state.weigh is tag_weight  # by default, a tag's payload and its object


def test_a_sender_leaves() -> None:
    hub: Hub[Tag] = Hub("main")
    a, b = Sender(), Sender()
    hub.join_sender(a)
    hub.join_sender(b)
    hub.join_sender(a)  # twice: once
    hub.publish(keyframe(0))
    hub.leave(a)
    hub.publish(inter(33))
    assert len(a.messages) == 1 and len(b.messages) == 2 and hub.senders == (b,)


# --- followers: the feed --------------------------------------------------------------------


class Follower(Sender):
    """A sender that can follow the feed."""

    def __init__(self) -> None:
        super().__init__()
        self.position = 0
        self.urgent_calls = 0

    def urgent(self) -> None:
        self.urgent_calls += 1


def test_a_follower_reads_the_feed_instead_of_being_offered() -> None:
    hub: Hub[Tag] = Hub("main")
    follower, offered = Follower(), Sender()
    hub.join_sender(follower)
    hub.join_sender(offered)
    follower.position = hub.follow(follower)
    tags = [keyframe(0), audio(10), inter(33)]
    for tag in tags:
        hub.publish(tag)
    assert follower.messages == [] and same_objects(offered.messages, tags)
    read = hub.read(follower)
    assert same_objects(read, tags) and same_objects(read, offered.messages)
    assert hub.read(follower) == []
    hub.publish(inter(66))
    assert [m.timestamp for m in hub.unfollow(follower)] == [66]  # what it had not read
    hub.publish(inter(99))
    assert [m.timestamp for m in follower.messages] == [99]  # offered again
    assert hub.followers == () and hub.feed.messages == []  # nobody follows: nothing kept


def test_followers_are_told_at_once_of_headers_and_script_data_repeated_or_not() -> None:
    # The stop/start bug: a header the hub had published in an earlier session was held back
    # from followers, and a target connection that joined before it never got one.
    hub: Hub[Tag] = Hub("main")
    follower = Follower()
    hub.join_sender(follower)
    follower.position = hub.follow(follower)
    hub.publish(inter(0))
    assert follower.urgent_calls == 0
    hub.publish(video_header())
    hub.publish(metadata())
    assert follower.urgent_calls == 2
    hub.publish(video_header())  # the same configuration again: a new session, a returning publisher
    assert follower.urgent_calls == 3
    assert [m.kind for m in hub.read(follower)] == [VIDEO, VIDEO, SCRIPT, VIDEO]


def test_leaving_stops_following() -> None:
    hub: Hub[Tag] = Hub("main")
    follower = Follower()
    hub.join_sender(follower)
    follower.position = hub.follow(follower)
    hub.publish(inter(0))
    hub.leave(follower)
    assert hub.followers == () and hub.senders == () and hub.feed.messages == []


def test_a_stream_of_script_data_alone_does_not_grow_the_feed() -> None:
    from relay.fanout.hub import TRIM_AT
    from tests.support.tags import script
    hub: Hub[Tag] = Hub("main")
    follower = Follower()
    hub.join_sender(follower)
    follower.position = hub.follow(follower)
    for ts in range(10 * TRIM_AT):
        hub.publish(script(ts))  # urgent: the follower writes (reads the feed) at each one
        hub.read(follower)
    assert len(hub.feed.messages) <= TRIM_AT + 1
