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

A reload is applied in two steps, so that it is all or nothing: `prepare` builds the new
targets without touching anything running, and `apply` swaps them in.

Status changes of the live stream and of its targets go to `observers` (the webhook
dispatcher) as StatusChange values with fresh snapshots. A target retrying after an
error goes errored -> starting -> errored every backoff; observers hear of the error
once, then of the target broadcasting (or idle) again, not of every attempt.

An IngestMeter, subscribed to the hub like any target, measures what the publisher
sends; `check_health()` (every 2 s, from the sampler: relay/api/sampler.py) logs a stream-health issue once
when it begins and once when it clears.

Recording (when enabled): each publish session gets a Recorder from `recordings`, a hub
subscriber like the targets; a publisher that rejoins inside the window continues the
same file, and the session's end finishes it in the background. A reload that changes
`recording` applies from the next session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from relay.config import LiveStreamConfig, TargetConfig
from relay.live.health import HEALTHY, UNHEALTHY, UNKNOWN, Episodes, assess
from relay.fanout.hub import Hub
from relay.live.meter import IngestMeter
from relay.flv import Tag
from relay.runtime.logs import get_logger
from relay.targets.statustable import ERRORED, STARTING, Transition
from relay.live.metertap import IngestSubscriber
from relay.recording.recorder import Recorder
from relay.recording.sessions import Recordings
from relay.targets.supervisor import Target
from relay.runtime.writetick import write_ticker
from relay.rtmp.encoded import EncodedMessage, held_bytes
from relay.status import (
    HealthSnapshot,
    IngestSnapshot,
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


@dataclass
class Reconfiguration:
    """A reload of one live stream, built and not yet applied."""

    config: LiveStreamConfig
    targets: list[Target]  # the targets after the reload, in config order
    new: list[Target] = field(default_factory=list)  # made for this reload: started if the stream is active
    retired: list[Target] = field(default_factory=list)  # current targets that go
    # Current targets that stay, each with its config after the reload (the same but for the label).
    relabelled: list[tuple[Target, TargetConfig]] = field(default_factory=list)
    key_changed: bool = False


class LiveStream:
    """Runtime state of one configured live stream."""

    def __init__(self, config: LiveStreamConfig, recordings: Recordings | None = None) -> None:
        self.config = config
        self.name = config.name
        # Each tag encoded once for every target; the GOP's bound counts those encodings as held.
        self.hub = Hub(config.name, wrap=EncodedMessage, wrapper_bytes=held_bytes)
        self.observers: list[Callable[[StatusChange], None]] = []
        self._reported: dict[Target, str] = {}  # the status observers last heard of, per target
        self.targets = [self._watch(Target(config.name, t, self.hub)) for t in config.simulcast_targets]
        self.publisher: Publisher | None = None
        self.log = get_logger(live_stream=config.name)
        self.sessions = 0
        self._loop = asyncio.get_running_loop()
        self.meter = IngestMeter(self._loop.time())
        self.hub.join(IngestSubscriber(self.meter))
        self.health = Episodes()
        self.active_since: float | None = None  # wall clock
        self.publisher_address: str | None = None
        self.publisher_since = 0.0  # wall clock
        self._bytes_before = 0  # received in earlier publisher connections
        self._session_from = 0  # bytes_received when the current (or last) publish session began
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
        self.hub.state.reset()
        self.hub.state.publisher_enhanced = declares_enhanced
        loop = asyncio.get_running_loop()
        self._bytes_before += self.meter.bytes_received
        self.meter.reset(loop.time())
        self.publisher_address = _peer_address(publisher)
        self.publisher_since = time.time()
        if self._window is not None:
            self._window.cancel()
            self._window = None
            away_ms = int((loop.time() - self._publisher_lost_at) * 1000)
            self.log.info("publisher_resumed", away_ms=away_ms)
            for target in self.targets:
                target.resync(away_ms)
            if self.recorder is not None:
                self.recorder.resync(away_ms)
            return True
        self.log.info("live_stream_status", **{"from": IDLE, "to": ACTIVE})
        self.active_since = time.time()
        self._session_from = self._bytes_before
        self._announce("video.live_stream.active")
        if self.recordings is not None and self.config.recording.enabled:
            self.recorder = self.recordings.start(self.name, self.config.recording, self.hub)
        for target in self.targets:
            target.start()
        return True

    def publish(self, tag: Tag) -> None:
        """One tag from the publisher, to every target."""
        self.hub.publish(tag)

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

    def _end(self, reason: str) -> None:
        if self._window is not None:
            self._window.cancel()
            self._window = None
        self.log.info("live_stream_status", reason=reason, **{"from": ACTIVE, "to": IDLE})
        self.active_since = None
        self._announce("video.live_stream.idle")
        if self.recorder is not None:
            self.recorder.stop()
        for target in self.targets:
            target.request_stop()

    def prepare(self, config: LiveStreamConfig) -> Reconfiguration:
        """Build what a reloaded config needs (new targets), touching nothing that runs.

        A target whose settings did not change keeps running, even under a new `passthrough`
        (a label: its connection is kept and only its name changes). A changed target is a
        new Target; if it publishes to the same url and key as one that goes, it connects only
        once that one has unpublished (a platform refuses a second publisher on a key).
        """
        unchanged = [(_settings(t.config), t) for t in self.targets]
        plan = Reconfiguration(config, [], key_changed=config.stream_key != self.config.stream_key)
        kept: list[Target] = []
        for target_config in config.simulcast_targets:
            settings = _settings(target_config)
            target = next((t for s, t in unchanged if s == settings and not any(t is k for k in kept)), None)
            if target is not None:
                kept.append(target)
                plan.targets.append(target)
                plan.relabelled.append((target, target_config))
                continue
            target = self._watch(Target(self.name, target_config, self.hub))
            plan.targets.append(target)
            plan.new.append(target)
        plan.retired = [t for t in self.targets if not any(t is k for k in kept)]
        for target in plan.new:
            target.predecessor = next((old for old in plan.retired if _destination(old.config)
                                       == _destination(target.config)), None)
        return plan

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
        self._reported = {t: s for t, s in self._reported.items() if t in targets}
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
        ingest: IngestSnapshot | None = None
        health = HealthSnapshot(UNKNOWN)
        if self.publisher is not None:
            reading = self.meter.reading(self._loop.time())
            now = time.time()
            ingest = IngestSnapshot(
                publisher_address=self.publisher_address, connected_since=self.publisher_since,
                uptime=round(max(0.0, now - self.publisher_since), 1),
                video_codec=reading.video_codec, video_profile=reading.video_profile,
                audio_codec=reading.audio_codec, audio_profile=reading.audio_profile,
                width=reading.width, height=reading.height, frame_rate=reading.frame_rate,
                audio_sample_rate=reading.audio_sample_rate, audio_channels=reading.audio_channels,
                bitrate_kbps=reading.bitrate_kbps, video_bitrate_kbps=reading.video_bitrate_kbps,
                audio_bitrate_kbps=reading.audio_bitrate_kbps, keyframe_interval=reading.keyframe_interval,
                bytes_received=reading.bytes_received, encoder=reading.encoder,
            )
            issues = assess(reading, self.config.health)
            health = HealthSnapshot(UNHEALTHY if issues else HEALTHY, tuple((i.code, i.message) for i in issues))
        return LiveStreamSnapshot(
            name=self.name, status=self.status, reconnect_window=self.config.reconnect_window,
            publisher_connected=self.publisher is not None, awaiting_publisher=self.awaiting_publisher,
            sessions=self.sessions, active_since=self.active_since,
            bytes_received=self.bytes_received - self._session_from, bytes_received_total=self.bytes_received,
            simulcast_targets=tuple(t.snapshot() for t in self.targets),
            ingest=ingest, health=health,
            recording=self.recorder.snapshot() if self.recorder is not None else None,
        )

    @property
    def bytes_received(self) -> int:
        """Media bytes received from publishers since the relay started."""
        return self._bytes_before + self.meter.bytes_received

    def check_health(self) -> None:
        """Log each stream-health issue once when it begins and once when it clears."""
        if self.publisher is None:
            self.health.clear()
            return
        issues = assess(self.meter.reading(self._loop.time()), self.config.health)
        started, ended = self.health.update(issues)
        for issue in started:
            self.log.warning("stream_health_warning", reason=issue.code, message=issue.message)
        for code in ended:
            self.log.info("stream_health_recovered", reason=code)

    def _watch(self, target: Target) -> Target:
        target.status_listener = self._target_status
        return target

    def _target_status(self, target: Target, transition: Transition) -> None:
        """A target's status policy took an event (called by the Target): tell observers of real changes."""
        if target not in self.targets:
            return  # a retired target's last words are not this stream's status
        status = transition.after
        # An errored target that gives up (severity fatal) is news again; its retries are not.
        state = f"{status}:{transition.severity}" if status == ERRORED else status
        reported = self._reported.get(target, IDLE)
        if state == reported or (reported.startswith(ERRORED) and status == STARTING):
            return
        self._reported[target] = state
        self._announce(f"video.live_stream.simulcast_target.{status}", target)

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


def _settings(config: TargetConfig) -> TargetConfig:
    """A target's config less its label: what, when it changes, needs a new connection."""
    return config.model_copy(update={"passthrough_label": None})


def _destination(config: TargetConfig) -> tuple[str, object]:
    """Where a target publishes: two connections here at once would be two publishers on one key."""
    return config.url, config.stream_key


def _peer_address(publisher: Publisher) -> str | None:
    """host:port of the publisher's connection, when it has a transport."""
    transport = getattr(publisher, "transport", None)
    peer = transport.get_extra_info("peername") if transport is not None else None
    if not peer:
        return None
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
