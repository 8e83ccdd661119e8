"""Targets that are not ours: Enhanced RTMP announced only when the stream needs it.

A server with a classic AMF0 parser (pyrtmp 0.3.1 here, an independent implementation)
cannot decode Enhanced RTMP's fourCcList (a strict array) and drops the connect. So:
- an H.264/AAC stream reaches pyrtmp byte for byte, its connect holding the classic fields;
- `enhanced_rtmp: always` on the same target shows why: pyrtmp cannot decode that connect;
- a publisher that declared Enhanced RTMP in its own connect is mirrored to the target;
- the HEVC capture (Enhanced RTMP video, replayed as its librtmp publisher sent it) is
  still announced, and reaches a server that takes Enhanced RTMP byte for byte;
- the same capture reaches FFmpeg's own RTMP server (PyAV's libraries), which decodes every frame.
"""

from __future__ import annotations

import functools
import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relay.flv import AUDIO, VIDEO, Tag, encode_tag, file_header, read_tags
from relay.rtmp.client import ClientConnection
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.events import ConnectRequest, PublishRequest, PublishStarted
from relay.rtmp.handshake import HANDSHAKE_SIZE
from relay.rtmp.server import ServerConnection
from testbed.captures import SOURCES, STREAM_KEY, read_capture
from testbed.ffmpeg import publish_with_ffmpeg, start_publish
from testbed.relay_proc import RelayProcess
from tests.support.fakeplatform import FakePlatform
from tests.support.flvcheck import assert_same_media
from tests.support.pyav_receiver import PyavReceiver
from tests.support.pyrtmp_server import PyrtmpConnection, PyrtmpServer
from tests.support.replay import replay_publish

pytestmark = pytest.mark.e2e

INGEST_KEY = "pyrtmp-ingest-KEY-2f7d90e1"
TARGET_KEY = "pyrtmp-target-KEY-b3c58a14"
CLASSIC_CONNECT = {"app", "type", "flashVer", "tcUrl"}


@pytest.fixture
def pyrtmp_server() -> Iterator[PyrtmpServer]:
    with PyrtmpServer() as server:
        yield server


@pytest.fixture
def fake_platform() -> Iterator[FakePlatform]:
    with FakePlatform() as platform:
        yield platform


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    return functools.partial(relay_daemon, ingest_key=INGEST_KEY, secrets=(TARGET_KEY,))


def _published_and_closed(connections: list[PyrtmpConnection]) -> bool:
    return any(c.stream_name is not None and c.closed for c in connections)


def test_h264_stream_reaches_pyrtmp_byte_for_byte_with_a_classic_connect(
        source_flv: Path, pyrtmp_server: PyrtmpServer, relay: Callable[..., RelayProcess]) -> None:
    daemon = relay([{"url": pyrtmp_server.url("live"), "stream_key": TARGET_KEY, "passthrough": "pyrtmp"}])

    publish_with_ffmpeg(f"rtmp://127.0.0.1:{daemon.port}/live/{INGEST_KEY}", source_flv, realtime=True, timeout=60)
    daemon.wait_for("target_status", target="pyrtmp", to="idle", timeout=20)
    [received] = pyrtmp_server.wait_until(_published_and_closed, what="a publish that ended")

    assert received.error is None and received.unknown_types == []
    assert received.connect_properties is not None
    assert set(received.connect_properties) == CLASSIC_CONNECT
    assert received.stream_name == TARGET_KEY
    assert received.commands[:3] == ["connect", "releaseStream", "FCPublish"]
    match = assert_same_media(bytes(received.flv), source_flv)
    assert match.start == 0, f"pyrtmp lost the start of the show: first tag is source media[{match.start}]"
    assert not [e for e in daemon.events if e.get("to") == "errored"]


def test_enhanced_rtmp_always_is_a_connect_pyrtmp_cannot_decode(
        source_flv: Path, pyrtmp_server: PyrtmpServer, relay: Callable[..., RelayProcess]) -> None:
    daemon = relay([{"url": pyrtmp_server.url("live"), "stream_key": TARGET_KEY, "passthrough": "pyrtmp",
                     "enhanced_rtmp": "always"}])

    publisher = start_publish(f"rtmp://127.0.0.1:{daemon.port}/live/{INGEST_KEY}", source_flv, realtime=True)
    try:
        [first, *_] = pyrtmp_server.wait_until(lambda cs: bool(cs) and cs[0].closed, what="pyrtmp to drop the connect")
        errored = daemon.wait_for("target_status", target="pyrtmp", to="errored")
    finally:
        publisher.stop()

    assert first.error == "pyrtmp cannot decode a message of type 0x14"  # the connect command
    assert first.connect_properties is None and first.stream_name is None
    assert "closed the connection" in errored["reason"]


def _publish_declaring_enhanced(port: int, source: Path) -> None:
    """Publish an FLV's tags as an Enhanced RTMP client would: its connect declares fourCcList."""
    client = ClientConnection("live", f"rtmp://127.0.0.1:{port}/live", INGEST_KEY, enhanced=True,
                              random_bytes=random.Random(7).randbytes)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(client.data_to_send())
        published = False
        while not published:
            data = sock.recv(65536)
            assert data, "the relay closed before publish started"
            client.receive_data(data)
            while (event := client.next_event()) is not None:
                published = published or isinstance(event, PublishStarted)
            sock.sendall(client.data_to_send())
        for tag in read_tags(source.read_bytes()):
            client.send_message(EncodedMessage(tag.kind, tag.timestamp, tag.payload), tag.timestamp)
        client.unpublish()
        sock.sendall(client.data_to_send())
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass


