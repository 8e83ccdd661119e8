"""RTMP connections, sans I/O: `ServerConnection` (a publisher talks to us) and
`ClientConnection` (we publish to a target).

Theory of operation
-------------------
The owner feeds received bytes with `receive_data()`, then calls `next_event()` until it
returns None, and writes out whatever `data_to_send()` (or `take_output()`) returns. It
never touches a socket through us, and we never look at a clock.

Under the events sit three layers. The handshake (handshake.py) consumes the first bytes
and hands its leftover to the chunk reader (chunk.py), which reassembles messages.
Protocol-control messages (Set Chunk Size, Abort, Window Acknowledgement Size, Set Peer
Bandwidth, User Control pings) are answered here and never surface; acknowledgements are
sent whenever a window's worth of bytes has been received, with a sequence number that
wraps at 2^32 (a relay that stops acking after 4 GB stalls a long show). Commands drive a
state machine whose transitions are a plain table: a (state, trigger) pair missing from
it is a protocol error, raised by the peer's fault (RemoteProtocolError) or ours
(LocalProtocolError).

Any ProtocolError leaves the connection in a sticky ERROR state: every later call raises
again, so the owner only has to close the transport and log once.

Hostile peers (limits.py). Until `accept_publish` the peer has shown no key: each message
is capped at `max_command_size` by its chunk header, `bytes_held` (partial messages, unread
input, queued output) stays under `max_unauthenticated_memory`, and a command is checked
against the state table by name before its body is decoded. Always: replies queued for a
peer that does not read are capped (`max_output_bytes`), acks come at most every
`MIN_ACK_WINDOW` bytes, and an aggregate yields one sub-message per event.

Neither role ever waits for answers to releaseStream or FCPublish (many servers send
none): a client sends them, then createStream, in one go.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from relay.rtmp import amf0
from relay.rtmp import messages as m
from relay.rtmp.chunk import (
    AUDIO_CSID,
    COMMAND_CSID,
    DATA_CSID,
    DEFAULT_OUT_CHUNK_SIZE,
    EXTENDED,
    VIDEO_CSID,
    ChunkReader,
    RawMessage,
    encode_header,
    encode_message,
)
from relay.rtmp.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from relay.rtmp.events import (
    Connected,
    ConnectRequest,
    DataDropped,
    Event,
    Media,
    PublishEnded,
    PublishRequest,
    PublishStarted,
    ReconnectRequested,
    Refused,
    StatusReceived,
)
from relay.rtmp.handshake import ClientHandshake, ServerHandshake
from relay.rtmp.limits import (
    DEFAULT_MAX_CHUNK_SIZE,
    DEFAULT_MAX_COMMAND_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_UNAUTHENTICATED_MEMORY,
    MAX_COMMAND_VALUES,
    MAX_MESSAGE_LENGTH,
    MAX_MESSAGES_BEFORE_PUBLISH,
    MAX_PENDING_BYTES,
    MAX_STREAMS,
    MIN_ACK_WINDOW,
)

if TYPE_CHECKING:
    from relay.rtmp.encoded import EncodedMessage

_CSID_FOR_KIND = {m.AUDIO: AUDIO_CSID, m.VIDEO: VIDEO_CSID, m.DATA_AMF0: DATA_CSID}

DEFAULT_WINDOW = 2_500_000
_SET_DATA_FRAME = amf0.encode("@setDataFrame")
# The largest script tag that still fits the 24-bit length once @setDataFrame is put back
# in front of it by a target (5.3.1.2.1); anything longer would be sent with a wrong length.
MAX_SCRIPT_TAG = MAX_MESSAGE_LENGTH - len(_SET_DATA_FRAME)
# Commands whose arrival is a transition of the state table: refused by name alone in a state
# that has no such transition, before their body is decoded.
_TRIGGER_OF_COMMAND = {"connect": "connect", "publish": "publish"}
FLASH_VER = "FMLE/3.0 (compatible; simulcast-relay)"

# Enhanced RTMP (v1 fourCcList, v2 FourCcInfoMap with the "*" wildcard): tell the target
# we may forward any codec, so HEVC and AV1 pass through to servers that take them. Sent
# only when asked (ClientConnection(enhanced=True)): fourCcList is an AMF0 strict array,
# which classic AMF0 parsers (pyrtmp, many home-grown servers) cannot decode, and they then
# never answer the connect. An H.264/AAC stream needs none of it.
_FOURCC_LIST = ["av01", "vp09", "vp08", "hvc1", "avc1", "Opus", "mp4a", "fLaC", "ac-3", "ec-3", ".mp3"]
_CAN_FORWARD = 0x04
_CAPS_EX_RECONNECT = 0x01

# Connection states
HANDSHAKE = "HANDSHAKE"
AWAIT_CONNECT = "AWAIT_CONNECT"
CONNECT_PENDING = "CONNECT_PENDING"
CONNECT_SENT = "CONNECT_SENT"
CONNECTED = "CONNECTED"
PUBLISH_PENDING = "PUBLISH_PENDING"
PUBLISH_SENT = "PUBLISH_SENT"
PUBLISHING = "PUBLISHING"
CLOSED = "CLOSED"
ERROR = "ERROR"

# (state, trigger) -> next state. Triggers are peer commands and our own calls.
_SERVER_TABLE: dict[tuple[str, str], str] = {
    (HANDSHAKE, "handshake_done"): AWAIT_CONNECT,
    (AWAIT_CONNECT, "connect"): CONNECT_PENDING,
    (CONNECT_PENDING, "accept_connect"): CONNECTED,
    (CONNECT_PENDING, "reject_connect"): CLOSED,
    (CONNECTED, "publish"): PUBLISH_PENDING,
    (PUBLISH_PENDING, "accept_publish"): PUBLISHING,
    (PUBLISH_PENDING, "reject_publish"): CLOSED,
    (PUBLISHING, "unpublish"): CONNECTED,
}
_CLIENT_TABLE: dict[tuple[str, str], str] = {
    (HANDSHAKE, "handshake_done"): CONNECT_SENT,
    (CONNECT_SENT, "connect_result"): CONNECTED,
    (CONNECT_SENT, "refused"): CLOSED,
    (CONNECTED, "create_stream_result"): PUBLISH_SENT,
    (CONNECTED, "refused"): CLOSED,
    (PUBLISH_SENT, "publish_start"): PUBLISHING,
    (PUBLISH_SENT, "refused"): CLOSED,
    (PUBLISHING, "unpublish"): CLOSED,
    (CONNECTED, "unpublish"): CLOSED,
    (PUBLISH_SENT, "unpublish"): CLOSED,
}


class _Connection:
    """What both roles share: handshake, chunk layer, protocol control, sticky errors."""

    _table: dict[tuple[str, str], str]

    def __init__(self, handshake: ServerHandshake | ClientHandshake, out_chunk_size: int, window: int,
                 reader: ChunkReader, max_output_bytes: int | None) -> None:
        self.state = HANDSHAKE
        self._handshake: ServerHandshake | ClientHandshake | None = handshake
        self._reader = reader
        self._out: list[bytes | memoryview] = []  # memoryview: shared media bodies (encoded.py)
        self._out_bytes = 0
        self._max_output = max_output_bytes if max_output_bytes is not None else 1 << 62
        self._max_held: int | None = None  # bytes_held limit, while the peer is not trusted
        self._aggregate: tuple[RawMessage, int, int | None] | None = None  # message, offset, base timestamp
        self._events: deque[Event] = deque()
        self._error: ProtocolError | None = None
        self.out_chunk_size = 128  # until our Set Chunk Size is queued
        self._wanted_chunk_size = out_chunk_size
        self._window = window  # what we ask the peer to ack at
        self._peer_window = 0  # what the peer asks us to ack at; 0 = never asked
        self._last_ack = 0
        self._take_handshake_output()

    # -- the public surface --------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes received from the peer."""
        self._check()
        try:
            if self._handshake is not None:
                self._handshake.receive_data(data)
                self._take_handshake_output()
                if self._handshake.complete:
                    leftover = self._handshake.leftover
                    self._handshake = None
                    self._transition("handshake_done", remote=True)
                    self._on_handshake_done()
                    self._reader.feed(leftover)
            else:
                self._reader.feed(data)
        except ProtocolError as exc:
            self._fail(exc)

    def next_event(self) -> Event | None:
        """The next event, or None when more bytes are needed."""
        self._check()
        events = self._events
        if events:
            return events.popleft()
        if self._handshake is not None:
            return None
        reader = self._reader
        try:
            if self._aggregate is not None:
                self._next_in_aggregate()
            while not events:
                msg = reader.next_message()
                if msg is None:
                    self._check_held()
                    break
                self._dispatch(msg)
            if self._peer_window and reader.bytes_received - self._last_ack >= self._peer_window:
                self._last_ack = reader.bytes_received
                self._reply(m.ACKNOWLEDGEMENT, m.Acknowledgement(reader.bytes_received).to_payload())
        except ProtocolError as exc:
            self._fail(exc)
        return events.popleft() if events else None

    def data_to_send(self) -> bytes:
        """Everything queued for the peer, as one bytes object."""
        return b"".join(self.take_output())

    def take_output(self) -> list[bytes | memoryview]:
        """Everything queued for the peer, as a list for writelines() (no join copy)."""
        out = self._out
        self._out = []
        self._out_bytes = 0
        if self._max_held is not None:
            self._reader.max_pending_bytes = self._max_held
        return out

    @property
    def bytes_received(self) -> int:
        """Bytes received after the handshake (the acknowledgement counter, unwrapped)."""
        return self._reader.bytes_received

    @property
    def output_bytes(self) -> int:
        """Bytes queued for the peer and not yet taken (data_to_send / take_output)."""
        return self._out_bytes

    @property
    def bytes_held(self) -> int:
        """Memory held for this peer: partial messages, unread input, handshake and queued output."""
        held = self._reader.bytes_held + self._out_bytes
        if self._handshake is not None:
            held += self._handshake.bytes_held
        return held

    # -- internals -----------------------------------------------------------------

    def _check(self) -> None:
        if self._error is not None:
            raise RemoteProtocolError(f"connection already failed: {self._error}") from self._error

    def _fail(self, exc: ProtocolError) -> None:
        self._error = exc
        self.state = ERROR
        raise exc

    def _transition(self, trigger: str, remote: bool) -> None:
        try:
            self.state = self._table[(self.state, trigger)]
        except KeyError:
            cls = RemoteProtocolError if remote else LocalProtocolError
            raise cls(f"{trigger!r} not allowed in state {self.state}") from None

    def _take_handshake_output(self) -> None:
        if self._handshake is not None:
            data = self._handshake.data_to_send()
            if data:
                self._queue(data)

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._out_bytes += len(data)
        if self._max_held is not None:
            # Output the peer has not taken is memory held for it: partial messages get the rest.
            self._reader.max_pending_bytes = self._max_held - self._out_bytes

    def _check_held(self) -> None:  # when a read is consumed
        if self._max_held is not None and self.bytes_held > self._max_held:
            raise RemoteProtocolError(f"over {self._max_held} bytes held for a peer that is not publishing")
        self._check_output()

    def _check_output(self) -> None:
        if self._out_bytes > self._max_output:
            raise RemoteProtocolError(f"the peer is not reading: over {self._max_output} bytes queued for it")

    def _on_handshake_done(self) -> None:
        pass

    def _set_out_chunk_size(self) -> None:
        size = self._wanted_chunk_size
        self._send_control(m.SET_CHUNK_SIZE, m.SetChunkSize(size).to_payload())
        self.out_chunk_size = size

    def _send_control(self, type_id: int, payload: bytes) -> None:
        self._queue(encode_message(m.CONTROL_CSID, 0, type_id, 0, payload, self.out_chunk_size))

    def _reply(self, type_id: int, payload: bytes) -> None:
        """Queue a control message the peer's input asked for, within the output bound."""
        self._send_control(type_id, payload)
        self._check_output()

    def _send_command(self, name: str, transaction_id: float, command_object: Any, *args: Any,
                      stream_id: int = 0) -> None:
        payload = amf0.encode(name, transaction_id, command_object, *args)
        self._queue(encode_message(COMMAND_CSID, 0, m.COMMAND_AMF0, stream_id, payload, self.out_chunk_size))

    def _send_status(self, stream_id: int, level: str, code: str, description: str) -> None:
        self._send_command("onStatus", 0, None, m.status_info(level, code, description), stream_id=stream_id)

    def _dispatch(self, msg: RawMessage) -> None:
        type_id = msg.type_id
        if type_id in (m.AUDIO, m.VIDEO):
            self._on_media(msg)
        elif type_id in (m.COMMAND_AMF0, m.COMMAND_AMF3):
            payload = msg.payload
            amf3 = type_id == m.COMMAND_AMF3
            if self._command_allowed(m.command_name(payload, amf3=amf3)):
                self._on_command(m.Command.from_payload(payload, amf3=amf3, max_values=MAX_COMMAND_VALUES), msg)
                self._check_output()  # answers to calls are replies too
        elif type_id in (m.DATA_AMF0, m.DATA_AMF3):
            self._on_data(msg)
        elif type_id == m.SET_CHUNK_SIZE:
            self._reader.set_chunk_size(m.SetChunkSize.from_payload(msg.payload).size)
        elif type_id == m.ABORT:
            self._reader.abort(m.Abort.from_payload(msg.payload).csid)
        elif type_id == m.WINDOW_ACK_SIZE:
            self._peer_window = max(m.WindowAckSize.from_payload(msg.payload).size, MIN_ACK_WINDOW)
        elif type_id == m.SET_PEER_BANDWIDTH:
            bandwidth = m.SetPeerBandwidth.from_payload(msg.payload)
            if bandwidth.size != self._window:  # 5.4.5: answer with our Window Acknowledgement Size
                self._window = bandwidth.size
                self._reply(m.WINDOW_ACK_SIZE, m.WindowAckSize(bandwidth.size).to_payload())
        elif type_id == m.USER_CONTROL:
            control = m.UserControl.from_payload(msg.payload)
            if control.event_type == m.PING_REQUEST:
                self._reply(m.USER_CONTROL, m.UserControl(m.PING_RESPONSE, control.value).to_payload())
        elif type_id == m.AGGREGATE:
            self._on_aggregate(msg)
        # Acknowledgements and anything unknown are ignored: we never throttle on the peer's acks.

    def _command_allowed(self, name: str) -> bool:
        """Whether a command with this name may be decoded and handled now; False to ignore it."""
        return True

    def _next_in_aggregate(self) -> None:
        """Hand on sub-messages of the aggregate being split (7.1.6) until one makes an event."""
        self._aggregate = None

    def _on_media(self, msg: RawMessage) -> None:
        pass

    def _on_data(self, msg: RawMessage) -> None:
        pass

    def _on_aggregate(self, msg: RawMessage) -> None:
        pass

    def _on_command(self, cmd: m.Command, msg: RawMessage) -> None:
        raise NotImplementedError


