"""Encode once, send everywhere: an EncodedMessage's chunk bytes are built once and shared,
and what a connection sends with them is byte for byte what the one-message encoder
(chunkwriter.encode_message) writes for the same tag. The message is the tag itself (a Tag,
and the server's media event): one object per message, whose memory the GOP's bound counts."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from relay.fanout.hub import Hub
from relay.fanout.streamstate import StreamState
from relay.flv import AUDIO, SCRIPT, VIDEO, Tag
from relay.rtmp import messages as m
from relay.rtmp.accel import ChunkReader
from relay.rtmp.chunkwriter import DEFAULT_OUT_CHUNK_SIZE, EXTENDED, encode_message
from relay.rtmp.client import ClientConnection
from relay.rtmp.encoded import CSID_FOR_KIND, SET_DATA_FRAME, EncodedMessage, held_bytes
from relay.rtmp.errors import LocalProtocolError
from relay.rtmp.events import Event
from tests.support.tags import media_fields
from tests.unit.rtmp.test_connection import MEDIA, Pair

HOURS_4_66 = 0xFFFFFF  # 16,777,215 ms: 4 h 39 min 37 s, where the 24-bit timestamp field runs out
PAYLOAD = random.Random(7).randbytes(10_000)


def published(chunk_size: int) -> Pair:
    return Pair(client_args={"out_chunk_size": chunk_size}).publish()


def sent_bytes(client: ClientConnection) -> bytes:
    return client.data_to_send()


def one_by_one(tag: Tag, stream_id: int, chunk_size: int) -> bytes:
    """A tag's message as the one-message encoder writes it: script data wrapped in @setDataFrame."""
    wire = SET_DATA_FRAME + tag.payload if tag.kind == SCRIPT else tag.payload
    return encode_message(CSID_FOR_KIND[tag.kind], tag.timestamp, tag.kind, stream_id, wire, chunk_size)


@pytest.mark.parametrize("chunk_size", [128, 4096, 60_000])
def test_send_encoded_is_byte_for_byte_the_one_message_encoder(chunk_size: int) -> None:
    a, b = published(chunk_size), published(chunk_size)
    a.client.data_to_send()
    b.client.data_to_send()
    tags = [Tag(kind, ts, payload) for kind, ts, payload in MEDIA]
    tags += [Tag(VIDEO, ts, b"\x27\x01" + PAYLOAD[: 300 + ts % 7000]) for ts in (100, 0xFFFFFE, 0xFFFFFF, 2**32 - 1)]
    expected = b"".join(one_by_one(t, a.client.stream_id, chunk_size) for t in tags)
    messages = [EncodedMessage(t.kind, t.timestamp, t.payload) for t in tags]
    sent = b.client.send_encoded(messages, [t.timestamp for t in tags])
    assert sent_bytes(b.client) == expected
    assert sent == sum(len(t.payload) + (len(SET_DATA_FRAME) if t.kind == SCRIPT else 0) for t in tags)
    for message in messages:  # one at a time: the same bytes
        assert a.client.send_message(message, message.timestamp) == message.length
    assert sent_bytes(a.client) == expected


def test_what_send_encoded_sends_decodes() -> None:
    pair = published(4096)
    messages = [EncodedMessage(kind, ts, payload) for kind, ts, payload in MEDIA]
    pair.client.send_encoded(messages, [t.timestamp for t in messages])
    pair.pump()
    assert media_fields(pair.server_events[2:]) == [(t.kind, t.timestamp, t.payload) for t in messages]


def test_the_body_is_built_once_per_chunk_size_and_shared() -> None:
    message = EncodedMessage(VIDEO, 5000, b"\x17\x01" + PAYLOAD)
    targets = [published(4096) for _ in range(3)] + [published(128)]
    for pair in targets:
        pair.client.data_to_send()
        pair.client.send_encoded([message], [1000])
    assert set(message.bodies) == {4096, 128}  # two chunk sizes: two bodies, no more
    outs = [pair.client.take_output() for pair in targets]
    for out, chunk_size in zip(outs, (4096, 4096, 4096, 128), strict=True):
        header, *body = out
        assert len(header) == 12
        assert all(a is b for a, b in zip(body, message.bodies[chunk_size], strict=True))  # the shared pieces
        reader = ChunkReader()
        reader.set_chunk_size(chunk_size)
        reader.feed(b"".join(out))
        msg = reader.next_message()
        assert msg is not None and msg.payload == message.payload and msg.timestamp == 1000
    # The pieces are views of the payload, not copies: the frames a joiner gets are held once.
    views = [p for p in message.bodies[4096] if isinstance(p, memoryview)]
    assert len(views) == 3 and all(v.obj is message.payload for v in views)
    assert sum(len(p) for p in message.bodies[4096]) == len(message.payload) + 2  # + two 1-byte headers


