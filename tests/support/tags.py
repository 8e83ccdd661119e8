"""Hand-made FLV tags for the unit tests: one builder per kind of tag the fan-out tells apart.

Byte 0 of each payload follows FLV spec v10.1 E.4.2.1 / E.4.3.1 (classic) or Enhanced RTMP
(bit 7 IsExHeader, bits 4-6 FrameType, bits 0-3 PacketType, then a FourCC). The bytes after
the header are filler: the fan-out looks at nothing else.

Each builder makes the relay's kind of tag, the one object a message is from the ingest to
the targets: an EncodedMessage (relay/rtmp/encoded.py), which is a Tag with its chunk bytes.
A hub, a recorder or a meter reads it as the Tag it is; a target sends it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from relay.flv import AUDIO, SCRIPT, VIDEO, Tag
from relay.rtmp.encoded import EncodedMessage

ON_METADATA = b"\x02\x00\x0aonMetaData"  # AMF0 string "onMetaData" (FLV spec E.5)


def _fill(prefix: bytes, size: int) -> bytes:
    """`prefix` padded with 0x55 to `size` bytes (never shorter than the prefix)."""
    return prefix + b"\x55" * max(0, size - len(prefix))


def video_header(ts: int = 0, size: int = 16) -> EncodedMessage:
    """AVC sequence header: keyframe | AVC (0x17), AVCPacketType 0."""
    return EncodedMessage(VIDEO, ts, _fill(b"\x17\x00\x00\x00\x00", size))


def keyframe(ts: int = 0, size: int = 16) -> EncodedMessage:
    """AVC keyframe NALU: 0x17, AVCPacketType 1."""
    return EncodedMessage(VIDEO, ts, _fill(b"\x17\x01\x00\x00\x00", size))


def inter(ts: int = 0, size: int = 16) -> EncodedMessage:
    """AVC inter frame NALU: inter | AVC (0x27), AVCPacketType 1."""
    return EncodedMessage(VIDEO, ts, _fill(b"\x27\x01\x00\x00\x00", size))


def audio_header(ts: int = 0, size: int = 4) -> EncodedMessage:
    """AAC AudioSpecificConfig: AAC 44 kHz 16-bit stereo (0xAF), AACPacketType 0."""
    return EncodedMessage(AUDIO, ts, _fill(b"\xaf\x00", size))


def audio(ts: int = 0, size: int = 16) -> EncodedMessage:
    """AAC raw frame: 0xAF, AACPacketType 1."""
    return EncodedMessage(AUDIO, ts, _fill(b"\xaf\x01", size))


def metadata(ts: int = 0, size: int = 24) -> EncodedMessage:
    """A script tag carrying onMetaData."""
    return EncodedMessage(SCRIPT, ts, _fill(ON_METADATA, size))


def script(ts: int = 0) -> EncodedMessage:
    """A script tag that is not onMetaData (onTextData)."""
    return EncodedMessage(SCRIPT, ts, b"\x02\x00\x0aonTextData")


def is_header_or_script(tag: Tag) -> bool:
    """What the queue never drops: sequence headers and script data."""
    return tag.is_header or tag.kind == SCRIPT


def same_objects(a: Sequence[Tag], b: Sequence[Tag]) -> bool:
    """The same Tag objects (not equal copies), in the same order: what fan-out shares instead of copying."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def media_fields(events: Iterable[object]) -> list[object]:
    """Each media event (an EncodedMessage) as (kind, timestamp, payload), any other event as it is:
    what a test compares with the tags it sent (a message compares by identity, not by value)."""
    return [(e.kind, e.timestamp, e.payload) if isinstance(e, EncodedMessage) else e for e in events]
