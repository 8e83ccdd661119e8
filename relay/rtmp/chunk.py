"""RTMP chunk stream: the framing under every RTMP message (RTMP 1.0, section 5.3).

Reading: `ChunkReader.feed(bytes)` then `next_message()` until it returns None. It is
pull-based on purpose: a Set Chunk Size changes how the *next* chunk is framed, so the
connection applies protocol-control messages between two pulls (section 5.4.1).

Header types (5.3.1.2): 0 = full header with absolute timestamp; 1 = delta, length, type;
2 = delta only; 3 = nothing (continuation, or a new message repeating the previous
header). Timestamps are kept modulo 2^32: librtmp sends the 32-bit wrap of a negative
difference as a delta when audio and video share a chunk stream.

Extended timestamps (5.3.1.3): when the 24-bit field is 0xFFFFFF the real value follows
in 4 bytes. Encoders disagree on whether type-3 chunks repeat those 4 bytes (Adobe and
nginx do, older ffmpeg and librtmp do not), so on a type-3 chunk of a chunk stream whose
last header was extended, the next 4 bytes are taken as the repeated field only when
they equal it.

Writing: every message starts with a type-0 header and continues with type-3 chunks.
That costs 4 bytes a message over type-1 compression and makes each message's bytes
independent of what was sent before on its chunk stream, so the fan-out can encode a
message's body once and share it between targets (`encode_body`) with only the first
header (`encode_header`) made per target.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from relay.rtmp.errors import LocalProtocolError, RemoteProtocolError

DEFAULT_CHUNK_SIZE = 128  # section 5.4.1: until a Set Chunk Size says otherwise
MAX_CHUNK_SIZE = 0x7FFFFFFF  # section 5.4.1: 31 bits
EXTENDED = 0xFFFFFF
MAX_CSID = 65599

_U32 = struct.Struct(">I")
_TYPE0 = struct.Struct(">BHBHB")  # timestamp and length as 24 bits (B + H), type id; stream id follows, LE


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One reassembled RTMP message."""

    csid: int
    timestamp: int
    type_id: int
    stream_id: int
    payload: bytes


class _Stream:
    """What the reader remembers about one chunk stream between chunks."""

    __slots__ = ("timestamp", "delta", "length", "type_id", "stream_id", "ext_field", "pieces", "received")

    def __init__(self) -> None:
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.ext_field: int | None = None  # the raw 4-byte field of the last header, if it had one
        self.pieces: list[bytes] = []
        self.received = 0


