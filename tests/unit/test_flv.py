"""Byte tables for the keyframe / sequence-header tests, and FLV tag encoding and reading."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.errors import RelayError
from relay.flv import (
    AUDIO,
    SCRIPT,
    VIDEO,
    FLVError,
    Tag,
    encode_tag,
    file_header,
    is_audio_sequence_header,
    is_metadata,
    is_video_keyframe,
    is_video_sequence_header,
    iter_tags,
    read_tags,
)

CTS = b"\x00\x00\x00"  # composition time offset (SI24) after AVC / HEVC CodedFrames

# (payload, is_video_keyframe, is_video_sequence_header, Tag.is_keyframe, Tag.is_header)
# is_video_keyframe means "a keyframe picture": sequence headers, end-of-sequence markers and
# Enhanced metadata carry the keyframe frame type but are no picture to resume a target on.
VIDEO_TABLE: list[tuple[str, bytes, bool | None, bool, bool, bool]] = [
    # Classic FLV, E.4.3.1: FrameType << 4 | CodecID, then AVCPacketType.
    ("avc sequence header", b"\x17\x00" + CTS + b"\x01\x64", False, True, False, True),
    ("avc keyframe nalu", b"\x17\x01" + CTS + b"\x65", True, False, True, False),
    ("avc inter nalu", b"\x27\x01" + CTS + b"\x41", False, False, False, False),
    ("avc disposable inter", b"\x37\x01" + CTS + b"\x01", False, False, False, False),
    ("avc end of sequence", b"\x17\x02" + CTS, False, False, False, False),
    ("avc keyframe without packet type", b"\x17", False, False, False, False),
    ("hevc (codec 12) sequence header", b"\x1c\x00" + CTS, False, True, False, True),
    ("hevc (codec 12) keyframe", b"\x1c\x01" + CTS, True, False, True, False),
    ("vp6 keyframe (no packet type)", b"\x14\x00", True, False, True, False),
    ("vp6 inter", b"\x24\x00", False, False, False, False),
    # Enhanced RTMP: 0x80 IsExHeader | FrameType << 4 | VideoPacketType, then a FourCC.
    ("hevc SequenceStart", b"\x90hvc1\x01\x02", False, True, False, True),
    ("hevc CodedFrames keyframe", b"\x91hvc1" + CTS + b"\x26", True, False, True, False),
    ("hevc CodedFrames inter", b"\xa1hvc1" + CTS + b"\x02", False, False, False, False),
    ("hevc CodedFramesX keyframe", b"\x93hvc1\x26", True, False, True, False),
    ("hevc CodedFramesX inter", b"\xa3hvc1\x02", False, False, False, False),
    ("hevc SequenceEnd", b"\x92hvc1", False, False, False, False),
    ("hevc Metadata", b"\x94hvc1\x02", False, False, False, False),
    ("hevc MPEG2TSSequenceStart", b"\x95hvc1", False, True, False, True),
    ("av1 SequenceStart", b"\x90av01\x81", False, True, False, True),
    ("av1 CodedFrames keyframe", b"\x91av01\x12", True, False, True, False),
    ("av1 CodedFrames inter", b"\xa1av01\x32", False, False, False, False),
    ("vp9 CodedFrames keyframe", b"\x91vp09\x82", True, False, True, False),
    # Multitrack (packet type 6): the inner packet type is the low nibble of byte 1.
    ("multitrack SequenceStart", b"\x96\x00hvc1", None, True, False, True),
    ("multitrack CodedFrames", b"\x96\x01hvc1", True, False, True, False),
    ("empty", b"", False, False, False, False),
]


@pytest.mark.parametrize(
    ("payload", "key", "header", "tag_key", "tag_header"),
    [row[1:] for row in VIDEO_TABLE],
    ids=[row[0] for row in VIDEO_TABLE],
)
def test_video_classification(
    payload: bytes, key: bool | None, header: bool, tag_key: bool, tag_header: bool
) -> None:
    if key is not None:  # None: the function alone is not asked (the Tag's header test wins)
        assert is_video_keyframe(payload) is key
        assert is_video_keyframe(memoryview(payload)) is key
    assert is_video_sequence_header(payload) is header
    tag = Tag(VIDEO, 0, payload)
    assert tag.is_keyframe is tag_key
    assert tag.is_header is tag_header
    assert not (tag.is_keyframe and tag.is_header)


@pytest.mark.parametrize("packet_type", [1, 3])
@pytest.mark.parametrize("fourcc", [b"hvc1", b"av01"])
def test_enhanced_keyframe_is_not_read_the_classic_way(packet_type: int, fourcc: bytes) -> None:
    """`byte >> 4 == 1` reads 9 for an Enhanced keyframe (IsExHeader is bit 7): the trap."""
    key = bytes((0x80 | 1 << 4 | packet_type,)) + fourcc
    inter_frame = bytes((0x80 | 2 << 4 | packet_type,)) + fourcc
    assert key[0] >> 4 == 9
    assert is_video_keyframe(key)
    assert Tag(VIDEO, 0, key).is_keyframe
    assert not is_video_keyframe(inter_frame)
    assert not Tag(VIDEO, 0, inter_frame).is_keyframe


@given(st.integers(0, 7), st.integers(0, 15), st.binary(max_size=8))
def test_enhanced_frame_type_is_bits_4_to_6(frame_type: int, packet_type: int, rest: bytes) -> None:
    payload = bytes((0x80 | frame_type << 4 | packet_type,)) + rest
    picture = packet_type in (1, 3, 6)  # CodedFrames, CodedFramesX, Multitrack
    assert is_video_keyframe(payload) is (frame_type == 1 and picture)
    if frame_type != 1:
        assert not Tag(VIDEO, 0, payload).is_keyframe


# (payload, is_audio_sequence_header)
AUDIO_TABLE: list[tuple[str, bytes, bool]] = [
    ("aac sequence header", b"\xaf\x00\x12\x10", True),
    ("aac raw", b"\xaf\x01\x21\x00", False),
    ("aac mono 22 kHz header", b"\xaa\x00\x13\x88", True),
    ("mp3 (no packet type)", b"\x2f\x00\xff", False),
    ("enhanced audio SequenceStart", b"\x90Opus", True),
    ("enhanced audio CodedFrames", b"\x91Opus", False),
    ("one byte", b"\xaf", False),
    ("empty", b"", False),
]


@pytest.mark.parametrize(("payload", "header"), [r[1:] for r in AUDIO_TABLE], ids=[r[0] for r in AUDIO_TABLE])
def test_audio_classification(payload: bytes, header: bool) -> None:
    assert is_audio_sequence_header(payload) is header
    tag = Tag(AUDIO, 0, payload)
    assert tag.is_header is header
    assert tag.is_keyframe is False  # audio frames never start a GOP


def test_script_tags_are_neither_header_nor_keyframe() -> None:
    # Bytes that would be a video keyframe / AAC header are not read as such in a script tag.
    for payload in (b"\x17\x00", b"\xaf\x00", b"\x02\x00\x0aonMetaData"):
        tag = Tag(SCRIPT, 0, payload)
        assert not tag.is_header
        assert not tag.is_keyframe


def test_tag_fields_and_no_cache_slot() -> None:
    tag = Tag(VIDEO, 1234, b"\x17\x01\x00\x00\x00")
    assert (tag.kind, tag.timestamp, tag.payload) == (VIDEO, 1234, b"\x17\x01\x00\x00\x00")
    # Encoded forms live in the hub's EncodedMessage, not on the tag: there is nowhere to put one.
    assert not hasattr(tag, "wire") and not hasattr(tag, "__dict__")
    with pytest.raises(AttributeError):
        tag.wire = b""  # type: ignore[attr-defined]
    assert "key" in repr(tag)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00", True),
        (b"\x02\x00\x0aonMetaData", True),
        (b"\x02\x00\x0aonTextData\x08", False),
        (b"\x02\x00\x0d@setDataFrame\x02\x00\x0aonMetaData", False),
        (b"\x02\x00\x0aonMeta", False),
        (b"", False),
    ],
)
def test_is_metadata(payload: bytes, expected: bool) -> None:
    assert is_metadata(payload) is expected
    assert is_metadata(memoryview(payload)) is expected


# --- files ------------------------------------------------------------------------------


def test_file_header_bytes() -> None:
    assert file_header() == b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
    assert file_header(has_video=False)[4] == 0x04
    assert file_header(has_audio=False)[4] == 0x01
    assert file_header(has_audio=False, has_video=False)[4] == 0x00


def test_encode_tag_bytes() -> None:
    # FLV spec E.4.1: type, DataSize (UI24), Timestamp (UI24), TimestampExtended (UI8), StreamID (UI24 = 0),
    # then the body and PreviousTagSize = 11 + DataSize.
    assert encode_tag(VIDEO, 0x01020304, b"ab") == (
        b"\x09" b"\x00\x00\x02" b"\x02\x03\x04" b"\x01" b"\x00\x00\x00" b"ab" b"\x00\x00\x00\x0d"
    )
    assert encode_tag(AUDIO, 0, b"") == b"\x08" + b"\x00" * 10 + b"\x00\x00\x00\x0b"
    big = encode_tag(SCRIPT, 0, b"x" * 0x012345)
    assert big[1:4] == b"\x01\x23\x45"
    assert big[-4:] == (0x012345 + 11).to_bytes(4, "big")


def test_encode_tag_masks_timestamps_to_32_bits() -> None:
    assert encode_tag(AUDIO, (1 << 32) + 5, b"") == encode_tag(AUDIO, 5, b"")


@pytest.mark.parametrize("ts", [0, 1, 0xFFFFFF, 1 << 24, 0x12345678, 0xFFFFFFFF])
def test_round_trip_timestamps(ts: int) -> None:
    data = file_header() + encode_tag(VIDEO, ts, b"\x17\x01\x00\x00\x00") + encode_tag(AUDIO, ts, b"\xaf\x01")
    tags = read_tags(data)
    assert [(t.kind, t.timestamp, t.payload) for t in tags] == [
        (VIDEO, ts, b"\x17\x01\x00\x00\x00"),
        (AUDIO, ts, b"\xaf\x01"),
    ]
    assert tags[0].is_keyframe


_tag_triples = st.lists(
    st.tuples(st.sampled_from([AUDIO, VIDEO, SCRIPT]), st.integers(0, 0xFFFFFFFF), st.binary(max_size=64)),
    max_size=20,
)


@given(_tag_triples)
def test_round_trip_property(triples: list[tuple[int, int, bytes]]) -> None:
    data = file_header() + b"".join(encode_tag(k, ts, p) for k, ts, p in triples)
    assert [(k, ts, bytes(p)) for k, ts, p in iter_tags(data)] == triples
    assert [(t.kind, t.timestamp, t.payload) for t in read_tags(data)] == triples


@given(_tag_triples.filter(bool), st.data())
def test_truncated_last_tag_is_dropped_quietly(triples: list[tuple[int, int, bytes]], data: st.DataObject) -> None:
    whole = file_header() + b"".join(encode_tag(k, ts, p) for k, ts, p in triples)
    last_len = 11 + len(triples[-1][2]) + 4
    # Cut anywhere inside the last tag's header or body (its PreviousTagSize may go too).
    cut = data.draw(st.integers(1, last_len - 4), label="bytes cut before the PreviousTagSize")
    truncated = whole[: len(whole) - 4 - cut]
    assert [(t.kind, t.timestamp, t.payload) for t in read_tags(truncated)] == triples[:-1]


def test_truncated_examples() -> None:
    one = encode_tag(VIDEO, 40, b"\x27\x01\x00\x00\x00\x41")
    whole = file_header() + one + one
    assert len(read_tags(whole)) == 2
    assert len(read_tags(whole[:-4])) == 2  # only the trailing PreviousTagSize is missing: the tag is whole
    assert len(read_tags(whole[:-5])) == 1  # one body byte short
    assert len(read_tags(whole[: len(file_header()) + len(one) + 5])) == 1  # half a tag header
    assert read_tags(file_header()) == []
    assert read_tags(file_header()[:9]) == []  # no PreviousTagSize0 either


def test_reader_honours_data_offset_and_reserved_bits() -> None:
    # DataOffset 13: four extra header bytes before PreviousTagSize0 (FLV spec E.2).
    header = b"FLV\x01\x05\x00\x00\x00\x0d" + b"\xee" * 4 + b"\x00\x00\x00\x00"
    tag = bytearray(encode_tag(VIDEO, 7, b"\x17\x01"))
    tag[0] |= 0x20  # the Filter bit (E.4.1): the tag type is the low 5 bits
    kinds = [(k, ts, bytes(p)) for k, ts, p in iter_tags(header + bytes(tag))]
    assert kinds == [(VIDEO, 7, b"\x17\x01")]


@pytest.mark.parametrize(
    "data",
    [b"", b"FL", b"FLV\x01", b"GIF89a\x01\x00\x01\x00\x00\x00\x00", b"\x00" * 13, b"flv\x01\x05\x00\x00\x00\x09"],
)
def test_non_flv_raises(data: bytes) -> None:
    with pytest.raises(FLVError):
        read_tags(data)
    with pytest.raises(FLVError):
        list(iter_tags(data))


def test_flv_error_is_a_relay_error() -> None:
    assert issubclass(FLVError, RelayError)


def test_read_tags_copies_payloads_out_of_the_buffer() -> None:
    buf = bytearray(file_header() + encode_tag(AUDIO, 0, b"\xaf\x01\x02"))
    tags = read_tags(memoryview(buf))
    buf[-6] = 0xFF  # scribble over the source buffer
    assert tags[0].payload == b"\xaf\x01\x02"
    assert isinstance(tags[0].payload, bytes)
