"""The server role, sans I/O: a publisher (OBS, ffmpeg, any encoder) connects, creates a
stream and publishes to us.

The owner answers the two requests that need a decision, `ConnectRequest` (accept_connect
or reject_connect) and `PublishRequest` (accept_publish or reject_publish, once it has
checked the stream key); everything else (createStream, releaseStream, FCPublish, unknown
calls) is answered here. Media arrives as events that are the messages themselves
(encoded.py's EncodedMessage: a Tag, ready to be sent on), script data unwrapped from its
@setDataFrame (the FLV script tag is what follows it). While a publisher is accepted, the
chunk reader makes the published stream's audio and video into those events itself
(chunkreader.py: one object per message); data and aggregates come through _on_data and
_on_aggregate.

Hostile peers (limits.py). Until `accept_publish` the peer has shown no key: each message
is capped at `max_command_size` by its chunk header, `bytes_held` (partial messages, unread
input, queued output) stays under `max_unauthenticated_memory`, at most
`max_messages_before_publish` messages are read, and a command is checked against the
state table by name before its body is decoded. Always: at most `MAX_STREAMS` streams are
created, and an aggregate yields one sub-message per event, so splitting a large one never
builds a list.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from relay.rtmp import amf0
from relay.rtmp import messages as m
from relay.rtmp.accel import ChunkReader
from relay.rtmp.base import DEFAULT_WINDOW, Connection
from relay.rtmp.chunkreader import RawMessage
from relay.rtmp.chunkwriter import DEFAULT_OUT_CHUNK_SIZE
from relay.rtmp.encoded import MAX_SCRIPT_TAG, SET_DATA_FRAME, EncodedMessage
from relay.rtmp.errors import RemoteProtocolError
from relay.rtmp.events import ConnectRequest, DataDropped, PublishEnded, PublishRequest
from relay.rtmp.handshake import ServerHandshake
from relay.rtmp.limits import (
    DEFAULT_MAX_CHUNK_SIZE,
    DEFAULT_MAX_COMMAND_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_UNAUTHENTICATED_MEMORY,
    MAX_MESSAGES_BEFORE_PUBLISH,
    MAX_PENDING_BYTES,
    MAX_STREAMS,
)
from relay.rtmp.states import (
    AWAIT_CONNECT,
    CLOSED,
    CONNECT_PENDING,
    HANDSHAKE,
    PUBLISHING,
    SERVER_TABLE,
    TRIGGER_OF_COMMAND,
    next_state,
)


class ServerConnection(Connection):
    """The server role: a publisher connects, creates a stream and publishes to us."""

    _table = SERVER_TABLE

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

    def _transition(self, trigger: str, remote: bool) -> None:
        super()._transition(trigger, remote)
        # The reader makes the published stream's audio and video into events while, and only
        # while, this connection is publishing: it follows every change of state from here.
        reader = self._reader
        if self.state == PUBLISHING:
            reader.media_stream_id = self.publish_stream_id
            reader.make_media = EncodedMessage
        else:
            reader.media_stream_id = -1

    # -- the peer's messages -------------------------------------------------------

    def _command_allowed(self, name: str) -> bool:
        state = self.state
        if state == CLOSED:
            return False  # refused already: the owner is closing; nothing more to answer
        trigger = TRIGGER_OF_COMMAND.get(name)
        if trigger is not None:
            next_state(self._table, state, trigger, remote=True)  # raises when the table has no such move
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
        # What the reader did not make into an event itself: an aggregate's parts, or media on
        # another stream or outside publishing (dropped).
        if self.state == PUBLISHING and msg.stream_id == self.publish_stream_id:
            self._events.append(EncodedMessage(msg.type_id, msg.timestamp, msg.payload))

    def _on_data(self, msg: RawMessage) -> None:
        if self.state != PUBLISHING:
            return
        payload = msg.payload
        if msg.type_id == m.DATA_AMF3:
            payload = payload[1:]
        if payload.startswith(SET_DATA_FRAME):
            # The wrapper is an instruction to the server; the FLV script tag is what follows.
            payload = payload[len(SET_DATA_FRAME):]
        if len(payload) > MAX_SCRIPT_TAG:
            # Once a target puts @setDataFrame back, the 24-bit length would overflow. Losing
            # one script tag is kinder to the show than cutting the publisher off.
            self.dropped_data_messages += 1
            self._events.append(DataDropped(msg.timestamp, len(payload), "script tag too long to forward"))
            return
        self._events.append(EncodedMessage(m.DATA_AMF0, msg.timestamp, payload))

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
