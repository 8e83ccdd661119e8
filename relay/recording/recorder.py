"""One publish session's recording: a hub subscriber whose file is written off the event loop.

The publisher's read path reaches the recorder only through `offer()`, which never
blocks: it maps the tag's timestamp onto the recording's timeline (the Timeline the
targets use, so a publisher that rejoins inside the reconnect window continues the same
file with timestamps that keep going forward), asks the pure FlvFileWriter for the bytes
(the payload itself is passed on, not copied) and queues them for the recording's own
writer thread. That queue is bounded in bytes (recording.max_buffer_bytes): a disk that
does not keep up fills it, and the recording stops with an error instead of growing
without end. A failing write (ENOSPC, EIO...) stops it the same way. Either way the
status becomes `errored`, one `recording_errored` line is logged, the recorder leaves
the hub, and the writer thread finishes what reached the disk (up to its last complete
tag) as a normal, playable file. The publisher and the targets never notice.

Statuses: `recording` while tags are written; `finalizing` from the end of the session
until the final file exists (for mp4, until the remux is done); `idle` after; `errored`
once something went wrong (it stays so until the next session's recorder replaces it).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from relay.config import RecordingConfig
from relay.fanout.hub import Hub
from relay.fanout.timeline import Timeline
from relay.flv import VIDEO, Tag
from relay.runtime.logs import get_logger
from relay.recording import files
from relay.recording.flvfile import FlvFileWriter, Patch
from relay.status import RecordingReady, RecordingSnapshot

IDLE = "idle"
RECORDING = "recording"
ERRORED = "errored"
FINALIZING = "finalizing"

SYNC_INTERVAL = 10.0  # seconds between two fdatasync of a file being written: what a power cut may lose

Opener = Callable[[str, float], tuple[int, str]]  # (folder, session start) -> (fd, path of the .part)
Write = Callable[[int, Sequence[bytes]], None]  # (fd, pieces): all of them, or OSError
ReadyCallback = Callable[[RecordingReady], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a recording's file ended."""

    path: str | None  # the final file; None if discarded, or left as `.part` (see error)
    size: int
    duration_ms: int
    complete: bool  # False: cut short by a disk error (what reached the disk is kept)
    discarded: bool = False  # no media frame arrived: the file was removed
    error: str | None = None  # finishing failed: the `.part` waits for the next start


def describe(exc: OSError) -> str:
    """An OSError in words, without the file name (the log line carries the path)."""
    return exc.strerror or type(exc).__name__


