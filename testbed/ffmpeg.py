"""ffmpeg as a real RTMP publisher and as a one-shot RTMP server (`-listen 1`)."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from testbed.ports import free_port, is_listening, wait_until

_FFMPEG = ("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning")


def publish_args(url: str, flv: Path, *, realtime: bool = True, progress: Path | None = None) -> list[str]:
    """The ffmpeg command line that publishes an FLV file to `url` unchanged (`-c copy`).

    With `progress`, ffmpeg reports how far it got to that file (read it with `published_seconds`).
    """
    pace = ["-re"] if realtime else []
    report = ["-progress", str(progress)] if progress is not None else []
    return [*_FFMPEG, *report, *pace, "-i", str(flv), "-c", "copy", "-f", "flv", url]


def published_seconds(progress: Path) -> float:
    """How much of its input an ffmpeg started with `-progress FILE` has written out, in seconds (0 before
    its first report). ffmpeg appends a report about every 0.5 s."""
    try:
        text = progress.read_text()
    except FileNotFoundError:
        return 0.0
    done = re.findall(r"^out_time_us=(\d+)$", text, re.MULTILINE)
    return int(done[-1]) / 1e6 if done else 0.0


class FfmpegProcess:
    """A background ffmpeg whose stderr goes to a temp file, so a chatty run never blocks on a pipe."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = list(args)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr
        )

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def stderr_text(self) -> str:
        """Everything ffmpeg has written to stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def wait(self, timeout: float) -> int:
        """Wait for ffmpeg to exit; raise TimeoutError (with its stderr) after `timeout` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"ffmpeg still running after {timeout:g} s: {self._describe()}") from None

    def check(self, timeout: float) -> None:
        """Wait for ffmpeg to exit and fail with its stderr unless it exited 0."""
        if (code := self.wait(timeout)) != 0:
            raise AssertionError(f"ffmpeg exited {code}: {self._describe()}")

    async def wait_async(self, timeout: float) -> int:
        """`wait` without blocking the event loop (the blocking wait runs in a thread)."""
        return await asyncio.to_thread(self.wait, timeout)

    async def check_async(self, timeout: float) -> None:
        """`check` without blocking the event loop."""
        await asyncio.to_thread(self.check, timeout)

    def interrupt(self) -> None:
        """SIGINT, as Ctrl-C: ffmpeg stops reading, finishes its output and closes it cleanly (a
        publisher sends FCUnpublish and deleteStream, as OBS's "Stop Streaming" does), then exits 255."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate if still running (SIGTERM lets ffmpeg write its trailer), kill after `timeout`."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _describe(self) -> str:
        return f"{' '.join(self.args)}\n--- stderr ---\n{self.stderr_text()}"


def start_publish(url: str, flv: Path, *, realtime: bool = True, progress: Path | None = None) -> FfmpegProcess:
    """Start publishing `flv` to `url` in the background; `await p.check_async(t)` or `p.check(t)` to finish."""
    return FfmpegProcess(publish_args(url, flv, realtime=realtime, progress=progress))


def publish_with_ffmpeg(url: str, flv: Path, *, realtime: bool = True, timeout: float = 60.0) -> FfmpegProcess:
    """Publish `flv` to `url` and wait for ffmpeg to finish; fail unless it exits 0."""
    pub = start_publish(url, flv, realtime=realtime)
    try:
        pub.check(timeout)
    finally:
        pub.stop()
    return pub


class FfmpegListener(FfmpegProcess):
    """`ffmpeg -listen 1`: a one-shot RTMP server that accepts exactly one publisher and writes what it got to FLV.

    Readiness is read from /proc/net/tcp: a probe connection would be taken for the publisher.

    Lossy at the end if the publisher outruns it and then closes abruptly: the publisher's
    close() with our unread Acknowledgements (sent every ~1 MiB) in its buffer makes the
    kernel send RST, ffmpeg's next Acknowledgement write fails (ECONNRESET), and ffmpeg
    ends its input there, exit status 0, dropping what it had not read yet. Pace the
    publisher (`-re`), or have it half-close and drain before closing.
    """

    def __init__(
        self, output: Path, *, app: str = "live", stream_key: str = "test-key", port: int | None = None
    ) -> None:
        self.port = port if port is not None else free_port()
        self.app = app
        self.stream_key = stream_key
        self.output = output
        super().__init__([*_FFMPEG, "-y", "-listen", "1", "-i", self.url, "-c", "copy", "-f", "flv", str(output)])

    @property
    def url(self) -> str:
        """The URL a publisher pushes to: rtmp://127.0.0.1:PORT/APP/KEY."""
        return f"rtmp://127.0.0.1:{self.port}/{self.app}/{self.stream_key}"

    def wait_listening(self, timeout: float = 10.0) -> None:
        """Wait until the port is in LISTEN state; fail at once if ffmpeg exits first."""
        wait_until(
            lambda: is_listening(self.port),
            timeout,
            f"ffmpeg to listen on {self.port}",
            abort=lambda: None if self.proc.poll() is None else f"ffmpeg exited: {self._describe()}",
        )
