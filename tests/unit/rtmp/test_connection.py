"""ClientConnection and ServerConnection talking to each other with no sockets, and hand-made peers."""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.rtmp import amf0
from relay.rtmp import messages as m
from relay.rtmp.accel import ChunkReader
from relay.rtmp.chunkreader import RawMessage
from relay.rtmp.chunkwriter import AUDIO_CSID, DATA_CSID, VIDEO_CSID, encode_message
from relay.rtmp.client import ClientConnection
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from relay.rtmp.events import (
    Connected,
    ConnectRequest,
    Event,
    PublishEnded,
    PublishRequest,
    PublishStarted,
    Refused,
)
from relay.rtmp.server import ServerConnection
from relay.rtmp.states import ERROR
from tests.support.tags import media_fields

KEY = "sk_live_7f3a9c2e41"  # a stream key: never in a repr or an error message
APP = "live"
TC_URL = "rtmp://192.0.2.10/live"
HANDSHAKE_SIZE = 1 + 1536 + 1536  # C0+C1+C2 or S0+S1+S2 before the chunk stream

Splitter = Callable[[bytes], list[bytes]]


def whole(data: bytes) -> list[bytes]:
    return [data]


def one_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


class Wire:
    """What one side put on the wire, decoded by an independent reader (applying its Set Chunk Size)."""

    def __init__(self) -> None:
        self.skip = HANDSHAKE_SIZE
        self.reader = ChunkReader()
        self.messages: list[RawMessage] = []

    def feed(self, data: bytes) -> None:
        taken = min(self.skip, len(data))
        self.skip -= taken
        self.reader.feed(data[taken:])
        while (msg := self.reader.next_message()) is not None:
            self.messages.append(msg)
            if msg.type_id == m.SET_CHUNK_SIZE:
                self.reader.set_chunk_size(m.SetChunkSize.from_payload(msg.payload).size)

    def commands(self) -> list[m.Command]:
        return [m.Command.from_payload(x.payload) for x in self.messages if x.type_id == m.COMMAND_AMF0]

    def of_type(self, type_id: int) -> list[RawMessage]:
        return [x for x in self.messages if x.type_id == type_id]


class Pair:
    """A client and a server; pump() moves bytes both ways until both are quiet.

    The server's requests are answered by `on_connect` / `on_publish` (accept by default).
    """

    def __init__(self, *, app: str = APP, tc_url: str = TC_URL, key: str = KEY, split: Splitter = whole,
                 on_connect: Callable[[ServerConnection], None] = ServerConnection.accept_connect,
                 on_publish: Callable[[ServerConnection], None] = ServerConnection.accept_publish,
                 server_args: dict[str, Any] | None = None, client_args: dict[str, Any] | None = None) -> None:
        self.client = ClientConnection(app, tc_url, key, random_bytes=random.Random(1).randbytes, epoch=5,
                                       **(client_args or {}))
        self.server = ServerConnection(random_bytes=random.Random(2).randbytes, epoch=9, **(server_args or {}))
        self.split = split
        self.on_connect = on_connect
        self.on_publish = on_publish
        self.client_events: list[Event] = []
        self.server_events: list[Event] = []
        self.c2s = Wire()
        self.s2c = Wire()

    def pump(self) -> None:
        while True:
            moved = self._move(self.client, self.c2s, self.server, self.server_events)
            moved |= self._move(self.server, self.s2c, self.client, self.client_events)
            if not moved:
                return

    def _move(self, source: ServerConnection | ClientConnection, wire: Wire,
              sink: ServerConnection | ClientConnection, events: list[Event]) -> bool:
        data = source.data_to_send()
        if not data:
            return False
        wire.feed(data)
        for piece in self.split(data):
            sink.receive_data(piece)
            while (event := sink.next_event()) is not None:
                events.append(event)
                if isinstance(event, ConnectRequest):
                    assert isinstance(sink, ServerConnection)
                    self.on_connect(sink)
                elif isinstance(event, PublishRequest):
                    assert isinstance(sink, ServerConnection)
                    self.on_publish(sink)
        return True

    def publish(self) -> Pair:
        self.pump()
        assert isinstance(self.client_events[-1], PublishStarted), self.client_events
        assert self.client.state == self.server.state == "PUBLISHING"
        return self


def drain(connection: ServerConnection | ClientConnection) -> list[Event]:
    events = []
    while (event := connection.next_event()) is not None:
        events.append(event)
    return events


