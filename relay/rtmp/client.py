"""The client role, sans I/O: we connect to a target (a platform's RTMP server) and publish
one stream to it.

The connection runs by itself from the handshake to `PublishStarted` (or `Refused`):
connect, then releaseStream, FCPublish and createStream in one go, never waiting for
answers to the first two (many servers send none), then publish on the stream created.
From then on the owner queues media with `send_encoded` (or `send_message` for one): each
message encoded once for every target (encoded.py), to which a connection adds only its
12-byte first chunk header. `unpublish` ends the session politely.

Enhanced RTMP (v1 fourCcList, v2 FourCcInfoMap with the "*" wildcard) tells the target we
may forward any codec, so HEVC and AV1 pass through to servers that take them. It is
announced only when asked (ClientConnection(enhanced=True)): fourCcList is an AMF0 strict
array, which classic AMF0 parsers (pyrtmp, many home-grown servers) cannot decode, and
they then never answer the connect. An H.264/AAC stream needs none of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from relay.rtmp import accel
from relay.rtmp import messages as m
from relay.rtmp.base import DEFAULT_WINDOW, Connection
from relay.rtmp.chunkreader import RawMessage
from relay.rtmp.chunkwriter import DEFAULT_OUT_CHUNK_SIZE, EXTENDED
from relay.rtmp.errors import LocalProtocolError, RemoteProtocolError
from relay.rtmp.events import Connected, PublishStarted, ReconnectRequested, Refused, StatusReceived
from relay.rtmp.handshake import ClientHandshake
from relay.rtmp.limits import DEFAULT_MAX_CHUNK_SIZE, DEFAULT_MAX_COMMAND_SIZE, DEFAULT_MAX_UNAUTHENTICATED_MEMORY
from relay.rtmp.states import CLIENT_TABLE, CONNECTED, PUBLISH_SENT, PUBLISHING

if TYPE_CHECKING:
    from relay.rtmp.encoded import EncodedMessage

FLASH_VER = "FMLE/3.0 (compatible; simulcast-relay)"

# Enhanced RTMP in connect (see above): the codecs we may forward, and what we can do with them.
_FOURCC_LIST = ["av01", "vp09", "vp08", "hvc1", "avc1", "Opus", "mp4a", "fLaC", "ac-3", "ec-3", ".mp3"]
_CAN_FORWARD = 0x04
_CAPS_EX_RECONNECT = 0x01


class ClientConnection(Connection):
    """The client role: we connect to a target and publish one stream to it."""

    _table = CLIENT_TABLE

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
        reader = accel.ChunkReader(max_chunk_size=max_chunk_size, max_message_size=max_message_size,
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
        shared body, looked up by chunk size (encoded.queue_encoded, or its compiled twin:
        accel.py). Messages that are not `sendable` are skipped.
        """
        if self.state != PUBLISHING:
            self._check()
            raise LocalProtocolError(f"cannot send media in state {self.state}")
        return accel.queue_encoded(self._out, messages, stamps, self.out_chunk_size, self._stream_id_le,
                                   self.stream_id)

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