def test_past_4_66_hours_the_body_is_per_timestamp_and_still_shared() -> None:
    """Past 0xFFFFFF ms every type-3 continuation repeats the extended timestamp (RTMP 1.0 5.3.1.3):
    a body then belongs to one timestamp; targets on the same timeline still share it."""
    message = EncodedMessage(VIDEO, 7, b"\x27\x01" + PAYLOAD)
    late = HOURS_4_66 + 1234  # two targets that connected together, 4.66 h into their connection
    other = HOURS_4_66 + 99  # one that connected a little later
    outputs = []
    for ts in (late, late, other, 1000):
        pair = published(4096)
        pair.client.data_to_send()
        pair.client.send_encoded([message], [ts])
        outputs.append((ts, pair.client.take_output()))
    separators = [out[2] for _ts, out in outputs]  # header, first view, continuation header, ...
    assert separators[0] is separators[1]  # same timestamp: the same body, shared
    assert separators[2] is not separators[0] and separators[3] is not separators[0]
    assert len(message.bodies) == 3
    assert all(out[1].obj is message.payload for _ts, out in outputs)  # views of the one payload, never copies
    for ts, out in outputs:
        data = b"".join(out)
        # Exactly what the one-target encoder writes, continuations repeating the timestamp when extended.
        assert data == encode_message(6, ts, VIDEO, 1, message.payload, 4096)
        separator = b"\xc6" + (ts.to_bytes(4, "big") if ts >= EXTENDED else b"")
        assert data[12 + (4 if ts >= EXTENDED else 0) + 4096:].startswith(separator)
        reader = ChunkReader()
        reader.set_chunk_size(4096)
        reader.feed(data)
        msg = reader.next_message()
        assert msg is not None and (msg.timestamp, msg.payload) == (ts, message.payload)


def test_a_script_tag_too_long_with_its_wrapper_is_never_sent() -> None:
    """16,777,200 bytes of script data plus @setDataFrame overflow the 24-bit length: refuse, never wrap."""
    message = EncodedMessage(SCRIPT, 0, b"\x02\x00\x0aonMetaData" + bytes(0xFFFFFF - len(SET_DATA_FRAME) + 1 - 13))
    assert message.length == 0xFFFFFF + 1 and not message.sendable
    ok = EncodedMessage(AUDIO, 0, b"\xaf\x01" + bytes(100))
    pair = published(4096)
    pair.client.data_to_send()
    for ts in (10, 0x1000000):  # the fast path and the extended one
        sent = pair.client.send_encoded([message, ok], [ts, ts])
        assert sent == ok.length
        out = pair.client.take_output()
        assert len(out) == 2 and out[1] is ok.payload
    assert pair.client.send_message(message, 0) == 0 and pair.client.take_output() == []


def test_a_message_too_long_has_no_header_and_send_message_skips_it() -> None:
    huge = EncodedMessage(SCRIPT, 0, b"\x02\x00\x0aonMetaData" + bytes(0xFFFFFF))
    assert not huge.sendable and huge.head == 0  # never on the fast path
    with pytest.raises(LocalProtocolError):
        huge.header(0, 1)
    pair = published(4096)
    pair.client.data_to_send()
    assert pair.client.send_message(huge, 10) == 0 and pair.client.send_message(huge, 0x1000000) == 0
    assert pair.client.take_output() == []


def test_a_tag_of_another_kind_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        EncodedMessage(20, 0, b"\x02\x00\x04play")  # a command, not media


