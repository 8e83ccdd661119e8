"""What the publisher sends, measured: codecs, resolution, frame rate, bitrate, keyframe interval.

An `IngestMeter` is fed every tag of one publish session with the time it arrived
(`observe(tag, now)`), and the decoded onMetaData values (`metadata(values, now)`: the
AMF0 decoding happens in the glue, which may use rtmp/). `reading(now)` returns a frozen
`IngestReading`. Nothing here grows with the length of the show, and nothing is made per
tag: `observe` adds to running totals (bytes, video bytes, video frames) and keeps the
last frame's timestamp; the first tag of each 100 ms bucket writes one snapshot of the
totals into a fixed ring (51 slots), the first of each second one into another (61).

Time buckets: the clock `now` is cut at the multiples of 100 ms. "The last 5 s" is the
bucket holding `now` and the 50 before it, so from 5.0 to 5.1 s: a tag counts from its
arrival until at least 5 s and at most 5.1 s later (one bucket coarser than a per-tag
window). The bitrates divide the window's bytes by the time it covers (while the session
is younger, by its age, at least 1 s), so a steady stream reads its true rate whatever
the phase of `now`. Why 100 ms: a bucket holds ~3 frames at 30 fps and ~5 AAC frames, so
about one tag in 8 takes a snapshot, and the window is at most 2 % longer than 5 s (less
than one keyframe weighs in a 5 s bitrate); smaller buckets mean more snapshots and
longer rings, larger ones a coarser window. The frame rate is (frames - 1) * 1000 / (last - first timestamp)
of the video frames that arrived in the window (sequence headers are not frames), and
onMetaData's framerate while there are fewer than 3 of them or their timestamps span
nothing or 10 s and more. The minute's mean is the bytes of the 60 whole seconds before
now's (of the session's, once it saw 15), from the per-second snapshots. `reading` finds
the window's first snapshots in a few steps (at most 51 and 61), whatever the tag rate.
A tag whose `now` is earlier than its predecessor's bucket counts in that bucket.

Codec details come from the sequence headers (FLV spec E.4.2.1 and E.4.3.1; ISO
14496-15 5.3.3.1 AVCDecoderConfigurationRecord; ISO 14496-3 1.6.2.1
AudioSpecificConfig; Enhanced RTMP's FourCCs), resolution from onMetaData (encoders
send width and height there), frame rate from the video timestamps of the last 5 s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.flv import AUDIO, VIDEO, Tag

WINDOW = 5.0  # seconds: "bitrate over the last 5 s"
BUCKETS_PER_SECOND = 10  # the window's buckets: 100 ms
WINDOW_BUCKETS = round(WINDOW * BUCKETS_PER_SECOND)  # the window: now's bucket and the 50 before it
MINUTE_BUCKETS = 60  # one-second buckets: the last minute's mean
_RING = WINDOW_BUCKETS + 1
_SECONDS_RING = MINUTE_BUCKETS + 1  # the starts of the 60 seconds before now's and of now's
_NO_BUCKET = -(1 << 62)  # the stamp of a ring slot no bucket has used
_EMPTY_SNAPSHOT = (_NO_BUCKET, 0, 0, 0, 0)
_EMPTY_SECOND = (_NO_BUCKET, 0)

_VIDEO_CODECS = {2: "h263", 3: "screen", 4: "vp6", 5: "vp6a", 6: "screen2", 7: "h264", 12: "hevc"}
_VIDEO_FOURCCS = {b"avc1": "h264", b"hvc1": "hevc", b"av01": "av1", b"vp09": "vp9", b"vp08": "vp8"}
_AUDIO_CODECS = {0: "pcm", 1: "adpcm", 2: "mp3", 3: "pcm", 4: "nellymoser", 5: "nellymoser",
                 6: "nellymoser", 7: "g711a", 8: "g711u", 10: "aac", 11: "speex", 14: "mp3"}
_AUDIO_FOURCCS = {b"Opus": "opus", b"fLaC": "flac", b"ac-3": "ac3", b"ec-3": "eac3", b".mp3": "mp3",
                  b"mp4a": "aac"}
_AVC_PROFILES = {66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High 10", 122: "High 4:2:2",
                 244: "High 4:4:4"}
_AAC_OBJECTS = {1: "Main", 2: "LC", 3: "SSR", 4: "LTP", 5: "HE", 29: "HEv2"}
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_FLV_RATES = (5512, 11025, 22050, 44100)
_EX_AUDIO = 9  # SoundFormat of an Enhanced RTMP audio header


@dataclass(frozen=True, slots=True)
class IngestReading:
    """The publisher's stream as measured at one moment."""

    video_codec: str | None
    video_profile: str | None
    audio_codec: str | None
    audio_profile: str | None
    width: int | None
    height: int | None
    frame_rate: float | None  # frames per second, measured over the last 5 s (onMetaData's until then)
    audio_sample_rate: int | None
    audio_channels: int | None
    bitrate_kbps: float  # audio + video + data over the last 5 s
    video_bitrate_kbps: float
    audio_bitrate_kbps: float
    minute_bitrate_kbps: float | None  # mean over the last minute, once 15 s were seen
    keyframe_interval: float | None  # seconds between the last two keyframes (stream time)
    since_keyframe: float | None  # seconds since the last keyframe arrived
    since_video: float  # seconds since the last video tag arrived (or since the session began)
    since_audio: float
    has_video: bool
    has_audio: bool
    bytes_received: int
    encoder: str | None
    duration: float  # seconds since the session's first tag


