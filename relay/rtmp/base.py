"""What both RTMP connection roles share, sans I/O: the owner's surface, the handshake and
chunk layers under it, protocol control, and the sticky error state.

Theory of operation
-------------------
The owner feeds received bytes with `receive_data()`, then calls `next_event()` until it
returns None, and writes out whatever `data_to_send()` (or `take_output()`) returns. It
never touches a socket through us, and we never look at a clock.

Under the events sit three layers. The handshake (handshake.py) consumes the first bytes
and hands its leftover to the chunk reader (chunkreader.py), which reassembles messages.
Protocol-control messages (Set Chunk Size, Abort, Window Acknowledgement Size, Set Peer
Bandwidth, User Control pings) are answered here and never surface; acknowledgements are
sent whenever a window's worth of bytes has been received, with a sequence number that
wraps at 2^32 (a relay that stops acking after 4 GB stalls a long show). Commands, data
and media are handed to the role (server.py, client.py), whose commands drive the state
table of states.py: a (state, trigger) pair missing from it is a protocol error, raised by
the peer's fault (RemoteProtocolError) or ours (LocalProtocolError).

Any ProtocolError leaves the connection in a sticky ERROR state: every later call raises
again, so the owner only has to close the transport and log once.

Hostile peers (limits.py). Replies queued for a peer that does not read are capped
(`max_output_bytes`), acks come at most every `MIN_ACK_WINDOW` bytes, and while the peer
is not trusted (`_max_held`, set by the server role until `accept_publish`) everything
held for it, queued output included, stays under that budget.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from relay.rtmp import amf0
from relay.rtmp import messages as m
from relay.rtmp.chunkreader import ChunkReader, RawMessage
from relay.rtmp.chunkwriter import COMMAND_CSID, encode_message
from relay.rtmp.errors import ProtocolError, RemoteProtocolError
from relay.rtmp.events import Event
from relay.rtmp.handshake import ClientHandshake, ServerHandshake
from relay.rtmp.limits import MAX_COMMAND_VALUES, MIN_ACK_WINDOW
from relay.rtmp.states import ERROR, HANDSHAKE, Table, next_state

DEFAULT_WINDOW = 2_500_000  # the Window Acknowledgement Size we announce, in bytes


class Connection:
    """What both roles share: handshake, chunk layer, protocol control, sticky errors."""

    _table: Table

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
                if isinstance(msg, RawMessage):
                    self._dispatch(msg)
                else:  # the published stream's media, made into its event by the reader (server.py)
                    events.append(msg)
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
        self.state = next_state(self._table, self.state, trigger, remote=remote)

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
