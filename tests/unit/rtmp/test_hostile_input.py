"""A malformed or hostile peer may only ever raise the core's ProtocolError family, and stays bounded.

The ingest closes a connection on ProtocolError and logs one line; anything else would
be a crash of the glue. Real sessions are mutated at random places (flips, insertions,
deletions, duplications, splices of another session) and fed in random splits, and
sessions are generated message by message; the connection must either go on or raise
ProtocolError, never anything else. After every read it has consumed, what it holds stays
under its limits (its own accounting, and once through tracemalloc), and the work it does
is linear in the bytes fed (its work counters; never a clock).
"""

from __future__ import annotations

import random
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from relay.rtmp import amf0
from relay.rtmp import messages as m
from relay.rtmp.accel import ChunkReader
from relay.rtmp.chunkreader import RawMessage
from relay.rtmp.chunkwriter import encode_header, encode_message
from relay.rtmp.client import ClientConnection
from relay.rtmp.errors import AMF0Error, HandshakeError, LocalProtocolError, ProtocolError, RemoteProtocolError
from relay.rtmp.events import ConnectRequest, PublishRequest
from relay.rtmp.handshake import ClientHandshake, ServerHandshake
from relay.rtmp.limits import MAX_CHUNK_STREAMS, MAX_PENDING_BYTES, MAX_STREAMS, STREAM_OVERHEAD
from relay.rtmp.server import ServerConnection
from testbed.captures import read_capture

HANDSHAKE = 1 + 1536 + 1536
PREFIX = 60_000  # connect, publish and the first media messages: where the state machine is


CAPTURES = ["ffmpeg-h264", "librtmp-h264", "gst-rtmp2sink-h264", "librtmp-extts", "librtmp-hevc-ertmp"]
DEFAULT_BUDGET = 262_144
DEFAULT_OUTPUT = 1_048_576
TAIL = 64  # an incomplete chunk header (at most 18 bytes) is all the unread input a pull leaves

# Limits as the config may set them (server.limits bounds), small ones included.
LIMITS = st.fixed_dictionaries({
    "max_command_size": st.sampled_from([1024, 4096, 65_536]),
    "max_unauthenticated_memory": st.sampled_from([65_536, DEFAULT_BUDGET]),
    "max_output_bytes": st.sampled_from([65_536, DEFAULT_OUTPUT]),
})


