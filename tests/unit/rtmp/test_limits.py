"""Hostile peers (issue #8): each finding of the review, as a peer with no stream key would play it.

The server is driven by hand-made chunks, so every byte a test sends is visible. Until a
Set Chunk Size says otherwise, a server reads 128-byte chunks.
"""

from __future__ import annotations

import tracemalloc

import pytest

from relay.flv import AUDIO, SCRIPT, VIDEO
from relay.rtmp import amf0
from relay.rtmp import messages as m
from relay.rtmp.accel import ChunkReader
from relay.rtmp.chunkwriter import encode_body, encode_header, encode_message
from relay.rtmp.client import ClientConnection
from relay.rtmp.encoded import MAX_SCRIPT_TAG, EncodedMessage
from relay.rtmp.errors import AMF0Error, LocalProtocolError, ProtocolError, RemoteProtocolError
from relay.rtmp.events import ConnectRequest, DataDropped, Event, PublishRequest
from relay.rtmp.limits import (
    DEFAULT_MAX_COMMAND_SIZE,
    DEFAULT_MAX_UNAUTHENTICATED_MEMORY,
    MAX_CHUNK_STREAMS,
    MAX_COMMAND_VALUES,
    MAX_MESSAGES_BEFORE_PUBLISH,
    MIN_ACK_WINDOW,
)
from relay.rtmp.server import ServerConnection
from tests.support.tags import media_fields

KEY = "sk_hostile_9d1e"


def drain(conn: ServerConnection | ClientConnection) -> list[Event]:
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


def command(*values: object, stream_id: int = 0, chunk_size: int = 128) -> bytes:
    return raw_command(amf0.encode(*values), stream_id=stream_id, chunk_size=chunk_size)


def raw_command(body: bytes, stream_id: int = 0, chunk_size: int = 128) -> bytes:
    return encode_message(3, 0, m.COMMAND_AMF0, stream_id, body, chunk_size)


def control(type_id: int, payload: bytes, chunk_size: int = 128) -> bytes:
    return encode_message(2, 0, type_id, 0, payload, chunk_size)


def handshaken(**limits: int) -> ServerConnection:
    """A server just past the handshake (plain dialect), its output taken."""
    server = ServerConnection(random_bytes=bytes, **limits)
    server.receive_data(b"\x03" + bytes(1536))  # C0 C1
    server.receive_data(bytes(1536))  # C2
    server.data_to_send()
    return server


def connected(**limits: int) -> ServerConnection:
    server = handshaken(**limits)
    server.receive_data(command("connect", 1.0, {"app": "live"}))
    assert isinstance(server.next_event(), ConnectRequest)
    server.accept_connect()
    server.data_to_send()
    return server


def publishing(**limits: int) -> ServerConnection:
    """A publishing server that reads 4096-byte chunks."""
    server = connected(**limits)
    server.receive_data(control(m.SET_CHUNK_SIZE, m.SetChunkSize(4096).to_payload())
                        + command("createStream", 2.0, None) + command("publish", 0.0, None, KEY, "live", stream_id=1,
                                                                        chunk_size=4096))
    assert isinstance(server.next_event(), PublishRequest)
    server.accept_publish()
    assert server.next_event() is None
    server.data_to_send()
    return server


def fails(conn: ServerConnection | ClientConnection, data: bytes, match: str) -> ProtocolError:
    conn.receive_data(data)
    with pytest.raises(ProtocolError, match=match) as info:
        drain(conn)
    return info.value


# --- chunk size 1: small chunks, one buffer per message, bounded work ------------------------------------

@pytest.mark.parametrize("size", [1, 2, 64, 127])
def test_a_chunk_size_under_128_is_refused(size: int) -> None:
    fails(connected(), control(m.SET_CHUNK_SIZE, m.SetChunkSize(size).to_payload()), "chunk size")
    with pytest.raises(RemoteProtocolError):
        ChunkReader().set_chunk_size(size)


def test_a_chunk_size_of_128_is_accepted() -> None:
    server = connected()
    server.receive_data(control(m.SET_CHUNK_SIZE, m.SetChunkSize(128).to_payload()))
    assert drain(server) == []


