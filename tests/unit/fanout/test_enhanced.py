"""When a target's connect announces Enhanced RTMP: a table of (setting, publisher's connect, cached headers)."""

from __future__ import annotations

import pytest

from relay.fanout.enhanced import announce_enhanced, declares_enhanced
from relay.fanout.streamstate import StreamState
from relay.flv import AUDIO, VIDEO, Tag, is_enhanced

AVC_HEADER = Tag(VIDEO, 0, bytes.fromhex("1700000000 0164001f"))
AAC_HEADER = Tag(AUDIO, 0, bytes.fromhex("af00 1190"))
HEVC_SEQUENCE_START = Tag(VIDEO, 0, b"\x90hvc1" + bytes(30))  # IsExHeader | keyframe | SequenceStart
OPUS_SEQUENCE_START = Tag(AUDIO, 0, b"\x90Opus" + bytes(19))  # SoundFormat 9 (ExHeader) | SequenceStart


def state(declared: bool = False, *headers: Tag) -> StreamState:
    s = StreamState()
    s.publisher_enhanced = declared
    for tag in headers:
        s.update(tag)
    return s


@pytest.mark.parametrize(("mode", "stream", "announce"), [
    ("auto", state(), False),  # nothing known yet: classic
    ("auto", state(False, AVC_HEADER, AAC_HEADER), False),  # H.264/AAC: classic
    ("auto", state(True), True),  # the publisher declared it: mirror
    ("auto", state(True, AVC_HEADER, AAC_HEADER), True),
    ("auto", state(False, HEVC_SEQUENCE_START, AAC_HEADER), True),  # the stream carries it
    ("auto", state(False, AVC_HEADER, OPUS_SEQUENCE_START), True),
    ("always", state(False, AVC_HEADER, AAC_HEADER), True),
    ("never", state(True, HEVC_SEQUENCE_START), False),
])
def test_announce_enhanced(mode: str, stream: StreamState, announce: bool) -> None:
    assert announce_enhanced(mode, stream) is announce


def test_a_new_publish_session_forgets_the_last_publishers_declaration() -> None:
    s = state(True, HEVC_SEQUENCE_START)

    s.reset()

    assert announce_enhanced("auto", s) is False


@pytest.mark.parametrize(("properties", "declared"), [
    ({"app": "live", "type": "nonprivate", "tcUrl": "rtmp://h/live"}, False),  # ffmpeg, OBS with H.264
    ({"app": "live", "fourCcList": ["hvc1", "av01"]}, True),  # Enhanced RTMP v1 (OBS with HEVC)
    ({"app": "live", "videoFourCcInfoMap": {"hvc1": 1.0}}, True),  # v2 maps alone
    ({"app": "live", "audioFourCcInfoMap": {"Opus": 1.0}}, True),
    ({"app": "live", "fourCcList": []}, False),  # an empty list declares nothing
    ({"app": "live", "capsEx": 1.0}, False),  # capabilities, not codecs
])
def test_declares_enhanced(properties: dict[str, object], declared: bool) -> None:
    assert declares_enhanced(properties) is declared


def test_is_enhanced_reads_the_ex_header_bits() -> None:
    assert is_enhanced(VIDEO, HEVC_SEQUENCE_START.payload) and is_enhanced(AUDIO, OPUS_SEQUENCE_START.payload)
    assert not is_enhanced(VIDEO, AVC_HEADER.payload) and not is_enhanced(AUDIO, AAC_HEADER.payload)
    assert not is_enhanced(VIDEO, b"") and not is_enhanced(18, b"\x90")