def split_points(data: bytes, splits: list[int]) -> list[bytes]:
    points = sorted({0, *(p % (len(data) + 1) for p in splits), len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def random_pieces(data: bytes, seed: int) -> list[bytes]:
    """Reads of the sizes a socket gives: one byte to tens of kilobytes."""
    rnd = random.Random(seed)
    pieces, at = [], 0
    while at < len(data):
        step = rnd.choice((1, 2, 3, 7, 11, 100, 1000, 4000, 5000, 65_536))
        pieces.append(data[at : at + step])
        at += step
    return pieces


def drive(data: bytes, splits: list[int] | None = None, *, pieces: list[bytes] | None = None,
          limits: dict[str, int] | None = None, reads: bool = True) -> ServerConnection:
    """Feed a server that accepts everything; check its bounds after every read it consumed.

    `reads=False` plays a peer that never reads: the output is never taken.
    """
    limits = limits or {}
    conn = ServerConnection(**limits)
    budget = limits.get("max_unauthenticated_memory", DEFAULT_BUDGET)
    max_output = limits.get("max_output_bytes", DEFAULT_OUTPUT)
    published = False
    for piece in pieces if pieces is not None else split_points(data, splits or []):
        try:
            conn.receive_data(piece)
            while (event := conn.next_event()) is not None:
                if isinstance(event, ConnectRequest):
                    conn.accept_connect()
                elif isinstance(event, PublishRequest):
                    conn.accept_publish()
                    published = True
        except ProtocolError:
            assert conn.state == "ERROR"
            return conn
        assert conn.output_bytes <= max_output
        if published:
            assert conn.bytes_held <= MAX_PENDING_BYTES + MAX_CHUNK_STREAMS * STREAM_OVERHEAD + TAIL + conn.output_bytes
        else:
            assert conn.bytes_held <= budget
        if reads:
            conn.take_output()
    return conn


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flips=st.lists(st.tuples(st.integers(HANDSHAKE, PREFIX - 1), st.integers(0, 255)), min_size=1, max_size=8),
    splits=st.lists(st.integers(0, PREFIX), max_size=6),
)
def test_corrupted_sessions_raise_only_protocol_errors(flips: list[tuple[int, int]], splits: list[int]) -> None:
    data = bytearray(read_capture("librtmp-h264.c2s")[:PREFIX])
    for offset, value in flips:
        data[offset] = value
    drive(bytes(data), splits)


@settings(max_examples=150, deadline=None)
@given(tail=st.binary(min_size=1, max_size=4000), splits=st.lists(st.integers(0, 10_000), max_size=6))
def test_garbage_after_a_good_handshake_raises_only_protocol_errors(tail: bytes, splits: list[int]) -> None:
    drive(read_capture("ffmpeg-h264.c2s")[:HANDSHAKE] + tail, splits)


def test_a_truncated_session_just_waits_for_more() -> None:
    conn = ServerConnection()
    conn.receive_data(read_capture("ffmpeg-h264.c2s")[: HANDSHAKE + 100])
    while conn.next_event() is not None:
        pass
    assert conn.state != "ERROR"


def test_a_peer_creating_streams_without_end_is_cut_off() -> None:
    client = ClientConnection("live", "rtmp://127.0.0.1/live", "k")
    server = ServerConnection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    event = server.next_event()
    assert isinstance(event, ConnectRequest)
    server.accept_connect()
    calls = b"".join(encode_message(3, 0, 20, 0, amf0.encode("createStream", float(i + 10), None), 4096)
                     for i in range(MAX_STREAMS + 1))
    # The client announced 4096-byte chunks before connect; the server reads with that size.
    try:
        server.receive_data(calls)
        while server.next_event() is not None:
            pass
    except ProtocolError as exc:
        assert "createStream" in str(exc)
    else:
        raise AssertionError("unbounded createStream calls were accepted")


# --- mutated real sessions ----------------------------------------------------------------------------------

_captures: dict[str, bytes] = {}


def capture(name: str) -> bytes:
    if name not in _captures:
        _captures[name] = read_capture(name)
    return _captures[name]


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "duplicate", "splice"]),
        st.integers(0, 2**31),
        st.integers(1, 4096),
        st.binary(min_size=1, max_size=32),
    ),
    min_size=1,
    max_size=6,
)


def mutate(data: bytes, mutations: list[tuple[str, int, int, bytes]], other: bytes, start: int) -> bytes:
    """Apply the mutations at or after `start` (HANDSHAKE keeps the handshake intact)."""
    buf = bytearray(data)
    for op, at, size, blob in mutations:
        at = start + at % max(1, len(buf) - start)
        if op == "flip":
            if at < len(buf):
                buf[at] ^= blob[0] or 0xFF
        elif op == "insert":
            buf[at:at] = blob
        elif op == "delete":
            del buf[at : at + size]
        elif op == "duplicate":
            buf[at:at] = buf[at : at + size]
        else:  # splice in bytes of another session: real chunks in the wrong place
            offset = (at * 7919) % max(1, len(other) - size)
            buf[at:at] = other[offset : offset + size]
    return bytes(buf)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    session=st.sampled_from(CAPTURES),
    length=st.sampled_from([6_000, 60_000, 250_000]),
    mutations=MUTATIONS,
    in_handshake=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    limits=LIMITS,
    reads=st.booleans(),
)
def test_mutated_real_sessions_raise_only_protocol_errors_and_stay_bounded(
    session: str, length: int, mutations: list[tuple[str, int, int, bytes]], in_handshake: bool, seed: int,
    limits: dict[str, int], reads: bool,
) -> None:
    data = capture(f"{session}.c2s")[:length]
    other = capture("librtmp-hevc-ertmp.c2s")[HANDSHAKE : HANDSHAKE + 300_000]
    mutated = mutate(data, mutations, other, 0 if in_handshake else HANDSHAKE)
    conn = drive(mutated, pieces=random_pieces(mutated, seed), limits=limits, reads=reads)
    event(f"ended in {conn.state} after {'>' if conn.bytes_received > 10_000 else '<='}10 kB")


