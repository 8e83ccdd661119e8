"""Stream health: which issues a reading has under a policy, and episodes that start and end once."""

from __future__ import annotations

import dataclasses

from relay.config import HealthPolicy
from relay.live.health import (
    AUDIO_MISSING,
    BITRATE_CEILING,
    BITRATE_COLLAPSE,
    KEYFRAME_INTERVAL,
    VIDEO_MISSING,
    Episodes,
    HealthIssue,
    assess,
)
from relay.live.meter import IngestReading

HEALTHY = IngestReading(
    video_codec="h264", video_profile="High@3.1", audio_codec="aac", audio_profile="LC", width=1280, height=720,
    frame_rate=30.0, audio_sample_rate=48000, audio_channels=2, bitrate_kbps=4000.0, video_bitrate_kbps=3840.0,
    audio_bitrate_kbps=160.0, minute_bitrate_kbps=4100.0, keyframe_interval=2.0, since_keyframe=0.5,
    since_video=0.03, since_audio=0.02, has_video=True, has_audio=True, bytes_received=10**8, encoder="obs",
    duration=600.0,
)
POLICY = HealthPolicy()


def codes(reading: IngestReading, policy: HealthPolicy = POLICY) -> list[str]:
    return [issue.code for issue in assess(reading, policy)]


def test_a_stream_as_the_platforms_advise_is_healthy() -> None:
    assert assess(HEALTHY, POLICY) == ()


def test_keyframes_further_apart_than_the_maximum() -> None:
    assert codes(dataclasses.replace(HEALTHY, keyframe_interval=6.0)) == [KEYFRAME_INTERVAL]
    assert codes(dataclasses.replace(HEALTHY, keyframe_interval=4.0)) == []  # "never over 4 s"
    # No keyframe for a while although frames keep coming: the encoder stopped sending them.
    assert codes(dataclasses.replace(HEALTHY, since_keyframe=9.0)) == [KEYFRAME_INTERVAL]
    # A stricter live stream policy.
    strict = HealthPolicy(max_keyframe_interval=2.5)
    assert codes(dataclasses.replace(HEALTHY, keyframe_interval=3.0), strict) == [KEYFRAME_INTERVAL]


def test_missing_audio_or_video() -> None:
    assert codes(dataclasses.replace(HEALTHY, since_audio=6.0, has_audio=False)) == [AUDIO_MISSING]
    # Missing video is reported as such, not as a keyframe problem too.
    assert codes(dataclasses.replace(HEALTHY, since_video=6.0, since_keyframe=6.0)) == [VIDEO_MISSING]
    assert codes(dataclasses.replace(HEALTHY, since_audio=4.9)) == []


def test_bitrate_collapse_against_the_last_minute() -> None:
    assert codes(dataclasses.replace(HEALTHY, bitrate_kbps=900.0)) == [BITRATE_COLLAPSE]
    assert codes(dataclasses.replace(HEALTHY, bitrate_kbps=1100.0)) == []
    assert codes(dataclasses.replace(HEALTHY, bitrate_kbps=100.0, minute_bitrate_kbps=None)) == []


def test_bitrate_over_the_ceiling_only_when_one_is_set() -> None:
    over = dataclasses.replace(HEALTHY, bitrate_kbps=7000.0, minute_bitrate_kbps=6500.0)
    assert codes(over) == []
    assert codes(over, HealthPolicy(max_bitrate_kbps=6000)) == [BITRATE_CEILING]
    # The first seconds of a session (an encoder's initial burst) are not judged.
    assert codes(dataclasses.replace(over, duration=2.0), HealthPolicy(max_bitrate_kbps=6000)) == []


def test_messages_name_the_measurement_and_the_advice() -> None:
    (issue,) = assess(dataclasses.replace(HEALTHY, keyframe_interval=8.0), POLICY)
    assert "8.0 s" in issue.message and "2 s" in issue.message


def test_episodes_start_once_and_end_once() -> None:
    episodes = Episodes()
    gop = HealthIssue(KEYFRAME_INTERVAL, "a")
    audio = HealthIssue(AUDIO_MISSING, "b")

    assert episodes.update((gop,)) == ([gop], [])
    assert episodes.update((HealthIssue(KEYFRAME_INTERVAL, "a, later"),)) == ([], [])
    assert episodes.update((gop, audio)) == ([audio], [])
    assert episodes.update((audio,)) == ([], [KEYFRAME_INTERVAL])
    assert episodes.clear() == [AUDIO_MISSING]
    assert episodes.update(()) == ([], [])
