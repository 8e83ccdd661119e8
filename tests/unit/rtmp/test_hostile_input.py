"""A malformed or hostile peer may only ever raise the core's ProtocolError family.

The ingest closes a connection on ProtocolError and logs one line; anything else would
be a crash of the glue. Real sessions are corrupted at random places and fed in random
splits; the connection must either go on or raise ProtocolError, never anything else.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.rtmp import amf0
from relay.rtmp.chunk import encode_message
from relay.rtmp.connection import MAX_STREAMS, ClientConnection, ServerConnection
from relay.rtmp.errors import ProtocolError
from relay.rtmp.events import ConnectRequest, PublishRequest
from tests.captures import read_capture

HANDSHAKE = 1 + 1536 + 1536
PREFIX = 60_000  # connect, publish and the first media messages: where the state machine is


def drive(data: bytes, splits: list[int]) -> None:
    conn = ServerConnection()
    points = sorted({0, *(p % (len(data) + 1) for p in splits), len(data)})
    try:
        for start, end in zip(points, points[1:]):
            conn.receive_data(data[start:end])
            while (event := conn.next_event()) is not None:
                if isinstance(event, ConnectRequest):
                    conn.accept_connect()
                elif isinstance(event, PublishRequest):
                    conn.accept_publish()
    except ProtocolError:
        pass


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
