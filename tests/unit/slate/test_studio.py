"""Slate clips made by the real ffmpeg: the stream's settings, decodable, cached, failures said once."""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from relay.flv import AUDIO, VIDEO, encode_tag, file_header
from relay.slate.playout import Clip
from relay.slate.settings import SlateSettings
from relay.slate.studio import SlateStudio, SlateUnavailable
from tests.support.probe import ffprobe_decode

SD = SlateSettings("h264", 640, 360, Fraction(30000, 1001), "aac", 44100, 1, "studio-a: it's 100% live", None)


def write_flv(clip: Clip, path: Path, rounds: int = 2) -> Path:
    """The clip looped `rounds` times as an FLV file, as the targets get it."""
    parts = [file_header()]
    parts += [encode_tag(h.kind, 0, h.payload) for h in clip.headers]
    for r in range(rounds):
        parts += [encode_tag(f.kind, r * clip.period + f.timestamp, f.payload) for f in clip.frames]
    path.write_bytes(b"".join(parts))
    return path


def probe(path: Path) -> dict[str, dict[str, object]]:
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                           "stream=codec_type,codec_name,width,height,r_frame_rate,sample_rate,channels",
                           "-of", "json", str(path)], capture_output=True, text=True, check=True, timeout=60)
    return {s["codec_type"]: s for s in json.loads(done.stdout)["streams"]}


async def test_a_clip_matches_the_stream_and_loops_decodably(tmp_path: Path) -> None:
    studio = SlateStudio()
    clip = await studio.clip(SD)
    assert clip.period == 2002
    assert sum(f.kind == VIDEO for f in clip.frames) == 60
    assert clip.frames[0].kind == VIDEO and clip.frames[0].is_keyframe
    assert [f.timestamp for f in clip.frames] == sorted(f.timestamp for f in clip.frames)
    assert all(f.timestamp < clip.period for f in clip.frames)
    audio = [f.timestamp for f in clip.frames if f.kind == AUDIO]
    assert audio[0] == 0 and audio[-1] > 1950  # silence all along
    flv = write_flv(clip, tmp_path / "slate.flv")
    found = probe(flv)
    assert (found["video"]["codec_name"], found["video"]["width"], found["video"]["height"]) == ("h264", 640, 360)
    assert found["video"]["r_frame_rate"] in ("30000/1001", "2997/100")
    assert (found["audio"]["codec_name"], found["audio"]["sample_rate"], found["audio"]["channels"]) == (
        "aac", "44100", 1)
    assert ffprobe_decode(flv) == {"video": 120, "audio": 2 * len(audio)}


async def test_equal_settings_make_one_clip_even_when_asked_at_once() -> None:
    studio = SlateStudio()
    first, second = await asyncio.gather(studio.clip(SD), studio.clip(SD))
    again = await studio.clip(replace(SD))
    assert first is second is again and studio.made == 1
    await studio.clip(replace(SD, width=320, height=180, audio_codec=None, sample_rate=None, channels=None))
    assert studio.made == 2


async def test_an_image_is_scaled_into_the_frame(tmp_path: Path) -> None:
    image = tmp_path / "slate.png"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=400x400",
                    "-frames:v", "1", str(image)], check=True, timeout=60)
    clip = await SlateStudio().clip(replace(SD, image=str(image), frame_rate=Fraction(25)))
    found = probe(write_flv(clip, tmp_path / "image.flv", rounds=1))
    assert (found["video"]["width"], found["video"]["height"]) == (640, 360)
    assert clip.period == 2000


async def test_what_ffmpeg_cannot_make_is_unavailable_with_its_reason_and_not_tried_again(tmp_path: Path) -> None:
    studio = SlateStudio(ffmpeg=str(tmp_path / "no-ffmpeg"))
    with pytest.raises(SlateUnavailable, match="ffmpeg could not be run"):
        await studio.clip(SD)
    with pytest.raises(SlateUnavailable, match="ffmpeg could not be run"):
        await studio.clip(SD)
    with pytest.raises(SlateUnavailable, match="is odd"):
        await studio.clip(replace(SD, width=641))


async def test_hevc_is_made_where_ffmpeg_can_write_it_in_flv_else_said_why() -> None:
    try:
        clip = await SlateStudio().clip(replace(SD, video_codec="hevc"))
    except SlateUnavailable as err:  # ffmpeg before 6.1 (Debian 12's 5.1) has no HEVC in FLV
        assert "ffmpeg failed" in str(err) and "flv" in str(err)
    else:
        assert clip.headers[0].payload[0] & 0x80  # Enhanced RTMP
