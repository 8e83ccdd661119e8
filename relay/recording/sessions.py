"""Every recording of the relay: a Recorder per publish session, what follows its end, leftovers at start.

A live stream asks `start()` for a Recorder when a publish session begins (recording
enabled) and calls `recorder.stop()` when it ends. Once the session's FLV is final,
`recording_finished` is logged; with `format: flv` the recording is ready there and
then. With `format: mp4` the FLV is remuxed (remux.py), at most recording.max_remux_jobs
at a time (read from the current config, so a reload changes it), and the MP4 is the
recording once ffprobe has checked it. Either way every callback in `on_ready` gets a
RecordingReady (live stream, path, duration, size...), and retention then runs on the
live stream's folder. Folder work (listing, deleting, finalising leftovers) runs in
daemon threads, never on the loop.

At start, `recover()` finalises in the background what a previous run left: each
`.flv.part` is cut after its last complete tag, patched and renamed (and remuxed, for an
mp4 live stream); each FLV whose remux was interrupted (a `.mp4.part` marker beside it)
is remuxed again. Only the folders of the live streams in the config are looked at.

At shutdown, `wait_finalised(timeout)` waits for the files being finished (patch, fsync,
rename: fast), then `close()` cancels what is left. A remux in flight is killed and
left for the next start (its FLV and marker stay); a file whose disk does not answer
within the deadline stays a `.part` and is finalised at the next start.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from relay.config import LiveStreamConfig, RecordingConfig, RelayConfig
from relay.fanout.hub import Hub
from relay.runtime.logs import get_logger
from relay.recording import files
from relay.recording.recorder import Outcome, ReadyCallback, Recorder, describe
from relay.recording.remux import RemuxError, remux
from relay.recording import names
from relay.recording.retention import RetentionPolicy
from relay.status import RecordingReady


class Recordings:
    """The relay's recordings: their recorders, remuxes, retention and recovery."""

    def __init__(self, config: Callable[[], RelayConfig]) -> None:
        self._config = config  # the current config: a reload changes limits and retention at once
        # Called with every recording whose file became final (RecordingReady), sessions of this
        # run and leftovers of an earlier one alike; a Recorder's own `on_ready` hears of its session only.
        self.on_ready: list[ReadyCallback] = []
        self.log = get_logger()
        self._finalising: set[asyncio.Task[None]] = set()  # sessions whose FLV is not final yet
        self._tasks: set[asyncio.Task[None]] = set()  # everything running: finalising, remuxes, retention
        self._remuxing = 0
        self._remux_slot = asyncio.Condition()
        self._folder_locks: dict[str, asyncio.Lock] = {}
        self._born = time.time()  # a .part written since is this run's own, never a leftover

    # -- sessions ----------------------------------------------------------------------------

    def start(self, live_stream: str, config: RecordingConfig, hub: Hub[Any]) -> Recorder:
        """A publish session begins: its recorder, subscribed to the hub."""
        recorder = Recorder(live_stream, config, self._config().recording.max_buffer_bytes)
        recorder.start(hub)
        task = self._spawn(self._finalise(recorder), f"recording {live_stream}")
        self._finalising.add(task)
        task.add_done_callback(self._finalising.discard)
        return recorder

    async def _finalise(self, recorder: Recorder) -> None:
        outcome: Outcome = await asyncio.shield(recorder.done)  # cancelling us must not cancel it
        log = recorder.log
        if outcome.discarded:
            log.info("recording_discarded", path=recorder.path, reason="no audio or video frame was recorded")
            recorder.settled(None, None)
            return
        if outcome.path is None:
            log.error("recording_finish_failed", path=recorder.path, error=outcome.error,
                      effect="the .part file stays and is finalised at the next start")
            recorder.settled(None, None)
            return
        duration = outcome.duration_ms / 1000
        log.info("recording_finished", path=outcome.path, duration=round(duration, 3), size=outcome.size,
                 complete=outcome.complete)
        config = recorder.config
        ready = RecordingReady(recorder.live_stream, outcome.path, "flv", duration, outcome.size,
                               recorder.started_at, outcome.complete)
        if config.format == "mp4":
            self._spawn(self._remux_then_ready(ready, config, recorder), f"remux {recorder.live_stream}")
            return
        recorder.settled(outcome.path, outcome.size)
        self._ready(ready, recorder)
        self._spawn(self._retention(recorder.live_stream, config), f"retention {recorder.live_stream}")

    async def _remux_then_ready(self, ready: RecordingReady, config: RecordingConfig,
                                recorder: Recorder | None = None, *, retain: bool = True) -> None:
        log = self.log.bind(live_stream=ready.live_stream)
        async with self._remux_slot:
            await self._remux_slot.wait_for(lambda: self._remuxing < self._config().recording.max_remux_jobs)
            self._remuxing += 1
        try:
            made = await remux(ready.path, ready.duration or None)
        except RemuxError as exc:
            log.error("recording_remux_failed", path=ready.path, error=str(exc), effect="the FLV is kept")
        else:
            log.info("recording_remuxed", path=made.path, duration=round(made.duration, 3), size=made.size,
                     source=os.path.basename(ready.path))
            ready = RecordingReady(ready.live_stream, made.path, "mp4", made.duration, made.size, ready.started_at,
                                   ready.complete)
        finally:
            async with self._remux_slot:
                self._remuxing -= 1
                self._remux_slot.notify_all()
        if recorder is not None:
            recorder.settled(ready.path, ready.size)
        self._ready(ready, recorder)
        if retain:
            await self._retention(ready.live_stream, config)

    def _ready(self, ready: RecordingReady, recorder: Recorder | None = None) -> None:
        for callback in [*self.on_ready, *(recorder.on_ready if recorder is not None else ())]:
            try:
                callback(ready)
            except Exception as exc:  # a subscriber's bug must not lose the next one's news
                self.log.error("recording_ready_callback_failed", path=ready.path, error=repr(exc))

    # -- retention ---------------------------------------------------------------------------

    async def _retention(self, live_stream: str, session: RecordingConfig) -> None:
        """Retention in the folder the session wrote to, by the live stream's current rules."""
        current = self._live_stream(live_stream)
        rules = current.recording if current is not None else session
        policy = RetentionPolicy(rules.keep_last, rules.max_age, rules.max_total_size)
        if not policy.active:
            return
        folder = os.path.join(session.dir, live_stream)
        async with self._folder_locks.setdefault(folder, asyncio.Lock()):
            try:
                deleted = await files.run_blocking(files.apply_retention, folder, policy,
                                                         name="recording retention")
            except OSError as exc:
                self.log.warning("recording_retention_failed", live_stream=live_stream, folder=folder,
                                 error=describe(exc))
                return
        if deleted:
            self.log.info("recording_retention", live_stream=live_stream, folder=folder,
                          deleted=[name for name, _ in deleted], freed=sum(size for _, size in deleted),
                          keep_last=policy.keep_last, max_age=policy.max_age,
                          max_total_size=policy.max_total_size)

    # -- leftovers of an earlier run ------------------------------------------------------------

    def recover(self) -> None:
        """Finish, in the background, the recordings an earlier run left unfinished."""
        self._spawn(self._recover(), "recording recovery")

    async def _recover(self) -> None:
        streams = {os.path.join(ls.recording.dir, ls.name): ls for ls in self._config().live_streams}
        try:
            found = await files.run_blocking(
                lambda: [files.find_leftovers(folder, self._born) for folder in streams],
                name="recording recovery")
        except OSError as exc:
            self.log.error("recording_recovery_failed", error=describe(exc))
            return
        for leftovers in found:
            if leftovers.parts or leftovers.remuxes:
                await self._recover_folder(streams[leftovers.folder], leftovers)

    async def _recover_folder(self, live: LiveStreamConfig, leftovers: files.Leftovers) -> None:
        config = live.recording
        mp4 = config.format == "mp4"
        log = self.log.bind(live_stream=live.name)
        to_remux = dict.fromkeys(leftovers.remuxes)
        finished = 0
        for part in leftovers.parts:
            try:
                done = await files.run_blocking(
                    functools.partial(files.recover_part, part, remux_marker=mp4), name="recording recovery")
            except OSError as exc:
                log.error("recording_recovery_failed", path=part, error=describe(exc))
                continue
            if done.action == "in_use":
                log.info("recording_recovery_skipped", path=part, reason="another writer holds the file")
                continue
            log.info("recording_recovered", part=part, path=done.path, action=done.action, size=done.size,
                     torn_bytes=done.torn_bytes, duration=round(done.duration_ms / 1000, 3))
            if done.path is None:
                continue
            finished += 1
            ready = RecordingReady(live.name, done.path, "flv", done.duration_ms / 1000, done.size,
                                   _started_at(done.path), False)
            if mp4:
                to_remux.pop(done.path, None)
                await self._remux_then_ready(ready, config, retain=False)
            else:
                self._ready(ready)
        for flv in to_remux:
            if not mp4:  # the live stream records FLV now: the old marker means nothing
                await files.run_blocking(_remove_marker, flv, name="recording recovery")
                continue
            if not os.path.exists(flv):
                continue
            log.info("recording_remux_resumed", path=flv)
            finished += 1
            ready = RecordingReady(live.name, flv, "flv", 0.0, 0, _started_at(flv), True)
            await self._remux_then_ready(ready, config, retain=False)
        if finished:  # sessions that ended with the earlier run: retention, as after any session
            await self._retention(live.name, config)

    # -- shutdown --------------------------------------------------------------------------------

    async def wait_finalised(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until every ended session's file is final."""
        pending = [t for t in self._finalising if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def close(self) -> None:
        """Cancel what is still running (remuxes, retention, files the disk did not finish in time)."""
        for task in self._finalising:
            if not task.done():
                self.log.warning("recording_not_finalised", reason="the disk did not answer before the "
                                 "shutdown deadline", effect="the .part file is finalised at the next start")
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until nothing is running: every file final, remuxed, retention applied (tests, tools)."""
        while tasks := [t for t in self._tasks if not t.done()]:
            await asyncio.wait(tasks)

    # -- helpers ---------------------------------------------------------------------------------

    def _live_stream(self, name: str) -> LiveStreamConfig | None:
        return next((ls for ls in self._config().live_streams if ls.name == name), None)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug here must not go unnoticed, nor take the relay down.
            self.log.error("recording_task_failed", task=task.get_name(), exc_info=exc)


def _started_at(path: str) -> float | None:
    parsed = names.parse(os.path.basename(path))
    return parsed.started_at if parsed is not None else None


def _remove_marker(flv_path: str) -> None:
    try:
        os.unlink(flv_path[: -len(names.FLV)] + names.MP4 + names.PART)
    except FileNotFoundError:
        pass
