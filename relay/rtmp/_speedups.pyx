# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The RTMP core's per-tag loops, compiled: twins of chunkreader.ChunkReader and encoded.queue_encoded.

The pure-Python modules are the reference: this file implements the same classes and
functions, step for step, on C integers and byte pointers (no slices, no int objects per
header field), and tests/unit/rtmp/test_differential.py feeds both the same bytes and
demands the same messages, errors and output bytes. accel.py chooses between them.

Differences that are not behaviour: a partial message is assembled in a bytes object of
its declared length, written in place and handed over as the payload once complete (the
pure reader uses an io.BytesIO for the same zero-copy hand-over); the work counters
(`parse_steps`, `bytes_copied`) count the same steps as the reference.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_AS_STRING
from libc.string cimport memcpy

from relay.rtmp.chunkreader import RawMessage
from relay.rtmp.chunkwriter import DEFAULT_CHUNK_SIZE, EXTENDED, MAX_CHUNK_SIZE
from relay.rtmp.errors import RemoteProtocolError
from relay.rtmp.limits import (
    BYTES_PER_EMPTY_MESSAGE,
    EMPTY_MESSAGE_ALLOWANCE,
    MAX_CHUNK_STREAMS,
    MAX_MESSAGE_LENGTH,
    MIN_CHUNK_SIZE,
    STREAM_OVERHEAD,
)
from relay.rtmp.messages import AUDIO, VIDEO

cdef Py_ssize_t _SMALL_TAIL = 64
cdef long long _EXT = EXTENDED
cdef long long _MAX_LENGTH = MAX_MESSAGE_LENGTH
cdef Py_ssize_t _OVERHEAD = STREAM_OVERHEAD
cdef Py_ssize_t _MAX_STREAMS = MAX_CHUNK_STREAMS
cdef int _AUDIO = AUDIO
cdef int _VIDEO = VIDEO

# _read_chunk's results besides a message
cdef object _MORE = None  # more bytes needed
cdef object _PART = True  # a chunk consumed, no message completed


cdef inline unsigned long _u32(const unsigned char* p):
    return (<unsigned long>p[0] << 24) | (<unsigned long>p[1] << 16) | (<unsigned long>p[2] << 8) | p[3]


cdef class _Stream:
    """What the reader remembers about one chunk stream between chunks (chunkreader._Stream)."""

    cdef public long csid
    cdef public unsigned long timestamp
    cdef public unsigned long delta
    cdef public long length
    cdef public int type_id
    cdef public unsigned long stream_id
    cdef long long ext  # the raw 4-byte field of the last header, or -1 if it had none
    cdef public object buffer  # bytes of the declared length being written in place, or None
    cdef public long received

    def __init__(self, long csid):
        self.csid = csid
        self.ext = -1
        self.buffer = None

    @property
    def ext_field(self):
        return None if self.ext < 0 else self.ext


