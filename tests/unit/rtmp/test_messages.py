"""Protocol-control, user-control and command messages (RTMP 1.0 sections 5.4, 6.2, 7.1): byte tables."""

from __future__ import annotations

from typing import Any

import pytest

from relay.rtmp import amf0
from relay.rtmp import messages as m
from relay.rtmp.errors import AMF0Error, RemoteProtocolError


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace("|", " "))


# (message, hand-written payload): each encodes to the bytes and decodes from them.
TABLE: list[tuple[Any, str]] = [
    (m.SetChunkSize(4096), "00001000"),
    (m.SetChunkSize(0x7FFFFFFF), "7fffffff"),
    (m.Abort(6), "00000006"),
    (m.Acknowledgement(0x12345678), "12345678"),
    (m.WindowAckSize(2_500_000), "002625a0"),
    (m.SetPeerBandwidth(2_500_000, 2), "002625a0 | 02"),  # dynamic
    (m.SetPeerBandwidth(5_000_000, 0), "004c4b40 | 00"),  # hard
    (m.UserControl(m.STREAM_BEGIN, 1), "0000 | 00000001"),
    (m.UserControl(m.STREAM_EOF, 1), "0001 | 00000001"),
    (m.UserControl(m.STREAM_IS_RECORDED, 1), "0004 | 00000001"),
    (m.UserControl(m.PING_REQUEST, 0xCAFE0001), "0006 | cafe0001"),
    (m.UserControl(m.PING_RESPONSE, 0xCAFE0001), "0007 | cafe0001"),
    # Set Buffer Length: stream id 1, then 3000 ms in a second 32-bit field
    (m.UserControl(m.SET_BUFFER_LENGTH, 1, 3000), "0003 | 00000001 | 00000bb8"),
]


@pytest.mark.parametrize(("message", "payload"), TABLE,
                         ids=[f"{type(x).__name__}-{i}" for i, (x, _) in enumerate(TABLE)])
def test_byte_table(message: Any, payload: str) -> None:
    assert message.to_payload() == h(payload)
    assert type(message).from_payload(h(payload)) == message


def test_type_ids() -> None:
    # 5.4 and 7.1: the ids the wire carries
    assert (m.SET_CHUNK_SIZE, m.ABORT, m.ACKNOWLEDGEMENT, m.USER_CONTROL, m.WINDOW_ACK_SIZE, m.SET_PEER_BANDWIDTH) == (
        1, 2, 3, 4, 5, 6
    )
    assert (m.AUDIO, m.VIDEO, m.DATA_AMF3, m.COMMAND_AMF3, m.DATA_AMF0, m.COMMAND_AMF0, m.AGGREGATE) == (
        8, 9, 15, 17, 18, 20, 22
    )
    assert m.CONTROL_CSID == 2


def test_set_chunk_size_ignores_the_top_bit() -> None:
    # 5.4.1: the first bit must be zero; a peer that sets it still means the low 31 bits.
    assert m.SetChunkSize.from_payload(h("80001000")) == m.SetChunkSize(4096)
    assert m.SetChunkSize(0x80001000).to_payload() == h("00001000")


def test_acknowledgement_wraps_at_2_32() -> None:
    assert m.Acknowledgement(2**32 + 5).to_payload() == h("00000005")
    assert m.Acknowledgement(2**32 - 1).to_payload() == h("ffffffff")


def test_longer_payloads_are_read_from_the_front() -> None:
    assert m.WindowAckSize.from_payload(h("002625a0 | ff")) == m.WindowAckSize(2_500_000)
    assert m.SetPeerBandwidth.from_payload(h("002625a0 | 01 | ff")) == m.SetPeerBandwidth(2_500_000, 1)


def test_user_control_with_only_an_event_type() -> None:
    assert m.UserControl.from_payload(h("0001")) == m.UserControl(m.STREAM_EOF, 0)