class WriterThread:
    """Owns one recording file: takes whole tags through a queue bounded in bytes, writes them in order."""

    def __init__(self, folder: str, started_at: float, max_buffer_bytes: int, *, remux_marker: bool,
                 on_open: Callable[[str], None], on_error: Callable[[str], None],
                 opener: Opener = files.open_part, write: Write = files.write_pieces) -> None:
        self.folder = folder
        self.started_at = started_at
        self.max_buffer_bytes = max_buffer_bytes
        self.remux_marker = remux_marker
        self.queued = 0  # bytes waiting for the disk
        self.written = 0  # bytes on disk
        self._loop = asyncio.get_running_loop()
        self.done: asyncio.Future[Outcome] = self._loop.create_future()
        self._on_open = on_open
        self._on_error = on_error
        self._opener = opener
        self._write_pieces = write
        self._cond = threading.Condition()
        self._items: deque[tuple[list[bytes], int]] = deque()
        self._finish: tuple[list[Patch], bool, int] | None = None  # patches, discard, duration_ms
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="recording writer", daemon=True)

    def start(self) -> None:
        """Start the thread (it creates the file first)."""
        self._thread.start()

    def submit(self, pieces: list[bytes], size: int) -> bool:
        """Queue whole tags; False if that would pass the bound (an empty queue takes any one item)."""
        with self._cond:
            if self.queued and self.queued + size > self.max_buffer_bytes:
                return False
            self._items.append((pieces, size))
            self.queued += size
            self._cond.notify()
        return True

    def finish(self, patches: list[Patch], *, discard: bool, duration_ms: int) -> None:
        """Write what is queued, then patch, fsync and rename the file (or remove it, with `discard`)."""
        with self._cond:
            self._finish = (patches, discard, duration_ms)
            self._cond.notify()

    def abandon(self) -> None:
        """Drop what is queued and finish the file as it is on disk (after an error)."""
        with self._cond:
            self._abandoned = True
            self._items.clear()
            self.queued = 0
            self._cond.notify()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._record()
        except Exception as exc:  # a bug: say so in the log, and let the session end normally
            message = f"the recording's writer failed: {exc!r}"
            self._tell(self._on_error, message)
            self._resolve(Outcome(None, 0, 0, complete=False, error=message))

    def _record(self) -> None:
        try:
            fd, path = self._opener(self.folder, self.started_at)
        except OSError as exc:
            message = f"cannot create the recording file: {describe(exc)}"
            self._tell(self._on_error, message)
            self._resolve(Outcome(None, 0, 0, complete=False, error=message))
            return
        self._tell(self._on_open, path)
        try:
            try:
                outcome = self._write(fd, path)
            except OSError as exc:
                self._tell(self._on_error, f"write failed: {describe(exc)}")
                outcome = self._salvage(fd, path)
        finally:
            _close_quietly(fd)
        self._resolve(outcome)

    def _write(self, fd: int, path: str) -> Outcome:
        synced = time.monotonic()
        while True:
            with self._cond:
                while not self._items and self._finish is None and not self._abandoned:
                    self._cond.wait()
                if self._abandoned:
                    break
                batch = list(self._items)
                self._items.clear()
                finish = self._finish
            if batch:
                self._write_pieces(fd, [piece for pieces, _ in batch for piece in pieces])
                size = sum(n for _, n in batch)
                with self._cond:
                    if not self._abandoned:
                        self.queued -= size
                    self.written += size
                if time.monotonic() - synced >= SYNC_INTERVAL:
                    os.fdatasync(fd)
                    synced = time.monotonic()
                continue
            if finish is not None:
                patches, discard, duration_ms = finish
                if discard:
                    os.unlink(path)
                    return Outcome(None, 0, 0, complete=True, discarded=True)
                final = files.finish(fd, path, patches, remux_marker=self.remux_marker)
                return Outcome(final, self.written, duration_ms, complete=True)
        return self._salvage(fd, path)

    def _salvage(self, fd: int, path: str) -> Outcome:
        """Finish the file up to its last complete tag; on failure it stays a `.part` for the next start."""
        try:
            found = files.salvage(fd, path, remux_marker=self.remux_marker)
        except OSError as exc:
            return Outcome(None, 0, 0, complete=False, error=f"could not finish the file: {describe(exc)}")
        if found.path is None:
            return Outcome(None, 0, 0, complete=False, discarded=True)
        return Outcome(found.path, found.size, found.duration_ms, complete=False)

    def _tell(self, callback: Callable[[str], None], message: str) -> None:
        files.call_soon_threadsafe(self._loop, callback, message)

    def _resolve(self, outcome: Outcome) -> None:
        files.call_soon_threadsafe(self._loop, _settle, self.done, outcome)