class ChunkReader:
    """Reassembles messages from the chunk stream a peer sends."""

    def __init__(self, max_chunk_size: int = 1 << 24, max_message_size: int = 1 << 24,
                 max_pending_bytes: int = 1 << 25) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.bytes_received = 0  # total, for acknowledgements
        self._max_chunk_size = max_chunk_size
        self._max_message_size = max_message_size
        self._max_pending = max_pending_bytes  # partial messages held over all chunk streams
        self._pending = 0
        self._buf = bytearray()
        self._pos = 0
        self._streams: dict[int, _Stream] = {}

    def set_chunk_size(self, size: int) -> None:
        """Apply the peer's Set Chunk Size (5.4.1), refusing sizes past our own limit."""
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise RemoteProtocolError(f"invalid chunk size {size}")
        if size > self._max_chunk_size:
            raise RemoteProtocolError(f"chunk size {size} exceeds this relay's limit {self._max_chunk_size}")
        self.chunk_size = size

    def abort(self, csid: int) -> None:
        """Drop the partial message on a chunk stream (Abort Message, 5.4.2)."""
        stream = self._streams.get(csid)
        if stream is not None and stream.received:
            self._pending -= stream.received
            stream.pieces = []
            stream.received = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        self.bytes_received += len(data)
        if self._pos:
            # Compact what was consumed: the buffer only ever holds one partial chunk plus new data.
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_message(self) -> RawMessage | None:
        """The next complete message, or None when more bytes are needed."""
        while True:
            result = self._read_chunk()
            if result is None or isinstance(result, RawMessage):
                return result

    def _read_chunk(self) -> RawMessage | bool | None:
        """Consume one chunk: a message if it completed one, True if not, None if incomplete."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < 1:
            return None
        first = buf[pos]
        fmt = first >> 6
        csid = first & 0x3F
        p = pos + 1
        if csid == 0:  # 2-byte basic header: ids 64..319
            if avail < 2:
                return None
            csid = buf[p] + 64
            p += 1
        elif csid == 1:  # 3-byte basic header: ids 64..65599, little endian
            if avail < 3:
                return None
            csid = buf[p] + (buf[p + 1] << 8) + 64
            p += 2
        stream = self._streams.get(csid)
        if stream is None:
            if fmt != 0:
                raise RemoteProtocolError(f"chunk stream {csid} starts with a type-{fmt} header, not type 0")
            stream = self._streams[csid] = _Stream()
        end = len(buf)
        # Parse into locals first: the chunk may be incomplete, and then nothing may change.
        timestamp = stream.timestamp
        delta = stream.delta
        length = stream.length
        type_id = stream.type_id
        stream_id = stream.stream_id
        ext = stream.ext_field
        if fmt == 3:
            if ext is not None:
                if end - p < 4:
                    return None
                if _U32.unpack_from(buf, p)[0] == ext:
                    p += 4
            if stream.received == 0:  # a new message repeating the previous header
                timestamp = (timestamp + delta) & 0xFFFFFFFF
        else:
            if stream.received:
                raise RemoteProtocolError(f"type-{fmt} header in the middle of a message on chunk stream {csid}")
            need = (11, 7, 3)[fmt]
            if end - p < need:
                return None
            field = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
            if fmt <= 1:
                length = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5]
                type_id = buf[p + 6]
                if length > self._max_message_size:
                    raise RemoteProtocolError(f"message of {length} bytes exceeds the limit {self._max_message_size}")
                if fmt == 0:
                    stream_id = int.from_bytes(buf[p + 7 : p + 11], "little")
            p += need
            ext = None
            if field == EXTENDED:
                if end - p < 4:
                    return None
                field = ext = _U32.unpack_from(buf, p)[0]
                p += 4
            if fmt == 0:
                timestamp = field
                delta = 0
            else:
                timestamp = (timestamp + field) & 0xFFFFFFFF
                delta = field
        remaining = length - stream.received
        size = remaining if remaining < self.chunk_size else self.chunk_size
        if end - p < size:
            return None
        self._pos = p + size
        stream.timestamp = timestamp
        stream.delta = delta
        stream.length = length
        stream.type_id = type_id
        stream.stream_id = stream_id
        stream.ext_field = ext
        if stream.received == 0 and size == stream.length:
            # The common case with a large chunk size: one chunk, one message, one copy.
            return RawMessage(csid, stream.timestamp, stream.type_id, stream.stream_id, bytes(buf[p : p + size]))
        stream.pieces.append(bytes(buf[p : p + size]))
        stream.received += size
        if stream.received < stream.length:
            self._pending += size
            if self._pending > self._max_pending:
                raise RemoteProtocolError(f"over {self._max_pending} bytes of partial messages held")
            return True
        self._pending -= stream.received - size
        payload = b"".join(stream.pieces)
        stream.pieces = []
        stream.received = 0
        return RawMessage(csid, stream.timestamp, stream.type_id, stream.stream_id, payload)


# --- writing ---------------------------------------------------------------------------

MAX_MESSAGE_LENGTH = 0xFFFFFF  # section 5.3.1.2.1: the message length field is 24 bits


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
    """The type-0 first chunk header of a message, extended timestamp included."""
    if not 0 <= length <= MAX_MESSAGE_LENGTH:
        # A longer message cannot be framed: its length would wrap, and the peer would read
        # the rest of the payload as chunks (an injection), so refuse rather than truncate.
        raise LocalProtocolError(f"message of {length} bytes does not fit the 24-bit length field")
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
    if len(payload) <= chunk_size:
        return bytes(payload)
    return b"".join(body_pieces(payload, chunk_size, csid, timestamp))


def body_pieces(payload: bytes | memoryview, chunk_size: int, csid: int,
                timestamp: int = 0) -> tuple[bytes | memoryview, ...]:
    """encode_body() as pieces for writelines: views of the payload, no copy, and the continuation
    headers between them (a copy per target of every large frame would double what the relay holds)."""
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
