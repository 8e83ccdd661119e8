"""The recording's onMetaData: the publisher's own, with `duration` and `filesize` in place to patch.

A player learns a file's length from onMetaData's `duration` (FLV spec v10.1, E.5), so
the recorder writes it as the file's first tag and patches its value when the session
ends. For that it needs `duration` and `filesize` as AMF0 numbers (marker 0x00 and an
8-byte big-endian double, AMF0 spec 2.2) at offsets it knows. The publisher's metadata is
kept byte for byte otherwise: each of the two fields, when present as a number, keeps its
place and gets the value 0 (meaning "unknown" until the patch: ffmpeg, publishing a file,
sends that file's length, which would be wrong for a live recording cut short); when
absent, or not a number, it is (re)written at the end of the object. An ECMA array's
count is updated to the number of pairs written (readers treat it as a hint; section
2.10). Metadata that is not an AMF0 object or ECMA array is replaced by a minimal one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from relay.rtmp import amf0
from relay.rtmp.errors import ProtocolError

_NUMBER = 0x00
_OBJECT = 0x03
_ECMA_ARRAY = 0x08
_OBJECT_END = b"\x00\x00\x09"
_ON_METADATA = amf0.encode("onMetaData")
_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

PATCHED_FIELDS = ("duration", "filesize")


@dataclass(frozen=True, slots=True)
class PreparedMetadata:
    """An onMetaData payload and where, inside it, the 8-byte doubles of the patched fields start."""

    payload: bytes
    duration_at: int
    filesize_at: int


@dataclass(frozen=True, slots=True)
class _Pair:
    key: str
    raw: bytes  # the key and its value, exactly as they arrived
    value_at: int  # offset of the value's marker within `raw`


def number(value: float) -> bytes:
    """The 8 bytes of an AMF0 number's value (after its 0x00 marker)."""
    return _DOUBLE.pack(value)


def _pair_bytes(key: str, value: float) -> bytes:
    name = key.encode()
    return _U16.pack(len(name)) + name + bytes((_NUMBER,)) + number(value)


def _parse(payload: bytes) -> tuple[int, list[_Pair], bytes] | None:
    """(container marker, pairs, trailing bytes) of an onMetaData payload, or None if it is not one."""
    if not payload.startswith(_ON_METADATA) or len(payload) <= len(_ON_METADATA):
        return None
    pos = len(_ON_METADATA)
    marker = payload[pos]
    if marker == _ECMA_ARRAY:
        pos += 5  # marker, u32 count (a hint: the end marker closes the array)
    elif marker == _OBJECT:
        pos += 1
    else:
        return None
    pairs: list[_Pair] = []
    try:
        while True:
            if payload[pos : pos + 3] == _OBJECT_END:
                return marker, pairs, payload[pos + 3 :]
            if pos + 2 > len(payload):
                return None
            (size,) = _U16.unpack_from(payload, pos)
            value_at = pos + 2 + size
            key = payload[pos + 2 : value_at].decode()
            _, end = amf0.decode_one(payload, value_at)
            pairs.append(_Pair(key, payload[pos:end], value_at - pos))
            pos = end
    except (ProtocolError, UnicodeDecodeError, struct.error):
        return None


def prepare(payload: bytes | None) -> PreparedMetadata:
    """The onMetaData to write first: the publisher's (or a minimal one) with both fields at 0."""
    parsed = _parse(payload) if payload is not None else None
    marker, pairs, trailer = parsed if parsed is not None else (_ECMA_ARRAY, [], b"")
    body: list[bytes] = []
    pos = 0  # within the pairs
    offsets: dict[str, int] = {}
    for pair in pairs:
        raw = pair.raw
        if pair.key in PATCHED_FIELDS:
            if pair.key in offsets or raw[pair.value_at] != _NUMBER:
                continue  # a duplicate, or not a number: the field is written at the end instead
            raw = raw[: pair.value_at + 1] + number(0.0)
            offsets[pair.key] = pos + pair.value_at + 1
        body.append(raw)
        pos += len(raw)
    for key in PATCHED_FIELDS:
        if key not in offsets:
            raw = _pair_bytes(key, 0.0)
            offsets[key] = pos + len(raw) - 8
            body.append(raw)
            pos += len(raw)
    head = _ON_METADATA + bytes((marker,))
    if marker == _ECMA_ARRAY:
        head += _U32.pack(len(body))
    payload = b"".join((head, *body, _OBJECT_END, trailer))
    return PreparedMetadata(payload, len(head) + offsets["duration"], len(head) + offsets["filesize"])


def locate(payload: bytes) -> tuple[int, int] | None:
    """Offsets of the `duration` and `filesize` doubles in an onMetaData payload, if both are numbers."""
    parsed = _parse(payload)
    if parsed is None:
        return None
    marker, pairs, _ = parsed
    pos = len(_ON_METADATA) + (5 if marker == _ECMA_ARRAY else 1)
    offsets: dict[str, int] = {}
    for pair in pairs:
        if pair.key in PATCHED_FIELDS and pair.key not in offsets and pair.raw[pair.value_at] == _NUMBER:
            offsets[pair.key] = pos + pair.value_at + 1
        pos += len(pair.raw)
    if len(offsets) != len(PATCHED_FIELDS):
        return None
    return offsets["duration"], offsets["filesize"]