def test_a_partial_message_is_held_in_one_buffer_of_its_declared_length() -> None:
    # The review's case at the smallest chunk size left: a large message in small chunks,
    # all but the end received. It used to be kept as a list of per-chunk bytes objects.
    length = 1 << 20
    data = encode_message(6, 0, m.VIDEO, 1, bytes(range(256)) * (length // 256), 128)
    head, tail = data[:-10], data[-10:]
    reader = ChunkReader()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        reader.feed(head)
        assert reader.next_message() is None
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < length + 16_384
    assert length <= reader.bytes_held < length + 1000
    reader.feed(tail)
    msg = reader.next_message()
    assert msg is not None and msg.payload == bytes(range(256)) * (length // 256)
    assert reader.bytes_held < 1000


def test_bytes_arriving_in_the_middle_of_a_chunk_are_taken_at_once() -> None:
    # A 4096-byte chunk fed in pieces: the reader holds no unread input between pulls.
    reader = ChunkReader()
    reader.set_chunk_size(4096)
    data = encode_message(6, 0, m.VIDEO, 1, bytes(range(250)) * 12, 4096)
    pieces = [data[i : i + 100] for i in range(0, len(data), 100)]
    for piece in pieces[:-1]:
        reader.feed(piece)
        assert reader.next_message() is None
        assert reader.bytes_held <= 3000 + 200 + 18  # the buffer, one chunk stream, at most a header
    reader.feed(pieces[-1])
    msg = reader.next_message()
    assert msg is not None and msg.payload == bytes(range(250)) * 12


def test_zero_length_messages_past_their_allowance_are_refused() -> None:
    server = publishing()
    first = encode_header(4, 0, 0, m.AUDIO, 1)  # a zero-length audio message, then type-3 repeats of it
    server.receive_data(first + b"\xc4" * 40)
    assert media_fields(drain(server)) == [(m.AUDIO, 0, b"")] * 41  # a few are passed on unchanged
    error = fails(server, b"\xc4" * 10_000, "zero-length")
    assert "zero-length" in str(error)


def test_zero_length_messages_are_allowed_among_real_media() -> None:
    server = publishing()
    frame = encode_message(4, 0, m.AUDIO, 1, b"\xaf\x01" + bytes(4094), 4096)
    empty = encode_message(4, 0, m.AUDIO, 1, b"", 4096)
    server.receive_data((frame + empty) * 500)
    assert len(drain(server)) == 1000


# --- commands: capped until publishing, checked against the state before decoding -----------------------------

def test_a_command_past_the_limit_is_refused_at_its_chunk_header() -> None:
    server = handshaken()
    server.receive_data(encode_header(3, 0, DEFAULT_MAX_COMMAND_SIZE, m.COMMAND_AMF0, 0))
    assert server.next_event() is None  # at the limit: waits for its bytes
    server = handshaken()
    fails(server, encode_header(3, 0, DEFAULT_MAX_COMMAND_SIZE + 1, m.COMMAND_AMF0, 0), "exceeds the limit")


@pytest.mark.parametrize("type_id", [m.COMMAND_AMF3, m.DATA_AMF0, m.DATA_AMF3, m.VIDEO, m.AGGREGATE])
def test_any_message_past_the_command_limit_is_refused_before_publishing(type_id: int) -> None:
    fails(connected(), encode_header(5, 0, 100_000, type_id, 1), "exceeds the limit")


def test_the_limits_widen_once_publishing() -> None:
    server = publishing()
    frame = b"\x17\x01" + bytes(1_000_000)
    script = amf0.encode("onMetaData", {"blob": "x" * 200_000})
    server.receive_data(encode_message(6, 0, m.VIDEO, 1, frame, 4096)
                        + encode_message(5, 0, m.DATA_AMF0, 1, script, 4096))
    assert media_fields(drain(server)) == [(m.VIDEO, 0, frame), (m.DATA_AMF0, 0, script)]


def test_the_command_limit_is_a_constructor_argument() -> None:
    fails(handshaken(max_command_size=2048), encode_header(3, 0, 2049, m.COMMAND_AMF0, 0), "exceeds the limit")


def test_a_command_not_allowed_now_is_refused_before_its_body_is_decoded() -> None:
    broken_body = amf0.encode("createStream", 2.0) + b"\x0b\x00"  # a truncated date: decoding would fail
    error = fails(handshaken(), raw_command(broken_body), "before connect was accepted")
    assert not isinstance(error, AMF0Error)
    error = fails(handshaken(), amf3_command(amf0.encode("publish", 0.0) + b"\x0b"), "'publish' not allowed")
    assert not isinstance(error, AMF0Error)
    server = connected()
    error = fails(server, raw_command(amf0.encode("connect", 3.0) + b"\x0b"),
                  "'connect' not allowed in state CONNECTED")
    assert not isinstance(error, AMF0Error)


def amf3_command(body: bytes) -> bytes:
    return encode_message(3, 0, m.COMMAND_AMF3, 0, b"\x00" + body, 128)


def test_a_long_command_name_is_cut_in_the_error() -> None:
    error = fails(handshaken(), command("x" * 60_000, 1.0), "before connect")
    assert len(str(error)) < 200 and "60000 characters" in str(error)


def test_commands_after_a_refusal_are_ignored_undecoded() -> None:
    server = handshaken()
    server.receive_data(command("connect", 1.0, {"app": "other"}))
    assert isinstance(server.next_event(), ConnectRequest)
    server.reject_connect("unknown app")
    server.data_to_send()
    server.receive_data(command("createStream", 2.0, None) + raw_command(amf0.encode("play", 3.0) + b"\x0b"))
    assert drain(server) == []
    assert server.data_to_send() == b""


def test_a_command_with_too_many_values_is_refused() -> None:
    props = {"app": "live", **{f"k{i}": None for i in range(MAX_COMMAND_VALUES)}}
    fails(handshaken(), command("connect", 1.0, props), "AMF0 values")
    few = {"app": "live", **{f"k{i}": None for i in range(MAX_COMMAND_VALUES // 2 - 10)}}
    server = handshaken()
    server.receive_data(command("connect", 1.0, few))
    assert isinstance(server.next_event(), ConnectRequest)


def test_a_command_named_by_an_object_is_refused_without_decoding_the_object() -> None:
    body = amf0.encode({f"k{i}": None for i in range(5000)}, 1.0)
    fails(handshaken(), raw_command(body), "more than 1 AMF0 values")


def test_partial_messages_before_publishing_stay_under_the_memory_budget() -> None:
    server = connected()
    budget = DEFAULT_MAX_UNAUTHENTICATED_MEMORY
    for csid in range(10, 20):
        # 60,000-byte script messages, each left waiting after its first chunk
        start = encode_message(csid, 0, m.DATA_AMF0, 1, bytes(60_000), 128)[: 12 + 128]
        server.receive_data(start)
        try:
            drain(server)
        except RemoteProtocolError as exc:
            assert "partial messages" in str(exc)
            assert csid - 10 == budget // 60_000  # refused at the first header past the budget
            return
        assert server.bytes_held <= budget
    raise AssertionError("partial messages grew past the budget")


def test_bytes_held_counts_partial_messages_unread_input_and_output() -> None:
    server = ServerConnection(random_bytes=bytes)
    server.receive_data(b"\x03" + bytes(1536))
    assert server.output_bytes == 1 + 1536 + 1536  # S0 S1 S2, not taken yet
    assert server.bytes_held >= server.output_bytes
    assert len(server.data_to_send()) == 1 + 1536 + 1536
    assert server.output_bytes == 0
    server.receive_data(bytes(1536) + encode_message(3, 0, m.COMMAND_AMF0, 0, bytes(1000), 128)[:500])
    assert server.next_event() is None
    assert 1000 <= server.bytes_held < 1000 + 500


def test_replies_a_peer_does_not_read_count_against_its_budget() -> None:
    server = connected(max_unauthenticated_memory=65_536)
    calls = command("FCPublish", 5.0, None, "name")  # answered with _result and onFCPublish
    server.receive_data(calls * 100)
    drain(server)
    assert 10_000 < server.output_bytes <= server.bytes_held <= 65_536
    fails(server, calls * 400, "bytes held")


def test_more_chunk_streams_than_the_limit_are_refused() -> None:
    acks = [encode_message(csid, 0, m.ACKNOWLEDGEMENT, 0, bytes(4), 128) for csid in range(2, 2 + MAX_CHUNK_STREAMS)]
    server = handshaken()
    server.receive_data(b"".join(acks))
    assert drain(server) == []
    fails(server, encode_message(70_000 - 64 * 100, 0, m.ACKNOWLEDGEMENT, 0, bytes(4), 128), "chunk streams")


def test_messages_before_publishing_are_counted() -> None:
    ack = control(m.ACKNOWLEDGEMENT, bytes(4))
    server = connected()
    server.receive_data(ack * (MAX_MESSAGES_BEFORE_PUBLISH - 10))
    assert drain(server) == []
    fails(server, ack * 20, "messages before publishing")
    many = publishing()  # once publishing, no count
    many.receive_data(ack * (2 * MAX_MESSAGES_BEFORE_PUBLISH))
    assert drain(many) == []


# --- replies without backpressure ------------------------------------------------------------------------

def acks_in(data: bytes) -> int:
    reader = ChunkReader()
    reader.feed(data)
    count = 0
    while (msg := reader.next_message()) is not None:
        count += msg.type_id == m.ACKNOWLEDGEMENT
        if msg.type_id == m.SET_CHUNK_SIZE:
            reader.set_chunk_size(m.SetChunkSize.from_payload(msg.payload).size)
    return count


@pytest.mark.parametrize("window", [0, 1, 100])
def test_a_tiny_window_does_not_make_us_ack_every_byte(window: int) -> None:
    server = publishing()
    server.receive_data(control(m.WINDOW_ACK_SIZE, m.WindowAckSize(window).to_payload(), 4096))
    drain(server)
    out = [server.data_to_send()]
    filler = encode_message(4, 0, m.AUDIO, 1, b"\xaf\x01" + bytes(98), 4096) * 200  # 22,400 bytes
    for i in range(len(filler)):
        server.receive_data(filler[i : i + 1])
        drain(server)
        out.append(server.data_to_send())
    sent = acks_in(b"".join(out))
    assert len(filler) // MIN_ACK_WINDOW - 1 <= sent <= len(filler) // MIN_ACK_WINDOW + 1


def test_pings_to_a_peer_that_does_not_read_are_capped() -> None:
    server = publishing(max_output_bytes=65_536)
    ping = control(m.USER_CONTROL, m.UserControl(m.PING_REQUEST, 7).to_payload(), 4096)
    server.receive_data(ping * 100)
    drain(server)
    assert server.output_bytes == 100 * 18 == len(server.data_to_send())  # a reading peer: fine
    server.receive_data(ping * 3000)
    drain(server)
    error = fails(server, ping * 3000, "not reading")
    assert "65536" in str(error)


def test_output_bytes_is_what_is_queued_media_included() -> None:
    client = publishing_client()
    client.data_to_send()
    client.send_message(EncodedMessage(VIDEO, 0, b"\x17\x01" + bytes(9000)), 0)
    client.send_message(EncodedMessage(AUDIO, 0, bytes(100)), 0)
    assert client.output_bytes == len(client.data_to_send()) > 9000
    assert client.output_bytes == 0


def test_set_peer_bandwidth_games_are_capped() -> None:
    server = publishing(max_output_bytes=65_536)
    games = b"".join(control(m.SET_PEER_BANDWIDTH, m.SetPeerBandwidth(1000 + i % 2, 2).to_payload(), 4096)
                     for i in range(10_000))
    fails(server, games, "not reading")


def test_answers_to_calls_are_capped_too() -> None:
    server = publishing(max_output_bytes=65_536)
    fails(server, command("getStreamLength", 5.0, None, chunk_size=4096) * 5000, "not reading")


# --- the 24-bit length: never emitted wrong ------------------------------------------------------------

@pytest.mark.parametrize(
    "args",
    [(3, 0, 0x1000000, 18, 1), (3, 0x1000000, 0x1000000, 18, 1), (3, 0, -1, 9, 1), (3, 0, 10, 256, 1),
     (3, 0, 10, -1, 1), (3, 0, 10, 9, 2**32), (3, 0, 10, 9, -1), (1, 0, 10, 9, 1), (65600, 0, 10, 9, 1)],
)
def test_encode_header_refuses_what_does_not_fit(args: tuple[int, int, int, int, int]) -> None:
    with pytest.raises(LocalProtocolError):
        encode_header(*args)


def test_encode_message_and_body_refuse_what_does_not_fit() -> None:
    with pytest.raises(LocalProtocolError):
        encode_message(5, 0x1000000, m.DATA_AMF0, 1, bytes(0x1000000), 65_536)
    with pytest.raises(LocalProtocolError):
        encode_body(b"abc", 0, 5)


def publishing_client() -> ClientConnection:
    from tests.unit.rtmp.test_connection import Pair

    return Pair().publish().client


@pytest.mark.parametrize("timestamp", [0, 0xFFFFFF, 0x1000000])
def test_a_script_tag_whose_wrapped_length_overflows_is_never_sent(timestamp: int) -> None:
    client = publishing_client()
    client.data_to_send()
    too_long = EncodedMessage(SCRIPT, timestamp, bytes(16_777_200))  # 16 bytes of @setDataFrame too many
    assert not too_long.sendable
    assert client.send_encoded([too_long], [timestamp]) == 0 and client.send_message(too_long, timestamp) == 0
    assert client.data_to_send() == b""
    fits = EncodedMessage(SCRIPT, timestamp, bytes(MAX_SCRIPT_TAG))  # the largest that fits
    assert fits.sendable and client.send_encoded([fits], [timestamp]) == 0xFFFFFF
    assert len(client.data_to_send()) > 0xFFFFFF


@pytest.mark.parametrize("timestamp", [0, 0xFFFFFF, 0x1000000])
def test_a_message_longer_than_24_bits_is_never_sent(timestamp: int) -> None:
    client = publishing_client()
    client.data_to_send()
    too_long = EncodedMessage(VIDEO, timestamp, b"\x27\x01" + bytes(0xFFFFFF - 1))
    assert too_long.length == 0x1000000 and not too_long.sendable
    assert client.send_encoded([too_long], [timestamp]) == 0 and client.send_message(too_long, timestamp) == 0
    with pytest.raises(LocalProtocolError):
        EncodedMessage(7, timestamp, bytes(10))  # no chunk stream for that kind
    assert client.data_to_send() == b""


def test_the_server_drops_a_script_tag_too_long_to_forward() -> None:
    server = publishing()
    server.receive_data(control(m.SET_CHUNK_SIZE, m.SetChunkSize(1 << 20).to_payload(), 4096))
    drain(server)
    # Without @setDataFrame (some encoders send onMetaData bare): a target would add 16 bytes.
    too_long = amf0.encode("onMetaData") + bytes(0xFFFFFF - 13)
    fits = amf0.encode("onMetaData") + bytes(MAX_SCRIPT_TAG - 13)
    server.receive_data(encode_message(5, 40, m.DATA_AMF0, 1, too_long, 1 << 20))
    assert drain(server) == [DataDropped(40, 0xFFFFFF, "script tag too long to forward")]
    assert server.dropped_data_messages == 1
    server.receive_data(encode_message(5, 80, m.DATA_AMF0, 1, fits, 1 << 20))
    assert media_fields(drain(server)) == [(m.DATA_AMF0, 80, fits)]


# --- anything else: aggregates, aborts ---------------------------------------------------------------------

def sub(kind: int, timestamp: int, payload: bytes) -> bytes:
    header = bytes((kind,)) + len(payload).to_bytes(3, "big") + (timestamp & 0xFFFFFF).to_bytes(3, "big")
    return header + bytes((timestamp >> 24,)) + bytes(3) + payload + (11 + len(payload)).to_bytes(4, "big")


def test_an_aggregate_is_split_one_event_at_a_time() -> None:
    server = publishing()
    parts = b"".join(sub(m.AUDIO, i, b"\xaf\x01") for i in range(20_000))  # 340 kB, 20,000 frames
    server.receive_data(encode_message(4, 0, m.AGGREGATE, 1, parts, 4096))
    first = server.next_event()
    assert media_fields([first]) == [(m.AUDIO, 0, b"\xaf\x01")]
    assert len(server._events) == 0  # the other 19,999 are not made yet
    rest = drain(server)
    assert len(rest) == 19_999 and media_fields(rest[-1:]) == [(m.AUDIO, 19_999, b"\xaf\x01")]


def test_an_aggregate_with_an_absurd_sub_length_is_refused() -> None:
    server = publishing()
    bad = sub(m.AUDIO, 0, b"\xaf\x01") + bytes((m.VIDEO,)) + (0xFFFFFF).to_bytes(3, "big") + bytes(7) + b"\x17"
    server.receive_data(encode_message(4, 0, m.AGGREGATE, 1, bad, 4096))
    assert media_fields([server.next_event()]) == [(m.AUDIO, 0, b"\xaf\x01")]
    with pytest.raises(RemoteProtocolError, match="truncated"):
        server.next_event()


def test_abort_gives_back_the_buffer_of_a_partial_message() -> None:
    server = connected()
    server.receive_data(encode_message(8, 0, m.DATA_AMF0, 1, bytes(50_000), 128)[: 12 + 128 + 1 + 128])  # 2 chunks
    drain(server)
    assert server.bytes_held >= 50_000
    server.receive_data(control(m.ABORT, m.Abort(8).to_payload()))
    drain(server)
    assert server.bytes_held < 2_000