@pytest.mark.parametrize("session", CAPTURES)
def test_real_sessions_stay_within_the_default_limits(session: str) -> None:
    # The bounds hold for real publishers too (and so they never refuse one): whole, and a peer that never reads.
    data = capture(f"{session}.c2s")
    conn = drive(data, pieces=random_pieces(data, 1), reads=False)
    assert conn.state == "CONNECTED"  # published, then unpublished: no limit was hit


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=st.sampled_from(CAPTURES), mutations=MUTATIONS, seed=st.integers(0, 2**32 - 1))
def test_mutated_target_answers_raise_only_protocol_errors(
    session: str, mutations: list[tuple[str, int, int, bytes]], seed: int
) -> None:
    # What a platform sends back (S0 S1 S2, then its answers), as our client role reads it.
    data = mutate(capture(f"{session}.s2c"), mutations, capture("ffmpeg-h264.s2c"), 0)
    client = ClientConnection("live", "rtmp://192.0.2.1/live", "key", random_bytes=bytes)
    try:
        for piece in random_pieces(data, seed):
            client.receive_data(piece)
            while client.next_event() is not None:
                pass
            assert client.bytes_held <= 4 * 65_536 + MAX_CHUNK_STREAMS * STREAM_OVERHEAD + TAIL + client.output_bytes
    except ProtocolError:
        assert client.state == "ERROR"


# --- generated sessions ---------------------------------------------------------------------------------------

AMF_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=12) | st.just(amf0.UNDEFINED),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=3).map(amf0.ECMAArray),
    max_leaves=12,
)
COMMAND_NAMES = st.sampled_from([
    "connect", "createStream", "publish", "releaseStream", "FCPublish", "FCUnpublish", "deleteStream",
    "closeStream", "play", "_checkbw", "getStreamLength",
]) | st.text(max_size=8)
CSIDS = st.sampled_from([2, 3, 4, 5, 6, 8, 63, 64, 319, 320, 65_599])


@st.composite
def generated_message(draw: st.DrawFn) -> tuple[int, int, int, int, bytes]:
    """(csid, timestamp, type id, stream id, payload) of any kind a peer could send, valid or not."""
    kind = draw(st.sampled_from(["command", "control", "media", "data", "aggregate", "other"]))
    csid = draw(CSIDS)
    ts = draw(st.integers(0, 2**32 - 1) | st.integers(0xFFFFF0, 0x1000010) | st.integers(0, 1000))
    sid = draw(st.sampled_from([0, 1, 2, 2**32 - 1]))
    if kind == "command":
        body = amf0.encode(draw(COMMAND_NAMES), draw(st.floats(0, 10)), *draw(st.lists(AMF_VALUES, max_size=3)))
        amf3 = draw(st.booleans())
        return csid, ts, m.COMMAND_AMF3 if amf3 else m.COMMAND_AMF0, sid, (b"\x00" if amf3 else b"") + body
    if kind == "control":
        type_id = draw(st.sampled_from([1, 2, 3, 4, 5, 6]))
        value = draw(st.sampled_from([0, 1, 127, 128, 4096, 1 << 20, 0x7FFFFFFF, 0xFFFFFFFF])
                     | st.integers(0, 2**32 - 1))
        payload = value.to_bytes(4, "big")
        if type_id == 4:
            payload = draw(st.sampled_from([0, 3, 6, 7])).to_bytes(2, "big") + payload
        elif type_id == 6:
            payload += bytes((draw(st.integers(0, 3)),))
        return 2, 0, type_id, 0, payload[: draw(st.integers(0, len(payload)))] if draw(st.booleans()) else payload
    if kind == "media":
        return csid, ts, draw(st.sampled_from([8, 9])), sid, draw(st.binary(max_size=3000))
    if kind == "data":
        body = amf0.encode(*draw(st.lists(AMF_VALUES, max_size=3)))
        prefix = draw(st.sampled_from([b"", amf0.encode("@setDataFrame")]))
        return csid, ts, draw(st.sampled_from([15, 18])), sid, prefix + body
    if kind == "aggregate":
        parts = b""
        for sub_kind, sub_payload in draw(st.lists(st.tuples(st.sampled_from([8, 9, 18, 0]), st.binary(max_size=50)),
                                                   max_size=5)):
            size = len(sub_payload) + draw(st.sampled_from([0, 0, 0, 1, 1000]))  # sometimes a lie
            parts += bytes((sub_kind,)) + size.to_bytes(3, "big") + bytes(7) + sub_payload + bytes(4)
        return csid, ts, m.AGGREGATE, sid, parts
    return csid, ts, draw(st.integers(0, 255)), sid, draw(st.binary(max_size=200))


