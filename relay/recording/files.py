"""The recordings' blocking file operations, and a way to run them without blocking the loop.

Everything here may block on a slow or broken disk, so it only ever runs in a thread:
the recording's own writer thread (recorder.py), or a daemon thread started by
`run_blocking` (recovery, retention, the renames around a remux). Daemon threads, not
the loop's default executor: a thread stuck on a dead disk must never hold up the
relay's exit (the default executor is joined at exit, a daemon thread is not).

Nothing here follows a symbolic link where it writes, truncates or creates: a link
planted in the recordings folder (by anyone who can write there) must never make the
relay truncate or overwrite the file it points to. Existing files are opened with
O_NOFOLLOW, new ones with O_EXCL as well, and a rename or unlink replaces or removes a
link itself, never its target.

A file under its final name is always complete: it gets its patches, then fsync, then
the atomic rename from `.part`, then an fsync of the folder so the rename survives a
power cut. A recording being written holds an exclusive flock, so that a second relay
started on the same folder by mistake never "recovers" a file still being written.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from relay.flv import FLVError
from relay.recording import names, recovery
from relay.recording.flvfile import FILE_START, Patch
from relay.recording.retention import FileInfo, RetentionPolicy, expired

T = TypeVar("T")

_IOV_MAX = 1024  # writev's limit on Linux (sysconf IOV_MAX)
FILE_MODE = 0o640  # the unit's UMask narrows it further
DIR_MODE = 0o750


async def run_blocking(fn: Callable[..., T], *args: object, name: str = "recording io") -> T:
    """Run `fn(*args)` in a new daemon thread and await its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, exc: BaseException | None) -> None:
        if future.done():
            return  # the awaiting task was cancelled
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result, exc = fn(*args), None
        except BaseException as error:  # handed to the awaiting task, which re-raises it
            result, exc = None, error
        call_soon_threadsafe(loop, settle, result, exc)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await future


def call_soon_threadsafe(loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: object) -> None:
    """Hand a result back to the loop from a thread; nothing to do if the loop has closed meanwhile."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        pass  # the relay is exiting: nobody is waiting any more


# --- the file being written ----------------------------------------------------------------

def open_part(folder: str, started_at: float) -> tuple[int, str]:
    """Create `<folder>/<stem>.flv.part` for a session (the folder too), locked; (fd, path)."""
    os.makedirs(folder, mode=DIR_MODE, exist_ok=True)
    taken = set(os.listdir(folder))
    while True:
        stem = names.unique_stem(started_at, taken)
        path = os.path.join(folder, stem + names.FLV + names.PART)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        except FileExistsError:
            taken.add(os.path.basename(path))
            continue
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd, path


def write_pieces(fd: int, pieces: Sequence[bytes]) -> None:
    """Write every piece, in order, with as few system calls as writev allows."""
    start = 0
    while start < len(pieces):
        batch = pieces[start : start + _IOV_MAX]
        start += len(batch)
        total = sum(len(p) for p in batch)
        done = os.writev(fd, batch)
        while done < total:  # a short write: go on from where it stopped
            rest: list[bytes | memoryview] = []
            skip = done
            for piece in batch:
                if skip >= len(piece):
                    skip -= len(piece)
                    continue
                rest.append(memoryview(piece)[skip:] if skip else piece)
                skip = 0
            written = os.writev(fd, rest)
            if written == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += written


_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def create_marker(path: str) -> None:
    """An empty file at `path` (kept if one is there); a link found there is removed, not followed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | _NOFOLLOW, FILE_MODE)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        os.unlink(path)  # a symbolic link: remove the link and make the file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, FILE_MODE)
    os.close(fd)


def final_path(part_path: str) -> str:
    """`X.flv.part` -> `X.flv`."""
    return part_path[: -len(names.PART)]


def finish(fd: int, part_path: str, patches: Iterable[Patch], *, remux_marker: bool = False) -> str:
    """Patch, fsync, rename `.part` to its final name, fsync the folder; the final path (`fd` stays open).

    With `remux_marker`, an empty `<stem>.mp4.part` is created before the rename: it says
    "this FLV still has to be remuxed", so a relay that stops before the remux is done
    (or dies during it) finds the job at its next start.
    """
    for patch in patches:
        os.pwrite(fd, patch.data, patch.offset)
    os.fsync(fd)
    path = final_path(part_path)
    if remux_marker:
        create_marker(path[: -len(names.FLV)] + names.MP4 + names.PART)
    os.rename(part_path, path)
    fsync_dir(os.path.dirname(path))
    return path


