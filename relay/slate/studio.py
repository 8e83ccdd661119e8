"""Making slate clips with ffmpeg, off the event loop, and keeping them per settings.

One SlateStudio serves the whole process (`studio()`): live streams with equal settings (a
restream of the same show, a publisher back with the same encoder) share one clip. A clip is
made by an ffmpeg subprocess (asyncio's: the loop only waits for it to exit) writing an FLV
into a private temporary folder; the file operations around it (the folder, the card's text
files, reading the FLV back, removing the folder) run in a worker thread. A 2 s 1080p clip
takes ffmpeg about a second of one core and holds a few hundred KB.

Making the same settings twice at once is avoided: the second caller gets the first one's
task. A failure is remembered with its reason (ffmpeg's first error line), so that it is
not tried again for every session; it is logged by the player, once per session.
At most MAX_CLIPS are kept, the least recently asked for going first.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import replace

from relay.flv import FLVError, read_tags
from relay.slate.playout import Clip, ClipError, clip_from_tags
from relay.slate.settings import WE_LL_BE_RIGHT_BACK, SlateSettings, ffmpeg_command, unsupported

MAX_CLIPS = 16
MAKE_TIMEOUT = 60.0  # seconds ffmpeg may take for one clip (a loaded 2-core machine takes a few)
# The built-in card's font: Debian's fonts-dejavu-core (the relay's install notes list it).
FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


class SlateUnavailable(Exception):
    """No clip can be made for these settings; the message says why, in words."""


class SlateStudio:
    """Clips by settings: ready, being made, or failed."""

    def __init__(self, ffmpeg: str = "ffmpeg", fonts: tuple[str, ...] = FONTS) -> None:
        self.ffmpeg = ffmpeg
        self.fonts = fonts
        self._clips: OrderedDict[SlateSettings, Clip] = OrderedDict()
        self._making: dict[SlateSettings, asyncio.Task[Clip]] = {}
        self._failed: dict[SlateSettings, str] = {}
        self.made = 0  # clips made by ffmpeg (a cache hit makes none)

    async def clip(self, settings: SlateSettings) -> Clip:
        """The clip for `settings`, made if need be; SlateUnavailable with the reason otherwise."""
        reason = unsupported(settings)
        if reason is not None:
            raise SlateUnavailable(reason)
        if settings.image is not None:
            settings = replace(settings, image_stamp=await asyncio.to_thread(_stamp, settings.image))
        found = self._clips.get(settings)
        if found is not None:
            self._clips.move_to_end(settings)
            return found
        if settings in self._failed:
            raise SlateUnavailable(self._failed[settings])
        task = self._making.get(settings)
        if task is None:
            task = self._making[settings] = asyncio.create_task(self._make(settings), name="slate clip")
        return await asyncio.shield(task)

    async def _make(self, settings: SlateSettings) -> Clip:
        try:
            clip = await self._run(settings)
        except SlateUnavailable as err:
            self._failed[settings] = str(err)
            raise
        finally:
            self._making.pop(settings, None)
        self._clips[settings] = clip
        self.made += 1
        while len(self._clips) > MAX_CLIPS:
            self._clips.popitem(last=False)
        return clip

    async def _run(self, settings: SlateSettings) -> Clip:
        font = next((f for f in self.fonts if os.path.exists(f)), None)
        folder = await asyncio.to_thread(_workspace, settings.title)
        output = os.path.join(folder, "slate.flv")
        command = ffmpeg_command(settings, output, ffmpeg=self.ffmpeg, font=font,
                                 title_file=os.path.join(folder, "title.txt"),
                                 message_file=os.path.join(folder, "message.txt"))
        try:
            try:
                process = await asyncio.create_subprocess_exec(
                    *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE)
            except OSError as err:
                raise SlateUnavailable(f"ffmpeg could not be run ({err.strerror or err})") from None
            try:
                _, stderr = await asyncio.wait_for(process.communicate(), MAKE_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
                raise SlateUnavailable(f"ffmpeg took over {MAKE_TIMEOUT:g} s") from None
            if process.returncode != 0:
                raise SlateUnavailable(f"ffmpeg failed: {_first_line(stderr)}")
            return await asyncio.to_thread(_read_clip, output, settings.period_ms)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)


_studio: SlateStudio | None = None


def studio() -> SlateStudio:
    """The process's studio."""
    global _studio
    if _studio is None:
        _studio = SlateStudio()
    return _studio


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


def _workspace(title: str) -> str:
    """A private folder with the card's text files (blocking: run in a thread)."""
    folder = tempfile.mkdtemp(prefix="relay-slate-")
    for name, text in (("title.txt", title), ("message.txt", WE_LL_BE_RIGHT_BACK)):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as out:
            out.write(text)
    return folder


def _read_clip(path: str, period: int) -> Clip:
    """The FLV ffmpeg wrote, as a clip (blocking: run in a thread)."""
    try:
        with open(path, "rb") as flv:
            data = flv.read()
        return clip_from_tags(read_tags(data), period)
    except (OSError, FLVError, ClipError) as err:
        raise SlateUnavailable(f"ffmpeg's clip is unusable ({err})") from None


def _first_line(stderr: bytes) -> str:
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()[:200]
    return "no message"
