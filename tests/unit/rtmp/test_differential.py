"""The compiled twins (relay/rtmp/_speedups.pyx) against the pure-Python reference, on the same input.

The reader: the recorded publisher sessions (tests/fixtures/captures) cut into reads of every
size Hypothesis picks, well-formed chunk streams of any header type, chunk size and timestamp,
and the same streams with bytes changed or arbitrary bytes: both readers must give the same
messages, the same error (type and text) at the same point, and the same counters, with and
without a published stream whose audio and video the reader makes into events itself.
The send path: the same messages at the same timestamps must give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay import flv
from relay.rtmp import chunkreader, encoded
from relay.rtmp import messages as m
from relay.rtmp.chunkwriter import encode_header, encode_message
from relay.rtmp.errors import ProtocolError
from testbed.captures import SOURCES, read_capture

_speedups = pytest.importorskip("relay.rtmp._speedups", reason="the compiled twins are not built")

HANDSHAKE = 1 + 1536 + 1536  # C0 C1 C2: what a publisher sends before its first chunk

Reader = Callable[..., chunkreader.ChunkReader]


def made(kind: int, timestamp: int, payload: bytes) -> tuple[str, int, int, bytes]:
    """The published stream's media as both readers make it here: a value that compares by its fields."""
    return ("media", kind, timestamp, payload)


def run(make: Reader, pieces: Iterable[bytes], media_stream: int = -1, **limits: int) -> list[object]:
    """Everything a reader says about the pieces: messages, the error that stops it, its counters."""
    reader = make(**limits)
    reader.media_stream_id, reader.make_media = media_stream, made  # type: ignore[assignment]
    out: list[object] = []
    try:
        for piece in pieces:
            reader.feed(piece)
            while (msg := reader.next_message()) is not None:
                out.append(msg)
                if not isinstance(msg, chunkreader.RawMessage):
                    continue
                if msg.type_id == m.SET_CHUNK_SIZE:
                    reader.set_chunk_size(m.SetChunkSize.from_payload(msg.payload).size)
                elif msg.type_id == m.ABORT:
                    reader.abort(m.Abort.from_payload(msg.payload).csid)
            out.append(("held", reader.bytes_held))
    except ProtocolError as exc:
        out.append((type(exc).__name__, str(exc)))
    out.append((reader.bytes_received, reader.bytes_copied, reader.parse_steps, reader.messages_read,
                reader.empty_messages, reader.chunk_size))
    return out


def same(pieces: list[bytes], media_stream: int = -1, **limits: int) -> list[object]:
    want = run(chunkreader.ChunkReader, pieces, media_stream, **limits)
    assert run(_speedups.ChunkReader, pieces, media_stream, **limits) == want
    return want


_media_stream = st.sampled_from([-1, 0, 1])  # none, or one of the message streams the streams below use


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """data in reads of the given sizes, cycled; the rest in one read."""
    pieces = []
    pos = 0
    for size in sizes * (1 + len(data) // max(1, sum(sizes))):
        if pos >= len(data):
            break
        pieces.append(data[pos : pos + size])
        pos += size
    if pos < len(data):
        pieces.append(data[pos:])
    return pieces


@pytest.mark.parametrize("session", list(SOURCES))
def test_captures_whole_and_byte_by_byte(session: str) -> None:
    stream = read_capture(f"{session}.c2s")[HANDSHAKE:]
    messages = same([stream])
    assert sum(isinstance(x, chunkreader.RawMessage) for x in messages) > 100
    same(cut(stream[:40_000], [1]))
    media = same([stream], media_stream=1)  # the stream a publisher publishes on
    assert sum(x[0] == "media" for x in media if isinstance(x, tuple)) > 100
    same(cut(stream[:40_000], [1]), media_stream=1)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=st.sampled_from(list(SOURCES)), sizes=st.lists(st.integers(1, 20_000), min_size=1, max_size=8),
       media_stream=_media_stream)
def test_captures_in_reads_of_any_size(session: str, sizes: list[int], media_stream: int) -> None:
    stream = read_capture(f"{session}.c2s")[HANDSHAKE:]
    same(cut(stream, sizes), media_stream)


# Well-formed streams: messages on a few chunk streams, each header of any type the previous
# one allows, at a chunk size set by the stream itself (Set Chunk Size is a message too).
_message = st.tuples(
    st.sampled_from([2, 3, 4, 6, 63, 64, 319, 320, 65599]),  # csid: 1-, 2- and 3-byte basic headers
    st.integers(0, 0xFFFFFFFF),  # timestamp: extended from 0xFFFFFF on
    st.sampled_from([m.AUDIO, m.VIDEO, m.COMMAND_AMF0, 22]),
    st.integers(0, 3),  # message stream id
    st.integers(0, 3000),  # payload length
    st.sampled_from([0, 1, 2, 3]),  # header type asked for (downgraded when not possible)
)


def stream_of(spec: list[tuple[int, int, int, int, int, int]], chunk_size: int) -> bytes:
    """The messages framed at chunk_size (announced first), with compressed headers where asked and possible."""
    out = [encode_message(2, 0, m.SET_CHUNK_SIZE, 0, chunk_size.to_bytes(4, "big"), 128)]
    previous: dict[int, tuple[int, int, int, int]] = {}
    for csid, ts, type_id, sid, length, fmt in spec:
        payload = bytes((i * 7 + csid) & 0xFF for i in range(length))
        header = encode_header(csid, ts, length, type_id, sid)
        before = previous.get(csid)
        if before is not None and fmt and before[3] == sid and ts >= before[0] and ts - before[0] < 0xFFFFFF:
            delta = ts - before[0]
            basic = header[: len(header) - 11 - (4 if ts >= 0xFFFFFF else 0)]
            kind = 1 if (length, type_id) != before[1:3] else fmt
            first = bytes((basic[0] | (kind << 6),)) + basic[1:]
            if kind == 1:
                header = first + delta.to_bytes(3, "big") + length.to_bytes(3, "big") + bytes((type_id,))
            else:  # 2 (delta only) or 3 (none: read as the previous delta, so only when it matches)
                kind = 2 if kind == 3 else kind
                header = first + delta.to_bytes(3, "big")
        previous[csid] = (ts, length, type_id, sid)
        body = encode_message(csid, ts, type_id, sid, payload, chunk_size)[len(encode_header(csid, ts, length,
                                                                                             type_id, sid)):]
        out.append(header + body)
    return b"".join(out)