cdef class ChunkReader:
    """Reassembles messages from the chunk stream a peer sends (chunkreader.ChunkReader, compiled)."""

    cdef public long long bytes_received
    cdef public long long bytes_copied
    cdef object _data  # bytes or bytearray
    cdef Py_ssize_t _pos
    cdef public long chunk_size
    cdef public long long max_chunk_size
    cdef public long long max_message_size
    cdef public long long max_pending_bytes
    cdef public object max_messages
    cdef public long long messages_read
    cdef public long long empty_messages
    cdef public long long parse_steps
    cdef long long _pending
    cdef dict _streams
    cdef _Stream _current
    cdef long _chunk_left
    cdef public long long media_stream_id
    cdef public object make_media

    def __init__(self, max_chunk_size=1 << 24, max_message_size=1 << 24, max_pending_bytes=1 << 25,
                 max_messages=None):
        self.bytes_received = 0
        self.bytes_copied = 0
        self._data = b""
        self._pos = 0
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_chunk_size = max_chunk_size
        self.max_message_size = max_message_size
        self.max_pending_bytes = max_pending_bytes
        self.max_messages = max_messages
        self.messages_read = 0
        self.empty_messages = 0
        self.parse_steps = 0
        self._pending = 0
        self._streams = {}
        self._current = None
        self._chunk_left = 0
        self.media_stream_id = -1
        self.make_media = None

    @property
    def bytes_held(self):
        return self._pending + len(self._data) - self._pos + len(self._streams) * _OVERHEAD

    def feed(self, data):
        """Append received bytes (chunkreader._Input.feed)."""
        cdef Py_ssize_t size = len(data)
        cdef Py_ssize_t pos = self._pos
        old = self._data
        self.bytes_received += size
        if pos == len(old):
            if type(data) is bytes:
                self._data = data
            else:
                self._data = bytes(data)
                self.bytes_copied += size
            self._pos = 0
        elif type(old) is bytes and len(old) - pos <= _SMALL_TAIL:
            self._data = old[pos:] + bytes(data)
            self._pos = 0
            self.bytes_copied += len(old) - pos + size
        else:
            if type(old) is bytes:
                old = bytearray(old[pos:])
                self.bytes_copied += len(old)
            elif pos:
                del old[:pos]
            old += data
            self.bytes_copied += size
            self._data = old
            self._pos = 0

    def set_chunk_size(self, size):
        """Apply the peer's Set Chunk Size (5.4.1), refusing sizes under 128 or past our own limit."""
        if not MIN_CHUNK_SIZE <= size <= MAX_CHUNK_SIZE:
            raise RemoteProtocolError(f"invalid chunk size {size} (the minimum is {MIN_CHUNK_SIZE})")
        if size > self.max_chunk_size:
            raise RemoteProtocolError(f"chunk size {size} exceeds this relay's limit {self.max_chunk_size}")
        self.chunk_size = size

    def abort(self, csid):
        """Drop the partial message on a chunk stream (Abort Message, 5.4.2)."""
        cdef _Stream stream = self._streams.get(csid)
        if stream is not None and stream.buffer is not None and stream is not self._current:
            self._pending -= stream.length
            stream.buffer = None
            stream.received = 0

    def next_message(self):
        """The next complete message (the published stream's media as its event), or None when more bytes are needed."""
        cdef long steps = 0
        while True:
            steps += 1
            result = self._continue_chunk() if self._chunk_left else self._read_chunk()
            if result is None:
                self.parse_steps += steps
                if self._pos:
                    self._data = self._data[self._pos:]
                    self._pos = 0
                return None
            if result is not True:
                self.parse_steps += steps
                self.messages_read += 1
                if self.max_messages is not None and self.messages_read > self.max_messages:
                    raise RemoteProtocolError(f"more than {self.max_messages} messages before publishing")
                return result

    cdef object _read_chunk(self):
        cdef object data = self._data
        cdef const unsigned char* buf
        cdef Py_ssize_t pos = self._pos
        cdef Py_ssize_t end = len(data)
        if pos >= end:
            return None
        if type(data) is bytes:
            buf = <const unsigned char*>PyBytes_AS_STRING(data)
        else:
            buf = <const unsigned char*>PyByteArray_AS_STRING(data)
        cdef int first = buf[pos]
        cdef int fmt = first >> 6
        cdef long csid = first & 0x3F
        cdef Py_ssize_t p = pos + 1
        if csid == 0:
            if end - pos < 2:
                return None
            csid = buf[p] + 64
            p += 1
        elif csid == 1:
            if end - pos < 3:
                return None
            csid = buf[p] + (buf[p + 1] << 8) + 64
            p += 2
        cdef _Stream stream = self._streams.get(csid)
        if stream is None:
            if fmt >= 2:
                raise RemoteProtocolError(f"chunk stream {csid} starts with a type-{fmt} header, not type 0 or 1")
            if len(self._streams) >= _MAX_STREAMS:
                raise RemoteProtocolError(f"more than {MAX_CHUNK_STREAMS} chunk streams on one connection")
            stream = _Stream(csid)
            self._streams[csid] = stream
        cdef unsigned long timestamp = stream.timestamp
        cdef unsigned long delta = stream.delta
        cdef long length = stream.length
        cdef int type_id = stream.type_id
        cdef unsigned long stream_id = stream.stream_id
        cdef long long ext = stream.ext
        cdef long received = stream.received
        cdef unsigned long field
        cdef Py_ssize_t need
        if fmt == 3:
            if ext >= 0:
                if end - p < 4:
                    return None
                if <long long>_u32(buf + p) == ext:
                    p += 4
            if received == 0:
                timestamp = (timestamp + delta) & 0xFFFFFFFF
        else:
            if received:
                raise RemoteProtocolError(f"type-{fmt} header in the middle of a message on chunk stream {csid}")
            need = 11 if fmt == 0 else (7 if fmt == 1 else 3)
            if end - p < need:
                return None
            field = (<unsigned long>buf[p] << 16) | (<unsigned long>buf[p + 1] << 8) | buf[p + 2]
            if fmt <= 1:
                length = (<long>buf[p + 3] << 16) | (<long>buf[p + 4] << 8) | buf[p + 5]
                type_id = buf[p + 6]
                if length > self.max_message_size:
                    raise RemoteProtocolError(f"message of {length} bytes exceeds the limit {self.max_message_size}")
                if fmt == 0:
                    stream_id = (buf[p + 7] | (<unsigned long>buf[p + 8] << 8) | (<unsigned long>buf[p + 9] << 16)
                                 | (<unsigned long>buf[p + 10] << 24))
            p += need
            ext = -1
            if field == _EXT:
                if end - p < 4:
                    return None
                field = _u32(buf + p)
                ext = field
                p += 4
            if fmt == 0:
                timestamp = field
                delta = 0
            else:
                timestamp = (timestamp + field) & 0xFFFFFFFF
                delta = field
        cdef long remaining = length - received
        cdef long chunk_size = self.chunk_size
        cdef long size = remaining if remaining < chunk_size else chunk_size
        cdef Py_ssize_t avail = end - p
        cdef object payload
        if not received:
            stream.timestamp = timestamp
            stream.delta = delta
            stream.length = length
            stream.type_id = type_id
            stream.stream_id = stream_id
            stream.ext = ext
            if size == length and avail >= size:
                self._pos = p + size
                if length == 0:
                    self._count_empty()
                    return self._message(csid, timestamp, type_id, stream_id, b"")
                payload = PyBytes_FromStringAndSize(<const char*>buf + p, size)
                self.bytes_copied += size
                return self._message(csid, timestamp, type_id, stream_id, payload)
            if self._pending + length + len(self._streams) * _OVERHEAD > self.max_pending_bytes:
                raise RemoteProtocolError(f"over {self.max_pending_bytes} bytes of partial messages held")
            stream.buffer = PyBytes_FromStringAndSize(NULL, length)
            self._pending += length
        if avail < size:
            self._pos = p
            self._current = stream
            self._chunk_left = size
            return self._continue_chunk()
        memcpy(PyBytes_AS_STRING(stream.buffer) + received, buf + p, size)
        self.bytes_copied += 2 * size
        self._pos = p + size
        received += size
        if received < length:
            stream.received = received
            return _PART
        return self._complete(stream)

    cdef object _continue_chunk(self):
        cdef _Stream stream = self._current
        cdef object data = self._data
        cdef const unsigned char* buf
        cdef Py_ssize_t pos = self._pos
        cdef Py_ssize_t take = len(data) - pos
        if take > self._chunk_left:
            take = self._chunk_left
        if take:
            if type(data) is bytes:
                buf = <const unsigned char*>PyBytes_AS_STRING(data)
            else:
                buf = <const unsigned char*>PyByteArray_AS_STRING(data)
            memcpy(PyBytes_AS_STRING(stream.buffer) + stream.received, buf + pos, take)
            self.bytes_copied += 2 * take
            stream.received += take
            self._pos = pos + take
            self._chunk_left -= take
        if self._chunk_left:
            return None
        self._current = None
        if stream.received < stream.length:
            return _PART
        return self._complete(stream)

    cdef object _complete(self, _Stream stream):
        payload = stream.buffer
        stream.buffer = None
        stream.received = 0
        self._pending -= stream.length
        return self._message(stream.csid, stream.timestamp, stream.type_id, stream.stream_id, payload)

    cdef object _message(self, long csid, unsigned long timestamp, int type_id, unsigned long stream_id, payload):
        make = self.make_media
        if (<long long>stream_id == self.media_stream_id and (type_id == _AUDIO or type_id == _VIDEO)
                and make is not None):
            return make(type_id, timestamp, payload)
        return RawMessage(csid, timestamp, type_id, stream_id, payload)

    cdef void _count_empty(self) except *:
        self.empty_messages += 1
        if self.empty_messages > EMPTY_MESSAGE_ALLOWANCE + self.bytes_received // BYTES_PER_EMPTY_MESSAGE:
            raise RemoteProtocolError("too many zero-length messages for the bytes received")


