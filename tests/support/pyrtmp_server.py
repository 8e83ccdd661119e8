"""pyrtmp 0.3.1 as an independent RTMP target server that records what it receives as FLV.

pyrtmp is a pure-Python RTMP server whose AMF0 decoder knows only the classic types
(number, boolean, string, object, null, ECMA array): the kind of home-grown ingest server a
relay meets in the wild. Its own code answers connect, createStream and publish
(SimpleRTMPController) and reads the chunk stream (SessionManager); what it receives is
written with its own FLV writer, so nothing of the relay's code sits on the receiving side.

Quirks of this version, worked around here and nowhere else:
- importing `pyrtmp.rtmp` calls `logging.basicConfig(level=DEBUG)` and sets pyrtmp's own
  loggers to DEBUG: the root logger's level and handlers are put back after the import,
  and pyrtmp's loggers are set to WARNING;
- `MessageFactory.from_chunk` raises NotImplementedError for a message type it does not
  know, and its AMF0 decoder for a marker it does not know (a strict array: Enhanced
  RTMP's fourCcList); pyrtmp's controller then logs and drops the connection. Our loop
  (`_Controller.client_callback`, over pyrtmp's own session and message classes) records
  an unknown message type and goes on, and records a message it cannot decode and closes,
  as pyrtmp would, so that a test can say why a connection ended.
"""

from __future__ import annotations

import logging
import threading
from asyncio import StreamReader, StreamWriter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_root = logging.getLogger()
_root_level, _root_handlers = _root.level, list(_root.handlers)
from pyrtmp import StreamClosedException  # noqa: E402 (the root logger is restored right below)
from pyrtmp.flv import FLVMediaType, FLVWriter  # noqa: E402
from pyrtmp.messages import Chunk  # noqa: E402
from pyrtmp.messages.audio import AudioMessage  # noqa: E402
from pyrtmp.messages.command import (  # noqa: E402
    CommandMessage,
    NCConnect,
    NCCreateStream,
    NSDeleteStream,
    NSPublish,
)
from pyrtmp.messages.data import MetaDataMessage  # noqa: E402
from pyrtmp.messages.factory import MessageFactory  # noqa: E402
from pyrtmp.messages.protocol_control import SetChunkSize  # noqa: E402
from pyrtmp.messages.video import VideoMessage  # noqa: E402
from pyrtmp.rtmp import RTMPProtocol, SimpleRTMPController  # noqa: E402
from pyrtmp.session_manager import SessionManager  # noqa: E402

_root.setLevel(_root_level)
for _handler in [h for h in _root.handlers if h not in _root_handlers]:
    _root.removeHandler(_handler)
for _name in [n for n in logging.root.manager.loggerDict if n == "pyrtmp" or n.startswith("pyrtmp.")]:
    logging.getLogger(_name).setLevel(logging.WARNING)

from testbed.background import BackgroundServer  # noqa: E402

# Message types MessageFactory decodes: a NotImplementedError on one of these is a payload it
# cannot parse, not a type it does not know.
_KNOWN_TYPES = frozenset({1, 2, 3, 4, 5, 6, 8, 9, 0x12, 0x14})
_SET_DATA_FRAME = b"\x02\x00\x0d@setDataFrame"  # AMF0 string "@setDataFrame"


@dataclass
class PyrtmpConnection:
    """What one connection to the pyrtmp server did."""

    index: int
    connect_properties: dict[str, Any] | None = None  # the connect command object, as pyrtmp decoded it
    commands: list[str] = field(default_factory=list)  # every command name, in order
    stream_name: str | None = field(default=None, repr=False)  # a stream key: kept out of reprs
    flv: bytearray = field(default_factory=bytearray, repr=False)  # written by pyrtmp's FLVWriter
    writer: FLVWriter | None = field(default=None, repr=False)  # from publish on
    tags: int = 0
    unknown_types: list[int] = field(default_factory=list)  # message types pyrtmp does not know
    error: str | None = None  # why pyrtmp gave up on the connection, if it did
    closed: bool = False