def send(client: ClientConnection, kind: int, timestamp: int, payload: bytes) -> int:
    """Queue one tag as the relay does: encoded once (EncodedMessage), sent at its timestamp."""
    return client.send_message(EncodedMessage(kind, timestamp, payload), timestamp)


def reply(wire_payload: bytes, type_id: int = m.COMMAND_AMF0, csid: int = 3, stream_id: int = 0) -> bytes:
    """A whole message as a peer that already set its chunk size to 4096 would send it."""
    return encode_message(csid, 0, type_id, stream_id, wire_payload, 4096)


def connected_by_hand() -> Pair:
    """A pair whose client has just seen Connected; nothing the client sent since has reached the server."""
    pair = Pair()
    server, client = pair.server, pair.client
    server.receive_data(client.data_to_send())  # C0 C1
    client.receive_data(server.data_to_send())  # S0 S1 S2
    server.receive_data(client.data_to_send())  # C2, Set Chunk Size, Window Ack Size, connect
    assert isinstance(server.next_event(), ConnectRequest)
    server.accept_connect()
    client.receive_data(server.data_to_send())
    assert isinstance(client.next_event(), Connected)
    assert client.next_event() is None
    return pair


def all_text(exc: BaseException) -> str:
    """Everything an error shows when logged: its traceback with the chain a logger prints, repr and args."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)


# --- the happy path --------------------------------------------------------------------------------------

AAC_HEADER = bytes.fromhex("af00 1190")
AAC_FRAME = bytes.fromhex("af01") + bytes(range(200))
AVC_HEADER = bytes.fromhex("1700000000 0164001fffe1001967640020") + bytes(40)
AVC_KEYFRAME = bytes.fromhex("1701000000") + bytes(range(256)) * 40  # 10 kB: more than one 4096-byte chunk
AVC_INTER = bytes.fromhex("2701000042") + bytes(300)
METADATA = amf0.encode("onMetaData", amf0.ECMAArray({"width": 640.0, "height": 360.0, "videocodecid": 7.0}))

MEDIA = [
    (m.DATA_AMF0, 0, METADATA),
    (m.VIDEO, 0, AVC_HEADER),
    (m.AUDIO, 0, AAC_HEADER),
    (m.VIDEO, 0, AVC_KEYFRAME),
    (m.AUDIO, 21, AAC_FRAME),
    (m.VIDEO, 66, AVC_INTER),  # decode order: a B-frame's dts may run ahead of the audio
    (m.AUDIO, 43, AAC_FRAME),
    (m.VIDEO, 0xFFFFFF, AVC_KEYFRAME),  # extended timestamps, continuation chunks repeating them
    (m.AUDIO, 0x1000000, AAC_FRAME),
    (m.DATA_AMF0, 0x1000000, METADATA),
]


@pytest.mark.parametrize("split", [whole, one_byte], ids=["whole", "one-byte"])
def test_publish_session(split: Splitter) -> None:
    pair = Pair(split=split).publish()
    assert [type(e) for e in pair.server_events] == [ConnectRequest, PublishRequest]
    assert [type(e) for e in pair.client_events] == [Connected, PublishStarted]
    request = pair.server_events[1]
    assert isinstance(request, PublishRequest)
    assert (request.stream_name, request.publish_type) == (KEY, "live")
    assert request.stream_id == pair.client.stream_id == pair.server.publish_stream_id == 1

    for kind, timestamp, payload in MEDIA:
        send(pair.client, kind, timestamp, payload)
    pair.pump()
    assert media_fields(pair.server_events[2:]) == [(kind, ts, payload) for kind, ts, payload in MEDIA]

    pair.client.unpublish()
    pair.pump()
    assert pair.server_events[-1] == PublishEnded("FCUnpublish")
    assert [type(e) for e in pair.server_events].count(PublishEnded) == 1
    assert pair.client.state == "CLOSED" and pair.server.state == "CONNECTED"
    assert [c.name for c in pair.c2s.commands()][-2:] == ["FCUnpublish", "deleteStream"]
    assert pair.c2s.commands()[-2].args == (KEY,)
    assert pair.c2s.commands()[-1].args == (1.0,)


def test_script_data_is_wrapped_on_the_wire_and_unwrapped_on_the_server() -> None:
    pair = Pair().publish()
    send(pair.client, m.DATA_AMF0, 0, METADATA)
    pair.pump()
    sent = pair.c2s.of_type(m.DATA_AMF0)
    assert [x.payload for x in sent] == [amf0.encode("@setDataFrame") + METADATA]
    assert amf0.decode(sent[0].payload)[:2] == ["@setDataFrame", "onMetaData"]
    assert media_fields(pair.server_events[-1:]) == [(18, 0, METADATA)]
    assert EncodedMessage(m.DATA_AMF0, 0, METADATA).length == len(sent[0].payload)
    assert EncodedMessage(m.VIDEO, 0, AVC_INTER).length == len(AVC_INTER)  # media goes unwrapped


def test_media_goes_on_the_publish_stream_and_its_own_chunk_streams() -> None:
    pair = Pair().publish()
    for kind, timestamp, payload in MEDIA:
        send(pair.client, kind, timestamp, payload)
    pair.pump()
    media = [x for x in pair.c2s.messages if x.type_id in (8, 9, 18)]
    assert {x.stream_id for x in media} == {1}
    assert {x.type_id: x.csid for x in media} == {m.AUDIO: AUDIO_CSID, m.VIDEO: VIDEO_CSID, m.DATA_AMF0: DATA_CSID}


def test_setup_messages_on_the_wire() -> None:
    pair = Pair().publish()
    client_side = pair.c2s.messages
    # Set Chunk Size and Window Acknowledgement Size go first, on chunk stream 2, message stream 0 (5.4).
    assert [(x.csid, x.stream_id, x.type_id) for x in client_side[:2]] == [(2, 0, m.SET_CHUNK_SIZE), (2, 0, 5)]
    assert m.SetChunkSize.from_payload(client_side[0].payload).size == pair.client.out_chunk_size == 4096
    names = [c.name for c in pair.c2s.commands()]
    assert names == ["connect", "releaseStream", "FCPublish", "createStream", "publish"]
    publish = pair.c2s.commands()[-1]
    assert publish.args == (KEY, "live") and publish.transaction_id == 0
    assert [x.stream_id for x in pair.c2s.of_type(m.COMMAND_AMF0)][-1] == 1

    server_names = [c.name for c in pair.s2c.commands()]
    assert server_names[0] == "_result" and server_names[-1] == "onStatus"
    assert pair.s2c.commands()[-1].args[0]["code"] == "NetStream.Publish.Start"
    begin = pair.s2c.of_type(m.USER_CONTROL)
    assert [m.UserControl.from_payload(x.payload) for x in begin] == [m.UserControl(m.STREAM_BEGIN, 1)]
    assert m.WindowAckSize.from_payload(pair.s2c.of_type(m.WINDOW_ACK_SIZE)[0].payload).size == 2_500_000


def test_connect_command_carries_app_tc_url_and_fourcc_list() -> None:
    pair = Pair(client_args={"enhanced": True}).publish()
    connect = pair.c2s.commands()[0]
    assert connect.name == "connect" and connect.transaction_id == 1.0
    props = connect.command_object
    assert props["app"] == APP and props["tcUrl"] == TC_URL
    assert isinstance(props["flashVer"], str)
    assert {"avc1", "hvc1", "av01", "vp09", "mp4a", "Opus"} <= set(props["fourCcList"])  # Enhanced RTMP v1
    assert props["videoFourCcInfoMap"] == {"*": 4.0}  # v2: can forward any codec
    request = pair.server_events[0]
    assert isinstance(request, ConnectRequest)
    assert (request.app, request.tc_url) == (APP, TC_URL)
    assert request.properties["fourCcList"] == props["fourCcList"]


def test_multi_segment_app_round_trips() -> None:
    pair = Pair(app="live/instance", tc_url="rtmp://192.0.2.10:1935/live/instance").publish()
    request = pair.server_events[0]
    assert isinstance(request, ConnectRequest)
    assert request.app == "live/instance"
    assert request.tc_url == "rtmp://192.0.2.10:1935/live/instance"


def test_messages_encoded_once_arrive_unchanged_at_every_target() -> None:
    # The fan-out encodes a tag's chunked body once (EncodedMessage) and each target adds its header.
    messages = [EncodedMessage(kind, timestamp, payload) for kind, timestamp, payload in MEDIA]
    stamps = [timestamp for _kind, timestamp, _payload in MEDIA]
    pairs = [Pair().publish() for _ in range(2)]
    for pair in pairs:
        pair.client.send_encoded(messages, stamps)
        pair.pump()
        assert media_fields(pair.server_events[2:]) == [(k, ts, p) for k, ts, p in MEDIA]


def test_aggregate_message_is_split_into_media() -> None:
    # 7.1.6: FLV-tag-shaped sub-messages; their timestamps are rebased on the aggregate's own.
    def sub(kind: int, timestamp: int, payload: bytes) -> bytes:
        header = bytes((kind,)) + len(payload).to_bytes(3, "big") + (timestamp & 0xFFFFFF).to_bytes(3, "big")
        header += bytes((timestamp >> 24,)) + bytes(3)
        return header + payload + (11 + len(payload)).to_bytes(4, "big")

    pair = Pair().publish()
    aggregate = sub(m.VIDEO, 500, AVC_INTER) + sub(m.AUDIO, 520, AAC_FRAME) + sub(m.VIDEO, 533, AVC_INTER)
    pair.server.receive_data(encode_message(6, 1000, m.AGGREGATE, 1, aggregate, 4096))
    assert media_fields(drain(pair.server)) == [
        (m.VIDEO, 1000, AVC_INTER),
        (m.AUDIO, 1020, AAC_FRAME),
        (m.VIDEO, 1033, AVC_INTER),
    ]
    pair.server.receive_data(encode_message(6, 2000, m.AGGREGATE, 1, aggregate[:-10], 4096))
    with pytest.raises(RemoteProtocolError):
        drain(pair.server)


# --- refusals --------------------------------------------------------------------------------------------

def test_reject_publish() -> None:
    pair = Pair(on_publish=lambda server: server.reject_publish("NetStream.Publish.BadName", f"no stream {KEY}"))
    pair.pump()
    assert [type(e) for e in pair.client_events] == [Connected, Refused]
    assert pair.client_events[-1] == Refused("publish", "NetStream.Publish.BadName", f"no stream {KEY}")
    assert pair.client.state == pair.server.state == "CLOSED"
    assert KEY not in repr(pair.client_events[-1])
    with pytest.raises(LocalProtocolError):
        send(pair.client, m.AUDIO, 0, AAC_FRAME)


def test_reject_connect() -> None:
    pair = Pair(on_connect=lambda server: server.reject_connect("unknown app"))
    pair.pump()
    assert pair.client_events == [Refused("connect", "NetConnection.Connect.Rejected", "unknown app")]
    assert [type(e) for e in pair.server_events] == [ConnectRequest]
    assert pair.client.state == pair.server.state == "CLOSED"
    assert [c.name for c in pair.c2s.commands()] == ["connect"]  # nothing after a refusal


def test_create_stream_refused() -> None:
    client = connected_by_hand().client
    error = m.status_info("error", "NetConnection.Call.Failed", "no")
    client.receive_data(reply(amf0.encode("_error", 4.0, None, error)))  # 4: createStream's transaction
    assert client.next_event() == Refused("createStream", "NetConnection.Call.Failed", "no")
    assert client.state == "CLOSED"


def test_server_answers_must_come_in_order() -> None:
    pair = Pair(on_connect=lambda server: None)
    pair.pump()
    assert pair.server.state == "CONNECT_PENDING"
    with pytest.raises(LocalProtocolError):
        pair.server.accept_publish()
    pair.server.accept_connect()
    with pytest.raises(LocalProtocolError):
        pair.server.accept_connect()


# --- the client never waits for releaseStream / FCPublish ----------------------------------------------

def test_client_sends_create_stream_before_any_answer() -> None:
    client = connected_by_hand().client
    out = Wire()
    out.skip = 0
    out.reader.set_chunk_size(client.out_chunk_size)
    out.feed(client.data_to_send())
    commands = out.commands()
    assert [c.name for c in commands] == ["releaseStream", "FCPublish", "createStream"]
    assert commands[0].args == (KEY,) and commands[1].args == (KEY,)

    # A server that never answers releaseStream or FCPublish: only createStream gets a _result.
    create = commands[2]
    client.receive_data(reply(amf0.encode("_result", create.transaction_id, None, 1.0)))
    assert client.next_event() is None
    out.feed(client.data_to_send())
    publish = out.commands()[-1]
    assert (publish.name, publish.args) == ("publish", (KEY, "live"))
    assert out.messages[-1].stream_id == 1
    status = m.status_info("status", "NetStream.Publish.Start", "go")
    client.receive_data(reply(amf0.encode("onStatus", 0.0, None, status), stream_id=1))
    assert client.next_event() == PublishStarted("go")
    send(client, m.AUDIO, 0, AAC_HEADER)


# --- protocol control: acknowledgements, pings --------------------------------------------------------------

FILLER = reply(amf0.encode("onBWDone", 0.0, None))  # a message the client reads and ignores


def acks(wire: Wire) -> list[int]:
    return [m.Acknowledgement.from_payload(x.payload).sequence_number for x in wire.of_type(m.ACKNOWLEDGEMENT)]


def test_client_acknowledges_each_window() -> None:
    window = 1000
    pair = Pair(server_args={"window": window}).publish()
    client = pair.client
    assert acks(pair.c2s) == []  # the setup is under one window
    expected: list[int] = []
    last = 0
    for _ in range(300):
        client.receive_data(FILLER)
        assert drain(client) == []
        if client.bytes_received - last >= window:
            last = client.bytes_received
            expected.append(last)
        pair.c2s.feed(client.data_to_send())
    assert len(expected) >= 300 * len(FILLER) // (window + len(FILLER))
    assert acks(pair.c2s) == expected
    gaps = [b - a for a, b in zip([0, *expected], expected, strict=False)]
    assert all(window <= gap < window + len(FILLER) for gap in gaps)
    # 5.4.5: a Set Peer Bandwidth that differs from our window is answered with ours set to it
    sizes = [m.WindowAckSize.from_payload(x.payload).size for x in pair.c2s.of_type(m.WINDOW_ACK_SIZE)]
    assert sizes == [2_500_000, window]


def test_acknowledgement_sequence_number_wraps_at_2_32() -> None:
    pair = Pair(server_args={"window": 1000}).publish()
    client = pair.client
    client._reader.bytes_received = 2**32 - 600  # as after 4 GB of a long show
    client.receive_data(FILLER)
    drain(client)
    first = client.bytes_received
    while client.bytes_received < first + 1000:
        client.receive_data(FILLER)
        drain(client)
    pair.c2s.feed(client.data_to_send())
    assert first < 2**32 < client.bytes_received
    assert acks(pair.c2s) == [first, client.bytes_received - 2**32]


def test_server_acknowledges_the_client_window() -> None:
    pair = Pair(client_args={"window": 5000}, server_args={"window": 5000}).publish()
    for _ in range(100):
        send(pair.client, m.AUDIO, 0, AAC_FRAME)
        pair.pump()
    sent = acks(pair.s2c)
    assert len(sent) >= 3 and all(b - a >= 5000 for a, b in zip([0, *sent], sent, strict=False))
    assert sent[-1] <= pair.server.bytes_received


@pytest.mark.parametrize("role", ["client", "server"])
def test_ping_request_is_answered(role: str) -> None:
    pair = Pair().publish()
    connection = pair.client if role == "client" else pair.server
    wire = pair.c2s if role == "client" else pair.s2c
    ping = reply(m.UserControl(m.PING_REQUEST, 0xCAFE0001).to_payload(), type_id=m.USER_CONTROL, csid=2)
    connection.receive_data(ping)
    assert drain(connection) == []
    wire.feed(connection.data_to_send())
    pong = wire.messages[-1]
    assert (pong.csid, pong.stream_id, pong.type_id) == (2, 0, m.USER_CONTROL)
    assert m.UserControl.from_payload(pong.payload) == m.UserControl(m.PING_RESPONSE, 0xCAFE0001)


def test_set_chunk_size_and_abort_from_the_peer() -> None:
    pair = Pair().publish()
    server = pair.server
    data = (
        reply(m.SetChunkSize(128).to_payload(), type_id=m.SET_CHUNK_SIZE, csid=2)
        + encode_message(6, 40, m.VIDEO, 1, AVC_INTER, 128)[: 12 + 128 + 1 + 128]  # 2 of 3 chunks
        + encode_message(2, 0, m.ABORT, 0, m.Abort(6).to_payload(), 128)
        + encode_message(6, 50, m.VIDEO, 1, AVC_INTER, 128)
    )
    server.receive_data(data)
    assert media_fields(drain(server)) == [(m.VIDEO, 50, AVC_INTER)]


def test_media_is_an_event_only_on_the_published_stream_while_publishing() -> None:
    # The reader makes the published stream's media into events itself (one object per message):
    # it must do so exactly while the connection publishes, and only for the stream it publishes.
    pair = Pair().publish()
    server = pair.server
    chunk_size = pair.client.out_chunk_size  # what the server reads at
    video = encode_message(6, 40, m.VIDEO, 1, AVC_INTER, chunk_size)
    server.receive_data(video + encode_message(6, 50, m.VIDEO, 2, AVC_INTER, chunk_size))  # stream 2: not published
    assert media_fields(drain(server)) == [(m.VIDEO, 40, AVC_INTER)]
    pair.client.unpublish()
    pair.pump()
    assert pair.server_events[-1] == PublishEnded("FCUnpublish") and server.state == "CONNECTED"
    server.receive_data(video)  # after the publisher stopped, its media goes nowhere
    assert drain(server) == []


# --- errors ------------------------------------------------------------------------------------------------

BAD_CHUNK = bytes.fromhex("87 000000")  # a type-2 header on a chunk stream never started: no length


@pytest.mark.parametrize("role", ["client", "server"])
def test_protocol_error_is_sticky(role: str) -> None:
    pair = Pair().publish()
    connection: ClientConnection | ServerConnection = pair.client if role == "client" else pair.server
    connection.receive_data(BAD_CHUNK)
    with pytest.raises(RemoteProtocolError):
        connection.next_event()
    assert connection.state == ERROR
    with pytest.raises(ProtocolError):
        connection.next_event()
    with pytest.raises(ProtocolError):
        connection.receive_data(b"")
    if isinstance(connection, ClientConnection):
        with pytest.raises(ProtocolError):
            send(connection, m.AUDIO, 0, AAC_FRAME)
        with pytest.raises(ProtocolError):
            connection.unpublish()
    else:
        with pytest.raises(ProtocolError):
            connection.accept_publish()
    assert connection.state == ERROR


def test_handshake_error_is_sticky() -> None:
    server = ServerConnection(random_bytes=random.Random(2).randbytes)
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"\x06" + bytes(1536))  # RTMPE
    assert server.state == ERROR
    with pytest.raises(ProtocolError):
        server.receive_data(b"\x03")
    with pytest.raises(ProtocolError):
        server.next_event()


def test_sending_media_before_publishing_raises() -> None:
    client = ClientConnection(APP, TC_URL, KEY, random_bytes=random.Random(1).randbytes)
    with pytest.raises(LocalProtocolError):
        send(client, m.AUDIO, 0, AAC_FRAME)
    with pytest.raises(LocalProtocolError):
        client.send_encoded([EncodedMessage(m.AUDIO, 0, AAC_FRAME)], [0])
    pair = Pair(on_publish=lambda server: None)
    pair.pump()
    assert pair.client.state == "PUBLISH_SENT"
    with pytest.raises(LocalProtocolError):
        send(pair.client, m.VIDEO, 0, AVC_HEADER)
    assert pair.client.state == "PUBLISH_SENT"  # a refused call breaks nothing
    pair.server.accept_publish()
    pair.pump()
    send(pair.client, m.VIDEO, 0, AVC_HEADER)


def test_publish_before_connect_is_refused() -> None:
    pair = Pair(on_connect=lambda server: None)
    pair.pump()
    server = pair.server
    server.receive_data(encode_message(3, 0, m.COMMAND_AMF0, 0, amf0.encode("createStream", 2.0, None), 128))
    with pytest.raises(RemoteProtocolError):
        server.next_event()


# --- the stream key stays out of reprs and error messages --------------------------------------------------

def test_stream_key_never_in_a_repr() -> None:
    key_in_tc_url = f"rtmp://192.0.2.10/live?key={KEY}"
    pair = Pair(tc_url=key_in_tc_url).publish()
    for kind, timestamp, payload in MEDIA:
        send(pair.client, kind, timestamp, payload)
    pair.client.unpublish()
    pair.pump()
    events = pair.client_events + pair.server_events
    assert len(events) == 2 + 2 + len(MEDIA) + 1
    for thing in [pair.client, pair.server, *events]:
        assert KEY not in repr(thing), thing
    assert any(KEY in str(c.args) for c in pair.c2s.commands())  # it was there to leak


def publish_on_a_stream_never_created() -> tuple[ServerConnection | ClientConnection, bytes]:
    pair = Pair(on_connect=lambda server: None)
    pair.pump()
    pair.server.accept_connect()
    pair.pump()
    publish = amf0.encode("publish", 0.0, None, KEY, "live")
    return pair.server, encode_message(3, 0, m.COMMAND_AMF0, 9, publish, 4096)


def publish_with_a_truncated_name() -> tuple[ServerConnection | ClientConnection, bytes]:
    pair = Pair(on_publish=lambda server: None)
    pair.pump()
    publish = amf0.encode("publish", 0.0, None) + b"\x02\x00\x40" + KEY.encode()  # 64 bytes announced
    return pair.server, encode_message(3, 0, m.COMMAND_AMF0, 1, publish, 4096)


def publish_with_invalid_utf8() -> tuple[ServerConnection | ClientConnection, bytes]:
    pair = Pair(on_publish=lambda server: None)
    pair.pump()
    name = KEY.encode() + b"\xff"
    publish = amf0.encode("publish", 0.0, None) + b"\x02" + len(name).to_bytes(2, "big") + name
    return pair.server, encode_message(3, 0, m.COMMAND_AMF0, 1, publish, 4096)


def create_stream_answered_without_a_stream_id() -> tuple[ServerConnection | ClientConnection, bytes]:
    client = connected_by_hand().client
    client.data_to_send()  # releaseStream and FCPublish (with the key), createStream (transaction 4)
    return client, reply(amf0.encode("_result", 4.0, None, "x"))


@pytest.mark.parametrize(
    "setup",
    [
        publish_on_a_stream_never_created,
        publish_with_a_truncated_name,
        publish_with_invalid_utf8,
        create_stream_answered_without_a_stream_id,
    ],
)
def test_stream_key_never_in_an_error(setup: Callable[[], tuple[ServerConnection | ClientConnection, bytes]]) -> None:
    connection, data = setup()
    connection.receive_data(data)
    with pytest.raises(ProtocolError) as first:
        connection.next_event()
    assert KEY not in all_text(first.value)
    with pytest.raises(ProtocolError) as again:  # the sticky error repeats the first one
        connection.next_event()
    assert KEY not in all_text(again.value)
    assert KEY not in repr(connection)


def test_stream_key_never_in_a_local_error() -> None:
    client = ClientConnection(APP, TC_URL, KEY)
    with pytest.raises(LocalProtocolError) as info:
        send(client, m.VIDEO, 0, AVC_HEADER)
    assert KEY not in all_text(info.value)


# --- any media, any split ------------------------------------------------------------------------------------

BYTES = bytes(range(256)) * 50


def payloads() -> st.SearchStrategy[bytes]:
    """Sizes around and past the chunk sizes used, each payload distinct from its neighbours."""
    size = st.one_of(st.integers(0, 300), st.integers(990, 1010), st.integers(4090, 4100), st.integers(4097, 12_000))
    return st.builds(lambda start, n: BYTES[start : start + n], st.integers(0, 255), size)


def random_splitter(rnd: random.Random) -> Splitter:
    def split(data: bytes) -> list[bytes]:
        pieces, at = [], 0
        while at < len(data):
            step = rnd.choice((1, 2, 3, 7, 11, 100, 1000, 4000, 5000))
            pieces.append(data[at : at + step])
            at += step
        return pieces

    return split


@settings(max_examples=120, deadline=None)
@given(
    media=st.lists(
        st.tuples(
            st.sampled_from([m.AUDIO, m.VIDEO, m.DATA_AMF0]),
            st.one_of(st.integers(0, 100_000), st.integers(0xFFFFF0, 0x1000010), st.integers(0, 2**32 - 1)),
            payloads(),
        ),
        max_size=10,
    ),
    chunk_size=st.sampled_from([128, 1000, 4096]),
    split_seed=st.integers(0, 2**32 - 1),
)
def test_any_media_arrives_unchanged(media: list[tuple[int, int, bytes]], chunk_size: int, split_seed: int) -> None:
    # The split points come from a seeded generator rather than from Hypothesis draws: a session
    # is thousands of pieces, far more choices than Hypothesis should shrink.
    split = random_splitter(random.Random(split_seed))
    pair = Pair(split=split, client_args={"out_chunk_size": chunk_size}).publish()
    for kind, timestamp, payload in media:
        send(pair.client, kind, timestamp, payload)
    pair.pump()
    assert media_fields(pair.server_events[2:]) == [(kind, ts, payload) for kind, ts, payload in media]