def queue_encoded(list out, messages, stamps, long chunk_size, sid_le, unsigned long stream_id):
    """Each message's bytes on one connection appended to `out` (encoded.queue_encoded, compiled).

    The 12-byte type-0 header is written byte by byte from the message's csid, length and
    kind (encoded.EncodedMessage.head holds the same fields as one integer) and the
    connection's message stream id, little endian; `sid_le` is the reference's form of it.
    """
    cdef Py_ssize_t n = len(messages)
    if len(stamps) != n:
        # zip(strict=True)'s error, as the reference raises it
        raise ValueError("zip() argument 2 is shorter than argument 1" if len(stamps) < n
                         else "zip() argument 2 is longer than argument 1")
    cdef object key = chunk_size
    cdef long long queued = 0
    cdef Py_ssize_t i
    cdef unsigned long ts
    cdef long length
    cdef long csid
    cdef int kind
    cdef bytes header
    cdef unsigned char* h
    cdef object body
    cdef dict bodies
    for i in range(n):
        message = messages[i]
        ts = <unsigned long>(stamps[i] & 0xFFFFFFFF)
        length = message.length
        csid = message.csid
        if ts < _EXT and length <= _MAX_LENGTH and csid < 64:
            kind = message.kind
            header = PyBytes_FromStringAndSize(NULL, 12)
            h = <unsigned char*>PyBytes_AS_STRING(header)
            h[0] = <unsigned char>csid
            h[1] = (ts >> 16) & 0xFF
            h[2] = (ts >> 8) & 0xFF
            h[3] = ts & 0xFF
            h[4] = (length >> 16) & 0xFF
            h[5] = (length >> 8) & 0xFF
            h[6] = length & 0xFF
            h[7] = <unsigned char>kind
            h[8] = stream_id & 0xFF
            h[9] = (stream_id >> 8) & 0xFF
            h[10] = (stream_id >> 16) & 0xFF
            h[11] = (stream_id >> 24) & 0xFF
            out.append(header)
            bodies = message.bodies
            body = bodies.get(key)
            if body is None:
                body = message.body(chunk_size, ts)
        elif message.sendable:
            out.append(message.header(ts, stream_id))
            body = message.body(chunk_size, ts)
        else:
            continue
        out.extend(body)
        queued += length
    return queued