@pytest.mark.parametrize(
    ("cls", "payload"),
    [
        (m.SetChunkSize, ""),
        (m.SetChunkSize, "000010"),
        (m.Abort, "000000"),
        (m.Acknowledgement, "12"),
        (m.WindowAckSize, "002625"),
        (m.SetPeerBandwidth, "002625a0"),  # the limit type is missing
        (m.SetPeerBandwidth, "0026"),
        (m.UserControl, "00"),
        (m.UserControl, ""),
    ],
)
def test_short_payloads_are_rejected(cls: Any, payload: str) -> None:
    with pytest.raises(RemoteProtocolError):
        cls.from_payload(h(payload))


# --- commands (7.1.1, 7.2) -------------------------------------------------------------------------------

CONNECT = h(
    "02 0007 636f6e6e656374"  # "connect"
    "00 3ff0000000000000"  # transaction id 1.0
    "03"  # command object
    "  0003 617070 | 02 0004 6c697665"  # app: "live"
    "  0005 746355726c | 02 0017 72746d703a2f2f6578616d706c652e636f6d2f6c697665"  # tcUrl
    "  000009"  # object end
)
PUBLISH = h(
    "02 0007 7075626c697368"  # "publish"
    "00 0000000000000000"  # transaction id 0
    "05"  # null command object
    "02 0008 6b65792d31323334"  # the stream name: "key-1234"
    "02 0004 6c697665"  # "live"
)
RESULT = h(
    "02 0007 5f726573756c74"  # "_result"
    "00 4010000000000000"  # transaction id 4.0
    "05"
    "00 3ff0000000000000"  # the stream id, 1.0
)


def test_connect_command_table() -> None:
    command = m.Command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://example.com/live"})
    assert command.to_payload() == CONNECT
    assert m.Command.from_payload(CONNECT) == command


def test_publish_command_table() -> None:
    command = m.Command("publish", 0.0, None, ("key-1234", "live"))
    assert command.to_payload() == PUBLISH
    assert m.Command.from_payload(PUBLISH) == command


def test_result_command_table() -> None:
    command = m.Command.from_payload(RESULT)
    assert command == m.Command("_result", 4.0, None, (1.0,))
    assert command.to_payload() == RESULT


def test_name_and_transaction_id_only() -> None:
    payload = h("02 0008 6f6e4257446f6e65 | 00 0000000000000000")  # "onBWDone", 0
    assert m.Command.from_payload(payload) == m.Command("onBWDone", 0.0, None, ())


def test_amf3_command_skips_the_format_byte() -> None:
    # 7.1.1: an AMF3 command message (type 17) starts with one format byte, then AMF0 values.
    assert m.Command.from_payload(b"\x00" + PUBLISH, amf3=True) == m.Command("publish", 0.0, None, ("key-1234", "live"))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        amf0.encode(1.0, 2.0),  # no name
        amf0.encode(None, 1.0),
    ],
)
def test_commands_without_a_name_are_rejected(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        m.Command.from_payload(payload)


@pytest.mark.parametrize(
    "payload", [amf0.encode("onFCPublish"), amf0.encode("onFCPublish", "1"), amf0.encode("onFCPublish", None)]
)
def test_missing_or_odd_transaction_id_reads_as_a_notification(payload: bytes) -> None:
    # ffmpeg's server sends onFCPublish without a transaction id
    command = m.Command.from_payload(payload)
    assert (command.name, command.transaction_id) == ("onFCPublish", 0.0)


def test_truncated_command_is_an_amf0_error() -> None:
    with pytest.raises(AMF0Error):
        m.Command.from_payload(PUBLISH[:-3])
    assert issubclass(AMF0Error, RemoteProtocolError)


def test_command_repr_leaves_out_the_arguments() -> None:
    # publish, releaseStream and FCPublish carry the stream key in their arguments
    assert "key-1234" not in repr(m.Command.from_payload(PUBLISH))
    assert "publish" in repr(m.Command.from_payload(PUBLISH))


def test_status_info() -> None:
    info = m.status_info("status", "NetStream.Publish.Start", "Publishing started.", clientid=1.0)
    assert info == {
        "level": "status",
        "code": "NetStream.Publish.Start",
        "description": "Publishing started.",
        "clientid": 1.0,
    }
    assert list(info) == ["level", "code", "description", "clientid"]  # the order nginx and Adobe send
