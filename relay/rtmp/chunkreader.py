"""RTMP chunk stream, reading: the framing under every RTMP message (RTMP 1.0, section 5.3).

`ChunkReader.feed(bytes)` then `next_message()` until it returns None. It is pull-based
on purpose: a Set Chunk Size changes how the *next* chunk is framed, so the connection
applies protocol-control messages between two pulls (section 5.4.1). What we send is
framed by chunkwriter.py, which also keeps the wire constants both sides read by.

Header types (5.3.1.2): 0 = full header with absolute timestamp; 1 = delta, length, type;
2 = delta only; 3 = nothing (continuation, or a new message repeating the previous
header). Timestamps are kept modulo 2^32: librtmp sends the 32-bit wrap of a negative
difference as a delta when audio and video share a chunk stream.

Extended timestamps (5.3.1.3): when the 24-bit field is 0xFFFFFF the real value follows
in 4 bytes. Encoders disagree on whether type-3 chunks repeat those 4 bytes (Adobe and
nginx do, older ffmpeg and librtmp do not), so on a type-3 chunk of a chunk stream whose
last header was extended, the next 4 bytes are taken as the repeated field only when
they equal it.

What reading costs, and what it holds (the peer may be hostile, and has no key yet):
- a message that fits in one chunk that has fully arrived is one slice of the input;
- any other message is assembled in one buffer of its declared length, allocated when
  its first chunk header is read (after the length was checked against the limits, so
  nothing is buffered for a message that will be refused) and filled as bytes arrive,
  even in the middle of a chunk. The buffer is an io.BytesIO sized up front: unlike a
  bytearray, it hands its bytes over as the payload without a copy. After a pull returns
  None, the reader holds only those buffers and at most one incomplete chunk header;
- chunk sizes under 128 are refused (5.4.1 says "at least 128"): with 1-byte chunks every
  byte would cost a header parse;
- zero-length messages cost a whole parse for one byte: they are allowed at most one per
  4 KiB received (plus a small allowance), which no real encoder comes near;
- the number of chunk streams, of messages (while `max_messages` is set) and of bytes of
  partial messages are bounded. `parse_steps` and `bytes_copied` count the work done, so
  tests can show it is linear in the bytes fed.

One object per published message. Most messages come out as a `RawMessage` for the
connection to dispatch, but the audio and video of the stream being published (nearly
every message of a publisher) are made into the connection's media event as they complete,
by the `make_media` it gave along with `media_stream_id` (server.py, while publishing): a
RawMessage and then an event would be two objects per tag on the hottest path. The reader
knows no more of them than their message type ids (8 and 9) and the stream id.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

from relay.rtmp.chunkwriter import DEFAULT_CHUNK_SIZE, EXTENDED, MAX_CHUNK_SIZE
from relay.rtmp.errors import RemoteProtocolError
from relay.rtmp.events import Event
from relay.rtmp.limits import (
    BYTES_PER_EMPTY_MESSAGE,
    EMPTY_MESSAGE_ALLOWANCE,
    MAX_CHUNK_STREAMS,
    MIN_CHUNK_SIZE,
    STREAM_OVERHEAD,
)
from relay.rtmp.messages import AUDIO, VIDEO

# Unread input up to this size is joined to the next read as bytes; past it, accumulated in a bytearray.
_SMALL_TAIL = 64

_U32 = struct.Struct(">I")  # an extended timestamp


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

    __slots__ = ("csid", "timestamp", "delta", "length", "type_id", "stream_id", "ext_field", "buffer", "received")

    def __init__(self, csid: int) -> None:
        self.csid = csid
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.ext_field: int | None = None  # the raw 4-byte field of the last header, if it had one
        self.buffer: io.BytesIO | None = None  # the message being assembled, sized at its declared length
        self.received = 0


class _Input:
    """The peer's bytes not yet parsed, kept with as few copies as possible: the usual read
    is taken as it came, and only an incomplete chunk header, or input fed again and again
    without pulls, is joined or accumulated. `bytes_copied` counts the work (the parser
    adds its own), so tests can show it is linear in the bytes fed."""

    def __init__(self) -> None:
        self.bytes_received = 0  # total, for acknowledgements
        self.bytes_copied = 0  # work counter: bytes copied by the reader
        self._data: bytes | bytearray = b""
        self._pos = 0  # where the unparsed input starts in _data

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        size = len(data)
        self.bytes_received += size
        pos = self._pos
        old = self._data
        if pos == len(old):
            # Everything before was consumed (the usual case): keep the caller's bytes, no copy.
            self._data = data if type(data) is bytes else bytes(data)
            self._pos = 0
            if type(data) is not bytes:
                self.bytes_copied += size
        elif isinstance(old, bytes) and len(old) - pos <= _SMALL_TAIL:
            # An incomplete chunk header is left: join it to the new bytes.
            self._data = old[pos:] + bytes(data)
            self._pos = 0
            self.bytes_copied += len(old) - pos + size
        else:
            # Bytes fed again and again without pulls: accumulate, amortized linear.
            if isinstance(old, bytes):
                old = bytearray(old[pos:])
                self.bytes_copied += len(old)
            elif pos:
                del old[:pos]  # O(1) in CPython: the buffer's start moves
            old += data
            self.bytes_copied += size
            self._data = old
            self._pos = 0


class ChunkReader(_Input):
    """Reassembles messages from the chunk stream a peer sends.

    The limits are attributes so that a connection can change them as its peer earns
    trust (publishing) or holds other memory: `max_message_size` (declared length of any
    message), `max_pending_bytes` (buffers of partial messages and the chunk streams'
    state) and `max_messages` (messages in total; None for no limit). So are
    `media_stream_id` and `make_media` (see the module's docstring; -1: no stream).
    """

    def __init__(self, max_chunk_size: int = 1 << 24, max_message_size: int = 1 << 24,
                 max_pending_bytes: int = 1 << 25, max_messages: int | None = None) -> None:
        super().__init__()
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_chunk_size = max_chunk_size
        self.max_message_size = max_message_size
        self.max_pending_bytes = max_pending_bytes
        self.max_messages = max_messages
        self.messages_read = 0
        self.empty_messages = 0
        self.parse_steps = 0  # work counter: header parses, complete or not
        self._pending = 0  # bytes allocated to partial messages
        self._streams: dict[int, _Stream] = {}
        self._current: _Stream | None = None  # whose chunk payload is being read, when _chunk_left
        self._chunk_left = 0  # payload bytes of the current chunk not yet received
        self.media_stream_id = -1  # whose audio and video become make_media(type_id, timestamp, payload)
        self.make_media: Callable[[int, int, bytes], Event] | None = None

    @property
    def bytes_held(self) -> int:
        """Memory this reader holds for the peer: partial messages, unread input, chunk streams."""
        return self._pending + len(self._data) - self._pos + len(self._streams) * STREAM_OVERHEAD

    def set_chunk_size(self, size: int) -> None:
        """Apply the peer's Set Chunk Size (5.4.1), refusing sizes under 128 or past our own limit."""
        if not MIN_CHUNK_SIZE <= size <= MAX_CHUNK_SIZE:
            raise RemoteProtocolError(f"invalid chunk size {size} (the minimum is {MIN_CHUNK_SIZE})")
        if size > self.max_chunk_size:
            raise RemoteProtocolError(f"chunk size {size} exceeds this relay's limit {self.max_chunk_size}")
        self.chunk_size = size

    def abort(self, csid: int) -> None:
        """Drop the partial message on a chunk stream (Abort Message, 5.4.2)."""
        stream = self._streams.get(csid)
        if stream is not None and stream.buffer is not None and stream is not self._current:
            self._pending -= stream.length
            stream.buffer = None
            stream.received = 0

    def next_message(self) -> RawMessage | Event | None:
        """The next complete message (the published stream's media as its event), or None when more bytes are needed."""
        steps = 0
        while True:
            steps += 1
            result = self._continue_chunk() if self._chunk_left else self._read_chunk()
            if result is None:
                self.parse_steps += steps
                if self._pos:
                    # Let go of the consumed input; what is left is an incomplete header.
                    self._data = self._data[self._pos :]
                    self._pos = 0
                return None
            if result is not True:
                self.parse_steps += steps
                self.messages_read += 1
                if self.max_messages is not None and self.messages_read > self.max_messages:
                    raise RemoteProtocolError(f"more than {self.max_messages} messages before publishing")
                return result  # type: ignore[return-value]

    def _read_chunk(self) -> RawMessage | Event | bool | None:
        """Consume one chunk: a message if it completed one, True if not, None if more bytes are needed."""
        buf = self._data
        pos = self._pos
        end = len(buf)
        if pos >= end:
            return None
        first = buf[pos]
        fmt = first >> 6
        csid = first & 0x3F
        p = pos + 1
        if csid == 0:  # 2-byte basic header: ids 64..319
            if end - pos < 2:
                return None
            csid = buf[p] + 64
            p += 1
        elif csid == 1:  # 3-byte basic header: ids 64..65599, little endian
            if end - pos < 3:
                return None
            csid = buf[p] + (buf[p + 1] << 8) + 64
            p += 2
        stream = self._streams.get(csid)
        if stream is None:
            # A type-1 header (delta, length, type) on a fresh chunk stream is read against a
            # zeroed previous header (message stream 0, time 0), as ffmpeg, librtmp and
            # nginx-rtmp read it: some servers (pyrtmp among them) send their first command
            # that way. Types 2 and 3 would leave the length unknown.
            if fmt >= 2:
                raise RemoteProtocolError(f"chunk stream {csid} starts with a type-{fmt} header, not type 0 or 1")
            if len(self._streams) >= MAX_CHUNK_STREAMS:
                raise RemoteProtocolError(f"more than {MAX_CHUNK_STREAMS} chunk streams on one connection")
            stream = self._streams[csid] = _Stream(csid)
        # Parse into locals first: the header may be incomplete, and then nothing may change.
        timestamp = stream.timestamp
        delta = stream.delta
        length = stream.length
        type_id = stream.type_id
        stream_id = stream.stream_id
        ext = stream.ext_field
        received = stream.received
        if fmt == 3:
            if ext is not None:
                if end - p < 4:
                    return None
                if _U32.unpack_from(buf, p)[0] == ext:
                    p += 4
            if received == 0:  # a new message repeating the previous header
                timestamp = (timestamp + delta) & 0xFFFFFFFF
        else:
            if received:
                raise RemoteProtocolError(f"type-{fmt} header in the middle of a message on chunk stream {csid}")
            need = (11, 7, 3)[fmt]
            if end - p < need:
                return None
            field = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2]
            if fmt <= 1:
                length = (buf[p + 3] << 16) | (buf[p + 4] << 8) | buf[p + 5]
                type_id = buf[p + 6]
                if length > self.max_message_size:
                    raise RemoteProtocolError(f"message of {length} bytes exceeds the limit {self.max_message_size}")
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
        remaining = length - received
        chunk_size = self.chunk_size
        size = remaining if remaining < chunk_size else chunk_size
        avail = end - p
        if received:
            # A continuation: the header state stays as the message's first chunk set it.
            buffer = stream.buffer
            assert buffer is not None
        else:
            stream.timestamp = timestamp
            stream.delta = delta
            stream.length = length
            stream.type_id = type_id
            stream.stream_id = stream_id
            stream.ext_field = ext
            if size == length and avail >= size:
                # The common case with a large chunk size: one chunk, one message, one copy.
                self._pos = p + size
                if length == 0:
                    self._count_empty()
                    return self._message(csid, timestamp, type_id, stream_id, b"")
                payload = buf[p : p + size]
                self.bytes_copied += size
                return self._message(csid, timestamp, type_id, stream_id,
                                     payload if type(payload) is bytes else bytes(payload))
            # The first chunk of a message that needs a buffer: check the limit before allocating.
            if self._pending + length + len(self._streams) * STREAM_OVERHEAD > self.max_pending_bytes:
                raise RemoteProtocolError(f"over {self.max_pending_bytes} bytes of partial messages held")
            buffer = stream.buffer = io.BytesIO()
            buffer.seek(length - 1)  # sized once, exactly: writing past the end makes it so
            buffer.write(b"\0")
            buffer.seek(0)
            self._pending += length
        if avail < size:
            # Take what has arrived of this chunk now; the rest follows in later reads.
            self._pos = p
            self._current = stream
            self._chunk_left = size
            return self._continue_chunk()
        buffer.write(buf[p : p + size])
        self.bytes_copied += 2 * size  # the slice, then into the buffer
        self._pos = p + size
        received += size
        if received < length:
            stream.received = received
            return True
        return self._complete(stream)

    def _continue_chunk(self) -> RawMessage | Event | bool | None:
        """Copy what has arrived of the current chunk's payload into its message's buffer."""
        stream = self._current
        assert stream is not None and stream.buffer is not None
        pos = self._pos
        take = len(self._data) - pos
        if take > self._chunk_left:
            take = self._chunk_left
        if take:
            stream.buffer.write(self._data[pos : pos + take])
            self.bytes_copied += 2 * take  # the slice, then into the buffer
            stream.received += take
            self._pos = pos + take
            self._chunk_left -= take
        if self._chunk_left:
            return None
        self._current = None
        if stream.received < stream.length:
            return True
        return self._complete(stream)

    def _complete(self, stream: _Stream) -> RawMessage | Event:
        assert stream.buffer is not None
        payload = stream.buffer.getvalue()  # the buffer's own bytes object: no copy (CPython)
        stream.buffer = None
        stream.received = 0
        self._pending -= stream.length
        return self._message(stream.csid, stream.timestamp, stream.type_id, stream.stream_id, payload)

    def _message(self, csid: int, timestamp: int, type_id: int, stream_id: int, payload: bytes) -> RawMessage | Event:
        """A complete message: the published stream's audio or video as its media event, else a RawMessage."""
        make = self.make_media
        if stream_id == self.media_stream_id and (type_id == AUDIO or type_id == VIDEO) and make is not None:
            return make(type_id, timestamp, payload)
        return RawMessage(csid, timestamp, type_id, stream_id, payload)

    def _count_empty(self) -> None:
        self.empty_messages += 1
        if self.empty_messages > EMPTY_MESSAGE_ALLOWANCE + self.bytes_received // BYTES_PER_EMPTY_MESSAGE:
            raise RemoteProtocolError("too many zero-length messages for the bytes received")
