"""A live stream: its hub, its targets, and which publisher (if any) holds its key.

Statuses use Mux's words: a live stream is `active` while a publisher holds it (or may
come back: see below), `idle` otherwise. One publisher at a time: a second one on the
same key is refused and the first is not disturbed.

Reconnect window (Mux's `reconnect_window`): when the publisher's connection drops
without FCUnpublish/deleteStream, the stream stays active and the targets stay connected
for that many seconds. If the same key publishes again in time, every target continues
the same broadcast from the new session's first keyframe, its timestamps moving forward
by the time the publisher was away. A clean stop (OBS's "Stop Streaming") ends at once,
and so does a cut-off: a reload that changes the live stream's key (the old key is
revoked: its publisher must not stay on, nor come back) or removes the live stream.

A reload is applied in two steps, so that it is all or nothing: `prepare` plans the
targets without touching anything running (retarget.py), and `apply` swaps them in.

Status changes of the live stream and of its targets go to `observers` (the webhook
dispatcher) as StatusChange values with fresh snapshots; which target changes are news
is news.py's to say (an error once, not every retry).

What the publishers send is measured, and its health judged, by the stream's IngestWatch
(ingestwatch.py).

Recording (when enabled): each publish session gets a Recorder from `recordings`, a hub
subscriber like the targets; a publisher that rejoins inside the window continues the
same file, and the session's end finishes it in the background. A reload that changes
`recording` applies from the next session.

Reconnect slate (when enabled): inside the window the targets and the recording are fed a
slate clip instead of nothing (relay/slate/); a publisher that comes back continues from
the slate's latest frame rather than from its own. A reload that changes `reconnect_slate`
applies from the next publisher connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from relay.config import LiveStreamConfig
from relay.fanout.accel import Hub
from relay.fanout.streamstate import StreamState
from relay.live import retarget
from relay.live.ingestwatch import IngestWatch
from relay.live.meter import IngestMeter
from relay.live.news import TargetNews
from relay.live.retarget import Reconfiguration
from relay.live.slatefit import slate_settings
from relay.recording.recorder import Recorder
from relay.recording.sessions import Recordings
from relay.rtmp.encoded import EncodedMessage, held_bytes
from relay.runtime.logs import get_logger
from relay.runtime.writetick import write_ticker
from relay.slate.player import SlatePlayer
from relay.slate.settings import SlateSettings
from relay.targets.statustable import Transition
from relay.targets.supervisor import Target
from relay.status import (
    LiveStreamSnapshot,
    RecordingReady,
    StatusChange,
)

IDLE = "idle"
ACTIVE = "active"


class Publisher(Protocol):
    """The ingest connection holding a live stream."""

    def cut_off(self, reason: str) -> None:
        """End the publisher's session (it calls release(clean=True)) and close its connection."""