def _settle(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class Recorder:
    """The recording of one publish session of a live stream (a hub subscriber)."""

    def __init__(self, live_stream: str, config: RecordingConfig, max_buffer_bytes: int, *,
                 clock: Callable[[], float] = time.time,
                 opener: Opener = files.open_part, write: Write = files.write_pieces) -> None:
        self.live_stream = live_stream
        self.config = config
        self.max_buffer_bytes = max_buffer_bytes
        # Called (by Recordings) once this session's file is final: RecordingReady (path, duration,
        # size...); for mp4, once the MP4 is checked (or the FLV kept).
        self.on_ready: list[ReadyCallback] = []
        self.status = IDLE
        self.path: str | None = None
        self.started_at: float | None = None
        self.last_error: str | None = None
        self.final_size: int | None = None
        self.log = get_logger(live_stream=live_stream)
        self._clock = clock
        self._opener = opener  # the file system, replaceable by tests (a disk that fails)
        self._write = write
        self._file = FlvFileWriter()
        self._timeline = Timeline()
        self._await_keyframe = True  # video before the first keyframe could not be decoded
        self._writer: WriterThread | None = None
        self._hub: Hub[Any] | None = None

    @property
    def folder(self) -> str:
        """Where this live stream's recordings go."""
        return os.path.join(self.config.dir, self.live_stream)

    @property
    def done(self) -> asyncio.Future[Outcome]:
        """Resolves when the file is final (or discarded, or left as `.part` after a failure)."""
        assert self._writer is not None, "start() first"
        return self._writer.done

    def start(self, hub: Hub[Any]) -> None:
        """Begin the session's file and take the live stream's tags."""
        self.started_at = self._clock()
        self.status = RECORDING
        self._writer = WriterThread(self.folder, self.started_at, self.max_buffer_bytes,
                                    remux_marker=self.config.format == "mp4", on_open=self._opened,
                                    on_error=self._fail, opener=self._opener, write=self._write)
        self._writer.start()
        self._hub = hub
        for tag in hub.join(self):
            self.offer(tag)

    def offer(self, tag: Tag) -> None:
        """One tag of the live stream (never blocks)."""
        if self.status != RECORDING:
            return
        if tag.kind == VIDEO and self._await_keyframe and not tag.is_header:
            if not tag.is_keyframe:
                return
            self._await_keyframe = False
        pieces = self._file.add(tag, self._timeline.map(tag))
        if not pieces:
            return
        writer = self._writer
        assert writer is not None
        if not writer.submit(pieces, sum(len(p) for p in pieces)):
            self._fail(f"the disk is not keeping up: {writer.queued} bytes waiting to be written "
                       f"(recording.max_buffer_bytes)")

    def resync(self, gap_ms: int) -> None:
        """The publisher came back within the reconnect window: the same file goes on, `gap_ms` later."""
        self._timeline.discontinuity(gap_ms)
        self._await_keyframe = True

    def stop(self) -> None:
        """The publish session ended: finish the file in the background (see `done`)."""
        self._leave()
        if self.status != RECORDING or self._writer is None:
            return
        self.status = FINALIZING
        self._writer.finish(self._file.patches(), discard=self._file.frames == 0,
                            duration_ms=self._file.clock.duration_ms)

    def settled(self, path: str | None, size: int | None) -> None:
        """The recording's final file is in place (after a remux, the MP4): status idle."""
        if path is not None:
            self.path = path
            self.final_size = size
        if self.status == FINALIZING:
            self.status = IDLE

    def snapshot(self) -> RecordingSnapshot:
        """The recording at this moment."""
        if self.final_size is not None:
            size = self.final_size
        else:
            size = self._writer.written if self._writer is not None else 0
        return RecordingSnapshot(status=self.status, path=self.path, bytes=size, started_at=self.started_at,
                                 last_error=self.last_error)

    def _opened(self, path: str) -> None:
        self.path = path
        self.log.info("recording_started", path=path, format=self.config.format)

    def _fail(self, message: str) -> None:
        """Stop recording with an error (once): status errored, one log line, leave the hub.

        The writer drops what is still queued and finishes what reached the disk.
        """
        if self.status not in (RECORDING, FINALIZING) or self.last_error is not None:
            return
        self.status = ERRORED
        self.last_error = message
        writer = self._writer
        written = writer.written if writer is not None else 0
        if writer is not None:
            writer.abandon()
        self.log.error("recording_errored", path=self.path, error=message, bytes=written,
                       effect="recording stopped; the publisher and the targets carry on")
        self._leave()

    def _leave(self) -> None:
        if self._hub is not None:
            self._hub.leave(self)
            self._hub = None