@settings(max_examples=200, deadline=None)
@given(spec=st.lists(_message, max_size=12), chunk_size=st.sampled_from([128, 129, 1000, 4096, 65536]),
       sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=6), media_stream=_media_stream)
def test_well_formed_streams(spec: list[tuple[int, int, int, int, int, int]], chunk_size: int,
                             sizes: list[int], media_stream: int) -> None:
    same(cut(stream_of(spec, chunk_size), sizes), media_stream)


@settings(max_examples=300, deadline=None)
@given(spec=st.lists(_message, max_size=6), chunk_size=st.sampled_from([128, 4096]),
       changes=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
       sizes=st.lists(st.integers(1, 700), min_size=1, max_size=4),
       limits=st.fixed_dictionaries({}, optional={"max_message_size": st.integers(0, 3000),
                                                  "max_pending_bytes": st.integers(0, 20_000),
                                                  "max_messages": st.integers(0, 5),
                                                  "max_chunk_size": st.integers(128, 5000)}),
       media_stream=_media_stream)
def test_damaged_streams(spec: list[tuple[int, int, int, int, int, int]], chunk_size: int,
                         changes: list[tuple[int, int]], sizes: list[int], limits: dict[str, int],
                         media_stream: int) -> None:
    data = bytearray(stream_of(spec, chunk_size))
    for where, value in changes:
        if data:
            data[where % len(data)] = value
    same(cut(bytes(data), sizes), media_stream, **limits)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), sizes=st.lists(st.integers(1, 64), min_size=1, max_size=4),
       media_stream=_media_stream)
def test_arbitrary_bytes(data: bytes, sizes: list[int], media_stream: int) -> None:
    same(cut(data, sizes), media_stream)


def test_bytearray_and_memoryview_reads() -> None:
    stream = read_capture("ffmpeg-h264.c2s")[HANDSHAKE : HANDSHAKE + 30_000]
    pieces = cut(stream, [333, 4096, 1])
    mixed = [bytearray(p) if i % 3 == 0 else memoryview(p) if i % 3 == 1 else p for i, p in enumerate(pieces)]
    want = run(chunkreader.ChunkReader, mixed)
    assert run(_speedups.ChunkReader, mixed) == want
    assert want[:-1] == run(chunkreader.ChunkReader, pieces)[:-1]  # the same messages, whatever the reads


# -- the send path -----------------------------------------------------------------------------


def sent(queue: Callable[..., int], messages: list[encoded.EncodedMessage], stamps: list[int],
         chunk_size: int, stream_id: int) -> tuple[int, bytes]:
    out: list[bytes | memoryview] = []
    sid_le = int.from_bytes(stream_id.to_bytes(4, "little"), "big")
    queued = queue(out, messages, stamps, chunk_size, sid_le, stream_id)
    return queued, b"".join(out)


@settings(max_examples=200, deadline=None)
@given(tags=st.lists(st.tuples(st.sampled_from([flv.AUDIO, flv.VIDEO, flv.SCRIPT]), st.integers(0, 9000)),
                     min_size=1, max_size=10),
       stamps=st.lists(st.one_of(st.integers(0, 2**33), st.integers(-(2**33), -1)), min_size=10, max_size=10),
       chunk_size=st.sampled_from([128, 1000, 4096, 2**31 - 1]), stream_id=st.integers(1, 2**32 - 1))
def test_send_path_bytes(tags: list[tuple[int, int]], stamps: list[int], chunk_size: int, stream_id: int) -> None:
    messages = [encoded.EncodedMessage(kind, 0, bytes(i % 251 for i in range(size))) for kind, size in tags]
    stamps = stamps[: len(messages)]
    want = sent(encoded.queue_encoded, messages, stamps, chunk_size, stream_id)
    # Fresh messages for the twin too: the body cache must be built the same way, not only read.
    twins = [encoded.EncodedMessage(message.kind, message.timestamp, message.payload) for message in messages]
    assert sent(_speedups.queue_encoded, twins, stamps, chunk_size, stream_id) == want
    assert sent(_speedups.queue_encoded, messages, stamps, chunk_size, stream_id) == want  # bodies cached


def test_send_path_captures_and_unsendable() -> None:
    tags = flv.read_tags(read_capture(SOURCES["ffmpeg-h264"]))
    messages = [encoded.EncodedMessage(tag.kind, tag.timestamp, tag.payload) for tag in tags]
    messages.append(encoded.EncodedMessage(flv.VIDEO, 0, bytes(0x1000000)))  # past 24 bits: skipped
    stamps = [tag.timestamp + 0xFFFF00 for tag in tags] + [5]  # crosses into extended timestamps
    want = sent(encoded.queue_encoded, messages, stamps, 4096, 1)
    assert sent(_speedups.queue_encoded, messages, stamps, 4096, 1) == want
    assert want[0] == sum(len(t.payload) for t in tags) + len(encoded.SET_DATA_FRAME) * sum(
        t.kind == flv.SCRIPT for t in tags)
