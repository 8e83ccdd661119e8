"""The ingest meter as a hub subscriber: the loop's clock, onMetaData decoded, nothing else looked at."""

from __future__ import annotations

import asyncio

import pytest

import relay.live.metertap as metertap
from relay.flv import SCRIPT, Tag
from relay.live.meter import IngestMeter
from relay.live.metertap import MAX_DECODED_METADATA, IngestSubscriber
from relay.rtmp import amf0
from tests.support.tags import audio, audio_header, inter, keyframe, script, video_header


def on_metadata(values: dict[str, object], pad: int = 0) -> Tag:
    return Tag(SCRIPT, 0, amf0.encode("onMetaData", amf0.ECMAArray({**values, "pad": "x" * pad})))


async def test_tags_are_measured_at_the_loops_time_and_on_metadata_is_decoded() -> None:
    meter = IngestMeter(asyncio.get_running_loop().time())
    tap = IngestSubscriber(meter)

    for tag in (on_metadata({"width": 1280.0, "height": 720.0, "framerate": 25.0, "encoder": "obs"}),
                video_header(), audio_header(), keyframe(0), audio(0)):
        tap.offer(tag)
    reading = meter.reading(asyncio.get_running_loop().time())

    assert (reading.width, reading.height, reading.frame_rate, reading.encoder) == (1280, 720, 25.0, "obs")
    assert (reading.video_codec, reading.audio_codec, meter.video_frames, meter.audio_frames) == ("h264", "aac", 1, 1)
    assert reading.since_video < 1 and reading.has_audio


async def test_only_script_tags_are_looked_at_for_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_at: list[bytes] = []
    monkeypatch.setattr(metertap, "is_metadata", lambda payload: looked_at.append(bytes(payload)) or False)
    tap = IngestSubscriber(IngestMeter(asyncio.get_running_loop().time()))

    for tag in (video_header(), audio_header(), keyframe(0), inter(33), audio(10), script(40)):
        tap.offer(tag)

    assert looked_at == [script(40).payload]
    assert tap.meter.bytes_received == sum(len(t.payload) for t in (video_header(), audio_header(), keyframe(0),
                                                                      inter(33), audio(10), script(40)))


async def test_a_paused_tap_measures_nothing_and_oversized_metadata_is_not_decoded() -> None:
    meter = IngestMeter(asyncio.get_running_loop().time())
    tap = IngestSubscriber(meter)
    tap.paused = True  # the reconnect slate plays
    tap.offer(keyframe(0))
    tap.offer(on_metadata({"width": 640.0}))
    assert meter.bytes_received == 0 and meter.width is None

    tap.paused = False
    big = on_metadata({"width": 640.0}, pad=MAX_DECODED_METADATA)
    tap.offer(big)
    assert meter.bytes_received == len(big.payload) and meter.width is None
    tap.offer(on_metadata({"width": 640.0}))
    assert meter.width == 640