def compressed_chunks(messages: list[tuple[int, int, int, int, bytes]], chunk_size: int) -> bytes:
    """Chunks with headers compressed as librtmp does (types 1, 2, 3 when the previous header allows)."""
    out = bytearray()
    last: dict[int, tuple[int, int, int, int]] = {}  # csid -> timestamp, length, type, stream id
    for csid, ts, type_id, sid, payload in messages:
        full = encode_message(csid, ts, type_id, sid, payload, chunk_size)
        previous = last.get(csid)
        last[csid] = (ts, len(payload), type_id, sid)
        if previous is None or previous[3] != sid or ts < previous[0] or ts - previous[0] >= 0xFFFFFF \
                or ts >= 0xFFFFFF:
            out += full
            continue
        delta = ts - previous[0]
        basic = len(encode_header(csid, 0, 0, 0, 0)) - 11
        body = full[basic + 11 :]
        first = full[0] & 0x3F
        rest = full[1:basic]
        if (len(payload), type_id) != previous[1:3]:
            out += bytes((0x40 | first,)) + rest + delta.to_bytes(3, "big") + len(payload).to_bytes(3, "big")
            out += bytes((type_id,)) + body
        else:
            out += bytes((0x80 | first,)) + rest + delta.to_bytes(3, "big") + body
    return bytes(out)


@st.composite
def generated_session(draw: st.DrawFn) -> bytes:
    chunk_size = draw(st.sampled_from([128, 4096]))
    data = bytearray(b"\x03" + bytes(1536) + bytes(1536))  # a plain handshake
    data += encode_message(2, 0, m.SET_CHUNK_SIZE, 0, m.SetChunkSize(chunk_size).to_payload(), 128)
    if draw(st.booleans()):  # a valid start, so that the publishing state is reached
        data += encode_message(3, 0, 20, 0, amf0.encode("connect", 1.0, {"app": "live"}), chunk_size)
        data += encode_message(3, 0, 20, 0, amf0.encode("createStream", 2.0, None), chunk_size)
        data += encode_message(3, 0, 20, 1, amf0.encode("publish", 0.0, None, "k", "live"), chunk_size)
    messages = draw(st.lists(generated_message(), max_size=25))
    data += compressed_chunks(messages, chunk_size)
    if draw(st.booleans()):
        data[draw(st.integers(3073, len(data))) :] = draw(st.binary(max_size=300))  # garbage from some point on
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(session=generated_session(), seed=st.integers(0, 2**32 - 1), limits=LIMITS, reads=st.booleans())
def test_generated_sessions_raise_only_protocol_errors_and_stay_bounded(
    session: bytes, seed: int, limits: dict[str, int], reads: bool
) -> None:
    conn = drive(session, pieces=random_pieces(session, seed), limits=limits, reads=reads)
    event(f"ended in {conn.state}")


def test_the_generator_reaches_the_publishing_state() -> None:
    # The compressed-header writer must make chunks the reader takes, or the generated test proves little.
    media = [(6, 10 * i, 9, 1, bytes(range(i % 256)) * 7) for i in range(50)]
    session = (b"\x03" + bytes(3072)
               + encode_message(3, 0, 20, 0, amf0.encode("connect", 1.0, {"app": "live"}), 128)
               + encode_message(3, 0, 20, 0, amf0.encode("createStream", 2.0, None), 128)
               + encode_message(3, 0, 20, 1, amf0.encode("publish", 0.0, None, "k", "live"), 128)
               + compressed_chunks(media, 128))
    conn = drive(session, pieces=random_pieces(session, 5))
    assert conn.state == "PUBLISHING" and conn.bytes_received > 8_000


# --- handshake, AMF0, commands, encoders -----------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=6000), valid_start=st.booleans(), seed=st.integers(0, 2**32 - 1),
       role=st.sampled_from(["server", "client"]))