def test_a_publishers_enhanced_rtmp_declaration_is_mirrored(
        source_flv: Path, fake_platform: FakePlatform, relay: Callable[..., RelayProcess]) -> None:
    daemon = relay([{"url": fake_platform.url(), "stream_key": TARGET_KEY, "passthrough": "fake"},
                    {"url": fake_platform.url("never"), "stream_key": TARGET_KEY, "passthrough": "fake-never",
                     "enhanced_rtmp": "never"}])

    _publish_declaring_enhanced(daemon.port, source_flv)  # H.264: only the declaration says Enhanced RTMP
    connections = fake_platform.wait_until(lambda cs: sum(c.connect_properties is not None for c in cs) >= 2,
                                           what="both targets to connect")

    props = {c.app: c.connect_properties for c in connections if c.connect_properties is not None}
    assert "hvc1" in props["live"]["fourCcList"]
    assert set(props["never"]) == CLASSIC_CONNECT


def _offset_after_sequence_headers(c2s: bytes) -> int:
    """Where in a captured session both sequence headers have arrived (read with the relay's parser)."""
    server = ServerConnection()
    offset = 1 + HANDSHAKE_SIZE  # C0 C1
    server.receive_data(c2s[:offset])
    server.data_to_send()
    headers: set[int] = set()
    while headers != {VIDEO, AUDIO}:
        assert offset < len(c2s), "the capture has no audio and video sequence headers"
        server.receive_data(c2s[offset : offset + 64])
        offset += 64
        while (event := server.next_event()) is not None:
            if isinstance(event, ConnectRequest):
                server.accept_connect()
            elif isinstance(event, PublishRequest):
                server.accept_publish()
            elif isinstance(event, EncodedMessage) and event.is_header:
                headers.add(event.kind)
        server.data_to_send()
    return offset


def test_hevc_capture_is_announced_and_reaches_an_enhanced_rtmp_server_byte_for_byte(
        fake_platform: FakePlatform, relay_daemon: Callable[..., RelayProcess]) -> None:
    # The capture publishes to app "live" with its own stream key, and declares nothing in its
    # connect: its video sequence header (an Enhanced RTMP SequenceStart, sent right after
    # publish) is what tells the target to announce.
    # The replay sends 4 s of media at once: a queue bound of 4 s (the default) would drop a GOP.
    daemon = relay_daemon([{"url": fake_platform.url(), "stream_key": TARGET_KEY, "passthrough": "ertmp",
                            "queue": {"max_seconds": 30}}],
                          ingest_key=STREAM_KEY, secrets=(TARGET_KEY,))
    c2s = read_capture("librtmp-hevc-ertmp.c2s")

    # Up to the sequence headers, then the rest once the target broadcasts: the whole show,
    # not only the GOP cache of a session that ended before the target connected.
    replay_publish(c2s, daemon.port, pause_at=_offset_after_sequence_headers(c2s),
                   on_pause=lambda: daemon.wait_for("target_status", target="ertmp", to="broadcasting"))
    daemon.wait_for("target_status", target="ertmp", to="idle", timeout=20)
    [received] = fake_platform.wait_until(lambda cs: len(cs) == 1 and cs[0].closed, what="the publish to end")

    assert received.connect_properties is not None and "hvc1" in received.connect_properties["fourCcList"]
    assert received.published and received.unpublished == "FCUnpublish" and received.error is None
    flv = file_header() + b"".join(encode_tag(t.kind, t.timestamp, t.payload) for t in received.tags)
    assert_same_media(flv, read_capture(SOURCES["librtmp-hevc-ertmp"]), allow_late_start=False)


def test_hevc_capture_reaches_ffmpegs_own_rtmp_server_and_decodes(
        relay_daemon: Callable[..., RelayProcess]) -> None:
    # The same Enhanced RTMP show received by an implementation that is not ours: FFmpeg's RTMP
    # server and HEVC decoder (PyAV's bundled libraries, FFmpeg >= 7). Every frame must decode,
    # at the capture's size.
    with PyavReceiver("live", TARGET_KEY) as receiver:
        daemon = relay_daemon([{"url": receiver.url(), "stream_key": TARGET_KEY, "passthrough": "ffmpeg",
                                "queue": {"max_seconds": 30}}],
                              ingest_key=STREAM_KEY, secrets=(TARGET_KEY,))
        c2s = read_capture("librtmp-hevc-ertmp.c2s")
        replay_publish(c2s, daemon.port, pause_at=_offset_after_sequence_headers(c2s),
                       on_pause=lambda: daemon.wait_for("target_status", target="ffmpeg", to="broadcasting"))
        daemon.wait_for("target_status", target="ffmpeg", to="idle", timeout=20)
        received = receiver.wait()

    source = read_tags(read_capture(SOURCES["librtmp-hevc-ertmp"]))
    assert received.error is None, (received, receiver.ffmpeg_version)
    assert (received.video_codec, received.audio_codec) == ("hevc", "aac"), received
    # Every picture of the source decoded (its last video tag is an end of sequence, not a picture),
    # and every AAC frame.
    pictures = [t for t in source if t.kind == VIDEO and not t.is_header and _video_packet_type(t) != 2]
    assert received.video_frames == len(pictures), received
    assert received.audio_frames == sum(1 for t in source if t.kind == AUDIO and not t.is_header), received
    assert received.sizes == {(640, 360)}, received


def _video_packet_type(tag: Tag) -> int:
    """Enhanced RTMP's VideoPacketType (low nibble of byte 0), or AVCPacketType (byte 1); 2 = end of sequence."""
    return tag.payload[0] & 0x0F if tag.payload[0] & 0x80 else tag.payload[1]
