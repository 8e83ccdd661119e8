"""FLV tags and files, and the codec tests the fan-out needs.

A `Tag` is the unit the relay moves around: one audio, video or script-data message with
its timestamp and payload, exactly as an FLV tag body (FLV spec v10.1, annex E.4).
The classification (keyframe, sequence header) is computed once, when the tag is made,
because every target's queue asks for it.

Video payloads come in two dialects:
- classic FLV (E.4.3.1): byte 0 = FrameType (4 bits) | CodecID (4 bits); for AVC/HEVC
  byte 1 is the AVCPacketType, 0 = sequence header;
- Enhanced RTMP (veovera enhanced-rtmp v1/v2): byte 0 bit 7 = IsExHeader, bits 4-6 =
  FrameType, bits 0-3 = VideoPacketType (0 SequenceStart, 1 CodedFrames, 2 SequenceEnd,
  3 CodedFramesX, 4 Metadata, 5 MPEG2TSSequenceStart), then a FourCC (hvc1, av01, vp09...).
The classic `byte >> 4 == 1` keyframe test reads 9 (0x80 | 1 << 4) for an Enhanced
keyframe, so both dialects are decoded explicitly here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Protocol

from relay.errors import RelayError

AUDIO = 8
VIDEO = 9
SCRIPT = 18

_FRAME_KEY = 1
_AVC_OR_HEVC_CODEC_IDS = (7, 12)  # classic AVC, and HEVC as some forks carried it
_EX_SEQUENCE_START = 0
_EX_MPEG2TS_SEQUENCE_START = 5
_EX_MULTITRACK = 6
_EX_PICTURE_PACKETS = (1, 3, _EX_MULTITRACK)  # CodedFrames, CodedFramesX, Multitrack
_AVC_NALU = 1  # AVCPacketType: 0 sequence header, 1 NALU, 2 end of sequence
_AUDIO_AAC = 10
_AUDIO_EX_HEADER = 9  # Enhanced RTMP v2: SoundFormat 9 marks an extended audio header

FLV_HEADER_SIZE = 9
_TAG_HEADER = struct.Struct(">BBHBBBBxxx")  # type, size (24), timestamp (24 + 8 extended), stream id (0)


class FLVError(RelayError):
    """A file or buffer is not valid FLV."""


def is_video_keyframe(payload: bytes | memoryview) -> bool:
    """True if a video payload is a keyframe picture (classic or Enhanced RTMP).

    End-of-sequence markers and Enhanced metadata packets carry the keyframe frame type
    but no picture: a target resumed on one would still wait for a decodable frame.
    """
    if not payload:
        return False
    first = payload[0]
    if first & 0x80:
        return (first >> 4) & 0x07 == _FRAME_KEY and (first & 0x0F) in _EX_PICTURE_PACKETS
    if first >> 4 != _FRAME_KEY:
        return False
    if (first & 0x0F) in _AVC_OR_HEVC_CODEC_IDS:
        return len(payload) > 1 and payload[1] == _AVC_NALU
    return True


def is_video_sequence_header(payload: bytes | memoryview) -> bool:
    """True for a decoder configuration record: AVC/HEVC sequence header or Enhanced SequenceStart."""
    if not payload:
        return False
    first = payload[0]
    if first & 0x80:
        packet_type = first & 0x0F
        return packet_type in (_EX_SEQUENCE_START, _EX_MPEG2TS_SEQUENCE_START) or (
            # A multitrack packet carries its own inner packet type in the next byte's low nibble.
            packet_type == _EX_MULTITRACK and len(payload) > 1 and payload[1] & 0x0F == _EX_SEQUENCE_START
        )
    return (first & 0x0F) in _AVC_OR_HEVC_CODEC_IDS and len(payload) > 1 and payload[1] == 0


def is_audio_sequence_header(payload: bytes | memoryview) -> bool:
    """True for an AAC AudioSpecificConfig or an Enhanced RTMP audio SequenceStart."""
    if len(payload) < 2:
        return False
    sound_format = payload[0] >> 4
    if sound_format == _AUDIO_AAC:
        return payload[1] == 0
    if sound_format == _AUDIO_EX_HEADER:
        return payload[0] & 0x0F == _EX_SEQUENCE_START
    return False


def is_enhanced(kind: int, payload: bytes | memoryview) -> bool:
    """True for an Enhanced RTMP tag: video with IsExHeader (bit 7 of byte 0, as for HEVC,
    AV1, VP9), or audio with SoundFormat 9, the ExHeader of E-RTMP v2 (Opus, FLAC, AC-3...)."""
    if not payload:
        return False
    if kind == VIDEO:
        return bool(payload[0] & 0x80)
    return kind == AUDIO and payload[0] >> 4 == _AUDIO_EX_HEADER


class TagLike(Protocol):
    """What the fan-out's policies read from a tag: a Tag, or a message that carries one's fields."""

    @property
    def kind(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def is_keyframe(self) -> bool: ...
    @property
    def is_header(self) -> bool: ...


class Tag:
    """One FLV tag body with its classification; shared, never mutated, by every subscriber.

    A live stream's tags are of a subclass that also carries the tag's chunk bytes for
    the targets (relay/rtmp/encoded.py's EncodedMessage), so that one object per message
    goes from the publisher's connection to every subscriber and target. A plain Tag is
    what has no RTMP side: a file's tags (`read_tags`), the slate's clip.
    """

    __slots__ = ("kind", "timestamp", "payload", "is_keyframe", "is_header")

    def __init__(self, kind: int, timestamp: int, payload: bytes) -> None:
        self.kind = kind
        self.timestamp = timestamp
        self.payload = payload
        if kind == VIDEO:
            self.is_header = is_video_sequence_header(payload)
            self.is_keyframe = not self.is_header and is_video_keyframe(payload)
        elif kind == AUDIO:
            self.is_header = is_audio_sequence_header(payload)
            self.is_keyframe = False
        else:
            self.is_header = False
            self.is_keyframe = False

    def __repr__(self) -> str:
        flags = "key " if self.is_keyframe else ("header " if self.is_header else "")
        return f"Tag({self.kind}, ts={self.timestamp}, {flags}{len(self.payload)} bytes)"


# --- files -----------------------------------------------------------------------------

def file_header(has_audio: bool = True, has_video: bool = True) -> bytes:
    """The 9-byte FLV header plus PreviousTagSize0 (FLV spec E.2, E.3)."""
    flags = (0x04 if has_audio else 0) | (0x01 if has_video else 0)
    return b"FLV\x01" + bytes((flags,)) + b"\x00\x00\x00\x09" + b"\x00\x00\x00\x00"


def encode_tag(kind: int, timestamp: int, payload: bytes | memoryview) -> bytes:
    """One FLV tag with its trailing PreviousTagSize."""
    size = len(payload)
    ts = timestamp & 0xFFFFFFFF
    header = _TAG_HEADER.pack(
        kind, size >> 16, size & 0xFFFF, (ts >> 16) & 0xFF, (ts >> 8) & 0xFF, ts & 0xFF, ts >> 24
    )
    return b"".join((header, payload, struct.pack(">I", size + 11)))


def iter_tags(data: bytes | memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """Yield (kind, timestamp, payload) for every tag of a whole FLV file held in memory.

    A truncated last tag (a recording cut by a crash) ends the iteration quietly; a
    header that is not FLV raises FLVError.
    """
    view = memoryview(data)
    if len(view) < FLV_HEADER_SIZE or bytes(view[:3]) != b"FLV":
        raise FLVError("not an FLV file (no 'FLV' signature)")
    offset = int.from_bytes(view[5:9], "big") + 4  # DataOffset, then PreviousTagSize0
    end = len(view)
    while offset + 11 <= end:
        kind = view[offset] & 0x1F  # the top bits are reserved / the encryption filter flag
        size = int.from_bytes(view[offset + 1 : offset + 4], "big")
        ts = int.from_bytes(view[offset + 4 : offset + 7], "big") | (view[offset + 7] << 24)
        body = offset + 11
        if body + size > end:
            return
        yield kind, ts, view[body : body + size]
        offset = body + size + 4


def read_tags(data: bytes | memoryview) -> list[Tag]:
    """All tags of an FLV file as Tag objects (payloads copied out of the buffer)."""
    return [Tag(kind, ts, bytes(payload)) for kind, ts, payload in iter_tags(data)]


_ON_METADATA = b"\x02\x00\x0aonMetaData"  # AMF0 string "onMetaData"


def is_metadata(payload: bytes | memoryview) -> bool:
    """True for a script tag carrying onMetaData (the form a late joiner must get first)."""
    return bytes(payload[: len(_ON_METADATA)]) == _ON_METADATA
