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
    rings = (meter._buckets, meter._first_frame_ts, meter._seconds)
    for i in range(30 * 600):  # ten minutes at 30 fps
        meter.observe(Tag(VIDEO, i * 33, b"\x27\x01" + b"x" * 100), i / 30)

    assert (meter._buckets, meter._first_frame_ts, meter._seconds) == rings  # the same lists, never grown
    assert [len(ring) for ring in rings] == [5 * 10 + 1, 5 * 10 + 1, 60 + 1]
    reading = meter.reading(600.0)
    assert reading.frame_rate == pytest.approx(1000 / 33, abs=0.01)
    assert reading.bitrate_kbps == pytest.approx(102 * 30 * 8 / 1000, rel=0.01)
    assert reading.minute_bitrate_kbps == pytest.approx(102 * 30 * 8 / 1000, rel=0.01)


def test_a_tag_leaves_the_window_at_most_one_bucket_after_it_is_five_seconds_old() -> None:
    meter = IngestMeter(0.0)
    meter.observe(Tag(AUDIO, 0, b"\xaf\x01" + b"x" * 99_998), 0.02)  # in the bucket [0.0, 0.1)

    assert meter.reading(4.99).bitrate_kbps == pytest.approx(800 / 4.99, rel=0.001)
    assert meter.reading(5.05).bitrate_kbps == pytest.approx(800 / 5.05, rel=0.001)  # 5.03 s old: still its bucket
    assert meter.reading(5.1).bitrate_kbps == 0  # the window starts at 0.1 now
    assert meter.reading(5.1).bytes_received == 100_000


@pytest.mark.parametrize("phase", [0.0, 0.01, 0.05, 0.09, 0.099])
def test_a_steady_stream_reads_its_rate_whatever_the_phase_of_the_bucket(phase: float) -> None:
    meter = IngestMeter(0.0)
    now = 15.0 + phase
    for i in range(2000):  # 100 tags/s of 1000 bytes: 800 kbit/s
        if i / 100 + 0.005 <= now:
            meter.observe(Tag(AUDIO, i * 10, b"\xaf\x01" + b"x" * 998), i / 100 + 0.005)

    reading = meter.reading(now)

    assert reading.bitrate_kbps == pytest.approx(800, rel=0.005)
    assert reading.audio_bitrate_kbps == reading.bitrate_kbps and reading.video_bitrate_kbps == 0


def test_the_frame_rate_follows_the_last_five_seconds_of_video() -> None:
    meter = IngestMeter(0.0)
    meter.metadata({"framerate": 24}, 0.0)
    assert meter.reading(0.0).frame_rate == 24  # onMetaData's until frames arrive
    meter.observe(video_header(0), 0.0)
    for i in range(300):  # 30 fps for 10 s
        meter.observe(keyframe(0) if i == 0 else inter(i * 1000 // 30), i / 30)
    assert meter.reading(10.0).frame_rate == pytest.approx(30, abs=0.05)

    for i in range(90):  # then 15 fps for 6 s
        meter.observe(inter(10_000 + i * 1000 // 15), 10 + i / 15)
    assert meter.reading(16.0).frame_rate == pytest.approx(15, abs=0.05)

    assert meter.reading(21.0).frame_rate == 24  # no video for 5 s: onMetaData's again


def test_sequence_headers_are_not_counted_as_frames() -> None:
    meter = IngestMeter(0.0)
    for tag in (video_header(0), keyframe(0), inter(40), inter(80)):
        meter.observe(tag, tag.timestamp / 1000)

    assert meter.reading(0.1).frame_rate == 25.0  # 2 intervals in 80 ms, not 3


def test_the_minute_mean_covers_the_last_sixty_whole_seconds() -> None:
    meter = IngestMeter(0.0)
    for second in range(100):  # 1 kB/s for 50 s, then 2 kB/s, with a silence from 70 to 80
        if not 70 <= second < 80:
            meter.observe(Tag(AUDIO, second * 1000, b"\xaf\x01" + b"x" * (998 if second < 50 else 1998)),
                          second + 0.1)

    # seconds 40..99: 10 x 1 kB + 40 x 2 kB (the silence counts as time, not bytes)
    assert meter.reading(100.5).minute_bitrate_kbps == pytest.approx((10 + 80) * 8 / 60, rel=0.001)


def test_frames_are_counted_without_sequence_headers_until_reset() -> None:
    meter = IngestMeter(0.0)
    for tag in (video_header(), audio_header(), keyframe(0), audio(10), inter(33), audio(33), inter(66)):
        meter.observe(tag, 1.0)
    assert (meter.video_frames, meter.audio_frames) == (3, 2)
    meter.reset(2.0)
    assert (meter.video_frames, meter.audio_frames) == (0, 0)
