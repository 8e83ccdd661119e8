"""Real publisher sessions (tests/fixtures/captures, see its README.md) fed to a ServerConnection.

Each NAME.c2s is everything a publisher sent to nginx-rtmp; what comes out of our server
must be the source FLV's audio and video tag payloads, in order, with the tags' timestamps
up to one constant offset.
"""

from __future__ import annotations

import pytest

from relay import flv
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.events import ConnectRequest, Event, PublishEnded, PublishRequest
from relay.rtmp.server import ServerConnection
from testbed.captures import SOURCES, STREAM_KEY, read_capture


def serve(data: bytes, step: int | None) -> list[Event]:
    """Feed a publisher's bytes to a server that accepts everything; step=None feeds them whole."""
    server = ServerConnection(random_bytes=lambda n: bytes(n))
    events: list[Event] = []
    pieces = [data] if step is None else (data[i : i + step] for i in range(0, len(data), step))
    for piece in pieces:
        server.receive_data(piece)
        while (event := server.next_event()) is not None:
            events.append(event)
            if isinstance(event, ConnectRequest):
                server.accept_connect()
            elif isinstance(event, PublishRequest):
                server.accept_publish()
        server.data_to_send()
    return events


@pytest.mark.parametrize("step", [None, 1], ids=["whole", "one-byte"])
@pytest.mark.parametrize("session", list(SOURCES))
def test_capture_yields_the_source_flv(session: str, step: int | None) -> None:
    data = read_capture(f"{session}.c2s")
    tags = flv.read_tags(read_capture(SOURCES[session]))
    events = serve(data, step)

    assert isinstance(events[0], ConnectRequest) and events[0].app == "live"
    assert isinstance(events[1], PublishRequest) and events[1].stream_name == STREAM_KEY
    assert isinstance(events[-1], PublishEnded)
    media = events[2:-1]
    assert all(isinstance(event, EncodedMessage) for event in media)  # each message is its own event
    assert not any(isinstance(event, EncodedMessage) for event in events[:2])

    got = [e for e in media if isinstance(e, EncodedMessage) and e.kind in (flv.AUDIO, flv.VIDEO)]
    want = [t for t in tags if t.kind in (flv.AUDIO, flv.VIDEO)]
    assert len(got) == len(want)
    assert [e.kind for e in got] == [t.kind for t in want]
    assert [e.payload for e in got] == [t.payload for t in want]
    assert [(e.is_keyframe, e.is_header) for e in got] == [(t.is_keyframe, t.is_header) for t in want]
    offsets = {e.timestamp - t.timestamp for e, t in zip(got, want, strict=True)}
    assert len(offsets) == 1, sorted(offsets)[:5]

    scripts = [e for e in media if isinstance(e, EncodedMessage) and e.kind == flv.SCRIPT]
    assert scripts and all(flv.is_metadata(e.payload) for e in scripts)  # @setDataFrame is gone
    assert len(scripts) == sum(1 for t in tags if t.kind == flv.SCRIPT)
    if session == "librtmp-extts":
        assert len(scripts) == 2  # repeated after the timestamps cross 0xFFFFFF
        assert got[0].timestamp < 0xFFFFFF < got[-1].timestamp


def test_hevc_capture_is_enhanced_rtmp() -> None:
    events = serve(read_capture("librtmp-hevc-ertmp.c2s"), None)
    video = [e for e in events if isinstance(e, EncodedMessage) and e.kind == flv.VIDEO]
    header, first = video[0], video[1]
    assert header.payload[0] & 0x80 and header.payload[1:5] == b"hvc1"  # IsExHeader, FourCC
    assert flv.is_video_sequence_header(header.payload)
    assert not flv.is_video_sequence_header(first.payload)
    assert flv.is_video_keyframe(first.payload)
    assert first.payload[1:5] == b"hvc1"
