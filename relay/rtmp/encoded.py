"""A published tag as an RTMP message, encoded once and shared by every target.

An `EncodedMessage` is the one object each audio, video or script-data message of a
publisher becomes: it is a `relay.flv.Tag` (kind, timestamp, payload and the
classification, what recorders and meters read), it is the server's media event (the
chunk reader makes it as an audio or video message completes, server.py; the ingest
publishes it unchanged), and it carries the chunk bytes the targets send. The hub keeps
and feeds that same object (relay/fanout/hub.py): a message is one object from the
publisher's bytes to the targets, not one per layer.

The writer side of the chunk stream (RTMP 1.0, section 5.3). A message goes out as one
type-0 chunk header (5.3.1.2.1) and the payload cut at the connection's chunk size with a
one-byte type-3 header (5.3.1.2.4) between the pieces: the "body". The body depends on
nothing per target but the chunk size, so it is built once per chunk size and every
target whose chunk size matches sends the same bytes object; a target adds only its
12-byte type-0 header (its own timestamp and message stream id).

The body is kept as pieces for `writelines`: views of the payload (no copy: the GOP that
joiners get would otherwise be held twice) and the one-byte continuation headers.

One exception: past 0xFFFFFF ms the type-0 header carries the extended timestamp, and
every type-3 continuation repeats it (5.3.1.3; Adobe's server and nginx-rtmp read it
there). The body then depends on the timestamp too, so it is cached per (chunk size,
timestamp): targets that share a timeline (connected at the same moment) still share it,
at any age of the connection.

Script data goes out wrapped in `@setDataFrame` (what publishers send to servers and
what servers store as the stream's metadata). A message whose payload, wrapper included,
does not fit the 24-bit length field cannot be sent at all (`sendable` is False).
"""

from __future__ import annotations

from collections.abc import Sequence

from relay.flv import AUDIO, SCRIPT, VIDEO, Tag
from relay.rtmp import amf0
from relay.rtmp.chunkwriter import (
    AUDIO_CSID,
    DATA_CSID,
    DEFAULT_OUT_CHUNK_SIZE,
    EXTENDED,
    VIDEO_CSID,
    body_pieces,
    encode_header,
)
from relay.rtmp.errors import LocalProtocolError
from relay.rtmp.events import Event
from relay.rtmp.limits import MAX_MESSAGE_LENGTH

SET_DATA_FRAME = amf0.encode("@setDataFrame")
# The largest script tag that still fits the 24-bit length once @setDataFrame is put back
# in front of it (5.3.1.2.1): the ingest drops a longer one as it arrives (server.py).
MAX_SCRIPT_TAG = MAX_MESSAGE_LENGTH - len(SET_DATA_FRAME)
CSID_FOR_KIND = {AUDIO: AUDIO_CSID, VIDEO: VIDEO_CSID, SCRIPT: DATA_CSID}  # the chunk stream of each kind we send

# Memory an EncodedMessage holds besides its payload's bytes (CPython 3.11, measured with
# tracemalloc, rounded up): the object (ten slots), its timestamp, length and head, its
# empty body cache, the payload's bytes header and a list slot (~290 bytes); one body of a
# payload that fits one chunk (its cache entry and 1-tuple, ~210); a body cut into chunks:
# the tuple, and per chunk a memoryview and two tuple slots.
MESSAGE_OVERHEAD = 300
ONE_CHUNK_BODY = 220
CUT_BODY = 400
PER_CHUNK = 200


