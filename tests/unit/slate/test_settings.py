"""What a slate must match, and the ffmpeg command that makes it."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from relay.slate.settings import SlateSettings, ffmpeg_command, frame_rate, unsupported

HD = SlateSettings("h264", 1280, 720, Fraction(30), "aac", 48000, 2, "studio-a", None)


@pytest.mark.parametrize(("measured", "rate"), [
    (None, Fraction(30)), (0.0, Fraction(30)), (30.0, Fraction(30)), (29.97, Fraction(30000, 1001)),
    (59.94, Fraction(60000, 1001)), (23.976, Fraction(24000, 1001)), (25.0, Fraction(25)), (12.5, Fraction(25, 2)),
])
def test_frame_rate_as_ffmpeg_takes_it(measured: float | None, rate: Fraction) -> None:
    assert frame_rate(measured) == rate


@pytest.mark.parametrize(("rate", "frames", "period"), [
    (Fraction(30), 60, 2000), (Fraction(30000, 1001), 60, 2002), (Fraction(25), 50, 2000), (Fraction(60), 120, 2000),
])
def test_the_clip_is_two_seconds_of_whole_frames(rate: Fraction, frames: int, period: int) -> None:
    settings = replace(HD, frame_rate=rate)
    assert (settings.frames, settings.period_ms) == (frames, period)


@pytest.mark.parametrize(("change", "reason"), [
    ({}, None),
    ({"audio_codec": None, "sample_rate": None, "channels": None}, None),
    ({"video_codec": "hevc"}, None),
    ({"video_codec": "av1"}, "video codec (av1) is not H.264 or HEVC"),
    ({"width": 1281}, "size (1281x720) is odd"),
    ({"height": 8}, "out of range"),
    ({"audio_codec": "mp3"}, "audio codec (mp3) is not AAC"),
    ({"channels": 3}, "3 channels"),
    ({"sample_rate": None}, "sample rate is unknown"),
])
def test_what_cannot_have_a_slate_says_why(change: dict[str, object], reason: str | None) -> None:
    found = unsupported(replace(HD, **change))  # type: ignore[arg-type]
    assert found is None if reason is None else (found is not None and reason in found)


def test_the_card_is_drawn_from_text_files_with_the_stream_s_settings() -> None:
    command = ffmpeg_command(HD, "/tmp/x/slate.flv", font="/f.ttf", title_file="/tmp/x/t", message_file="/tmp/x/m")
    text = " ".join(command)
    assert "color=c=0x1b2838:s=1280x720:r=30/1" in text
    assert "textfile=/tmp/x/t" in text and "textfile=/tmp/x/m" in text and "expansion=none" in text
    assert "anullsrc=r=48000:cl=stereo" in text
    assert "-g 60 -keyint_min 60" in text and "-bf 0" in text and "-t 2.000" in text
    assert command[-2:] == ["flv", "/tmp/x/slate.flv"]


def test_an_image_is_scaled_and_padded_to_the_stream_s_size() -> None:
    text = " ".join(ffmpeg_command(replace(HD, image="/srv/slate.png"), "/o.flv"))
    assert "-loop 1 -framerate 30/1 -i /srv/slate.png" in text
    assert "scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720" in text
    assert "drawtext" not in text


def test_no_audio_track_for_a_stream_without_audio_and_hevc_with_x265() -> None:
    text = " ".join(ffmpeg_command(replace(HD, video_codec="hevc", audio_codec=None), "/o.flv"))
    assert "anullsrc" not in text and "-c:a" not in text
    assert "-c:v libx265" in text and "keyint=60:min-keyint=60:scenecut=0:bframes=0" in text