def test_handshake_garbage_raises_only_handshake_errors(data: bytes, valid_start: bool, seed: int, role: str) -> None:
    handshake = ServerHandshake(random_bytes=bytes) if role == "server" else ClientHandshake(random_bytes=bytes)
    data = (b"\x03" + data) if valid_start else data
    try:
        for piece in random_pieces(data, seed):
            handshake.receive_data(piece)
            assert handshake.bytes_held <= 2 * 1536 + 1 + 1536
            if handshake.complete:
                break
    except HandshakeError:
        return


def count_values(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(1 + count_values(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(count_values(v) for v in value)
    return 1


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000), max_values=st.sampled_from([None, 1, 5, 50]))
def test_amf0_decoding_any_bytes_raises_only_amf0_errors(data: bytes, max_values: int | None) -> None:
    try:
        values = amf0.decode(data, max_values=max_values)
    except AMF0Error:
        return
    if max_values is not None:
        assert sum(count_values(v) for v in values) <= max_values


@settings(max_examples=300, deadline=None)
@given(values=st.lists(AMF_VALUES, min_size=1, max_size=4),
       flips=st.lists(st.tuples(st.integers(0, 2**31), st.integers(1, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 2**31), max_values=st.sampled_from([None, 3, 1024]))
def test_amf0_decoding_mutated_values_raises_only_amf0_errors(
    values: list[Any], flips: list[tuple[int, int]], cut: int, max_values: int | None
) -> None:
    data = bytearray(amf0.encode(*values))
    for at, xor in flips:
        data[at % len(data)] ^= xor
    if cut % 3 == 0:  # and truncated, a third of the time
        del data[cut % (len(data) + 1) :]
    try:
        amf0.decode(bytes(data), max_values=max_values)
    except AMF0Error:
        pass


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=400) | st.lists(AMF_VALUES, max_size=4).map(lambda v: amf0.encode(*v)),
       amf3=st.booleans())
def test_command_decoding_raises_only_protocol_errors(payload: bytes, amf3: bool) -> None:
    try:
        name = m.command_name(payload, amf3=amf3)
        command = m.Command.from_payload(payload, amf3=amf3, max_values=64)
    except RemoteProtocolError:
        return
    assert command.name == name


WIDE_INTS = st.integers(-(2**70), 2**70) | st.sampled_from([-1, 0, 0xFF, 0x100, 0xFFFF, 0xFFFFFF, 0x1000000,
                                                           0xFFFFFFFF, 2**32, 2**64])


@settings(max_examples=300, deadline=None)
@given(csid=WIDE_INTS, timestamp=WIDE_INTS, length=WIDE_INTS, type_id=WIDE_INTS, stream_id=WIDE_INTS)
def test_header_encoding_of_any_ints_is_right_or_a_local_error(
    csid: int, timestamp: int, length: int, type_id: int, stream_id: int
) -> None:
    try:
        header = encode_header(csid, timestamp, length, type_id, stream_id)
    except LocalProtocolError:
        assert not (2 <= csid <= 65_599 and 0 <= length <= 0xFFFFFF and 0 <= type_id <= 255
                    and 0 <= stream_id <= 0xFFFFFFFF)
        return
    # Right: read back, the header gives the same message (its payload made up, when short enough).
    reader = ChunkReader(max_message_size=0xFFFFFF)
    reader.set_chunk_size(1 << 24)
    reader.feed(header + bytes(length if length <= 1000 else 0))
    msg = reader.next_message()
    if length <= 1000:
        assert msg == RawMessage(csid, timestamp & 0xFFFFFFFF, type_id, stream_id, bytes(length))
    else:
        assert msg is None and reader.bytes_held >= length  # waiting for exactly that many bytes


@settings(max_examples=200, deadline=None)
@given(value=WIDE_INTS, extra=WIDE_INTS | st.none(), kind=st.sampled_from(["abort", "ack", "window", "bandwidth",
                                                                           "chunk", "user"]))
def test_control_message_encoding_is_right_or_a_local_error(value: int, extra: int | None, kind: str) -> None:
    u32 = 0 <= value <= 0xFFFFFFFF
    # (the message, whether it must encode, the message its payload must read back as)
    message, fits, back = {
        # Set Chunk Size and Acknowledgement keep the low 31 / 32 bits (5.4.1, 5.4.3): always encodable.
        "chunk": (m.SetChunkSize(value), True, m.SetChunkSize(value & 0x7FFFFFFF)),
        "ack": (m.Acknowledgement(value), True, m.Acknowledgement(value & 0xFFFFFFFF)),
        "abort": (m.Abort(value), u32, m.Abort(value)),
        "window": (m.WindowAckSize(value), u32, m.WindowAckSize(value)),
        "bandwidth": (m.SetPeerBandwidth(value, 2), u32, m.SetPeerBandwidth(value, 2)),
        "user": (m.UserControl(6, value, extra), u32 and (extra is None or 0 <= extra <= 0xFFFFFFFF),
                 m.UserControl(6, value, extra)),
    }[kind]
    try:
        payload = message.to_payload()
    except LocalProtocolError:
        assert not fits, f"{message} is encodable but was refused"
        return
    assert fits, f"{message} does not fit its fields but was encoded"
    assert type(back).from_payload(payload) == back


def _amf0_encodable(value: Any, depth: int = 0) -> bool:
    """Whether AMF0 can carry `value` (section 2), said without the encoder."""
    if value is None or isinstance(value, (bool, float, str)):
        return True
    if isinstance(value, int):
        # What rounds to a finite IEEE 754 double: below the halfway point past the largest one.
        return abs(value) < 2**1024 - 2**970
    if isinstance(value, amf0.AMFDate):
        return (-0x8000 <= value.timezone <= 0x7FFF
                and (isinstance(value.milliseconds, float) or _amf0_encodable(value.milliseconds)))
    if isinstance(value, list):
        return depth < amf0.MAX_DEPTH and all(_amf0_encodable(v, depth + 1) for v in value)
    assert isinstance(value, dict)
    return (depth < amf0.MAX_DEPTH and all(isinstance(k, str) for k in value)
            and all(_amf0_encodable(v, depth + 1) for v in value.values()))


def _amf0_read_back(value: Any) -> Any:
    """What decoding the encoding of `value` must give: numbers as doubles, the rest as sent."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, amf0.AMFDate):
        return amf0.AMFDate(float(value.milliseconds), value.timezone)
    if isinstance(value, list):
        return [_amf0_read_back(v) for v in value]
    return {k: _amf0_read_back(v) for k, v in value.items()}


def _same(a: Any, b: Any) -> bool:
    """Equality in which NaN equals NaN (AMF0 carries it) and a bool is not a number."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    if isinstance(a, amf0.AMFDate):
        return _same(a.milliseconds, b.milliseconds) and a.timezone == b.timezone
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=200, deadline=None)
@given(value=st.recursive(
    st.none() | st.booleans() | st.integers(-(2**1100), 2**1100) | st.floats() | st.text(max_size=8)
    | st.builds(amf0.AMFDate, st.floats() | st.integers(-(2**1100), 2**1100), st.integers(-70_000, 70_000)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4) | st.integers(), children,
                                                                      max_size=3),
    max_leaves=10))