def fsync_dir(folder: str) -> None:
    """Make renames and deletions in a folder durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- recovery ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Recovered:
    """What became of one leftover `.part`."""

    part_path: str
    path: str | None  # the final file, None if it was removed or left alone
    action: str  # finalised | removed_empty | in_use | name_taken | not_flv
    size: int  # bytes kept
    torn_bytes: int  # bytes cut off the end
    duration_ms: int


def salvage(fd: int, part_path: str, *, remux_marker: bool = False) -> Recovered:
    """Finish an open `.part` up to its last complete tag (a crash's leftover, or a write error's)."""
    size = os.fstat(fd).st_size
    if size < FILE_START:  # not even the FLV header: nothing was recorded
        os.unlink(part_path)
        return Recovered(part_path, None, "removed_empty", 0, size, 0)
    try:
        found = recovery.scan(lambda offset, n: os.pread(fd, n, offset), size)
    except FLVError:
        return Recovered(part_path, None, "not_flv", size, 0, 0)
    if found.frames == 0:
        os.unlink(part_path)
        return Recovered(part_path, None, "removed_empty", 0, size, 0)
    if found.keep < size:
        os.ftruncate(fd, found.keep)
    path = finish(fd, part_path, found.patches, remux_marker=remux_marker)
    return Recovered(part_path, path, "finalised", found.keep, found.torn_bytes, found.duration_ms)


def recover_part(part_path: str, *, remux_marker: bool = False) -> Recovered:
    """Finalise a `.part` left by a relay that stopped without finishing it (a link is left alone)."""
    try:
        fd = os.open(part_path, os.O_RDWR | _NOFOLLOW)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        return Recovered(part_path, None, "not_flv", 0, 0, 0)  # a symbolic link: never ours, never followed
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Recovered(part_path, None, "in_use", 0, 0, 0)  # another writer has it: not a leftover
        if os.path.exists(final_path(part_path)):
            # Never overwrite a final file; leave both for the operator.
            return Recovered(part_path, None, "name_taken", 0, 0, 0)
        return salvage(fd, part_path, remux_marker=remux_marker)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Leftovers:
    """Unfinished files of one recordings folder, found at start."""

    folder: str
    parts: tuple[str, ...]  # `.flv.part` files to finalise
    remuxes: tuple[str, ...]  # final `.flv` files whose remux was interrupted (a `.mp4.part` is there)


def find_leftovers(folder: str, before: float) -> Leftovers:
    """The `.part` files of a folder last written before `before` (the relay's start): an absent folder has none.

    A `.flv.part` written since is this run's own, perhaps not yet locked: never a leftover.
    """
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return Leftovers(folder, (), ())
    parts, remuxes = [], []
    present = set(entries)
    for name in sorted(entries):
        path = os.path.join(folder, name)
        if name.startswith(names.REMUX_DIR_PREFIX) and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)  # a remux's folder that a crash left behind
            continue
        parsed = names.parse(name)
        if parsed is None or not parsed.part:
            continue
        if os.path.islink(os.path.join(folder, name)):
            continue  # never ours: a link planted in the folder is neither followed nor removed
        if parsed.extension == names.FLV:
            try:
                if os.stat(os.path.join(folder, name)).st_mtime >= before:
                    continue
            except FileNotFoundError:
                continue
            parts.append(os.path.join(folder, name))
        elif parsed.stem + names.FLV in present or parsed.stem + names.FLV + names.PART in present:
            remuxes.append(os.path.join(folder, parsed.stem + names.FLV))
        else:
            _unlink(os.path.join(folder, name))  # a remux marker whose FLV is gone
    return Leftovers(folder, tuple(parts), tuple(remuxes))


# --- retention ------------------------------------------------------------------------------------

def apply_retention(folder: str, policy: RetentionPolicy, now: float | None = None) -> list[tuple[str, int]]:
    """Delete the recordings the policy expires; (name, size) of each file deleted."""
    files = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
                files.append(FileInfo(entry.name, stat.st_size, stat.st_mtime))
    sizes = {f.name: f.size for f in files}
    deleted = []
    for name in expired(files, policy, time.time() if now is None else now):
        if _unlink(os.path.join(folder, name)):
            deleted.append((name, sizes[name]))
    if deleted:
        fsync_dir(folder)
    return deleted


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
