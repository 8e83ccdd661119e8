"""MP4 from a finished FLV: ffmpeg remuxes it (`-c copy -movflags +faststart`), ffprobe checks it.

Both run as asyncio subprocesses, so the relay's loop never waits on them. ffmpeg writes
`<stem>.mp4.part` (the marker the recording's finish left there, which also tells the
next start that a remux was interrupted). Only when ffprobe reads the MP4 back with the
FLV's duration (within DURATION_TOLERANCE) is the MP4 fsynced, renamed to `<stem>.mp4`
and the FLV deleted; on any failure the `.mp4.part` goes and the FLV stays, the final
recording. A remux cancelled (the relay stopping) kills ffmpeg and leaves the marker:
the next start remuxes that FLV again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import dataclass

from relay.errors import RelayError
from relay.recording import files
from relay.recording import names

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
DURATION_TOLERANCE = 1.0  # seconds, or 1 % of the duration if that is more
PROBE_TIMEOUT = 60.0
_STDERR_TAIL = 2048
_STDOUT_CAP = 65536


class RemuxError(RelayError):
    """The MP4 could not be made or did not check out; the FLV is kept."""


@dataclass(frozen=True, slots=True)
class Remuxed:
    """The MP4 that replaced an FLV."""

    path: str
    duration: float  # seconds, as ffprobe reads it
    size: int


def mp4_paths(flv_path: str) -> tuple[str, str]:
    """(`<stem>.mp4.part`, the marker of a remux still to do, and `<stem>.mp4`) for `<stem>.flv`."""
    stem = flv_path[: -len(names.FLV)]
    return stem + names.MP4 + names.PART, stem + names.MP4


async def remux(flv_path: str, expected_duration: float | None = None) -> Remuxed:
    """Make `<stem>.mp4` from `<stem>.flv`, check it, delete the FLV; RemuxError if anything fails.

    ffmpeg writes into a folder of its own, made for this remux (mkdtemp: new, private, so
    nothing can be planted in it): ffmpeg follows links and truncates, and a link planted
    at `<stem>.mp4.part` would otherwise have it overwrite what the link points to.
    """
    marker, final = mp4_paths(flv_path)
    try:
        workdir = await files.run_blocking(tempfile.mkdtemp, "", names.REMUX_DIR_PREFIX,
                                           os.path.dirname(flv_path) or ".", name="recording remux")
    except OSError as exc:
        raise RemuxError(f"cannot make the remux's folder: {exc.strerror or exc}") from None
    part = os.path.join(workdir, "out" + names.MP4)
    try:
        if shutil.which(FFPROBE) is None:
            raise RemuxError("ffprobe is not on PATH, so the MP4 could not be checked")
        if expected_duration is None:
            expected_duration = await probe_duration(flv_path)
        code, _, errors = await _run(
            [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", flv_path,
             "-c", "copy", "-movflags", "+faststart", "-f", "mp4", part],
            # Copying runs at disk speed, hundreds of times real time: this only catches a hang.
            timeout=120.0 + expected_duration / 4,
        )
        if code != 0:
            raise RemuxError(f"ffmpeg exited with status {code}: {errors or 'no message'}")
        duration = await probe_duration(part)
        if abs(duration - expected_duration) > max(DURATION_TOLERANCE, expected_duration / 100):
            raise RemuxError(f"the MP4 lasts {duration:.3f} s, the FLV {expected_duration:.3f} s")
        try:
            size = await files.run_blocking(_commit, part, final, flv_path, marker, name="recording remux")
        except OSError as exc:
            raise RemuxError(f"cannot put the MP4 in place: {exc.strerror or exc}") from None
    except RemuxError:
        await files.run_blocking(_remove, marker, name="recording remux")
        raise
    finally:
        await files.run_blocking(shutil.rmtree, workdir, True, name="recording remux")
    return Remuxed(final, duration, size)


async def probe_duration(path: str) -> float:
    """The container duration ffprobe reads, in seconds."""
    code, out, errors = await _run(
        [FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "default=noprint_wrappers=1:nokey=1",
         path],
        timeout=PROBE_TIMEOUT,
    )
    text = out.decode(errors="replace").strip()
    if code != 0:
        raise RemuxError(f"ffprobe cannot read {os.path.basename(path)}: {errors or f'status {code}'}")
    try:
        return float(text)
    except ValueError:
        raise RemuxError(f"ffprobe finds no duration in {os.path.basename(path)} ({text[:40]!r})") from None


async def _run(args: list[str], timeout: float) -> tuple[int, bytes, str]:
    """Run a tool: (exit status, its stdout up to a cap, the end of its stderr). Killed on timeout or cancel."""
    try:
        proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise RemuxError(f"cannot run {args[0]}: {exc.strerror or exc}") from None
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(timeout):
            out, err = await asyncio.gather(_read(proc.stdout, keep_head=_STDOUT_CAP),
                                            _read(proc.stderr, keep_tail=_STDERR_TAIL))
            code = await proc.wait()
    except TimeoutError:
        await _kill(proc)
        raise RemuxError(f"{args[0]} still running after {timeout:.0f} s") from None
    except BaseException:
        await _kill(proc)  # cancelled: no orphan ffmpeg
        raise
    lines = err.decode(errors="replace").strip().splitlines()
    return code, out, lines[-1] if lines else ""


async def _read(stream: asyncio.StreamReader, *, keep_head: int = 0, keep_tail: int = 0) -> bytes:
    """Drain a pipe, keeping only its first or last bytes (a chatty tool never costs memory)."""
    kept = b""
    while chunk := await stream.read(65536):
        if keep_head:
            if len(kept) < keep_head:
                kept = (kept + chunk)[:keep_head]
        else:
            kept = (kept + chunk)[-keep_tail:]
    return kept


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        await proc.wait()


def _commit(part: str, final: str, flv_path: str, marker: str) -> int:
    """The checked MP4 takes its final name (a link there is replaced, not followed), durably,
    then the FLV and the remux marker go; the MP4's size."""
    fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    folder = os.path.dirname(final)
    os.rename(part, final)
    files.fsync_dir(folder)
    os.unlink(flv_path)
    _remove(marker)
    files.fsync_dir(folder)
    return size


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