def test_output_bytes_counts_shared_bodies_as_their_bytes() -> None:
    # The bodies are memoryviews of the payload: the output bound must read their size in bytes.
    pair = published(128)
    pair.client.data_to_send()
    messages = [EncodedMessage(VIDEO, 33 * i, b"\x27\x01" + PAYLOAD) for i in range(3)]
    messages.append(EncodedMessage(AUDIO, 5, b"\xaf\x01" + bytes(7)))
    pair.client.send_encoded(messages, [t.timestamp for t in messages])
    pair.client.send_message(EncodedMessage(VIDEO, 200, b"\x17\x01" + PAYLOAD), 200)
    queued = pair.client.output_bytes
    out = pair.client.take_output()
    assert any(isinstance(piece, memoryview) for piece in out)
    assert queued == len(b"".join(out)) > 4 * len(PAYLOAD)
    assert pair.client.output_bytes == 0


def test_send_encoded_refuses_outside_publishing() -> None:
    client = ClientConnection("live", "rtmp://192.0.2.1/live", "key")
    with pytest.raises(LocalProtocolError):
        client.send_encoded([EncodedMessage(AUDIO, 0, b"\xaf\x01")], [0])


@pytest.mark.parametrize("kind, payload", [
    (VIDEO, b"\x17\x01" + PAYLOAD[:10]),  # keyframe
    (VIDEO, b"\x17\x00" + PAYLOAD[:10]),  # sequence header
    (VIDEO, b"\x27\x01" + PAYLOAD[:10]),  # inter frame
    (AUDIO, b"\xaf\x00\x12\x10"),  # AAC sequence header
    (SCRIPT, b"\x02\x00\x0aonMetaData"),
])
def test_the_message_is_the_tag_with_its_classification_and_its_chunk_fields(kind: int, payload: bytes) -> None:
    message = EncodedMessage(kind, 42, payload)
    tag = Tag(kind, 42, payload)
    assert isinstance(message, Tag) and isinstance(message, Event)  # one object: the tag, and the server's event
    assert (message.kind, message.timestamp, message.payload) == (kind, 42, payload)
    assert (message.is_keyframe, message.is_header) == (tag.is_keyframe, tag.is_header)
    assert message.csid == CSID_FOR_KIND[kind]
    assert message.length == len(payload) + (len(SET_DATA_FRAME) if kind == SCRIPT else 0)
    message.body(128, 0)
    assert not hasattr(message, "__dict__") and message.payload is payload
    assert f"{len(payload)} bytes" in repr(message) and repr(payload)[2:-1] not in repr(message)  # size, not bytes
    assert m.VIDEO == VIDEO


class _Encoder:
    """A sender that builds each message's body at the targets' chunk size, as a target's first write does."""

    def offer_message(self, message: EncodedMessage) -> None:
        message.body(DEFAULT_OUT_CHUNK_SIZE, message.timestamp)


@pytest.mark.parametrize("size", [0, 200, 5_000, 40_000])
def test_the_gop_bound_counts_the_messages_it_keeps_with_their_bodies(size: int) -> None:
    # The hub keeps every GOP message (with its body, once a target has sent it) for joiners to
    # share: the GOP's memory bound must count all of it, or a flood of frames would hold more than
    # it says. The live stream's hub weighs its messages so (relay/live/stream.py).
    hub: Hub[EncodedMessage] = Hub("studio", StreamState(weigh=held_bytes))
    hub.join_sender(_Encoder())
    payloads = [b"\x17\x01" + PAYLOAD[: max(0, size - 2)]] + [
        b"\x27\x01" + random.Random(i).randbytes(max(0, size - 2)) for i in range(1, 200)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, payload in enumerate(payloads):
            hub.publish(EncodedMessage(VIDEO, i * 33, payload))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(hub.state.gop) == len(payloads)
    payload_bytes = sum(map(len, payloads))
    assert hub.state.gop_bytes == sum(held_bytes(t) for t in hub.state.gop)
    # What is held beyond the payloads (made before measuring) is within the count, and near it.
    assert grown <= hub.state.gop_bytes - payload_bytes <= 2 * grown + 100 * len(payloads)


def test_held_bytes_counts_a_body_per_chunk_and_the_wrapped_copy_of_script_data() -> None:
    small, large = Tag(VIDEO, 0, b"\x27\x01"), Tag(VIDEO, 0, b"\x27\x01" + bytes(3 * DEFAULT_OUT_CHUNK_SIZE))
    assert held_bytes(large) - held_bytes(small) >= 4 * 184  # four memoryviews at least
    script_tag = Tag(SCRIPT, 0, bytes(1000))
    assert held_bytes(script_tag) > held_bytes(Tag(AUDIO, 0, bytes(1000))) + 1000