def held_bytes(tag: Tag, chunk_size: int = DEFAULT_OUT_CHUNK_SIZE) -> int:
    """What an EncodedMessage of `tag`'s fields holds, payload included, once it has its body at
    `chunk_size` (every target's chunk size): the weight of one tag of the GOP the hub keeps for
    joiners (the live stream's StreamState weighs with it).

    Past 0xFFFFFF ms a body is cached per timestamp too, so targets on different timelines add
    one body each; the estimate counts one.
    """
    length = len(tag.payload)
    held = length + MESSAGE_OVERHEAD
    if tag.kind == SCRIPT:
        length += len(SET_DATA_FRAME)
        held += length + 48  # the wrapped copy of the payload, a bytes object of its own
    chunks = -(-length // chunk_size)
    return held + (ONE_CHUNK_BODY if chunks <= 1 else CUT_BODY + PER_CHUNK * chunks)


class EncodedMessage(Tag, Event):
    """One audio, video or script-data message: a Tag, the server's event for it, and its chunk bytes once built.

    Made once per message, from the tag's fields, by whoever brings it into the relay: the
    server connection (as its media event), the reconnect slate, tests and benches. It is
    never mutated but for its cache of bodies.
    """

    __slots__ = ("csid", "length", "head", "bodies", "_wire")

    def __init__(self, kind: int, timestamp: int, payload: bytes) -> None:
        csid = CSID_FOR_KIND.get(kind)
        if csid is None:  # no message of another type goes on a media chunk stream
            raise LocalProtocolError(f"no chunk stream for message kind {kind}")
        super().__init__(kind, timestamp, payload)  # the classification
        self.csid = csid
        wire = SET_DATA_FRAME + payload if kind == SCRIPT else payload
        self._wire = wire
        length = self.length = len(wire)
        # The type-0 header (5.3.1.2.1) as a 96-bit integer, less timestamp and stream id:
        # basic header (fmt 0 | csid) | timestamp (24) | length (24) | type id (8) | stream id (32, LE).
        self.head = (csid << 88) | (length << 40) | (kind << 32) if length <= MAX_MESSAGE_LENGTH else 0
        # chunk size -> body, for timestamps below 0xFFFFFF; (ts << 32 | chunk size) -> body above.
        # A body is pieces for writelines: views of the payload and the continuation headers.
        self.bodies: dict[int, tuple[bytes | memoryview, ...]] = {}

    @property
    def sendable(self) -> bool:
        """False for a message too long for the 24-bit length field (refused, never cut short)."""
        return self.length <= MAX_MESSAGE_LENGTH

    def body(self, chunk_size: int, timestamp: int) -> tuple[bytes | memoryview, ...]:
        """The chunked payload for a connection's chunk size, at this message's timestamp on it."""
        ts = timestamp & 0xFFFFFFFF
        key = chunk_size if ts < EXTENDED else (ts << 32) | chunk_size
        body = self.bodies.get(key)
        if body is None:
            # One chunk: the payload itself (5.3.1: no continuation header).
            body = (self._wire,) if self.length <= chunk_size else body_pieces(self._wire, chunk_size, self.csid, ts)
            self.bodies[key] = body
        return body

    def header(self, timestamp: int, stream_id: int) -> bytes:
        """The type-0 first chunk header on one connection (the slow path: any timestamp)."""
        return encode_header(self.csid, timestamp, self.length, self.kind, stream_id)

    def __repr__(self) -> str:  # the payload's size, never its bytes (events.py)
        flags = "key " if self.is_keyframe else ("header " if self.is_header else "")
        return f"EncodedMessage({self.kind}, ts={self.timestamp}, {flags}{len(self.payload)} bytes, " \
               f"{len(self.bodies)} bodies)"


def queue_encoded(out: list[bytes | memoryview], messages: Sequence[EncodedMessage], stamps: Sequence[int],
                  chunk_size: int, sid_le: int, stream_id: int) -> int:
    """Append each message's bytes on one connection to `out`, at its timestamp there; the payload bytes queued.

    The relay's hot path (ClientConnection.send_encoded; compiled twin in _speedups.pyx): per
    message, a 12-byte header made from one integer and the shared body, looked up by chunk
    size. `sid_le` is the message stream id as the header's little-endian field, read
    big-endian. Messages that are not `sendable` are skipped.
    """
    append = out.append
    extend = out.extend
    queued = 0
    if len(messages) != len(stamps):  # checked first, as the compiled twin does: nothing queued
        raise ValueError("zip() argument 2 is shorter than argument 1" if len(stamps) < len(messages)
                         else "zip() argument 2 is longer than argument 1")
    for message, timestamp in zip(messages, stamps):
        ts = timestamp & 0xFFFFFFFF
        head = message.head
        if ts < EXTENDED and head:
            append((head | (ts << 64) | sid_le).to_bytes(12, "big"))
            body = message.bodies.get(chunk_size)
            if body is None:
                body = message.body(chunk_size, ts)
        elif message.sendable:
            append(message.header(ts, stream_id))
            body = message.body(chunk_size, ts)
        else:
            continue
        extend(body)
        queued += message.length
    return queued
