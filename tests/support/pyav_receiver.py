"""An RTMP server that is not ours: FFmpeg's own (`-listen 1`), through PyAV's bundled libraries.

PyAV's wheels carry FFmpeg 7 or later, whose RTMP server and FLV demuxer read Enhanced RTMP
(HEVC, AV1, VP9 in FourCC video tags); Debian 12's ffmpeg (5.1) does not. A relay target
pointed at `url()` publishes to it; every video frame it receives is decoded in the
receiver's thread, so a bug shared by the relay's client and its own ServerConnection
cannot pass unseen.
"""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass, field
from types import TracebackType

import av

from testbed.ports import free_port, is_listening, wait_until


@dataclass
class Received:
    """What FFmpeg made of the publish: its codecs, the decoded video frames and their size."""

    video_codec: str | None = None
    audio_codec: str | None = None
    video_frames: int = 0
    audio_frames: int = 0
    sizes: set[tuple[int, int]] = field(default_factory=set)
    error: str | None = None


class PyavReceiver:
    """One publish, received and decoded by FFmpeg's RTMP server in a thread."""

    def __init__(self, app: str, stream_name: str, timeout: float = 60.0) -> None:
        self.port = free_port()
        self.app = app
        self.stream_name = stream_name
        self.timeout = timeout
        self.received = Received()
        self.ffmpeg_version = av.ffmpeg_version_info
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pyav-receiver", daemon=True)

    def url(self) -> str:
        """The target's url (the relay appends `/stream_key`)."""
        return f"rtmp://127.0.0.1:{self.port}/{self.app}"

    def __enter__(self) -> PyavReceiver:
        self._thread.start()
        wait_until(lambda: is_listening(self.port) or self._done.is_set(), 10, "FFmpeg's RTMP server to listen")
        if self.received.error is not None:
            raise RuntimeError(f"FFmpeg's RTMP server did not start: {self.received.error}")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._thread.join(self.timeout)

    def wait(self, timeout: float = 60.0) -> Received:
        """Wait until the publish ended and every frame was decoded; what was received."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"FFmpeg's RTMP server was still receiving after {timeout:g} s")
        return self.received

    def _count(self, frames: list[av.AudioFrame | av.VideoFrame] | list[av.VideoFrame] | list[av.AudioFrame]
               ) -> None:
        for frame in frames:
            if isinstance(frame, av.VideoFrame):
                self.received.video_frames += 1
                self.received.sizes.add((frame.width, frame.height))
            else:
                self.received.audio_frames += 1

    def _run(self) -> None:
        got = self.received
        try:
            url = f"rtmp://127.0.0.1:{self.port}/{self.app}/{self.stream_name}"
            with av.open(url, options={"listen": "1"}, timeout=self.timeout) as container:
                video = container.streams.video[0] if container.streams.video else None
                audio = container.streams.audio[0] if container.streams.audio else None
                got.video_codec = video.codec_context.name if video is not None else None
                got.audio_codec = audio.codec_context.name if audio is not None else None
                streams = [s for s in (video, audio) if s is not None]
                try:
                    for packet in container.demux(*streams):
                        self._count(packet.decode())
                except OSError as exc:
                    # FFmpeg's RTMP server says EIO when the publisher closes the connection
                    # after its deleteStream: the end of the publish, once something came.
                    if exc.errno != errno.EIO or got.video_frames + got.audio_frames == 0:
                        raise
                for stream in streams:  # the frames still in the decoders (HEVC reorders pictures)
                    self._count(stream.codec_context.decode(None))
        except Exception as exc:  # reported to the test by wait()'s caller
            got.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._done.set()
