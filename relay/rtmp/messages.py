"""RTMP messages: one frozen dataclass per message kind, to and from payload bytes.

Message type ids are from RTMP 1.0 sections 5.4 (protocol control), 6.2 (user control)
and 7.1 (command, data, audio, video, aggregate). Protocol-control messages travel on
chunk stream 2 and message stream 0 (5.4).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from relay.rtmp import amf0
from relay.rtmp.errors import LocalProtocolError, RemoteProtocolError

SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
COMMAND_AMF3 = 17
DATA_AMF0 = 18
COMMAND_AMF0 = 20
AGGREGATE = 22

# User control event types (section 6.2 / 7.1.7)
STREAM_BEGIN = 0
STREAM_EOF = 1
STREAM_DRY = 2
SET_BUFFER_LENGTH = 3
STREAM_IS_RECORDED = 4
PING_REQUEST = 6
PING_RESPONSE = 7

CONTROL_CSID = 2

_U32 = struct.Struct(">I")


def _u32(payload: bytes, what: str) -> int:
    if len(payload) < 4:
        raise RemoteProtocolError(f"{what} message shorter than 4 bytes")
    return int(_U32.unpack_from(payload)[0])


def _pack_u32(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"{what} {value} does not fit in 32 bits")
    return _U32.pack(value)


@dataclass(frozen=True, slots=True)
class SetChunkSize:
    """5.4.1; the top bit must be zero."""

    size: int

    def to_payload(self) -> bytes:
        return _U32.pack(self.size & 0x7FFFFFFF)

    @classmethod
    def from_payload(cls, payload: bytes) -> SetChunkSize:
        return cls(_u32(payload, "Set Chunk Size") & 0x7FFFFFFF)


@dataclass(frozen=True, slots=True)
class Abort:
    """5.4.2: discard the partial message on a chunk stream."""

    csid: int

    def to_payload(self) -> bytes:
        return _pack_u32(self.csid, "chunk stream id")

    @classmethod
    def from_payload(cls, payload: bytes) -> Abort:
        return cls(_u32(payload, "Abort"))


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """5.4.3: bytes received so far, modulo 2^32."""

    sequence_number: int

    def to_payload(self) -> bytes:
        return _U32.pack(self.sequence_number & 0xFFFFFFFF)

    @classmethod
    def from_payload(cls, payload: bytes) -> Acknowledgement:
        return cls(_u32(payload, "Acknowledgement"))


@dataclass(frozen=True, slots=True)
class WindowAckSize:
    """5.4.4: how many bytes the sender may receive between our acknowledgements."""

    size: int

    def to_payload(self) -> bytes:
        return _pack_u32(self.size, "window size")

    @classmethod
    def from_payload(cls, payload: bytes) -> WindowAckSize:
        return cls(_u32(payload, "Window Acknowledgement Size"))


@dataclass(frozen=True, slots=True)
class SetPeerBandwidth:
    """5.4.5: limit type 0 hard, 1 soft, 2 dynamic."""

    size: int
    limit_type: int = 2

    def to_payload(self) -> bytes:
        if not 0 <= self.limit_type <= 0xFF:
            raise LocalProtocolError(f"limit type {self.limit_type} does not fit in a byte")
        return _pack_u32(self.size, "bandwidth") + bytes((self.limit_type,))

    @classmethod
    def from_payload(cls, payload: bytes) -> SetPeerBandwidth:
        if len(payload) < 5:
            raise RemoteProtocolError("Set Peer Bandwidth message shorter than 5 bytes")
        return cls(_u32(payload, "Set Peer Bandwidth"), payload[4])


@dataclass(frozen=True, slots=True)
class UserControl:
    """6.2 / 7.1.7: a 16-bit event type, then its data (a stream id, or a ping timestamp)."""

    event_type: int
    value: int
    extra: int | None = None  # Set Buffer Length carries a second 32-bit field

    def to_payload(self) -> bytes:
        if not 0 <= self.event_type <= 0xFFFF:
            raise LocalProtocolError(f"user control event type {self.event_type} does not fit in 16 bits")
        data = self.event_type.to_bytes(2, "big") + _pack_u32(self.value, "user control value")
        if self.extra is not None:
            data += _pack_u32(self.extra, "user control value")
        return data

    @classmethod
    def from_payload(cls, payload: bytes) -> UserControl:
        if len(payload) < 2:
            raise RemoteProtocolError("User Control message shorter than 2 bytes")
        event_type = int.from_bytes(payload[:2], "big")
        value = int.from_bytes(payload[2:6], "big") if len(payload) >= 6 else 0
        extra = int.from_bytes(payload[6:10], "big") if len(payload) >= 10 else None
        return cls(event_type, value, extra)


@dataclass(frozen=True, slots=True)
class Command:
    """7.1.1 / 7.2: name, transaction id, command object, then arguments (AMF0).

    Arguments can hold a stream key (publish, releaseStream, FCPublish), so they are left
    out of the repr.
    """

    name: str
    transaction_id: float
    command_object: Any = None
    args: tuple[Any, ...] = field(default=(), repr=False)

    def to_payload(self) -> bytes:
        return amf0.encode(self.name, self.transaction_id, self.command_object, *self.args)

    @classmethod
    def from_payload(cls, payload: bytes, amf3: bool = False, max_values: int | None = None) -> Command:
        """Decode a command message; max_values bounds the AMF0 values it may hold (hostile input)."""
        if amf3:
            # An AMF3 command message starts with a format byte; its body is AMF0 for the
            # commands publishers send (7.1.1).
            payload = payload[1:]
        values = amf0.decode(payload, max_values=max_values)
        if not values or not isinstance(values[0], str):
            raise RemoteProtocolError("command message without a name")
        # ffmpeg's server sends onFCPublish with no transaction id at all: read it as 0
        # (a notification), as we do a non-number id.
        transaction_id = values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0
        command_object = values[2] if len(values) > 2 else None
        return cls(values[0], transaction_id, command_object, tuple(values[3:]))


def aggregate_part(data: bytes, offset: int) -> tuple[int, int, bytes, int] | None:
    """The sub-message of an aggregate (7.1.6) at offset: kind, timestamp, payload, next offset.

    Sub-messages are FLV tags: an 11-byte header (kind, 24-bit size, 24-bit timestamp and
    its top 8 bits, 24-bit stream id), the payload, a 4-byte back pointer. None at the end.
    """
    if offset + 11 > len(data):
        return None
    size = int.from_bytes(data[offset + 1 : offset + 4], "big")
    end = offset + 11 + size
    if end > len(data):
        raise RemoteProtocolError("aggregate message with a truncated sub-message")
    timestamp = int.from_bytes(data[offset + 4 : offset + 7], "big") | (data[offset + 7] << 24)
    return data[offset], timestamp, data[offset + 11 : end], end + 4


def command_name(payload: bytes, amf3: bool = False) -> str:
    """The name of a command message, decoding nothing after it (to check the state first)."""
    start = 1 if amf3 else 0
    if len(payload) <= start:
        raise RemoteProtocolError("command message without a name")
    name, _ = amf0.decode_one(payload, start, max_values=1)  # a name is one value: never decode an object here
    if not isinstance(name, str):
        raise RemoteProtocolError("command message without a name")
    return name


def shown(name: str, limit: int = 32) -> str:
    """A peer-supplied name as an error message may show it: quoted, cut to `limit` characters."""
    if len(name) <= limit:
        return repr(name)
    return f"{name[:limit]!r}... ({len(name)} characters)"


def status_info(level: str, code: str, description: str, **extra: Any) -> dict[str, Any]:
    """The info object of an onStatus / _result / _error (7.2.1, 7.2.2)."""
    info: dict[str, Any] = {"level": level, "code": code, "description": description}
    info.update(extra)
    return info
