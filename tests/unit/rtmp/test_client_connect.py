"""What ClientConnection's connect carries, byte for byte: classic fields only, unless asked for Enhanced RTMP.

A server with a classic AMF0 parser (number, boolean, string, object, null, ECMA array)
cannot decode a strict array (marker 0x0A, Enhanced RTMP's fourCcList) and never answers:
so the classic connect must hold no marker outside that set. The expected bytes are
written out here by hand (AMF0 spec, sections 2.2-2.12), not with the relay's encoder.
"""

from __future__ import annotations

import random
import struct

from relay.rtmp import messages as m
from relay.rtmp.accel import ChunkReader
from relay.rtmp.client import FLASH_VER, ClientConnection
from relay.rtmp.handshake import ServerHandshake

APP = "live2"
TC_URL = "rtmp://a.rtmp.example.com/live2"
KEY = "client-connect-KEY-7c1e55"

NUMBER, STRING, OBJECT, OBJECT_END, STRICT_ARRAY = 0x00, 0x02, 0x03, 0x09, 0x0A


def utf8(text: str) -> bytes:
    """UTF-8-empty / property name: u16 length + bytes (2.1)."""
    return struct.pack(">H", len(text)) + text.encode()


def string(text: str) -> bytes:
    return bytes([STRING]) + utf8(text)


def number(value: float) -> bytes:
    return bytes([NUMBER]) + struct.pack(">d", value)


def obj(*pairs: tuple[str, bytes]) -> bytes:
    return bytes([OBJECT]) + b"".join(utf8(k) + v for k, v in pairs) + b"\x00\x00" + bytes([OBJECT_END])


def strict_array(*items: bytes) -> bytes:
    return bytes([STRICT_ARRAY]) + struct.pack(">I", len(items)) + b"".join(items)


def connect_payload(**kwargs: bool) -> bytes:
    """The connect command's payload, as the client puts it on the wire once the handshake is done."""
    client = ClientConnection(APP, TC_URL, KEY, random_bytes=random.Random(1).randbytes, **kwargs)
    server = ServerHandshake(random_bytes=random.Random(2).randbytes)
    server.receive_data(client.data_to_send())  # C0 C1
    client.receive_data(server.data_to_send())  # S0 S1 S2: the client sends C2, then its setup and connect
    out = client.data_to_send()[1536:]  # past C2
    reader = ChunkReader()
    reader.feed(out)
    commands = []
    while (msg := reader.next_message()) is not None:
        if msg.type_id == m.SET_CHUNK_SIZE:
            reader.set_chunk_size(m.SetChunkSize.from_payload(msg.payload).size)
        elif msg.type_id == m.COMMAND_AMF0:
            commands.append(msg.payload)
    assert len(commands) == 1, "exactly one command (connect) before the server answers"
    return commands[0]


CLASSIC_PROPS = (
    ("app", string(APP)),
    ("type", string("nonprivate")),
    ("flashVer", string(FLASH_VER)),
    ("tcUrl", string(TC_URL)),
)


def test_classic_connect_is_exactly_the_classic_fields() -> None:
    assert connect_payload() == string("connect") + number(1.0) + obj(*CLASSIC_PROPS)


def test_classic_is_the_default_and_enhanced_false_is_the_same() -> None:
    assert connect_payload(enhanced=False) == connect_payload()


def test_enhanced_connect_adds_fourcc_list_info_maps_and_caps_ex() -> None:
    fourccs = ["av01", "vp09", "vp08", "hvc1", "avc1", "Opus", "mp4a", "fLaC", "ac-3", "ec-3", ".mp3"]
    can_forward = number(4.0)  # FourCcInfoMap flag: CanForward (Enhanced RTMP v2)

    expected = string("connect") + number(1.0) + obj(
        *CLASSIC_PROPS,
        ("fourCcList", strict_array(*(string(f) for f in fourccs))),
        ("videoFourCcInfoMap", obj(("*", can_forward))),
        ("audioFourCcInfoMap", obj(("*", can_forward))),
        ("capsEx", number(1.0)),  # CapsExReconnect: we follow NetConnection.Connect.ReconnectRequest
    )

    assert connect_payload(enhanced=True) == expected
