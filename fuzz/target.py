"""The fuzz target: one input, as fuzz_server.py describes it, fed to a connection of the RTMP core.

Kept apart from fuzz_server.py (which needs atheris) so that a corpus can be replayed
without it, e.g. under coverage.py (run.py --coverage).
"""

from __future__ import annotations

from relay.rtmp import amf0
from relay.rtmp.chunkwriter import encode_message
from relay.rtmp.client import ClientConnection
from relay.rtmp.errors import ProtocolError
from relay.rtmp.events import ConnectRequest, PublishRequest
from relay.rtmp.server import ServerConnection

# Small limits (the least the config allows) so that short inputs reach them.
LIMITS = {"max_command_size": 1024, "max_unauthenticated_memory": 65_536, "max_output_bytes": 65_536}
READ_SIZES = (1, 2, 3, 7, 100, 4096)
PLAIN_HANDSHAKE = b"\x03" + bytes(1536) + bytes(1536)  # C0 C1 C2, or S0 S1 S2
PUBLISH_PREFIX = (
    encode_message(2, 0, 1, 0, (4096).to_bytes(4, "big"), 128)
    + encode_message(3, 0, 20, 0, amf0.encode("connect", 1.0, {"app": "live"}), 4096)
    + encode_message(3, 0, 20, 0, amf0.encode("createStream", 2.0, None), 4096)
    + encode_message(3, 0, 20, 1, amf0.encode("publish", 0.0, None, "fuzz", "live"), 4096)
)


def _reads(data: bytes, size_byte: int) -> list[bytes]:
    size = READ_SIZES[size_byte % 8] if size_byte % 8 < len(READ_SIZES) else len(data) or 1
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    mode, size_byte, body = data[0], data[1], data[2:]
    reads_output = not (mode > 3 and mode % 2)
    mode %= 4
    conn: ServerConnection | ClientConnection
    if mode == 2:
        conn = ClientConnection("live", "rtmp://192.0.2.1/live", "fuzz-key", random_bytes=bytes,
                                max_output_bytes=LIMITS["max_output_bytes"])
        prefix = PLAIN_HANDSHAKE
    else:
        conn = ServerConnection(random_bytes=bytes, **LIMITS)
        prefix = {0: PLAIN_HANDSHAKE, 1: b"", 3: PLAIN_HANDSHAKE + PUBLISH_PREFIX}[mode]
    published = False
    pieces = ([prefix] if prefix else []) + _reads(body, size_byte)
    try:
        for piece in pieces:
            conn.receive_data(piece)
            while (event := conn.next_event()) is not None:
                if isinstance(event, ConnectRequest):
                    assert isinstance(conn, ServerConnection)
                    conn.accept_connect()
                elif isinstance(event, PublishRequest):
                    assert isinstance(conn, ServerConnection)
                    conn.accept_publish()
                    published = True
            if conn.output_bytes > LIMITS["max_output_bytes"]:
                raise AssertionError(f"{conn.output_bytes} bytes of output queued")
            if isinstance(conn, ServerConnection) and not published \
                    and conn.bytes_held > LIMITS["max_unauthenticated_memory"]:
                raise AssertionError(f"{conn.bytes_held} bytes held before publishing")
            if reads_output:
                conn.take_output()
    except ProtocolError:
        pass