def test_amf0_encoding_is_right_or_a_local_error(value: Any) -> None:
    try:
        encoded = amf0.encode(value)
    except LocalProtocolError:
        assert not _amf0_encodable(value), f"{value!r} is encodable but was refused"
        return
    assert _amf0_encodable(value), f"{value!r} cannot be carried by AMF0 but was encoded"
    [decoded] = amf0.decode(encoded)
    assert _same(decoded, _amf0_read_back(value)), f"{value!r} read back as {decoded!r}"


# --- memory: tracemalloc's view of what a hostile peer makes us allocate ---------------------------------------

def handshaken(**limits: int) -> ServerConnection:
    server = ServerConnection(random_bytes=bytes, **limits)
    server.receive_data(b"\x03" + bytes(3072))
    server.data_to_send()
    return server


def hostile_attacks() -> dict[str, list[bytes]]:
    """Inputs a peer with no key could send after the handshake, as reads of 4 KiB or less."""
    connect = encode_message(3, 0, 20, 0, amf0.encode("connect", 1.0, {"app": "live"}), 128)
    # 7,000 empty objects: 9 bytes of AMF0 each, some 150 bytes of Python once decoded.
    empty_objects = {f"{i:03x}": {} for i in range(7000)}
    heavy_connect = encode_message(3, 0, 20, 0, amf0.encode("connect", 1.0, empty_objects), 128)
    # Messages of 64 KiB on twenty chunk streams, each stopped after its first chunk.
    partials = b"".join(encode_message(csid, 0, 18, 1, bytes(65_536), 128)[: 12 + 128] for csid in range(10, 30))
    pings = encode_message(2, 0, 4, 0, m.UserControl(6, 1).to_payload(), 128) * 20_000
    streams = b"".join(encode_message(csid, 0, 3, 0, bytes(4), 128) for csid in range(320, 320 + 20_000))
    big_command = encode_message(3, 0, 20, 0, amf0.encode("connect", 1.0, {"app": "x" * 16_000_000}), 4096)
    one_big = encode_message(3, 0, 20, 0, amf0.encode("connect", 1.0, {"app": "x" * 65_000}), 128)

    def reads(data: bytes, size: int = 4096) -> list[bytes]:
        return [data[i : i + size] for i in range(0, len(data), size)]

    return {
        "partial messages on many chunk streams": reads(connect + partials),
        "a connect of 7,000 empty objects": reads(heavy_connect),
        "pings to a peer that does not read": reads(connect + pings),
        "20,000 chunk streams": reads(streams),
        "the first megabyte of a 16 MB command": reads(big_command[:1_000_000]),
        "a 64 KiB command one byte at a time": reads(one_big, 1),
    }