class ServerConnection(_Connection):
    """The server role: a publisher connects, creates a stream and publishes to us."""

    _table = _SERVER_TABLE

    def __init__(self, *, random_bytes: Callable[[int], bytes] = os.urandom, epoch: int = 0,
                 out_chunk_size: int = DEFAULT_OUT_CHUNK_SIZE, window: int = DEFAULT_WINDOW,
                 max_chunk_size: int = DEFAULT_MAX_CHUNK_SIZE, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 max_command_size: int = DEFAULT_MAX_COMMAND_SIZE,
                 max_unauthenticated_memory: int = DEFAULT_MAX_UNAUTHENTICATED_MEMORY,
                 max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
                 max_messages_before_publish: int = MAX_MESSAGES_BEFORE_PUBLISH) -> None:
        # Until the publisher is accepted, every message is held to the command limit and all
        # partial messages together to the memory budget; accept_publish widens both.
        reader = ChunkReader(max_chunk_size=max_chunk_size,
                             max_message_size=min(max_command_size, max_message_size),
                             max_pending_bytes=max_unauthenticated_memory,
                             max_messages=max_messages_before_publish)
        super().__init__(ServerHandshake(random_bytes=random_bytes, epoch=epoch), out_chunk_size, window,
                         reader, max_output_bytes)
        self._max_held = max_unauthenticated_memory
        self._max_message_size = max_message_size
        self._connect_tid = 0.0
        self._next_stream_id = 1
        self._stream_ids: set[int] = set()
        self.publish_stream_id = 0
        self.dropped_data_messages = 0

    # -- the owner's answers -------------------------------------------------------

    def accept_connect(self) -> None:
        """Answer `connect` with success, announcing our window, bandwidth and chunk size."""
        self._check()
        self._transition("accept_connect", remote=False)
        self._send_control(m.WINDOW_ACK_SIZE, m.WindowAckSize(self._window).to_payload())
        self._send_control(m.SET_PEER_BANDWIDTH, m.SetPeerBandwidth(self._window, 2).to_payload())
        self._set_out_chunk_size()
        properties = {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0}
        info = m.status_info("status", "NetConnection.Connect.Success", "Connection succeeded.", objectEncoding=0.0)
        self._send_command("_result", self._connect_tid, properties, info)

    def reject_connect(self, description: str) -> None:
        """Answer `connect` with NetConnection.Connect.Rejected; close the transport after writing."""
        self._check()
        self._transition("reject_connect", remote=False)
        info = m.status_info("error", "NetConnection.Connect.Rejected", description)
        self._send_command("_error", self._connect_tid, None, info)

    def accept_publish(self) -> None:
        """Answer `publish` with Stream Begin and NetStream.Publish.Start; media may now be any size."""
        self._check()
        self._transition("accept_publish", remote=False)
        # The peer showed a valid key: it gets the media limits from now on (the budget of an
        # unauthenticated peer is not given back by unpublishing; closing is the way out).
        reader = self._reader
        reader.max_message_size = self._max_message_size
        reader.max_pending_bytes = max(reader.max_pending_bytes, MAX_PENDING_BYTES)
        reader.max_messages = None
        self._max_held = None
        sid = self.publish_stream_id
        self._send_control(m.USER_CONTROL, m.UserControl(m.STREAM_BEGIN, sid).to_payload())
        self._send_status(sid, "status", "NetStream.Publish.Start", "Publishing started.")

    def reject_publish(self, code: str, description: str) -> None:
        """Answer `publish` with an error status (e.g. NetStream.Publish.BadName); close after writing."""
        self._check()
        self._transition("reject_publish", remote=False)
        self._send_status(self.publish_stream_id, "error", code, description)

    # -- the peer's messages -------------------------------------------------------

    def _command_allowed(self, name: str) -> bool:
        state = self.state
        if state == CLOSED:
            return False  # refused already: the owner is closing; nothing more to answer
        trigger = _TRIGGER_OF_COMMAND.get(name)
        if trigger is not None:
            if (state, trigger) not in self._table:
                raise RemoteProtocolError(f"{trigger!r} not allowed in state {state}")
        elif state in (AWAIT_CONNECT, CONNECT_PENDING, HANDSHAKE):
            raise RemoteProtocolError(f"command {m.shown(name)} before connect was accepted")
        return True

    def _on_command(self, cmd: m.Command, msg: RawMessage) -> None:
        name = cmd.name
        if name == "connect":
            props = cmd.command_object if isinstance(cmd.command_object, dict) else {}
            app = props.get("app")
            tc_url = props.get("tcUrl")
            self._transition("connect", remote=True)
            self._connect_tid = cmd.transaction_id
            self._events.append(ConnectRequest(
                app if isinstance(app, str) else "",
                tc_url if isinstance(tc_url, str) else None,
                dict(props),
            ))
        elif name == "createStream":
            if len(self._stream_ids) >= MAX_STREAMS:
                # A publisher needs one; a peer asking for thousands is only growing our memory.
                raise RemoteProtocolError(f"more than {MAX_STREAMS} createStream calls on one connection")
            sid = self._next_stream_id
            self._next_stream_id += 1
            self._stream_ids.add(sid)
            self._send_command("_result", cmd.transaction_id, None, float(sid))
        elif name == "publish":
            stream_name = cmd.args[0] if cmd.args else None
            if not isinstance(stream_name, str):
                raise RemoteProtocolError("publish without a stream name")
            publish_type = cmd.args[1] if len(cmd.args) > 1 and isinstance(cmd.args[1], str) else "live"
            if msg.stream_id not in self._stream_ids:
                raise RemoteProtocolError(f"publish on stream {msg.stream_id}, which createStream never made")
            self._transition("publish", remote=True)
            self.publish_stream_id = msg.stream_id
            self._events.append(PublishRequest(msg.stream_id, stream_name, publish_type))
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            if self.state == PUBLISHING:
                self._transition("unpublish", remote=True)
                self._events.append(PublishEnded(name))
        elif name in ("releaseStream", "FCPublish"):
            if cmd.transaction_id:
                self._send_command("_result", cmd.transaction_id, None, amf0.UNDEFINED)
            if name == "FCPublish":
                self._send_command("onFCPublish", 0, None, m.status_info(
                    "status", "NetStream.Publish.Start", "FCPublish"))
        elif name == "play":
            self._send_status(msg.stream_id, "error", "NetStream.Play.Failed", "This relay only accepts publishers.")
        elif cmd.transaction_id:
            # Unknown calls that expect an answer (_checkbw, getStreamLength...) get a null
            # _result rather than silence, which some encoders wait on.
            self._send_command("_result", cmd.transaction_id, None, None)

    def _on_media(self, msg: RawMessage) -> None:
        if self.state == PUBLISHING and msg.stream_id == self.publish_stream_id:
            self._events.append(Media(msg.type_id, msg.timestamp, msg.payload))

    def _on_data(self, msg: RawMessage) -> None:
        if self.state != PUBLISHING:
            return
        payload = msg.payload
        if msg.type_id == m.DATA_AMF3:
            payload = payload[1:]
        if payload.startswith(_SET_DATA_FRAME):
            # The wrapper is an instruction to the server; the FLV script tag is what follows.
            payload = payload[len(_SET_DATA_FRAME):]
        if len(payload) > MAX_SCRIPT_TAG:
            # Once a target puts @setDataFrame back, the 24-bit length would overflow. Losing
            # one script tag is kinder to the show than cutting the publisher off.
            self.dropped_data_messages += 1
            self._events.append(DataDropped(msg.timestamp, len(payload), "script tag too long to forward"))
            return
        self._events.append(Media(m.DATA_AMF0, msg.timestamp, payload))

    def _on_aggregate(self, msg: RawMessage) -> None:
        """Split an aggregate message (7.1.6) into its FLV-tag-shaped sub-messages, one event at a time."""
        if self.state != PUBLISHING:
            return
        self._aggregate = (msg, 0, None)
        self._next_in_aggregate()

    def _next_in_aggregate(self) -> None:
        assert self._aggregate is not None
        msg, offset, base = self._aggregate
        self._aggregate = None
        events = self._events
        before = len(events)
        while len(events) == before:
            part = m.aggregate_part(msg.payload, offset)
            if part is None:
                return
            kind, ts, payload, offset = part
            if base is None:
                base = ts
            sub = RawMessage(msg.csid, (msg.timestamp + ts - base) & 0xFFFFFFFF, kind, msg.stream_id, payload)
            if kind in (m.AUDIO, m.VIDEO):
                self._on_media(sub)
            elif kind == m.DATA_AMF0:
                self._on_data(sub)
        self._aggregate = (msg, offset, base)