class LiveStream:
    """Runtime state of one configured live stream."""

    def __init__(self, config: LiveStreamConfig, recordings: Recordings | None = None) -> None:
        self.config = config
        self.name = config.name
        # Its tags are the messages the targets send, each encoded once for all of them: the
        # GOP's bound weighs what each holds, its chunk bytes included.
        self.hub: Hub[EncodedMessage] = Hub(config.name, StreamState(weigh=held_bytes))
        self.observers: list[Callable[[StatusChange], None]] = []
        self._news: TargetNews[Target] = TargetNews()  # which target status changes observers hear of
        self.targets = [self._watch(Target(config.name, t, self.hub)) for t in config.simulcast_targets]
        self.publisher: Publisher | None = None
        self.log = get_logger(live_stream=config.name)
        self.sessions = 0
        self._loop = asyncio.get_running_loop()
        self.ingest = IngestWatch(self.hub, self.log)
        self.slate = SlatePlayer(self.hub, self._slate_settings, self.log, config.reconnect_slate)
        self.slate.on_playing = self._slate_playing
        self.active_since: float | None = None  # wall clock
        self._retired: list[Target] = []  # removed by a reload, still closing
        self._window: asyncio.TimerHandle | None = None  # the reconnect window, while it runs
        self._publisher_lost_at = 0.0
        self.recordings = recordings
        self.recorder: Recorder | None = None  # the current or latest session's
        # The publisher reads in the targets' slot of the write ticker (readbatch.py).
        self.read_phase = write_ticker().phase_for(config.name)

    @property
    def status(self) -> str:
        """`active` while a publisher holds the stream or may still come back, else `idle`."""
        return ACTIVE if self.publisher is not None or self._window is not None else IDLE

    @property
    def awaiting_publisher(self) -> bool:
        """True while the reconnect window runs."""
        return self._window is not None

    def claim(self, publisher: Publisher, *, declares_enhanced: bool = False) -> bool:
        """Make `publisher` the stream's publisher; False if another one holds it.

        `declares_enhanced`: its connect declared Enhanced RTMP, which targets mirror.
        """
        if self.publisher is not None:
            return False
        self.publisher = publisher
        self.sessions += 1
        slate_gap = self.slate.claimed(self.config.reconnect_slate)
        if self._window is not None and slate_gap is not None:
            # The slate's last tags go out on its timeline, before the jump, and checked against
            # the state they were made in (its headers), before the new session's starts empty.
            for target in self.targets:
                target.writer.write()
        self.hub.state.reset()
        self.hub.state.publisher_enhanced = declares_enhanced
        loop = asyncio.get_running_loop()
        self.ingest.connected(_peer_address(publisher))
        if self._window is not None:
            self._window.cancel()
            self._window = None
            away_ms = int((loop.time() - self._publisher_lost_at) * 1000)
            if slate_gap is not None:  # the targets' timelines went on with the slate
                away_ms = slate_gap
            self.log.info("publisher_resumed", away_ms=away_ms)
            for target in self.targets:
                target.resync(away_ms)
            if self.recorder is not None:
                self.recorder.resync(away_ms)
            self._announce("video.live_stream.connected")
            return True
        self.log.info("live_stream_status", **{"from": IDLE, "to": ACTIVE})
        self.active_since = time.time()
        self.ingest.session_started()
        self._announce("video.live_stream.active")
        if self.recordings is not None and self.config.recording.enabled:
            self.recorder = self.recordings.start(self.name, self.config.recording, self.hub)
        for target in self.targets:
            target.start()
        return True

    def publish(self, message: EncodedMessage) -> None:
        """One tag from the publisher, to every target."""
        self.hub.publish(message)

    # -- batched reads (readbatch.py) -----------------------------------------------

    @property
    def read_interval(self) -> float:
        """How long the publisher's input may wait before it is read: the shortest write_interval
        of the targets; 0 (read as it comes) when a target writes each tag at once, or there is none."""
        shortest = min((t.config.write_interval for t in self.targets), default=0.0)
        return max(shortest, 0.0)

    def read_batch_done(self, interval: float) -> None:
        """A batch of the publisher's input was read: the targets that gather over this interval
        and follow the feed write it now (the others keep their own slot)."""
        for target in self.targets:
            if target.config.write_interval == interval:
                target.write_following()

    def release(self, publisher: Publisher, reason: str, clean: bool) -> None:
        """The publisher is gone: end the broadcast, or hold it for the reconnect window."""
        if self.publisher is not publisher:
            return
        self.publisher = None
        window = self.config.reconnect_window
        if clean or window <= 0:
            self._end(reason)
            return
        loop = asyncio.get_running_loop()
        self._publisher_lost_at = loop.time()
        self._window = loop.call_later(window, self._end, f"the publisher did not come back within {window:g} s")
        self.log.info("publisher_lost", reason=reason, reconnect_window_s=window)
        self.slate.lost()
        self._announce("video.live_stream.disconnected")

    def _end(self, reason: str) -> None:
        if self._window is not None:
            self._window.cancel()
            self._window = None
        self.log.info("live_stream_status", reason=reason, **{"from": ACTIVE, "to": IDLE})
        self.active_since = None
        self.slate.ended()
        self._announce("video.live_stream.idle")
        if self.recorder is not None:
            self.recorder.stop()
        for target in self.targets:
            target.request_stop()

    def prepare(self, config: LiveStreamConfig) -> Reconfiguration:
        """Build what a reloaded config needs (new targets), touching nothing that runs (retarget.py)."""
        return retarget.plan(self.targets, self.config, config,
                             lambda target_config: self._watch(Target(self.name, target_config, self.hub)))

    def apply(self, plan: Reconfiguration) -> None:
        """Swap in a prepared reload: unchanged targets keep broadcasting, others restart.

        A changed stream key revokes the old one: its publisher is cut off, and a reconnect
        window that runs for it ends.
        """
        if plan.key_changed:
            self.cut_off("the live stream's stream key was changed by a reload")
        for target in plan.retired:
            self._retire(target)
        for target, target_config in plan.relabelled:
            target.relabel(target_config)
        targets = plan.targets
        self.targets = targets
        self.config = plan.config
        self._news.keep_only(targets)
        if self.status == ACTIVE:
            for target in plan.new:
                target.start()

    def reconfigure(self, config: LiveStreamConfig) -> None:
        """prepare() and apply() in one go (a reload of this live stream alone)."""
        self.apply(self.prepare(config))

    def cut_off(self, reason: str) -> None:
        """End the session now: the publisher is shut out and no reconnect window applies."""
        publisher = self.publisher
        if publisher is not None:
            publisher.cut_off(reason)
            if self.publisher is publisher:  # a publisher that did not release: release it here
                self.release(publisher, reason, clean=True)
        elif self._window is not None:
            self._end(reason)

    def shut_down(self, reason: str) -> None:
        """Cut the publisher off and stop every target (the live stream left the config, or we exit)."""
        self.cut_off(reason)
        for target in self.targets:
            target.request_stop()

    def _retire(self, target: Target) -> None:
        target.request_stop()
        self._retired = [t for t in self._retired if not t.stopped] + [target]

    async def wait_targets_stopped(self, timeout: float) -> None:
        """Wait until every target has closed (cancelled past `timeout`)."""
        await asyncio.gather(*(t.wait_stopped(timeout) for t in [*self.targets, *self._retired]))

    # -- status: snapshots, observers, health --------------------------------------------

    def snapshot(self) -> LiveStreamSnapshot:
        """The live stream, its ingest and its targets at this moment."""
        ingest, health = self.ingest.snapshot(self.config.health, self.publisher is not None)
        return LiveStreamSnapshot(
            name=self.name, status=self.status, reconnect_window=self.config.reconnect_window,
            publisher_connected=self.publisher is not None, awaiting_publisher=self.awaiting_publisher,
            sessions=self.sessions, active_since=self.active_since,
            bytes_received=self.ingest.session_bytes, bytes_received_total=self.ingest.bytes_received,
            simulcast_targets=tuple(t.snapshot() for t in self.targets),
            ingest=ingest, health=health,
            recording=self.recorder.snapshot() if self.recorder is not None else None,
            slate=self.slate.status,
        )

    def _slate_settings(self) -> SlateSettings | str:
        """What this stream's slate must match, measured now (slatefit.py)."""
        return slate_settings(self.meter.reading(self._loop.time()), self.name, self.config.reconnect_slate)

    def _slate_playing(self, playing: bool) -> None:
        """The slate started or stopped: what it feeds is not the publisher's, so it is not metered."""
        self.ingest.tap.paused = playing

    @property
    def meter(self) -> IngestMeter:
        """What the current (or last) publisher connection sent, measured."""
        return self.ingest.meter

    def check_health(self) -> None:
        """Log each stream-health issue once when it begins and once when it clears (ingestwatch.py)."""
        self.ingest.check(self.config.health, self.publisher is not None)

    def _watch(self, target: Target) -> Target:
        target.status_listener = self._target_status
        return target

    def _target_status(self, target: Target, transition: Transition) -> None:
        """A target's status policy took an event (called by the Target): tell observers of real changes."""
        if target not in self.targets:
            return  # a retired target's last words are not this stream's status
        event = self._news.news(target, transition)
        if event is not None:
            self._announce(event, target)

    def recording_ready(self, ready: RecordingReady) -> None:
        """A recording of this live stream is final: video.live_stream.recording.ready."""
        self._announce("video.live_stream.recording.ready", recording=ready)

    def _announce(self, event_type: str, target: Target | None = None,
                  recording: RecordingReady | None = None) -> None:
        if not self.observers:
            return
        change = StatusChange(
            type=event_type, live_stream=self.snapshot(),
            target=None if target is None else target.snapshot(),
            at=time.time(), recording=recording,
        )
        for observer in self.observers:
            observer(change)


def _peer_address(publisher: Publisher) -> str | None:
    """host:port of the publisher's connection, when it has a transport."""
    transport = getattr(publisher, "transport", None)
    peer = transport.get_extra_info("peername") if transport is not None else None
    if not peer:
        return None
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