@pytest.mark.parametrize("attack", list(hostile_attacks()))
def test_memory_allocated_for_a_hostile_peer_stays_under_its_budget(attack: str) -> None:
    pieces = hostile_attacks()[attack]
    server = handshaken()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            for piece in pieces:
                server.receive_data(piece)
                while (event := server.next_event()) is not None:
                    assert isinstance(event, ConnectRequest)
                    if len(event.properties) < 10:
                        server.accept_connect()
        except ProtocolError:
            pass
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak <= DEFAULT_BUDGET, f"{attack}: peak {peak} bytes"


# --- work: linear in the bytes fed ------------------------------------------------------------------------------

def media_stream(size: int) -> bytes:
    """Messages of many sizes (empty, under, at and over the chunk size), on three chunk streams."""
    sizes = [1, 100, 127, 128, 129, 1000, 5000, 40_000, 0, 3]
    out, total, i = [], 0, 0
    while total < size:
        message = encode_message(4 + i % 3, i * 10, 8 + i % 2, 1, bytes(sizes[i % len(sizes)]), 128)
        out.append(message)
        total += len(message)
        i += 1
    return b"".join(out)[:size]


def work_per_byte(size: int) -> tuple[float, float]:
    data = media_stream(size)
    reader = ChunkReader()
    feed, pull = reader.feed, reader.next_message
    for i in range(size):
        feed(data[i : i + 1])
        while pull() is not None:
            pass
    assert reader.bytes_received == size and reader.messages_read > size // 10_000
    return reader.parse_steps / size, reader.bytes_copied / size


@pytest.mark.long
def test_ten_megabytes_one_byte_at_a_time_take_work_linear_in_their_size() -> None:
    steps_1, copied_1 = work_per_byte(1_000_000)
    steps_10, copied_10 = work_per_byte(10_000_000)
    # Each byte fed costs at most a couple of parse steps and a few byte copies, at any size.
    assert steps_1 <= 2 and steps_10 <= 2
    assert copied_1 <= 4 and copied_10 <= 4
    assert abs(steps_10 - steps_1) <= 0.05 * steps_1
    assert abs(copied_10 - copied_1) <= 0.05 * copied_1


def test_bytes_fed_without_pulls_are_gathered_in_linear_work() -> None:
    data = media_stream(1_000_000)
    reader = ChunkReader()
    for i in range(len(data)):
        reader.feed(data[i : i + 1])
    while reader.next_message() is not None:
        pass
    assert reader.bytes_copied <= 4 * len(data)
    assert reader.parse_steps <= len(data) // 100


def test_a_connection_fed_one_byte_at_a_time_does_linear_work() -> None:
    # The same through a ServerConnection, a real session: no step of the connection rescans its input.
    data = capture("librtmp-h264.c2s")
    conn = drive(data, pieces=[data[i : i + 1] for i in range(len(data))])
    assert conn.state == "CONNECTED"
    reader = conn._reader
    assert reader.parse_steps <= 2 * len(data) and reader.bytes_copied <= 4 * len(data)
