"""The chunk stream (RTMP 1.0 section 5.3): hand-written byte tables for the reader and the writer.

Every table is read whole, one byte at a time and at every two-way split, and must give the
same messages each way. Hex strings use spaces and "|" only for readability.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.rtmp import messages as m
from relay.rtmp.accel import ChunkReader
from relay.rtmp.chunkreader import RawMessage
from relay.rtmp.chunkwriter import DEFAULT_CHUNK_SIZE, MAX_CSID, encode_body, encode_header, encode_message
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.errors import LocalProtocolError, RemoteProtocolError
from tests.support.tags import media_fields

PAYLOAD = bytes(range(256)) * 4  # no 4-byte window of it equals any extended timestamp used below


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace("|", " "))


def drain(reader: ChunkReader, out: list[RawMessage]) -> None:
    """Pull every complete message, applying Set Chunk Size and Abort between pulls as the connection does."""
    while (msg := reader.next_message()) is not None:
        out.append(msg)
        if msg.type_id == m.SET_CHUNK_SIZE:
            reader.set_chunk_size(m.SetChunkSize.from_payload(msg.payload).size)
        elif msg.type_id == m.ABORT:
            reader.abort(m.Abort.from_payload(msg.payload).csid)


def read_pieces(pieces: list[bytes], **limits: int) -> list[RawMessage]:
    reader = ChunkReader(**limits)
    out: list[RawMessage] = []
    for piece in pieces:
        reader.feed(piece)
        drain(reader, out)
    assert reader.bytes_received == sum(len(piece) for piece in pieces)
    return out


def every_split(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    yield "one byte at a time", [data[i : i + 1] for i in range(len(data))]
    for cut in range(len(data) + 1):
        yield f"split at {cut}", [data[:cut], data[cut:]]


def read_every_way(data: bytes, **limits: int) -> list[RawMessage]:
    """The messages in data, read whole, after checking that every split gives the same ones."""
    whole = read_pieces([data], **limits)
    for name, pieces in every_split(data):
        assert read_pieces(pieces, **limits) == whole, name
    return whole


def rejects_every_way(data: bytes, **limits: int) -> None:
    """Reading data raises RemoteProtocolError, whole and one byte at a time."""
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):
        with pytest.raises(RemoteProtocolError):
            read_pieces(pieces, **limits)


def msg(csid: int, timestamp: int, type_id: int, stream_id: int, payload: bytes) -> RawMessage:
    return RawMessage(csid, timestamp, type_id, stream_id, payload)


# --- basic header sizes (5.3.1.1) and type 0 + type 3 continuation ----------------------------------------

# csid, type-0 basic header, type-3 basic header
BASIC_HEADERS = [
    (2, "02", "c2"),
    (3, "03", "c3"),
    (63, "3f", "ff"),  # the last 1-byte id
    (64, "00 00", "c0 00"),  # the first 2-byte id
    (65, "00 01", "c0 01"),
    (319, "00 ff", "c0 ff"),  # the last 2-byte id
    (320, "01 00 01", "c1 00 01"),  # the first id only the 3-byte form holds: (320 - 64) = 0x0100, little endian
    (321, "01 01 01", "c1 01 01"),
    (65599, "01 ff ff", "c1 ff ff"),  # the last id
]


def two_chunk_message(basic0: str, basic3: str) -> bytes:
    # timestamp 0x000102, length 130, type 9 (video), message stream 1 (little endian);
    # 128 bytes, then a type-3 continuation with the last 2.
    return h(f"{basic0} | 000102 | 000082 | 09 | 01000000") + PAYLOAD[:128] + h(basic3) + PAYLOAD[128:130]


@pytest.mark.parametrize(("csid", "basic0", "basic3"), BASIC_HEADERS)
def test_basic_header_sizes_read(csid: int, basic0: str, basic3: str) -> None:
    data = two_chunk_message(basic0, basic3)
    assert read_every_way(data) == [msg(csid, 0x102, 9, 1, PAYLOAD[:130])]


@pytest.mark.parametrize(("csid", "basic0", "basic3"), BASIC_HEADERS)
def test_basic_header_sizes_written(csid: int, basic0: str, basic3: str) -> None:
    data = two_chunk_message(basic0, basic3)
    assert encode_message(csid, 0x102, 9, 1, PAYLOAD[:130], 128) == data
    assert encode_header(csid, 0x102, 130, 9, 1) == data[: len(h(basic0)) + 11]


@pytest.mark.parametrize(("csid", "basic0", "basic3"), [(64, "01 00 00", "c1 00 00"), (319, "01 ff 00", "c1 ff 00")])
def test_3_byte_form_of_a_2_byte_id_is_accepted(csid: int, basic0: str, basic3: str) -> None:
    # 5.3.1.1: the 3-byte form covers 64..65599, so a peer may use it for ids the 2-byte form holds.
    assert read_every_way(two_chunk_message(basic0, basic3)) == [msg(csid, 0x102, 9, 1, PAYLOAD[:130])]


@pytest.mark.parametrize("csid", [0, 1, MAX_CSID + 1, -1])
def test_writer_refuses_ids_out_of_range(csid: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_header(csid, 0, 1, 8, 1)
    with pytest.raises(LocalProtocolError):
        encode_message(csid, 0, 8, 1, PAYLOAD[:200], 128)


# --- header types 0, 1, 2, 3 (5.3.1.2) and timestamp deltas -----------------------------------------------

HEADER_TYPES = h(
    # type 0: timestamp 100, length 3, type 8, stream 1
    "04 | 000064 | 000003 | 08 | 01000000 | 616263"
    # type 1: delta 20, length 4, type 9; the stream id carries over
    "44 | 000014 | 000004 | 09 | 64656667"
    # type 2: delta 30; length and type carry over
    "84 | 00001e | 68696a6b"
    # type 3 starting a new message: everything carries over, the delta of 30 included
    "c4 | 6c6d6e6f"
    "c4 | 70717273"
    # type 1 with a delta of 0, then type 3 repeating that 0
    "44 | 000000 | 000002 | 08 | 7475"
    "c4 | 7677"
)


def test_header_types_and_accumulating_deltas() -> None:
    assert read_every_way(HEADER_TYPES) == [
        msg(4, 100, 8, 1, b"abc"),
        msg(4, 120, 9, 1, b"defg"),
        msg(4, 150, 9, 1, b"hijk"),
        msg(4, 180, 9, 1, b"lmno"),
        msg(4, 210, 9, 1, b"pqrs"),
        msg(4, 210, 8, 1, b"tu"),
        msg(4, 210, 8, 1, b"vw"),
    ]


def test_type_3_right_after_type_0_repeats_the_timestamp() -> None:
    # A type-0 header registers no delta here: a new message in a type-3 chunk right after
    # it keeps the same timestamp. Section 5.3.1.2.4 can be read as reusing the type-0
    # timestamp as the delta (ffmpeg's reader does), but nginx-rtmp reads it as we do, and
    # that is what librtmp means when it sends one (it picks type 3 only for an equal timestamp).
    data = h("05 | 000028 | 000001 | 08 | 01000000 | 61   c5 | 62")
    assert read_every_way(data) == [msg(5, 40, 8, 1, b"a"), msg(5, 40, 8, 1, b"b")]


def test_type_0_resets_the_delta_and_sets_the_stream_id() -> None:
    data = h(
        "04 | 000064 | 000001 | 08 | 01000000 | 61"
        "84 | 00000a | 62"  # delta 10 -> 110
        "04 | 000005 | 000001 | 08 | 02000000 | 63"  # absolute 5 on stream 2, backwards
        "c4 | 64"  # delta 0 after a type 0
    )
    assert read_every_way(data) == [
        msg(4, 100, 8, 1, b"a"),
        msg(4, 110, 8, 1, b"b"),
        msg(4, 5, 8, 2, b"c"),
        msg(4, 5, 8, 2, b"d"),
    ]


def test_zero_length_message() -> None:
    data = h("03 | 000007 | 000000 | 12 | 01000000   43 | 000001 | 000002 | 12 | 6566")
    assert read_every_way(data) == [msg(3, 7, 18, 1, b""), msg(3, 8, 18, 1, b"ef")]


# --- the published stream's audio and video, made into the connection's events by the reader -------------

def test_the_published_streams_audio_and_video_come_out_as_what_make_media_makes() -> None:
    # While a publisher is accepted, the server has the reader make its media events itself (one
    # object per message): audio and video of the published stream only, in one chunk, in several
    # or empty; everything else stays a RawMessage for the connection to dispatch.
    key, inter = b"\x17\x01" + PAYLOAD[:100], b"\x27\x01" + PAYLOAD[:300]
    metadata, command = b"\x02\x00\x0aonMetaData", b"\x02\x00\x07publish"
    data = b"".join((
        encode_message(6, 40, m.VIDEO, 1, key, 128),  # one chunk
        encode_message(6, 80, m.VIDEO, 1, inter, 128),  # three chunks
        encode_message(4, 50, m.AUDIO, 1, b"", 128),  # empty
        encode_message(4, 60, m.AUDIO, 2, b"\xaf\x01", 128),  # another message stream
        encode_message(5, 70, m.DATA_AMF0, 1, metadata, 128),  # data: the connection unwraps it
        encode_message(3, 0, m.COMMAND_AMF0, 1, command, 128),
    ))
    raw = [msg(4, 60, m.AUDIO, 2, b"\xaf\x01"), msg(5, 70, m.DATA_AMF0, 1, metadata),
           msg(3, 0, m.COMMAND_AMF0, 1, command)]
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):
        reader = ChunkReader()
        reader.media_stream_id, reader.make_media = 1, EncodedMessage
        out: list[object] = []
        for piece in pieces:
            reader.feed(piece)
            while (message := reader.next_message()) is not None:
                out.append(message)
        assert media_fields(out) == [(m.VIDEO, 40, key), (m.VIDEO, 80, inter), (m.AUDIO, 50, b""), *raw]
        assert isinstance(out[0], EncodedMessage) and out[0].is_keyframe and reader.messages_read == 6
    # Without a media stream (the default, a client's reader, a server not publishing): RawMessages only.
    assert read_pieces([data]) == [msg(6, 40, m.VIDEO, 1, key), msg(6, 80, m.VIDEO, 1, inter),
                                   msg(4, 50, m.AUDIO, 1, b""), *raw]


# --- timestamps modulo 2^32 ------------------------------------------------------------------------------

def librtmp_shared_stream(repeat: bool) -> bytes:
    """Audio and video on one chunk stream, as librtmp sends them; optionally repeating extended fields on type 3."""
    again = "ffffffd9 |" if repeat else ""
    return h(
        "04 | 0003e8 | 000004 | 09 | 01000000 | 17010000"  # video at 1000
        # audio at 980: the delta is the 32-bit wrap of -20, which needs the extended field
        "44 | ffffff | 000004 | 08 | ffffffec | af010203"
        "44 | 00003c | 000004 | 09 | 27010000"  # video at 1040: a plain header again
        "44 | ffffff | 000004 | 08 | ffffffd9 | af040506"  # audio at 1001: delta -39
        f"c4 | {again} af070809"  # a new message repeating the delta -39: 962
        "84 | 000014 | af0a0b0c"  # delta 20: 982
    )


@pytest.mark.parametrize("repeat", [True, False], ids=["repeated-field", "no-repeated-field"])
def test_wrapped_negative_delta_gives_a_lower_timestamp(repeat: bool) -> None:
    assert read_every_way(librtmp_shared_stream(repeat)) == [
        msg(4, 1000, 9, 1, h("17010000")),
        msg(4, 980, 8, 1, h("af010203")),
        msg(4, 1040, 9, 1, h("27010000")),
        msg(4, 1001, 8, 1, h("af040506")),
        msg(4, 962, 8, 1, h("af070809")),
        msg(4, 982, 8, 1, h("af0a0b0c")),
    ]


def test_timestamp_wraps_forward_past_2_32() -> None:
    data = h(
        "06 | ffffff | 000001 | 09 | 01000000 | fffffff0 | 61"  # absolute 2^32 - 16
        "86 | 000020 | 62"  # +32: 16, not 2^32 + 16
        "c6 | 63"  # +32: 48
    )
    assert read_every_way(data) == [
        msg(6, 0xFFFFFFF0, 9, 1, b"a"),
        msg(6, 0x10, 9, 1, b"b"),
        msg(6, 0x30, 9, 1, b"c"),
    ]


# --- extended timestamps (5.3.1.3) -----------------------------------------------------------------------

def test_extended_timestamp_on_type_0_1_2() -> None:
    data = h(
        "06 | fffffe | 000001 | 09 | 01000000 | 61"  # 0xfffffe still fits in 24 bits
        "06 | ffffff | 000001 | 09 | 01000000 | 00ffffff | 62"  # 0xffffff itself is sent extended
        "06 | 000000 | 000001 | 09 | 01000000 | 63"
        "46 | ffffff | 000001 | 08 | 01000000 | 64"  # type 1, delta 2^24
        "86 | ffffff | 01000001 | 65"  # type 2, delta 2^24 + 1
        "86 | 000002 | 66"  # a plain type 2 after an extended one
    )
    assert read_every_way(data) == [
        msg(6, 0xFFFFFE, 9, 1, b"a"),
        msg(6, 0xFFFFFF, 9, 1, b"b"),
        msg(6, 0, 9, 1, b"c"),
        msg(6, 0x1000000, 8, 1, b"d"),
        msg(6, 0x2000001, 8, 1, b"e"),
        msg(6, 0x2000003, 8, 1, b"f"),
    ]


def extended_continuations(repeat: bool) -> bytes:
    """A 300-byte message at 0x01020304 (type 0), a 200-byte one 2^24 later (type 1), a type-3 new message."""
    again = "01020304" if repeat else ""
    delta = "01000000" if repeat else ""
    return (
        h("06 | ffffff | 00012c | 09 | 01000000 | 01020304") + PAYLOAD[:128]
        + h(f"c6 {again}") + PAYLOAD[128:256]
        + h(f"c6 {again}") + PAYLOAD[256:300]
        + h("46 | ffffff | 0000c8 | 09 | 01000000") + PAYLOAD[300:428]
        + h(f"c6 {delta}") + PAYLOAD[428:500]
        + h(f"c6 {delta}") + PAYLOAD[500:628]  # a new message: delta 2^24 again, length 200
        + h(f"c6 {delta}") + PAYLOAD[628:700]
    )


@pytest.mark.parametrize("repeat", [True, False], ids=["repeated-field", "no-repeated-field"])
def test_extended_timestamp_on_type_3_chunks_in_both_dialects(repeat: bool) -> None:
    assert read_every_way(extended_continuations(repeat)) == [
        msg(6, 0x01020304, 9, 1, PAYLOAD[:300]),
        msg(6, 0x02020304, 9, 1, PAYLOAD[300:500]),
        msg(6, 0x03020304, 9, 1, PAYLOAD[500:700]),
    ]


def test_short_last_chunk_without_the_repeated_field_waits_for_the_next_bytes() -> None:
    # Without the repeated field, a 2-byte last chunk cannot be told from the start of a
    # repeated field until 4 bytes are in: the message completes when the next chunk's
    # bytes arrive, not before, and nothing is lost.
    first = h("06 | ffffff | 000082 | 09 | 01000000 | 01020304") + PAYLOAD[:128] + h("c6") + PAYLOAD[128:130]
    second = h("04 | 000000 | 000003 | 08 | 01000000 | 616263")
    reader = ChunkReader()
    reader.feed(first)
    assert reader.next_message() is None
    reader.feed(second)
    assert reader.next_message() == msg(6, 0x01020304, 9, 1, PAYLOAD[:130])
    assert reader.next_message() == msg(4, 0, 8, 1, b"abc")
    assert read_every_way(first + second) == [msg(6, 0x01020304, 9, 1, PAYLOAD[:130]), msg(4, 0, 8, 1, b"abc")]


# --- interleaving, chunk size, abort ---------------------------------------------------------------------

def test_interleaved_messages_on_two_chunk_streams() -> None:
    data = (
        h("06 | 000000 | 00012c | 09 | 01000000") + PAYLOAD[:128]  # video, 300 bytes: first chunk
        + h("04 | 000000 | 00000a | 08 | 01000000") + PAYLOAD[500:510]  # a whole audio message
        + h("c6") + PAYLOAD[128:256]  # video continues
        + h("84 | 000015") + PAYLOAD[510:520]  # audio, delta 21
        + h("c6") + PAYLOAD[256:300]  # video ends
    )
    assert read_every_way(data) == [
        msg(4, 0, 8, 1, PAYLOAD[500:510]),
        msg(4, 21, 8, 1, PAYLOAD[510:520]),
        msg(6, 0, 9, 1, PAYLOAD[:300]),
    ]


def test_chunk_size_changes_between_messages() -> None:
    data = (
        h("02 | 000000 | 000004 | 01 | 00000000 | 000000c8")  # Set Chunk Size 200
        + h("03 | 000000 | 00012c | 14 | 00000000") + PAYLOAD[:200] + h("c3") + PAYLOAD[200:300]
        + h("c2 | 00000096")  # Set Chunk Size 150, a type-3 new message repeating the header
        + h("43 | 000000 | 0000a0 | 14") + PAYLOAD[300:450] + h("c3") + PAYLOAD[450:460]
    )
    assert read_every_way(data) == [
        msg(2, 0, 1, 0, h("000000c8")),
        msg(3, 0, 20, 0, PAYLOAD[:300]),
        msg(2, 0, 1, 0, h("00000096")),
        msg(3, 0, 20, 0, PAYLOAD[300:460]),
    ]


def test_default_chunk_size_is_128() -> None:
    assert ChunkReader().chunk_size == DEFAULT_CHUNK_SIZE == 128


def test_abort_drops_a_partial_message() -> None:
    data = (
        h("06 | 000000 | 00012c | 09 | 01000000") + PAYLOAD[:128]  # 128 of 300 bytes
        + h("02 | 000000 | 000004 | 02 | 00000000 | 00000006")  # Abort chunk stream 6
        + h("06 | 000010 | 000003 | 09 | 01000000 | 78797a")  # a new message may start with type 0
    )
    assert read_every_way(data) == [msg(2, 0, 2, 0, h("00000006")), msg(6, 16, 9, 1, b"xyz")]


def test_abort_releases_the_partial_bytes() -> None:
    partial = h("06 | 000000 | 00012c | 09 | 01000000") + PAYLOAD[:128]
    abort = h("02 | 000000 | 000004 | 02 | 00000000 | 00000006")
    # A partial message holds a buffer of its declared length (300), and each chunk stream its
    # header state (STREAM_OVERHEAD): two partial messages would exceed 800; with the abort
    # between them only one is held.
    assert read_every_way(partial + abort + partial, max_pending_bytes=800) == [msg(2, 0, 2, 0, h("00000006"))]
    other = h("04 | 000000 | 00012c | 09 | 01000000") + PAYLOAD[:128]
    rejects_every_way(partial + other, max_pending_bytes=800)


def test_abort_of_an_idle_or_unknown_chunk_stream_is_harmless() -> None:
    reader = ChunkReader()
    reader.abort(9)
    reader.feed(h("04 | 000000 | 000001 | 08 | 01000000 | 61"))
    assert reader.next_message() == msg(4, 0, 8, 1, b"a")
    reader.abort(4)
    reader.feed(h("c4 | 62"))
    assert reader.next_message() == msg(4, 0, 8, 1, b"b")


# --- limits ----------------------------------------------------------------------------------------------

def test_message_too_large() -> None:
    assert read_every_way(h("03 | 000000 | 000064 | 14 | 00000000") + PAYLOAD[:100], max_message_size=100)
    rejects_every_way(h("03 | 000000 | 000065 | 14 | 00000000") + PAYLOAD[:101], max_message_size=100)
    # a type-1 header may not grow it past the limit either
    rejects_every_way(h("03 | 000000 | 000001 | 14 | 00000000 | 61   43 | 000000 | 000065 | 14"), max_message_size=100)


def test_chunk_size_limits() -> None:
    reader = ChunkReader(max_chunk_size=1000)
    reader.set_chunk_size(1000)
    assert reader.chunk_size == 1000
    for bad in (1001, 0, 0x80000000):
        with pytest.raises(RemoteProtocolError):
            reader.set_chunk_size(bad)
    assert reader.chunk_size == 1000
    rejects_every_way(h("02 | 000000 | 000004 | 01 | 00000000 | 000003e9"), max_chunk_size=1000)
    rejects_every_way(h("02 | 000000 | 000004 | 01 | 00000000 | 00000000"))  # zero


def test_too_many_partial_bytes() -> None:
    # Partial messages count at their declared length (the buffer they hold), plus their chunk streams.
    one = h("04 | 000000 | 00012c | 09 | 01000000") + PAYLOAD[:128]
    two = h("06 | 000000 | 00012c | 09 | 01000000") + PAYLOAD[:128]
    assert read_every_way(one, max_pending_bytes=800) == []
    rejects_every_way(one + two, max_pending_bytes=800)
    rejects_every_way(one, max_pending_bytes=400)  # one message, refused at its first header


@pytest.mark.parametrize("first", ["84 | 000000 | 61", "c4 | 61"])
def test_first_chunk_of_a_stream_must_say_its_length(first: str) -> None:
    rejects_every_way(h(first))
    # also on a later chunk stream, after another one was set up
    rejects_every_way(h("03 | 000000 | 000001 | 14 | 00000000 | 61") + h(first))


def test_a_type_1_header_may_start_a_stream_as_if_the_previous_one_were_zeroes() -> None:
    # pyrtmp 0.3.1 answers connect this way (type 1 on a chunk stream it never used);
    # ffmpeg, librtmp and nginx-rtmp read it against a zeroed header: message stream 0, time 0.
    data = h("02 | 000000 | 000004 | 01 | 00000000 | 00001000") + h("43 | 000005 | 000001 | 14 | 61")
    assert read_every_way(data) == [msg(2, 0, 1, 0, h("00001000")), msg(3, 5, 0x14, 0, b"a")]


@pytest.mark.parametrize("header", ["04 | 000000 | 000001 | 08 | 01000000", "44 | 000000 | 000001 | 08", "84 | 000000"])
def test_new_header_in_the_middle_of_a_message(header: str) -> None:
    partial = h("04 | 000000 | 00012c | 09 | 01000000") + PAYLOAD[:128]
    rejects_every_way(partial + h(header) + b"a")


# --- the writer --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((3, 1000, 5, 20, 0), "03 | 0003e8 | 000005 | 14 | 00000000"),
        ((4, 0, 0x123456, 9, 0x01020304), "04 | 000000 | 123456 | 09 | 04030201"),  # stream id little endian
        ((6, 0xFFFFFE, 10, 9, 1), "06 | fffffe | 00000a | 09 | 01000000"),
        ((6, 0xFFFFFF, 10, 9, 1), "06 | ffffff | 00000a | 09 | 01000000 | 00ffffff"),
        ((6, 0x01020304, 10, 9, 1), "06 | ffffff | 00000a | 09 | 01000000 | 01020304"),
        ((6, 0xFFFFFFFF, 0, 8, 1), "06 | ffffff | 000000 | 08 | 01000000 | ffffffff"),
        ((6, 2**32 + 7, 0, 8, 1), "06 | 000007 | 000000 | 08 | 01000000"),  # modulo 2^32
    ],
)
def test_encode_header(args: tuple[int, int, int, int, int], expected: str) -> None:
    assert encode_header(*args) == h(expected)


def test_encode_body() -> None:
    assert encode_body(PAYLOAD[:128], 128, 6) == PAYLOAD[:128]  # one chunk: no header at all
    assert encode_body(b"", 128, 6) == b""
    assert encode_body(PAYLOAD[:256], 128, 6) == PAYLOAD[:128] + h("c6") + PAYLOAD[128:256]  # nothing trailing
    assert encode_body(PAYLOAD[:5], 2, 70) == PAYLOAD[:2] + h("c0 06") + PAYLOAD[2:4] + h("c0 06") + PAYLOAD[4:5]
    assert encode_body(memoryview(PAYLOAD)[:300], 128, 4) == (
        PAYLOAD[:128] + h("c4") + PAYLOAD[128:256] + h("c4") + PAYLOAD[256:300]
    )
    # An extended timestamp is repeated on every continuation (5.3.1.3, as Adobe's server does).
    assert encode_body(PAYLOAD[:300], 128, 6, 0x01020304) == (
        PAYLOAD[:128] + h("c6 01020304") + PAYLOAD[128:256] + h("c6 01020304") + PAYLOAD[256:300]
    )
    assert encode_body(PAYLOAD[:130], 128, 6, 0xFFFFFF) == PAYLOAD[:128] + h("c6 00ffffff") + PAYLOAD[128:130]
    assert encode_body(PAYLOAD[:130], 128, 6, 0xFFFFFE) == PAYLOAD[:128] + h("c6") + PAYLOAD[128:130]


def test_encode_message_with_an_extended_timestamp() -> None:
    data = encode_message(6, 0x01020304, 9, 1, PAYLOAD[:300], 128)
    assert data == extended_continuations(repeat=True)[: 16 + 128 + 5 + 128 + 5 + 44]
    assert read_every_way(data) == [msg(6, 0x01020304, 9, 1, PAYLOAD[:300])]


def test_encode_message_is_header_then_body() -> None:
    for ts in (0, 1000, 0xFFFFFF, 0xFFFFFFFF):
        assert encode_message(5, ts, 18, 1, PAYLOAD[:700], 256) == (
            encode_header(5, ts, 700, 18, 1) + encode_body(PAYLOAD[:700], 256, 5, ts)
        )


def test_written_messages_read_back() -> None:
    cases: list[tuple[int, int, int, int, bytes]] = [
        (2, 0, 1, 0, h("00000080")),  # Set Chunk Size 128: no change
        (3, 0, 20, 0, PAYLOAD[:300]),
        (64, 0xFFFFFF, 9, 1, PAYLOAD[:129]),
        (319, 0xFFFFFFFF, 8, 1, PAYLOAD[:257]),
        (320, 12345, 18, 1, PAYLOAD[:128]),
        (MAX_CSID, 0x7FFFFFFF, 9, 7, PAYLOAD[:10]),
        (4, 1, 8, 1, b""),
    ]
    data = b"".join(encode_message(*case, 128) for case in cases)
    assert read_every_way(data) == [msg(*case) for case in cases]


@settings(max_examples=150, deadline=None)
@given(
    chunk_size=st.sampled_from([128, 129, 200, 1000, 4096]),
    messages=st.lists(
        st.tuples(
            st.sampled_from([2, 3, 4, 63, 64, 65, 319, 320, 1000, MAX_CSID]),
            st.one_of(st.integers(0, 0xFFFFFF + 2), st.integers(0, 2**32 - 1)),
            st.sampled_from([8, 9, 18, 20]),
            st.integers(0, 2**32 - 1),
            st.integers(0, 1100),
        ),
        max_size=8,
    ),
    cuts=st.lists(st.integers(0, 20_000), max_size=6),
)
def test_any_written_messages_read_back_in_any_split(
    chunk_size: int, messages: list[tuple[int, int, int, int, int]], cuts: list[int]
) -> None:
    expected = [msg(csid, ts, type_id, sid, PAYLOAD[:size]) for csid, ts, type_id, sid, size in messages]
    set_chunk_size = encode_message(2, 0, m.SET_CHUNK_SIZE, 0, m.SetChunkSize(chunk_size).to_payload(), 128)
    data = set_chunk_size + b"".join(
        encode_message(csid, ts, type_id, sid, PAYLOAD[:size], chunk_size) for csid, ts, type_id, sid, size in messages
    )
    points = sorted({min(cut, len(data)) for cut in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    got = read_pieces(pieces, max_chunk_size=4096)
    assert got[0] == msg(2, 0, 1, 0, h(f"{chunk_size:08x}"))
    assert got[1:] == expected
