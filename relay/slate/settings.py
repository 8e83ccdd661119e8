"""What a slate clip must match, and the ffmpeg command that makes it.

A platform takes a change of sequence headers mid-broadcast (an encoder that changes
settings sends new ones), but a viewer's player copes best when the size, frame rate and
audio format stay: so the clip is made for the stream's own video codec (H.264, or HEVC
where ffmpeg has libx265 and can write it in FLV), size and frame rate, and silent audio in
its codec (AAC), sample rate and channels. A keyframe every 2 s, as platforms ask; no
B-frames, so each frame's timestamp is its decoding and display time and a loop of the
clip is a loop of whole GOPs.

Pure: the command is built here; running it is studio.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

CLIP_SECONDS = 2  # one GOP at the 2 s keyframe interval platforms ask for
KEYFRAME_SECONDS = 2
AUDIO_KBPS = 128
VIDEO_ENCODERS = {"h264": "libx264", "hevc": "libx265"}
AUDIO_ENCODERS = {"aac": "aac"}
CHANNEL_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}
MAX_SIDE = 8192
BACKGROUND = "0x1b2838"  # the built-in card's colour: a dark slate blue
WE_LL_BE_RIGHT_BACK = "We'll be right back"


@dataclass(frozen=True, slots=True)
class SlateSettings:
    """Everything a slate clip is made from: equal settings make the same clip (the cache's key)."""

    video_codec: str  # "h264" | "hevc"
    width: int
    height: int
    frame_rate: Fraction
    audio_codec: str | None  # "aac", or None: a stream without audio gets a slate without audio
    sample_rate: int | None
    channels: int | None
    title: str  # the live stream's name, drawn on the built-in card
    image: str | None  # a PNG or JPEG path, or None for the built-in card
    image_stamp: tuple[int, int] | None = None  # the image's (mtime_ns, size): a changed file is a new clip

    @property
    def frames(self) -> int:
        """Video frames in the clip."""
        return max(1, round(self.frame_rate * CLIP_SECONDS))

    @property
    def period_ms(self) -> int:
        """The clip's length on the timeline: its frames at the frame rate."""
        return round(Fraction(self.frames * 1000) / self.frame_rate)


def unsupported(settings: SlateSettings) -> str | None:
    """Why no slate can be made for these settings (in words), or None."""
    if settings.video_codec not in VIDEO_ENCODERS:
        return f"the stream's video codec ({settings.video_codec}) is not H.264 or HEVC"
    if not (16 <= settings.width <= MAX_SIDE and 16 <= settings.height <= MAX_SIDE):
        return f"the stream's size ({settings.width}x{settings.height}) is out of range"
    if settings.width % 2 or settings.height % 2:
        return f"the stream's size ({settings.width}x{settings.height}) is odd"
    if not 1 <= settings.frame_rate <= 240:
        return f"the stream's frame rate ({float(settings.frame_rate):g}) is out of range"
    if settings.audio_codec is not None:
        if settings.audio_codec not in AUDIO_ENCODERS:
            return f"the stream's audio codec ({settings.audio_codec}) is not AAC"
        if settings.channels not in CHANNEL_LAYOUTS:
            return f"the stream's audio has {settings.channels} channels (1, 2 or 6 are made)"
        if settings.sample_rate is None or not 8000 <= settings.sample_rate <= 96000:
            return "the stream's audio sample rate is unknown"
    return None


def frame_rate(measured: float | None) -> Fraction:
    """A frame rate as ffmpeg takes it: 29.97 is 30000/1001; unknown is 30."""
    if measured is None or measured <= 0:
        return Fraction(30)
    for base in (24, 30, 60, 120):
        ntsc = Fraction(base * 1000, 1001)
        if abs(measured - float(ntsc)) < 0.01:
            return ntsc
    return Fraction(round(measured * 100), 100).limit_denominator(1001)


def ffmpeg_command(settings: SlateSettings, output: str, *, ffmpeg: str = "ffmpeg", font: str | None = None,
                   title_file: str | None = None, message_file: str | None = None) -> list[str]:
    """The ffmpeg command that writes the slate clip as FLV to `output`.

    The built-in card draws its texts from files (`title_file`, `message_file`): drawtext
    reads them as they are, so a live stream's name needs no escaping. Without a `font`,
    the card has no text.
    """
    size = f"{settings.width}x{settings.height}"
    rate = f"{settings.frame_rate.numerator}/{settings.frame_rate.denominator}"
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if settings.image is not None:
        command += ["-loop", "1", "-framerate", rate, "-i", settings.image]
        w, h = settings.width, settings.height
        video_filter = (f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
                        f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1")
    else:
        command += ["-f", "lavfi", "-i", f"color=c={BACKGROUND}:s={size}:r={rate}"]
        video_filter = _card_text(font, title_file, message_file)
    video_filter = f"{video_filter},format=yuv420p" if video_filter else "format=yuv420p"
    if settings.audio_codec is not None:
        layout = CHANNEL_LAYOUTS[settings.channels or 2]
        command += ["-f", "lavfi", "-i", f"anullsrc=r={settings.sample_rate}:cl={layout}"]
    gop = max(1, round(settings.frame_rate * KEYFRAME_SECONDS))
    # -t for both tracks: with -frames:v, ffmpeg 5.1 ends the audio early too.
    command += ["-map", "0:v", "-vf", video_filter, "-r", rate, "-t", f"{settings.period_ms / 1000:.3f}"]
    if settings.video_codec == "h264":
        command += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-bf", "0",
                    "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
                    "-x264-params", "repeat-headers=1:sps-id=1"]
    else:
        command += ["-c:v", "libx265", "-preset", "veryfast", "-tag:v", "hvc1",
                    "-x265-params", f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:log-level=error"]
    if settings.audio_codec is not None:
        command += ["-map", "1:a", "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ar", str(settings.sample_rate),
                    "-ac", str(settings.channels)]
    command += ["-f", "flv", output]
    return command


def _card_text(font: str | None, title_file: str | None, message_file: str | None) -> str:
    if font is None or title_file is None or message_file is None:
        return ""
    common = f"fontfile={font}:expansion=none:x=(w-text_w)/2"
    return (f"drawtext={common}:textfile={title_file}:fontsize=h/12:fontcolor=white:y=h/2-text_h-h/30,"
            f"drawtext={common}:textfile={message_file}:fontsize=h/20:fontcolor=0xc8d3df:y=h/2+h/30")