class IngestMeter:
    """Measures one publish session; `reset(now)` starts the next one."""

    def __init__(self, now: float = 0.0) -> None:
        self.reset(now)

    def reset(self, now: float) -> None:
        """Forget the previous session: a new publisher starts from scratch."""
        self.started = now
        self.bytes_received = 0
        self.video_frames = 0  # video tags but sequence headers
        self.audio_frames = 0
        self.video_codec: str | None = None
        self.video_profile: str | None = None
        self.audio_codec: str | None = None
        self.audio_profile: str | None = None
        self.audio_sample_rate: int | None = None
        self.audio_channels: int | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.meta_frame_rate: float | None = None
        self.encoder: str | None = None
        self.last_video: float | None = None
        self.last_audio: float | None = None
        self.last_keyframe_at: float | None = None
        self.last_keyframe_ts: int | None = None
        self.keyframe_interval: float | None = None
        # Running totals; bytes_received counts every tag, the audio bytes are what is not video or data.
        self._video_bytes = 0
        self._other_bytes = 0  # script data (onMetaData) and any other tag kind
        self._last_frame_ts = 0  # the stream timestamp of the last video frame
        # The bucket the last tag arrived in: the first `now` of the next one (the first tag opens
        # one), its slot in the ring, its second.
        self._bucket_end = -math.inf
        self._slot = 0
        self._second = _NO_BUCKET
        self._first_frame_pending = False  # no frame yet in the current bucket
        # slot (bucket % _RING) -> (bucket, bytes_received, video bytes, other bytes, video_frames)
        # when the bucket's first tag arrived, before it was counted
        self._buckets: list[tuple[int, int, int, int, int]] = [_EMPTY_SNAPSHOT] * _RING
        self._first_frame_ts: list[int | None] = [None] * _RING  # the bucket's first video frame's timestamp
        # slot (second % _SECONDS_RING) -> (second, bytes_received when the second's first tag arrived)
        self._seconds: list[tuple[int, int]] = [_EMPTY_SECOND] * _SECONDS_RING

    # -- input -------------------------------------------------------------------------

    def observe(self, tag: Tag, now: float) -> None:
        """One tag from the publisher, arrived at `now` (seconds, any monotonic clock)."""
        if now >= self._bucket_end:
            self._open_bucket(now)
        payload = tag.payload
        size = len(payload)
        self.bytes_received += size
        kind = tag.kind
        if kind == VIDEO:
            self.last_video = now
            self._video_bytes += size
            if tag.is_header:
                self._video_header(payload)
            else:
                self.video_frames += 1
                timestamp = tag.timestamp
                self._last_frame_ts = timestamp
                if self._first_frame_pending:
                    self._first_frame_ts[self._slot] = timestamp
                    self._first_frame_pending = False
                if tag.is_keyframe:
                    if self.last_keyframe_ts is not None:
                        self.keyframe_interval = ((timestamp - self.last_keyframe_ts) % (1 << 32)) / 1000
                    self.last_keyframe_ts = timestamp
                    self.last_keyframe_at = now
            if self.video_codec is None:
                self.video_codec = _video_codec(payload)
        elif kind == AUDIO:
            self.last_audio = now
            if tag.is_header:
                self._audio_header(payload, True)
            else:
                self.audio_frames += 1
                if self.audio_codec is None:
                    self._audio_header(payload, False)
        else:
            self._other_bytes += size

    def _open_bucket(self, now: float) -> None:
        """The first tag of a new bucket: snapshot the totals it starts from (and the second's)."""
        bucket = _bucket_of(now)
        slot = bucket % _RING
        self._bucket_end = (bucket + 1) / BUCKETS_PER_SECOND
        self._slot = slot
        self._buckets[slot] = (bucket, self.bytes_received, self._video_bytes, self._other_bytes, self.video_frames)
        self._first_frame_ts[slot] = None
        self._first_frame_pending = True
        second = bucket // BUCKETS_PER_SECOND
        if second != self._second:
            self._second = second
            self._seconds[second % _SECONDS_RING] = (second, self.bytes_received)

    def metadata(self, values: Mapping[str, Any], now: float) -> None:
        """The values of an onMetaData (ECMA array or object)."""
        self.width = _positive_int(values.get("width"))
        self.height = _positive_int(values.get("height"))
        rate = values.get("framerate")
        self.meta_frame_rate = float(rate) if isinstance(rate, (int, float)) and 0 < rate < 1000 else None
        encoder = values.get("encoder")
        self.encoder = encoder[:100] if isinstance(encoder, str) else None

    # -- output ------------------------------------------------------------------------

    def reading(self, now: float) -> IngestReading:
        """What the stream looks like at `now`."""
        bucket = _bucket_of(now)
        oldest = bucket - WINDOW_BUCKETS
        span = min(now - oldest / BUCKETS_PER_SECOND, max(1.0, now - self.started))
        all_bytes = video_bytes = other_bytes = frames = 0
        frame_rate = self.meta_frame_rate
        buckets = self._buckets
        for first in range(oldest, bucket + 1):  # the window's first bucket that saw a tag
            snapshot = buckets[first % _RING]
            if snapshot[0] == first:
                all_bytes = self.bytes_received - snapshot[1]
                video_bytes = self._video_bytes - snapshot[2]
                other_bytes = self._other_bytes - snapshot[3]
                frames = self.video_frames - snapshot[4]
                if frames >= 3:
                    first_ts = self._window_first_frame_ts(first, bucket)
                    if first_ts is not None:
                        elapsed = (self._last_frame_ts - first_ts) % (1 << 32)
                        if 0 < elapsed < WINDOW * 2000:
                            frame_rate = round((frames - 1) * 1000 / elapsed, 2)
                break
        return IngestReading(
            video_codec=self.video_codec, video_profile=self.video_profile,
            audio_codec=self.audio_codec, audio_profile=self.audio_profile,
            width=self.width, height=self.height, frame_rate=frame_rate,
            audio_sample_rate=self.audio_sample_rate, audio_channels=self.audio_channels,
            bitrate_kbps=_kbps(all_bytes, span), video_bitrate_kbps=_kbps(video_bytes, span),
            audio_bitrate_kbps=_kbps(all_bytes - video_bytes - other_bytes, span),
            minute_bitrate_kbps=self._minute_mean(bucket // BUCKETS_PER_SECOND),
            keyframe_interval=self.keyframe_interval,
            since_keyframe=None if self.last_keyframe_at is None else max(0.0, now - self.last_keyframe_at),
            since_video=max(0.0, now - (self.started if self.last_video is None else self.last_video)),
            since_audio=max(0.0, now - (self.started if self.last_audio is None else self.last_audio)),
            has_video=self.last_video is not None, has_audio=self.last_audio is not None,
            bytes_received=self.bytes_received, encoder=self.encoder, duration=max(0.0, now - self.started),
        )

    def _window_first_frame_ts(self, first: int, last: int) -> int | None:
        """The timestamp of the first video frame that arrived in buckets first..last."""
        buckets, first_frame_ts = self._buckets, self._first_frame_ts
        for bucket in range(first, last + 1):
            slot = bucket % _RING
            if buckets[slot][0] == bucket and first_frame_ts[slot] is not None:
                return first_frame_ts[slot]
        return None

    def _minute_mean(self, second: int) -> float | None:
        """The mean bitrate of the last minute (whole seconds before `second`), once at least 15 s of it were seen."""
        first = max(_bucket_of(self.started) // BUCKETS_PER_SECOND, second - MINUTE_BUCKETS)
        seconds = second - first
        if seconds < 15:
            return None
        return _kbps(self._bytes_at(second, second) - self._bytes_at(first, second), seconds)

    def _bytes_at(self, second: int, now: int) -> int:
        """bytes_received when `second` began: the snapshot of the first second from it to `now` that saw a tag."""
        ring = self._seconds
        for later in range(second, now + 1):
            snapshot = ring[later % _SECONDS_RING]
            if snapshot[0] == later:
                return snapshot[1]
        return self.bytes_received  # nothing arrived since `second` began

    def _video_header(self, payload: bytes) -> None:
        self.video_codec = _video_codec(payload)
        self.video_profile = None
        # Classic AVC: FrameType|CodecID, AVCPacketType, CompositionTime(3), then the
        # AVCDecoderConfigurationRecord: version, AVCProfileIndication, compatibility, level.
        # Enhanced (SequenceStart): byte 0 and the FourCC, then the same record. 5 bytes either way.
        offset = 5
        if self.video_codec == "h264" and len(payload) >= offset + 4:
            profile, level = payload[offset + 1], payload[offset + 3]
            name = _AVC_PROFILES.get(profile, f"profile {profile}")
            self.video_profile = f"{name}@{level // 10}.{level % 10}"

    def _audio_header(self, payload: bytes, is_header: bool) -> None:
        if not payload:
            return
        sound_format = payload[0] >> 4
        if sound_format == _EX_AUDIO:
            self.audio_codec = _AUDIO_FOURCCS.get(bytes(payload[1:5]), "unknown")
            return
        self.audio_codec = _AUDIO_CODECS.get(sound_format, f"format {sound_format}")
        self.audio_channels = 2 if payload[0] & 0x01 else 1
        self.audio_sample_rate = _FLV_RATES[(payload[0] >> 2) & 0x03]
        if sound_format == 10 and is_header and len(payload) >= 4:
            # AudioSpecificConfig: audioObjectType(5) samplingFrequencyIndex(4) channelConfiguration(4)
            config = int.from_bytes(payload[2:4], "big")
            object_type, rate_index, channels = config >> 11, (config >> 7) & 0x0F, (config >> 3) & 0x0F
            self.audio_profile = _AAC_OBJECTS.get(object_type, f"object {object_type}")
            if rate_index < len(_AAC_RATES):
                self.audio_sample_rate = _AAC_RATES[rate_index]
            if 0 < channels < 8:
                self.audio_channels = 8 if channels == 7 else channels


def _bucket_of(now: float) -> int:
    """The bucket holding `now`: b with b / BUCKETS_PER_SECOND <= now < (b + 1) / BUCKETS_PER_SECOND.

    Exactly the boundaries `observe` compares with (now * 10 may round across one).
    """
    bucket = math.floor(now * BUCKETS_PER_SECOND)
    if now < bucket / BUCKETS_PER_SECOND:
        return bucket - 1
    if now >= (bucket + 1) / BUCKETS_PER_SECOND:
        return bucket + 1
    return bucket


def _video_codec(payload: bytes) -> str | None:
    if not payload:
        return None
    first = payload[0]
    if first & 0x80:  # Enhanced RTMP: the FourCC follows byte 0
        return _VIDEO_FOURCCS.get(bytes(payload[1:5]), "unknown")
    return _VIDEO_CODECS.get(first & 0x0F, f"codec {first & 0x0F}")


def _positive_int(value: Any) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 100_000:
        return int(value)
    return None


def _kbps(size: int, seconds: float) -> float:
    return round(size * 8 / 1000 / seconds, 1) if seconds > 0 else 0.0
