"""RTMP chunk stream, writing: what we send, framed (RTMP 1.0, section 5.3), and the wire
constants both directions use, kept here once.

Every message starts with a type-0 header and continues with type-3 chunks. That costs
4 bytes a message over type-1 compression and makes each message's bytes independent of
what was sent before on its chunk stream, so the fan-out can encode a message's body once
and share it between targets (`body_pieces`, through encoded.py) with only the first
header made per target. `encode_message` frames the rest (commands and protocol control),
which is sent as one bytes object.

Nothing here is ever emitted wrong: a field that does not fit its width (a length past 24
bits would spill into the type byte and make the peer read payload as chunk headers) is a
LocalProtocolError, never a truncated header.
"""

from __future__ import annotations

import struct

from relay.rtmp.errors import LocalProtocolError
from relay.rtmp.limits import MAX_MESSAGE_LENGTH

# The chunk stream ids of what we send (media gets its own, so that one large video frame
# never delays the header state of another kind) and our outgoing chunk size.
COMMAND_CSID = 3
AUDIO_CSID = 4
DATA_CSID = 5
VIDEO_CSID = 6
DEFAULT_OUT_CHUNK_SIZE = 4096

DEFAULT_CHUNK_SIZE = 128  # section 5.4.1: until a Set Chunk Size says otherwise
MAX_CHUNK_SIZE = 0x7FFFFFFF  # section 5.4.1: 31 bits
EXTENDED = 0xFFFFFF  # a 24-bit timestamp field this full means: the real one follows in 4 bytes (5.3.1.3)
MAX_CSID = 65599

_U32 = struct.Struct(">I")  # an extended timestamp
_TYPE0 = struct.Struct(">BHBHB")  # timestamp and length as 24 bits (B + H), type id; stream id follows, LE


def _basic_header(fmt: int, csid: int) -> bytes:
    """The 1-, 2- or 3-byte basic header (5.3.1.1)."""
    if 2 <= csid <= 63:
        return bytes(((fmt << 6) | csid,))
    if 64 <= csid <= 319:
        return bytes((fmt << 6, csid - 64))
    if 320 <= csid <= MAX_CSID:
        return bytes(((fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))
    raise LocalProtocolError(f"chunk stream id {csid} out of range 2..{MAX_CSID}")


def encode_header(csid: int, timestamp: int, length: int, type_id: int, stream_id: int) -> bytes:
    """The type-0 first chunk header of a message, extended timestamp included.

    Every field is checked: a length past 24 bits would otherwise spill into the type byte
    and make the peer read payload as chunk headers. The timestamp is taken modulo 2^32.
    """
    if not 0 <= length <= MAX_MESSAGE_LENGTH:
        raise LocalProtocolError(f"message length {length} does not fit in 24 bits")
    if not 0 <= type_id <= 0xFF:
        raise LocalProtocolError(f"message type {type_id} does not fit in a byte")
    if not 0 <= stream_id <= 0xFFFFFFFF:
        raise LocalProtocolError(f"message stream id {stream_id} does not fit in 32 bits")
    ts = timestamp & 0xFFFFFFFF
    field = EXTENDED if ts >= EXTENDED else ts
    header = (
        _basic_header(0, csid)
        + _TYPE0.pack(field >> 16, field & 0xFFFF, length >> 16, length & 0xFFFF, type_id)
        + stream_id.to_bytes(4, "little")
    )
    if field == EXTENDED:
        header += _U32.pack(ts)
    return header


def encode_body(payload: bytes | memoryview, chunk_size: int, csid: int, timestamp: int = 0) -> bytes:
    """A message's payload split into chunks, the type-3 continuation headers included.

    The result does not depend on the target unless the timestamp is extended, in which
    case every continuation repeats the 4-byte timestamp (5.3.1.3), as Adobe's server does.
    """
    if chunk_size < 1:
        raise LocalProtocolError(f"invalid chunk size {chunk_size}")
    if len(payload) <= chunk_size:
        return bytes(payload)
    return b"".join(body_pieces(payload, chunk_size, csid, timestamp))


def body_pieces(payload: bytes | memoryview, chunk_size: int, csid: int,
                timestamp: int = 0) -> tuple[bytes | memoryview, ...]:
    """encode_body() as pieces for writelines: views of the payload, no copy, and the continuation
    headers between them (a copy per target of every large frame would double what the relay holds)."""
    if chunk_size < 1:
        raise LocalProtocolError(f"invalid chunk size {chunk_size}")
    length = len(payload)
    if length <= chunk_size:
        return (payload,)
    separator = _basic_header(3, csid)
    ts = timestamp & 0xFFFFFFFF
    if ts >= EXTENDED:
        separator += _U32.pack(ts)
    view = memoryview(payload)
    pieces: list[bytes | memoryview] = [view[:chunk_size]]
    for i in range(chunk_size, length, chunk_size):
        pieces.append(separator)
        pieces.append(view[i : i + chunk_size])
    return tuple(pieces)


def encode_message(csid: int, timestamp: int, type_id: int, stream_id: int, payload: bytes,
                   chunk_size: int) -> bytes:
    """A whole message: type-0 header, then the chunked payload."""
    return encode_header(csid, timestamp, len(payload), type_id, stream_id) + encode_body(
        payload, chunk_size, csid, timestamp
    )