class PyrtmpServer(BackgroundServer):
    """pyrtmp's RTMP server on 127.0.0.1 in a thread; `url(app)` to target it, `connections` to read."""

    thread_name = "pyrtmp server"

    def __init__(self) -> None:
        super().__init__()
        self._connections: list[PyrtmpConnection] = []
        self._cond = threading.Condition()

    def url(self, app: str = "live") -> str:
        """rtmp://127.0.0.1:PORT/APP"""
        return f"rtmp://127.0.0.1:{self.port}/{app}"

    @property
    def connections(self) -> list[PyrtmpConnection]:
        """Every connection so far, oldest first."""
        with self._cond:
            return list(self._connections)

    def wait_until(self, predicate: Callable[[list[PyrtmpConnection]], bool], timeout: float = 15.0,
                   what: str = "a condition on the pyrtmp server") -> list[PyrtmpConnection]:
        """Wait until `predicate(connections)` holds; the connections then."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self._connections), timeout):
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; "
                                     f"connections: {self._connections}")
            return list(self._connections)

    def _new_connection(self) -> PyrtmpConnection:
        with self._cond:
            record = PyrtmpConnection(len(self._connections))
            self._connections.append(record)
            return record

    def _changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    async def _listen(self, ready: threading.Event) -> None:
        assert self._stop is not None and self._loop is not None
        server = await self._loop.create_server(lambda: RTMPProtocol(controller=_Controller(self)), "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stop.wait()
            server.close()


class _Controller(SimpleRTMPController):
    """pyrtmp's simple controller (its answers to connect, createStream, publish), recording."""

    def __init__(self, server: PyrtmpServer) -> None:
        super().__init__()
        self.server = server

    async def client_callback(self, reader: StreamReader, writer: StreamWriter) -> None:
        session = SessionManager(reader=reader, writer=writer)
        record = self.server._new_connection()
        try:
            await self.on_handshake(session)
            async for chunk in session.read_chunks_from_stream():
                try:
                    message = MessageFactory.from_chunk(chunk)
                except NotImplementedError:
                    if chunk.msg_type_id in _KNOWN_TYPES:
                        record.error = f"pyrtmp cannot decode a message of type {chunk.msg_type_id:#x}"
                        break
                    record.unknown_types.append(chunk.msg_type_id)
                    continue
                await self._dispatch(session, record, message)
                self.server._changed()
        except StreamClosedException:
            pass
        except Exception as exc:  # noqa: BLE001 (pyrtmp's own loop logs and drops the connection too)
            record.error = f"{type(exc).__name__}: {exc}"
        finally:
            record.closed = True
            self.server._changed()
            writer.close()

    async def _dispatch(self, session: SessionManager, record: PyrtmpConnection, message: Chunk) -> None:
        if isinstance(message, CommandMessage):
            record.commands.append(message.command_name)
        if isinstance(message, NCConnect):
            record.connect_properties = dict(message.command_object)
            await self.on_nc_connect(session, message)
        elif isinstance(message, NCCreateStream):
            await self.on_nc_create_stream(session, message)
        elif isinstance(message, NSPublish):
            record.stream_name = message.publishing_name
            record.writer = FLVWriter()
            record.flv += record.writer.write_header()
            await self.on_ns_publish(session, message)
        elif isinstance(message, SetChunkSize):
            await self.on_set_chunk_size(session, message)
        elif isinstance(message, MetaDataMessage):
            # The script tag is what follows the @setDataFrame wrapper.
            payload = message.payload
            if payload.startswith(_SET_DATA_FRAME):
                payload = payload[len(_SET_DATA_FRAME):]
            _record_tag(record, message.timestamp, payload, FLVMediaType.OBJECT)
        elif isinstance(message, VideoMessage):
            _record_tag(record, message.timestamp, message.payload, FLVMediaType.VIDEO)
        elif isinstance(message, AudioMessage):
            _record_tag(record, message.timestamp, message.payload, FLVMediaType.AUDIO)
        elif isinstance(message, NSDeleteStream):
            await self.on_ns_delete_stream(session, message)


def _record_tag(record: PyrtmpConnection, timestamp: int, payload: bytes, kind: FLVMediaType) -> None:
    if record.writer is None:
        return  # media before publish belongs to no stream
    record.flv += record.writer.write(timestamp, payload, kind)
    record.tags += 1
