"""One connection's primer: onMetaData and the sequence headers in force before any frame, a repeated
header left out on the connection that has it, and a frame sent without its header repaired, not passed on."""

from __future__ import annotations

from collections.abc import Sequence

from relay.fanout.primer import Primer
from relay.fanout.streamstate import StreamState
from relay.flv import Tag
from tests.support.tags import audio, audio_header, inter, keyframe, metadata, script, video_header

MP3_AUDIO = Tag(8, 0, b"\x2f" + b"\x55" * 15)  # MP3 has no sequence header


def state_of(*tags: Tag) -> StreamState:
    state = StreamState()
    for tag in tags:
        state.update(tag)
    return state


def in_force(state: StreamState) -> list[Tag]:
    return [t for t in (state.metadata, state.video_header, state.audio_header) if t is not None]


def admit(primer: Primer[Tag], tags: Sequence[Tag], state: StreamState) -> list[Tag]:
    return list(primer.admit(tags, state, lambda: in_force(state)))


def same(a: Sequence[Tag], b: Sequence[Tag]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def test_a_burst_in_order_goes_out_as_it_is_and_the_same_list_comes_back() -> None:
    tags = [metadata(), video_header(), audio_header(), keyframe(0), audio(10), inter(33)]
    state = state_of(*tags)
    primer: Primer[Tag] = Primer()
    assert primer.admit(tags, state, lambda: in_force(state)) is tags  # nothing copied
    later = [audio(43), inter(66), script(70)]
    assert primer.admit(later, state, lambda: in_force(state)) is later
    assert primer.faults == 0


def test_a_header_this_connection_has_is_left_out_and_a_changed_one_goes() -> None:
    vh, ah = video_header(), audio_header()
    state = state_of(metadata(), vh, ah)
    primer: Primer[Tag] = Primer()
    admit(primer, [metadata(), vh, ah, keyframe(0)], state)
    again, frame = video_header(), inter(33)  # equal bytes: the publisher came back inside the window
    assert same(admit(primer, [again, audio_header(), frame], state), [frame])
    changed = video_header(size=24)
    state.update(changed)
    assert same(admit(primer, [changed, keyframe(66)], state)[:1], [changed])
    assert primer.faults == 0


def test_a_new_connection_is_sent_headers_another_connection_had() -> None:
    # The stop/start bug: the headers were already "sent" (to the last session's connection).
    vh, ah, meta = video_header(), audio_header(), metadata()
    state = state_of(meta, vh, ah)
    first: Primer[Tag] = Primer()
    admit(first, [meta, vh, ah, keyframe(0)], state)
    second: Primer[Tag] = Primer()
    burst = [meta, vh, ah, keyframe(100)]
    assert same(admit(second, burst, state), burst)


def test_frames_without_their_header_wait_for_a_keyframe_that_gets_the_headers_in_force() -> None:
    meta, vh, ah = metadata(), video_header(), audio_header()
    state = state_of(meta, vh, ah, keyframe(0))
    primer: Primer[Tag] = Primer()
    p1, p2, k = inter(33), inter(66), keyframe(100)
    out = admit(primer, [p1, p2, k, inter(133)], state)
    assert same(out[:3], [meta, vh, k]) and out[3].timestamp == 133
    assert primer.faults == 3  # two frames left out, one repaired
    assert primer.take_skipped() == (2, len(p1.payload) + len(p2.payload))
    assert primer.take_skipped() == (0, 0)
    a = audio(140)
    assert same(admit(primer, [a], state), [ah, a])  # audio decodes from any frame once it has its header
    assert primer.faults == 4
    assert admit(primer, [inter(166), audio(170)], state)  # primed: as they are
    assert primer.faults == 4


def test_a_missing_onmetadata_goes_before_the_first_frame() -> None:
    meta, vh = metadata(), video_header()
    state = state_of(meta, vh)
    primer: Primer[Tag] = Primer()
    k = keyframe(0)
    assert same(admit(primer, [vh, k], state), [vh, meta, k])
    assert primer.faults == 1


def test_a_stream_without_metadata_or_without_an_audio_header_is_not_a_fault() -> None:
    vh = video_header()
    state = state_of(vh, MP3_AUDIO)
    primer: Primer[Tag] = Primer()
    tags = [vh, keyframe(0), MP3_AUDIO, inter(33)]
    assert same(admit(primer, tags, state), tags)
    late = metadata(40)  # onMetaData mid-stream: in order, nothing to repair
    state.update(late)
    more = [late, inter(66), MP3_AUDIO]
    assert same(admit(primer, more, state), more)
    assert primer.faults == 0


def test_headers_before_frames_in_one_batch_judged_in_order() -> None:
    # A connection that joined before the publisher sent anything: the headers come through the feed.
    state = StreamState()
    primer: Primer[Tag] = Primer()
    assert admit(primer, [], state) == []
    tags = [metadata(), video_header(), audio_header(), keyframe(0), audio(0)]
    for tag in tags:
        state.update(tag)
    assert same(admit(primer, tags, state), tags)
    assert primer.faults == 0