class ClientConnection(_Connection):
    """The client role: we connect to a target and publish one stream to it."""

    _table = _CLIENT_TABLE

    def __init__(self, app: str, tc_url: str, stream_name: str, *, enhanced: bool = False,
                 random_bytes: Callable[[int], bytes] = os.urandom, epoch: int = 0,
                 out_chunk_size: int = DEFAULT_OUT_CHUNK_SIZE, window: int = DEFAULT_WINDOW,
                 max_chunk_size: int = DEFAULT_MAX_CHUNK_SIZE, max_message_size: int = DEFAULT_MAX_COMMAND_SIZE,
                 max_output_bytes: int | None = None) -> None:
        # `enhanced`: announce Enhanced RTMP (fourCcList, the FourCcInfoMaps, capsEx) in connect;
        # otherwise the connect carries the classic fields only.
        # A target only ever sends us control messages and commands: max_message_size is the
        # command limit by default. max_output_bytes bounds what the connection queues by
        # itself (replies, commands); the media the owner queues is the target queue's to bound.
        reader = ChunkReader(max_chunk_size=max_chunk_size, max_message_size=max_message_size,
                             max_pending_bytes=max(4 * max_message_size, DEFAULT_MAX_UNAUTHENTICATED_MEMORY))
        super().__init__(ClientHandshake(random_bytes=random_bytes, epoch=epoch), out_chunk_size, window,
                         reader, max_output_bytes)
        self.app = app
        self.tc_url = tc_url
        self.enhanced = enhanced
        self._stream_name = stream_name  # the target's stream key: never in a message or repr
        self.stream_id = 0
        self._stream_id_le = 0  # the message stream id as the header's little-endian field, read big-endian
        self._pending: dict[float, str] = {}  # transaction id -> what it was for
        self._next_tid = 1.0

    def __repr__(self) -> str:
        return f"<ClientConnection app={self.app!r} state={self.state}>"

    # -- the owner's calls ---------------------------------------------------------

    def send_media(self, kind: int, timestamp: int, payload: bytes) -> None:
        """Queue an audio, video or script-data message (wrapped in @setDataFrame); never a wrong length."""
        self._check()
        if self.state != PUBLISHING:
            raise LocalProtocolError(f"cannot send media in state {self.state}")
        if kind == m.DATA_AMF0:
            payload = _SET_DATA_FRAME + payload
        self._out.append(encode_message(ClientConnection.csid_for(kind), timestamp, kind, self.stream_id, payload,
                                        self.out_chunk_size))

    def send_shared(self, kind: int, timestamp: int, length: int, body: bytes) -> None:
        """Queue a message whose chunked body (chunk.encode_body) is shared with other targets.

        Only the first header is made here; the body must have been encoded with this
        connection's out_chunk_size and csid_for(kind), and a timestamp below 0xFFFFFF.
        """
        if self.state != PUBLISHING:
            self._check()
            raise LocalProtocolError(f"cannot send media in state {self.state}")
        try:
            csid = _CSID_FOR_KIND[kind]
        except KeyError:
            raise LocalProtocolError(f"no chunk stream for message kind {kind}") from None
        if length >> 24:  # under 0 or past 24 bits: it would spill into the header's other fields
            raise LocalProtocolError(f"message length {length} does not fit in 24 bits")
        ts = timestamp & 0xFFFFFFFF
        out = self._out
        if ts < EXTENDED:
            # The type-0 header as one 96-bit integer: this runs once per tag and target,
            # the relay's hottest line. Layout as in encode_header (5.3.1.2.1).
            out.append(((csid << 88) | (ts << 64) | (length << 40) | (kind << 32)
                        | self._stream_id_le).to_bytes(12, "big"))
        else:
            out.append(encode_header(csid, timestamp, length, kind, self.stream_id))
        out.append(body)

    @property
    def output_bytes(self) -> int:
        """Bytes queued and not yet taken, media included (summed when asked: no per-tag bookkeeping).

        Shared bodies are memoryviews of a tag's bytes (format "B"), whose len() is their size in bytes.
        """
        return sum(map(len, self._out))

    def send_encoded(self, messages: Sequence[EncodedMessage], stamps: Sequence[int]) -> int:
        """Queue messages encoded once for every target (encoded.py), each at its timestamp on
        this connection; the payload bytes queued.

        The relay's hot path: per message, a 12-byte header made from one integer and the
        shared body, looked up by chunk size. Messages that are not `sendable` are skipped.
        """
        if self.state != PUBLISHING:
            self._check()
            raise LocalProtocolError(f"cannot send media in state {self.state}")
        out = self._out
        append = out.append
        extend = out.extend
        chunk_size = self.out_chunk_size
        sid = self._stream_id_le
        queued = 0
        for message, timestamp in zip(messages, stamps, strict=True):
            ts = timestamp & 0xFFFFFFFF
            head = message.head
            if ts < EXTENDED and head:
                append((head | (ts << 64) | sid).to_bytes(12, "big"))
                body = message.bodies.get(chunk_size)
                if body is None:
                    body = message.body(chunk_size, ts)
            elif message.sendable:
                append(message.header(ts, self.stream_id))
                body = message.body(chunk_size, ts)
            else:
                continue
            extend(body)
            queued += message.length
        return queued

    def send_message(self, message: EncodedMessage, timestamp: int) -> int:
        """send_encoded() of one message (write_interval 0: a write per tag); the payload bytes queued."""
        if self.state != PUBLISHING:
            self._check()
            raise LocalProtocolError(f"cannot send media in state {self.state}")
        ts = timestamp & 0xFFFFFFFF
        head = message.head
        out = self._out
        if ts < EXTENDED and head:
            out.append((head | (ts << 64) | self._stream_id_le).to_bytes(12, "big"))
            body = message.bodies.get(self.out_chunk_size)
            out.extend(body if body is not None else message.body(self.out_chunk_size, ts))
        elif message.sendable:
            out.append(message.header(ts, self.stream_id))
            out.extend(message.body(self.out_chunk_size, ts))
        else:
            return 0
        return message.length

    @staticmethod
    def csid_for(kind: int) -> int:
        """The chunk stream a kind of message is sent on (audio, video or script data)."""
        csid = _CSID_FOR_KIND.get(kind)
        if csid is None:
            raise LocalProtocolError(f"no chunk stream for message kind {kind}")
        return csid

    @staticmethod
    def wire_payload(kind: int, payload: bytes) -> bytes:
        """The payload as sent for a tag: script data gets the @setDataFrame wrapper."""
        return _SET_DATA_FRAME + payload if kind == m.DATA_AMF0 else payload

    def unpublish(self) -> None:
        """Queue FCUnpublish and deleteStream; the owner closes the transport once written."""
        self._check()
        if self.state in (CONNECTED, PUBLISH_SENT, PUBLISHING):
            if self.state != CONNECTED:
                self._send_command("FCUnpublish", self._tid("FCUnpublish"), None, self._stream_name)
                self._send_command("deleteStream", self._tid("deleteStream"), None, float(self.stream_id))
            self._transition("unpublish", remote=False)

    # -- internals -----------------------------------------------------------------

    def _tid(self, purpose: str) -> float:
        tid = self._next_tid
        self._next_tid += 1
        self._pending[tid] = purpose
        return tid

    def _on_handshake_done(self) -> None:
        self._set_out_chunk_size()
        self._send_control(m.WINDOW_ACK_SIZE, m.WindowAckSize(self._window).to_payload())
        props: dict[str, Any] = {
            "app": self.app,
            "type": "nonprivate",
            "flashVer": FLASH_VER,
            "tcUrl": self.tc_url,
        }
        if self.enhanced:
            props["fourCcList"] = list(_FOURCC_LIST)
            props["videoFourCcInfoMap"] = {"*": float(_CAN_FORWARD)}
            props["audioFourCcInfoMap"] = {"*": float(_CAN_FORWARD)}
            props["capsEx"] = float(_CAPS_EX_RECONNECT)
        self._send_command("connect", self._tid("connect"), props)

    def _on_command(self, cmd: m.Command, msg: RawMessage) -> None:
        name = cmd.name
        if name in ("_result", "_error"):
            purpose = self._pending.pop(cmd.transaction_id, None)
            info = _info(cmd)
            if purpose == "connect":
                if name == "_result":
                    self._transition("connect_result", remote=True)
                    props = cmd.command_object if isinstance(cmd.command_object, dict) else {}
                    self._events.append(Connected(dict(props)))
                    # No waiting for answers to releaseStream/FCPublish: many servers send none.
                    self._send_command("releaseStream", self._tid("releaseStream"), None, self._stream_name)
                    self._send_command("FCPublish", self._tid("FCPublish"), None, self._stream_name)
                    self._send_command("createStream", self._tid("createStream"), None)
                else:
                    self._refuse("connect", info)
            elif purpose == "createStream":
                if name == "_result":
                    sid = cmd.args[0] if cmd.args else None
                    if not isinstance(sid, float) or not 0 < sid < 2**32:
                        raise RemoteProtocolError("createStream answered without a valid stream id")
                    self.stream_id = int(sid)
                    self._stream_id_le = int.from_bytes(self.stream_id.to_bytes(4, "little"), "big")
                    self._transition("create_stream_result", remote=True)
                    self._send_command("publish", 0, None, self._stream_name, "live", stream_id=self.stream_id)
                else:
                    self._refuse("createStream", info)
            # Answers to releaseStream, FCPublish, FCUnpublish, deleteStream: nothing to do.
        elif name == "onStatus":
            info = _info(cmd)
            code = info.get("code", "")
            level = info.get("level", "")
            if code == "NetStream.Publish.Start" and self.state == PUBLISH_SENT:
                self._transition("publish_start", remote=True)
                self._events.append(PublishStarted(str(info.get("description", ""))))
            elif code == "NetConnection.Connect.ReconnectRequest":
                tc_url = info.get("tcUrl")
                self._events.append(ReconnectRequested(tc_url if isinstance(tc_url, str) else None,
                                                       str(info.get("description", ""))))
            elif level == "error" and self.state == PUBLISH_SENT:
                self._refuse("publish", info)
            else:
                self._events.append(StatusReceived(str(level), str(code), str(info.get("description", ""))))
        elif name == "close":
            self._events.append(StatusReceived("error", "NetConnection.Connect.Closed", "the server sent close"))
        # onBWDone, onFCPublish, _checkbw and friends need no answer from a publisher.

    def _refuse(self, stage: str, info: dict[str, Any]) -> None:
        self._transition("refused", remote=True)
        self._events.append(Refused(stage, str(info.get("code", "")), str(info.get("description", ""))))


def _info(cmd: m.Command) -> dict[str, Any]:
    """The info object of a status/result/error: the first object argument."""
    for arg in cmd.args:
        if isinstance(arg, dict):
            return arg
    return cmd.command_object if isinstance(cmd.command_object, dict) else {}
