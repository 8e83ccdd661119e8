"""One live stream's slate: prepared at each publish session's first keyframe, played while it is away.

The player is a subscriber of the live stream's hub. On the publisher's read path it only
notes the latest media timestamp (where the slate's timestamps go on from) and, at a
session's first keyframe, schedules the preparation (call_soon: nothing is awaited there).
Preparing asks `settings()` (the live stream's measured stream, relay/live/slatefit.py) and
the studio for the clip, in a background task; a session whose stream cannot have a slate
(HEVC with an ffmpeg that cannot write it, an audio codec other than AAC...) logs why, once.

Statuses (the live stream's `slate` in the status API): `off` (not enabled), `preparing`,
`ready`, `unavailable`, `playing`.

`lost()` (the publisher dropped; the reconnect window runs) arms a timer of `after`
seconds; when it fires with a clip ready, the clip is played through the hub
(playout.py): the due tags are published every TICK, which the targets' own write slots
then send. `claimed()` (a publisher took the live stream) and `ended()` (the session is
over) stop it; `claimed()` returns how long ago the latest slate tag was due, which is how
far the targets' timelines move on before the publisher's first frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from relay.config import SlateConfig
from relay.fanout.hub import Hub
from relay.flv import SCRIPT, VIDEO, Tag
from relay.rtmp.encoded import EncodedMessage
from relay.slate.playout import Clip, Playout, continue_from, later
from relay.slate.settings import SlateSettings
from relay.slate.studio import SlateStudio, SlateUnavailable, studio

OFF = "off"
PREPARING = "preparing"
READY = "ready"
UNAVAILABLE = "unavailable"
PLAYING = "playing"

TICK = 0.05  # seconds between two feeds of the slate's due tags (the targets gather per write_interval anyway)


class SlatePlayer:
    """The reconnect slate of one live stream."""

    def __init__(self, hub: Hub[EncodedMessage], settings: Callable[[], SlateSettings | str], log: Any,
                 config: SlateConfig, maker: SlateStudio | None = None) -> None:
        self.hub = hub
        self.settings = settings  # the stream's settings now, or why it cannot have a slate
        self.log = log
        self.config = config
        self.maker = maker if maker is not None else studio()
        # Called with True when the slate starts playing, False when it stops (the live stream
        # pauses its ingest meter and tells observers).
        self.on_playing: Callable[[bool], None] | None = None
        self.clip: Clip | None = None
        self.reason: str | None = None  # why there is no clip this session
        self._loop = asyncio.get_running_loop()
        self._last_ts: int | None = None  # the publisher's latest media timestamp
        self._await_keyframe = False
        self._preparing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None  # `after`, then each TICK while playing
        self._playout: Playout | None = None
        self._lost_at = 0.0
        hub.join(self)

    @property
    def status(self) -> str:
        """off | preparing | ready | unavailable | playing."""
        if self._playout is not None:
            return PLAYING
        if not self.config.enabled:
            return OFF
        if self.clip is not None:
            return READY
        if self.reason is not None:
            return UNAVAILABLE
        return PREPARING

    @property
    def playing(self) -> bool:
        """True while the slate is fed to the targets."""
        return self._playout is not None

    # -- the publisher's read path: never awaits ---------------------------------------------

    def offer(self, tag: Tag) -> None:
        """Hub subscriber: note where the publisher is; its first keyframe starts the preparation."""
        if self._playout is not None or tag.kind == SCRIPT or tag.is_header:
            return  # our own tags, or no timestamp worth following
        last = self._last_ts
        if last is None or later(tag.timestamp, last):
            self._last_ts = tag.timestamp
        if self._await_keyframe and tag.kind == VIDEO and tag.is_keyframe:
            self._await_keyframe = False
            self._loop.call_soon(self._prepare)

    # -- the live stream's side ------------------------------------------------------------

    def claimed(self, config: SlateConfig) -> int | None:
        """A publisher took the live stream (a new session, or back inside the window): stop the
        slate; the ms since its latest tag was due, if it played (else None)."""
        self.config = config
        gap = self._stop()
        self._last_ts = None
        self.clip = None  # the clip of this publisher's settings is asked for at its first keyframe
        self.reason = None
        if self._preparing is not None:
            self._preparing.cancel()
            self._preparing = None
        self._await_keyframe = config.enabled
        return gap

    def lost(self) -> None:
        """The publisher dropped; the reconnect window runs: the slate starts after `after` s."""
        self._cancel_timer()
        self._lost_at = self._loop.time()
        if self.config.enabled:
            self._timer = self._loop.call_later(self.config.after, self._start)

    def ended(self) -> None:
        """The publish session is over (a clean stop, or the window ran out): no more slate."""
        self._stop()
        self._await_keyframe = False

    # -- preparing --------------------------------------------------------------------------

    def _prepare(self) -> None:
        found = self.settings()
        if isinstance(found, str):
            self._unavailable(found)
            return
        self._preparing = asyncio.create_task(self._make(found), name="slate prepare")

    async def _make(self, settings: SlateSettings) -> None:
        try:
            self.clip = await self.maker.clip(settings)
        except SlateUnavailable as err:
            self._unavailable(str(err))
            return
        finally:
            self._preparing = None
        self.log.info("slate_ready", width=settings.width, height=settings.height,
                      frame_rate=round(float(settings.frame_rate), 3), video_codec=settings.video_codec,
                      audio_codec=settings.audio_codec, bytes=self.clip.size)

    def _unavailable(self, reason: str) -> None:
        if self.reason is None:
            self.log.warning("slate_unavailable", reason=reason)
        self.reason = reason

    # -- playing ------------------------------------------------------------------------------

    def _start(self) -> None:
        self._timer = None
        clip = self.clip
        if clip is None:
            self.log.warning("slate_not_started", reason=self.reason or "its clip is not made yet")
            return
        now = self._loop.time()
        away_ms = round((now - self._lost_at) * 1000)  # `after`, and however late its timer fired
        base = continue_from(self._last_ts, away_ms)
        self._playout = Playout(clip, base, _ms(now))
        self.log.info("slate_started", away_ms=away_ms)
        if self.on_playing is not None:
            self.on_playing(True)
        self._feed()

    def _feed(self) -> None:
        playout = self._playout
        if playout is None:
            return
        for tag in playout.due(_ms(self._loop.time())):
            self.hub.publish(tag)
        self._timer = self._loop.call_later(TICK, self._feed)

    def _stop(self) -> int | None:
        self._cancel_timer()
        playout, self._playout = self._playout, None
        if playout is None:
            return None
        self.log.info("slate_stopped")
        if self.on_playing is not None:
            self.on_playing(False)
        return playout.since_last(_ms(self._loop.time()))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
