"""What the publisher sends, measured: codecs, resolution, frame rate, bitrate, keyframe interval.

An `IngestMeter` is fed every tag of one publish session with the time it arrived
(`observe(tag, now)`), and the decoded onMetaData values (`metadata(values, now)`: the
AMF0 decoding happens in the glue, which may use rtmp/). `reading(now)` returns a frozen
`IngestReading`. Nothing here grows with the length of the show: the bitrate window
holds the last 5 s of tags, the minute's mean 60 one-second buckets.

Codec details come from the sequence headers (FLV spec E.4.2.1 and E.4.3.1; ISO
14496-15 5.3.3.1 AVCDecoderConfigurationRecord; ISO 14496-3 1.6.2.1
AudioSpecificConfig; Enhanced RTMP's FourCCs), resolution from onMetaData (encoders
send width and height there), frame rate from the video timestamps of the last 5 s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.flv import AUDIO, VIDEO, Tag

WINDOW = 5.0  # seconds: "bitrate over the last 5 s"
MINUTE_BUCKETS = 60  # one-second buckets: the last minute's mean

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
        # (arrival time, kind, bytes, stream timestamp) of the last WINDOW seconds
        self._window: deque[tuple[float, int, int, int]] = deque()
        # [second, bytes] of the last minute, oldest first
        self._minute: deque[list[int]] = deque(maxlen=MINUTE_BUCKETS)

    # -- input -------------------------------------------------------------------------

    def observe(self, tag: Tag, now: float) -> None:
        """One tag from the publisher, arrived at `now` (seconds, any monotonic clock)."""
        size = len(tag.payload)
        kind = tag.kind
        self.bytes_received += size
        self._window.append((now, kind, size, tag.timestamp))
        self._trim(now)
        second = int(now)
        minute = self._minute
        if minute and minute[-1][0] == second:
            minute[-1][1] += size
        else:
            minute.append([second, size])
        if kind == VIDEO:
            self.last_video = now
            if tag.is_header:
                self._video_header(tag.payload)
            else:
                self.video_frames += 1
                if tag.is_keyframe:
                    if self.last_keyframe_ts is not None:
                        self.keyframe_interval = ((tag.timestamp - self.last_keyframe_ts) % (1 << 32)) / 1000
                    self.last_keyframe_ts = tag.timestamp
                    self.last_keyframe_at = now
            if self.video_codec is None:
                self.video_codec = _video_codec(tag.payload)
        elif kind == AUDIO:
            self.last_audio = now
            if not tag.is_header:
                self.audio_frames += 1
            if tag.is_header or self.audio_codec is None:
                self._audio_header(tag.payload, tag.is_header)

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
        self._trim(now)
        span = min(WINDOW, max(1.0, now - self.started))
        totals = {AUDIO: 0, VIDEO: 0}
        all_bytes = 0
        video_ts: list[int] = []
        for _, kind, size, ts in self._window:
            all_bytes += size
            if kind in totals:
                totals[kind] += size
            if kind == VIDEO:
                video_ts.append(ts)
        frame_rate = self.meta_frame_rate
        if len(video_ts) >= 3:
            elapsed = (video_ts[-1] - video_ts[0]) % (1 << 32)
            if 0 < elapsed < WINDOW * 2000:
                frame_rate = round((len(video_ts) - 1) * 1000 / elapsed, 2)
        return IngestReading(
            video_codec=self.video_codec, video_profile=self.video_profile,
            audio_codec=self.audio_codec, audio_profile=self.audio_profile,
            width=self.width, height=self.height, frame_rate=frame_rate,
            audio_sample_rate=self.audio_sample_rate, audio_channels=self.audio_channels,
            bitrate_kbps=_kbps(all_bytes, span), video_bitrate_kbps=_kbps(totals[VIDEO], span),
            audio_bitrate_kbps=_kbps(totals[AUDIO], span), minute_bitrate_kbps=self._minute_mean(now),
            keyframe_interval=self.keyframe_interval,
            since_keyframe=None if self.last_keyframe_at is None else max(0.0, now - self.last_keyframe_at),
            since_video=max(0.0, now - (self.started if self.last_video is None else self.last_video)),
            since_audio=max(0.0, now - (self.started if self.last_audio is None else self.last_audio)),
            has_video=self.last_video is not None, has_audio=self.last_audio is not None,
            bytes_received=self.bytes_received, encoder=self.encoder, duration=max(0.0, now - self.started),
        )

    def _trim(self, now: float) -> None:
        window = self._window
        while window and window[0][0] <= now - WINDOW:
            window.popleft()

    def _minute_mean(self, now: float) -> float | None:
        """The mean bitrate of the last minute (whole seconds), once at least 15 s of it were seen."""
        first = max(int(self.started), int(now) - MINUTE_BUCKETS)
        seconds = int(now) - first
        if seconds < 15:
            return None
        total = sum(size for second, size in self._minute if first <= second < int(now))
        return _kbps(total, seconds)

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
