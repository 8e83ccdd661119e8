"""The settings a live stream's slate must match, from what its ingest meter measured.

Pure: the reading (relay/live/meter.py) and the config in, SlateSettings (relay/slate/) or
the reason there can be none out.
"""

from __future__ import annotations

from relay.config import SlateConfig
from relay.live.meter import IngestReading
from relay.slate.settings import SlateSettings, frame_rate


def slate_settings(reading: IngestReading, name: str, config: SlateConfig) -> SlateSettings | str:
    """What the slate of this stream is made with, or why it cannot have one (in words)."""
    if reading.video_codec is None:
        return "the stream has no video"
    if reading.width is None or reading.height is None:
        return "the stream's size is unknown (its onMetaData has no width and height)"
    audio = reading.audio_codec
    return SlateSettings(
        video_codec=reading.video_codec, width=reading.width, height=reading.height,
        frame_rate=frame_rate(reading.frame_rate), audio_codec=audio,
        sample_rate=reading.audio_sample_rate if audio is not None else None,
        channels=reading.audio_channels if audio is not None else None,
        title=name, image=config.image,
    )
