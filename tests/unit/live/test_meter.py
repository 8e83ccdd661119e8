"""The ingest meter: codecs, resolution, frame rate, bitrate and keyframe interval, from tags and a clock.

Real sessions (the project's capture fixtures) are fed with arrival times equal to
their timestamps, as a publisher pacing itself in real time sends them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.live.meter import IngestMeter
from relay.flv import AUDIO, SCRIPT, VIDEO, Tag, is_metadata, read_tags
from relay.rtmp import amf0
from tests.support.tags import audio, audio_header, inter, keyframe, video_header

CAPTURES = Path(__file__).resolve().parents[2] / "fixtures" / "captures"


def feed(meter: IngestMeter, tags: list[Tag], start: float = 100.0) -> float:
    """Every tag at start + its timestamp; onMetaData decoded as the glue does. The last arrival time."""
    now = start
    for tag in tags:
        now = start + tag.timestamp / 1000
        meter.observe(tag, now)
        if tag.kind == SCRIPT and is_metadata(tag.payload):
            meter.metadata(amf0.decode(tag.payload)[1], now)
    return now


def test_a_real_h264_session_is_described_as_encoded() -> None:
    tags = read_tags((CAPTURES / "source-h264-4s.flv").read_bytes())
    meter = IngestMeter(100.0)
    end = feed(meter, tags)

    reading = meter.reading(end)

    assert (reading.video_codec, reading.audio_codec) == ("h264", "aac")
    assert reading.video_profile is not None and reading.video_profile.startswith("High@")
    assert (reading.width, reading.height) == (640, 360)
    assert reading.frame_rate == pytest.approx(30, abs=0.5)
    assert (reading.audio_sample_rate, reading.audio_channels, reading.audio_profile) == (48000, 2, "LC")
    assert reading.keyframe_interval == 2.0
    assert reading.encoder == "Lavf59.27.100"
    assert reading.bytes_received == sum(len(t.payload) for t in tags)
    in_window = sum(len(t.payload) for t in tags if 100 + t.timestamp / 1000 > end - 5)
    assert reading.bitrate_kbps == pytest.approx(in_window * 8 / 1000 / min(5, end - 100), rel=0.01)
    assert reading.video_bitrate_kbps > reading.audio_bitrate_kbps > 0
    assert reading.has_audio and reading.has_video


def test_enhanced_rtmp_hevc_is_named_by_its_fourcc() -> None:
    meter = IngestMeter(0.0)
    end = feed(meter, read_tags((CAPTURES / "source-hevc-ertmp-4s.flv").read_bytes()), start=0.0)

    reading = meter.reading(end)

    assert reading.video_codec == "hevc"
    assert reading.keyframe_interval == 2.0


def test_the_bitrate_covers_only_the_last_five_seconds() -> None:
    meter = IngestMeter(0.0)
    readings = {}
    for second in range(20):  # 10 kB/s for 10 s, then 1 kB/s
        meter.observe(Tag(AUDIO, second * 1000, b"\xaf\x01" + b"x" * (9998 if second < 10 else 998)), second + 0.5)
        readings[second] = meter.reading(second + 0.9).bitrate_kbps

    assert readings[9] == pytest.approx(80, rel=0.01)
    assert readings[12] == pytest.approx((2 * 80 + 3 * 8) / 5, rel=0.01)
    assert readings[19] == pytest.approx(8, rel=0.01)


def test_the_minute_mean_waits_for_fifteen_seconds_of_history() -> None:
    meter = IngestMeter(0.0)
    for second in range(30):
        meter.observe(Tag(AUDIO, second * 1000, b"\xaf\x01" + b"x" * 998), second + 0.1)
        if second == 10:
            assert meter.reading(second + 0.2).minute_bitrate_kbps is None
    assert meter.reading(30.0).minute_bitrate_kbps == pytest.approx(8, rel=0.01)


def test_time_without_audio_or_video_is_counted_from_the_last_tag_or_the_session_start() -> None:
    meter = IngestMeter(50.0)
    meter.observe(video_header(0), 50.0)
    meter.observe(keyframe(0), 50.0)

    reading = meter.reading(57.0)

    assert reading.since_video == 7.0
    assert reading.since_audio == 7.0  # never had audio: since the session began
    assert not reading.has_audio
    assert reading.since_keyframe == 7.0


def test_reset_forgets_the_previous_session() -> None:
    meter = IngestMeter(0.0)
    for tag in (video_header(0), audio_header(0), keyframe(0), audio(10), keyframe(6000)):
        meter.observe(tag, tag.timestamp / 1000)
    assert meter.reading(6.0).keyframe_interval == 6.0

    meter.reset(100.0)
    reading = meter.reading(100.5)

    assert reading.keyframe_interval is None and reading.video_codec is None and reading.bytes_received == 0
    assert reading.bitrate_kbps == 0


def test_keyframe_interval_is_taken_modulo_the_32_bit_timestamp_wrap() -> None:
    meter = IngestMeter(0.0)
    meter.observe(keyframe((1 << 32) - 1000), 1.0)
    meter.observe(inter((1 << 32) - 500), 1.5)
    meter.observe(keyframe(1000), 3.0)

    assert meter.reading(3.0).keyframe_interval == 2.0


def test_metadata_values_of_the_wrong_type_are_ignored() -> None:
    meter = IngestMeter(0.0)
    meter.metadata({"width": "1280", "height": True, "framerate": -5, "encoder": 42}, 0.0)

    reading = meter.reading(1.0)

    assert (reading.width, reading.height, reading.frame_rate, reading.encoder) == (None, None, None, None)


def test_memory_stays_bounded_over_a_long_show() -> None:
    meter = IngestMeter(0.0)
    for i in range(30 * 600):  # ten minutes at 30 fps
        meter.observe(Tag(VIDEO, i * 33, b"\x27\x01" + b"x" * 100), i / 30)

    assert len(meter._window) <= 5 * 30 + 1
    assert len(meter._minute) <= 60


def test_frames_are_counted_without_sequence_headers_until_reset() -> None:
    meter = IngestMeter(0.0)
    for tag in (video_header(), audio_header(), keyframe(0), audio(10), inter(33), audio(33), inter(66)):
        meter.observe(tag, 1.0)
    assert (meter.video_frames, meter.audio_frames) == (3, 2)
    meter.reset(2.0)
    assert (meter.video_frames, meter.audio_frames) == (0, 0)
