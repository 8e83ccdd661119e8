"""One simulcast target: its session task, and the glue between the hub and its connection.

A target runs one asyncio task per publish session of its live stream, keeping a
TargetLink (targetlink.py) publishing. Each attempt is a fresh RTMP session: a new
Timeline starting at 0, an empty queue and the hub's init burst (metadata, sequence
headers, current GOP), so nothing stale is replayed after a reconnect.

The decisions live in pure code, and this module carries them out:
- status and retry policy (idle / starting / broadcasting / errored, severity,
  refusals, backoff): relay/targets/statustable.py, one event at a time; each
  transition also goes to `status_listener` (the live stream, for its webhooks);
- which transitions are logged, at which level (a failure once, then a summary at
  most every few minutes): relay/targets/logpolicy.py;
- whether a connect announces Enhanced RTMP: relay/fanout/enhanced.py, at each connect;
- what to send and when (gathered while caught up, queued under a bound while not):
  relay/fanout/sendbuffer.py, which the hub offers each tag to;
- that each connection gets onMetaData and the sequence headers in force before its
  first frame, whatever the feed carried before: relay/fanout/primer.py, one Primer per
  link, which everything written passes through (and which repairs, and makes us log,
  a frame that would go out without its header);
- a tag's chunk bytes, built once for every target: relay/rtmp/encoded.py;
- flow control: relay/targets/flowcontrol.py; the write timer: relay/runtime/writetick.py.

The publisher's read path reaches a target only through its SendBuffer, which never
awaits. A target that is caught up gathers tags for `write_interval` and then writes them
with one `writelines`: per tag and target, a timestamp mapping and a 12-byte header.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from relay.config import TargetConfig
from relay.fanout.backoff import Backoff
from relay.fanout.enhanced import announce_enhanced
from relay.fanout.hub import Hub
from relay.fanout.queue import TargetQueue
from relay.fanout.sendbuffer import SendBuffer
from relay.targets.logpolicy import TargetLogPolicy, log_line
from relay.targets.statustable import (
    CONNECT,
    CONNECTED,
    FAILED,
    REFUSED,
    RETRY,
    START,
    STOP,
    SWITCHED,
    WAIT_RETRY,
    WAIT_STOP,
    TargetStatus,
    Transition,
)
from relay.fanout.timeline import Timeline
from relay.flv import VIDEO, TagLike
from relay.runtime.logs import get_logger
from relay.targets.link import (
    Endpoint,
    LinkOwner,
    TargetFailure,
    TargetLink,
    open_link,
    reconnect_endpoint,
)
from relay.runtime.writetick import write_ticker
from relay.rtmp.encoded import EncodedMessage
from relay.status import TargetSnapshot

DROP_LOG_INTERVAL = 1.0  # seconds between two target_dropping lines of one target
# At the end of a session, how long a paused link may take to accept what is still queued;
# then close_cleanly() has CLOSE_TIMEOUT of its own (shutdown allows 4 s in all).
DRAIN_TIMEOUT = 1.0


class Target(LinkOwner):
    """A simulcast target of one live stream, with its status and counters."""

    def __init__(self, live_stream: str, config: TargetConfig, hub: Hub[EncodedMessage],
                 rand: Callable[[], float] = random.random) -> None:
        self.live_stream = live_stream
        self.config = config
        self.hub = hub
        self.log = get_logger(live_stream=live_stream, target=config.passthrough)
        self.policy = TargetStatus(Backoff(config.reconnect.initial_delay, config.reconnect.max_delay, rand),
                                   config.reconnect.reset_after)
        self.queue: TargetQueue[EncodedMessage] = TargetQueue(config.queue.max_bytes,
                                                              int(config.queue.max_seconds * 1000))
        self.buffer: SendBuffer[EncodedMessage] = SendBuffer(hub, self.queue, self,
                                                             immediate=config.write_interval <= 0)
        self.log_policy = TargetLogPolicy()
        # Over the target's lifetime; snapshot() gives the publish session's share (from its START).
        self.tags_sent = 0
        self.bytes_sent = 0
        self._session_base = (0, 0, 0, 0)  # bytes_sent, tags_sent, dropped frames and bytes at START
        self._loop = asyncio.get_running_loop()
        self._ticker = write_ticker()
        self._phase = self._ticker.phase_for(live_stream)
        self._scheduled = False  # waiting for this target's slot in the ticker
        self._timeline = Timeline()
        self._link: TargetLink | None = None
        self._next_link: TargetLink | None = None  # ready to take over at the next keyframe
        self._switch_task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[bool]] = set()  # old links of a switch, unpublishing
        self._link_changed = asyncio.Event()
        self._drops_logged = 0
        self._drop_logged_at = -DROP_LOG_INTERVAL
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._restart = False
        # Told of every event the status policy takes (the live stream's webhooks pick the news).
        self.status_listener: Callable[[Target, Transition], None] | None = None
        # A target that a reload replaces and that publishes to the same url and key: this one
        # connects only once that one has unpublished (a platform refuses a second publisher).
        self.predecessor: Target | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Begin a publish session: connect and keep reconnecting until request_stop()."""
        self._stop = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"target {self.config.passthrough}")
        else:
            self._restart = True  # the previous session is still closing: run again after it

    def relabel(self, config: TargetConfig) -> None:
        """A reload changed only the target's `passthrough`: the connection goes on under the new name."""
        if config.passthrough != self.config.passthrough:
            self.log.info("target_renamed", new_name=config.passthrough)
            self.log = get_logger(live_stream=self.live_stream, target=config.passthrough)
        self.config = config

    def request_stop(self) -> None:
        """End the publish session: flush, unpublish, close."""
        self._restart = False
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """True when no session task is running."""
        return self._task is None or self._task.done()

    async def ended(self) -> None:
        """Wait until the session task has finished: it ends within its drain and close deadlines
        (DRAIN_TIMEOUT, CLOSE_TIMEOUT) once stopped, or when it is cancelled."""
        if self._task is not None:
            await asyncio.wait({self._task})

    async def wait_stopped(self, timeout: float) -> None:
        """Wait for the session task to finish, cancelling it after `timeout`."""
        task = self._task
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            await asyncio.wait({task})

    def resync(self, gap_ms: int) -> None:
        """The publisher came back within the reconnect window: continue the same broadcast
        from the new session's first keyframe, timestamps moving on by `gap_ms`."""
        self.buffer.resync()
        self._timeline.discontinuity(gap_ms)

    def snapshot(self) -> TargetSnapshot:
        """This target's status and counters (this publish session's, and lifetime totals), at this moment."""
        policy, config, queue = self.policy, self.config, self.queue
        sent, tags, frames, dropped = self._session_base
        return TargetSnapshot(
            passthrough=config.passthrough, url=config.url, status=policy.status,
            error_severity=policy.severity, last_error=policy.last_error, next_attempt_at=policy.next_attempt_at,
            connected_since=policy.connected_since, reconnects=policy.reconnects, connections=policy.connections,
            attempts=policy.attempts, last_connected_at=policy.last_connected_at,
            failing_since=policy.failing_since, bytes_sent=self.bytes_sent - sent, tags_sent=self.tags_sent - tags,
            dropped_frames=queue.dropped_frames - frames, dropped_bytes=queue.dropped_bytes - dropped,
            bytes_sent_total=self.bytes_sent, dropped_frames_total=queue.dropped_frames,
            dropped_bytes_total=queue.dropped_bytes, connections_total=policy.connections_total,
            reconnects_total=policy.reconnects_total, tls_verify=config.tls_verify,
            write_interval=config.write_interval,
        )

    # -- the send buffer's owner: writing --------------------------------------------------

    def send_soon(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._ticker.schedule(self, self.config.write_interval, self._phase)

    def send_now(self) -> None:
        self.write()

    def send_message(self, message: EncodedMessage) -> None:
        """write_interval 0, caught up: this tag alone, now (the link takes data: else not live)."""
        link = self._link
        assert link is not None
        admitted = self._admit(link, (message,))
        if len(admitted) == 1 and admitted[0] is message:
            self.bytes_sent += link.send_one(message, self._timeline.map(message))
            self.tags_sent += 1
        elif admitted:
            self._send(link, admitted)

    def set_following(self, following: bool) -> None:
        if following:
            self._ticker.add(self, self.config.write_interval, self._phase)
        else:
            self._ticker.remove(self, self.config.write_interval, self._phase)

    def flush(self) -> None:
        """This target's slot in the write ticker came."""
        self._scheduled = False
        self.write()

    def write_following(self) -> None:
        """The publisher's batch was read (readbatch.py): a target that follows the feed writes it now."""
        if self.buffer.following:
            self.write()

    def write(self) -> None:
        """Write what the send buffer holds for now, in one writelines."""
        link = self._link
        if link is None or link.closing:
            return
        buffer = self.buffer
        messages = buffer.take(link.flow.writable)
        if messages:
            if self._next_link is not None:
                link = self._send_switching(link, messages)
            else:  # _send(), inline: this runs at every write of every target
                primer = link.primer
                faults = primer.faults
                admitted = primer.admit(messages, self.hub.state, self.hub.headers)
                if primer.faults != faults:
                    self._unprimed(link, faults)
                self.bytes_sent += link.send(admitted, self._timeline.map_all(admitted))
                self.tags_sent += len(admitted)
        # Writability again: the write may have paused the transport (pause_writing runs inside it).
        writable = link.flow.writable
        if not (writable and buffer.live):  # a follower that keeps up stays one
            buffer.settle(writable, self._next_link is not None)

    def _send(self, link: TargetLink, messages: Sequence[EncodedMessage]) -> None:
        admitted = self._admit(link, messages)
        self.bytes_sent += link.send(admitted, self._timeline.map_all(admitted))
        self.tags_sent += len(admitted)

    def _admit(self, link: TargetLink, messages: Sequence[EncodedMessage]) -> Sequence[EncodedMessage]:
        """What of `messages` may go out on `link` (primer.py)."""
        primer = link.primer
        faults = primer.faults
        admitted = primer.admit(messages, self.hub.state, self.hub.headers)
        if primer.faults != faults:
            self._unprimed(link, faults)
        return admitted

    def _unprimed(self, link: TargetLink, faults_before: int) -> None:
        """Frames were about to go out on `link` without their track's header: a bug upstream, logged
        once per connection. The primer repairs it (the header in force goes first, at the track's
        next decodable frame); the frames it left out until then are counted as dropped."""
        frames, size = link.primer.take_skipped()
        self.queue.dropped_frames += frames
        self.queue.dropped_bytes += size
        if faults_before == 0:
            self.log.error("target_headers_repaired",
                           reason="a frame was about to go out before its sequence header on this connection;"
                                  " the header in force is sent first, from the next keyframe")

    def frames_dropped(self, newest: TagLike) -> None:
        """Aggregate drop logging (at most a line a second) and the behind-for-too-long cut."""
        queue = self.queue
        behind = self.config.queue.max_behind_seconds
        if queue.behind_for(newest.timestamp) > behind * 1000 and self._link is not None:
            self._link.fail(TargetFailure(
                f"fell behind the live stream for over {behind:g} s; reconnecting to resync"))
            return
        now = self._loop.time()
        if now - self._drop_logged_at >= DROP_LOG_INTERVAL:
            _, _, frames, dropped = self._session_base
            self.log.warning("target_dropping", dropped_frames=queue.dropped_frames - frames,
                             dropped_bytes=queue.dropped_bytes - dropped,
                             new_drops=queue.dropped_frames - self._drops_logged,
                             reason="the platform is not taking data fast enough")
            self._drop_logged_at = now
            self._drops_logged = queue.dropped_frames

    # -- what the link tells --------------------------------------------------------------

    def link_resumed(self, link: TargetLink) -> None:
        """Flow control let go: send what queued up meanwhile."""
        if link is self._link:
            self._loop.call_soon(self._write_if_current, link)

    def _write_if_current(self, link: TargetLink) -> None:
        if link is self._link:
            self.write()

    def link_blocked(self, link: TargetLink) -> None:
        """Paused or failed: queue from now on, under the queue's bound."""
        if link is self._link:
            self.buffer.block()

    def link_message(self, link: TargetLink, level: str, code: str, description: str) -> None:
        # At debug: an error among them fails the link, and its words are then the failure's reason.
        link.lines.line(self.log, "debug", "target_status_message", level=level, code=code, description=description)

    # -- Enhanced RTMP reconnect request: a second link takes over at a keyframe ---------

    def link_reconnect_requested(self, link: TargetLink, tc_url: str | None) -> None:
        if link is not self._link or self._switch_task is not None:
            return
        endpoint, refused = reconnect_endpoint(self.config, tc_url)
        # Where it pointed, host and port only: the tcUrl's path may hold a key.
        self.log.info("target_reconnect_requested", host=refused or endpoint.host,
                      port=endpoint.port if refused is None else None)
        if refused is not None:
            self.log.warning("target_reconnect_refused", host=refused, reconnecting_to=endpoint.host,
                             reason="the host is neither the target's own nor in its reconnect_hosts")
        self._switch_task = asyncio.create_task(self._prepare_switch(endpoint))

    async def _prepare_switch(self, endpoint: Endpoint) -> None:
        try:
            link = await open_link(self.config, endpoint, self, enhanced=self._enhanced())
        except TargetFailure as failure:
            self.log.warning("target_reconnect_failed", reason=str(failure))
            self._switch_task = None
            return
        if self._link is None:
            link.fail(TargetFailure("the session ended before the switch"))
            return
        self._next_link = link
        self.buffer.hold()  # queue again, so that the switch happens in write() at a keyframe
        self._handle(SWITCHED)

    def _send_switching(self, old: TargetLink, messages: list[EncodedMessage]) -> TargetLink:
        """Write up to the first video keyframe on the old link, the rest on the new one."""
        at = next((i for i, m in enumerate(messages) if m.kind == VIDEO and m.is_keyframe), None)
        if at is None:
            self._send(old, messages)
            return old
        if at:
            self._send(old, messages[:at])
        new = self._next_link
        assert new is not None
        self._switch_links(old, new)
        self._send(new, messages[at:])
        return new

    def _switch_links(self, old: TargetLink, new: TargetLink) -> None:
        """Move to the new link: the old one unpublished and closed, the new one primed with headers."""
        closing = asyncio.create_task(old.close_cleanly())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        self._link, self._next_link, self._switch_task = new, None, None
        self._send(new, self.hub.headers())
        self._link_changed.set()
        self.log.info("target_switched", reason="reconnect request honoured at a keyframe")

    # -- the session ---------------------------------------------------------------

    def _enhanced(self) -> bool:
        """Announce Enhanced RTMP in this connect? Only when the stream needs it (or the config says)."""
        return announce_enhanced(self.config.enhanced_rtmp, self.hub.state)

    def _handle(self, event: str, reason: str | None = None) -> Transition:
        """Apply an event to the status policy, log what the log policy says it is worth, and tell the listener."""
        policy = self.policy
        if event == START:  # a new publish session: its counters start from here
            self._session_base = (self.bytes_sent, self.tags_sent, self.queue.dropped_frames, self.queue.dropped_bytes)
        episode = policy.attempts, policy.failing_since  # what a recovery ends
        now = time.time()
        transition = policy.handle(event, now, reason)
        action = self.log_policy.decide(transition, self._loop.time())
        line = log_line(action, transition, policy, episode, now)
        if line is not None:
            level, name, fields = line
            getattr(self.log, level)(name, **fields)
        if self.status_listener is not None:
            self.status_listener(self, transition)
        return transition

    async def _run(self) -> None:
        predecessor, self.predecessor = self.predecessor, None
        if predecessor is not None:
            await predecessor.ended()
        while True:
            await self._session(self._stop)
            if not self._restart:
                return
            self._restart = False

    async def _session(self, stop: asyncio.Event) -> None:
        transition = self._handle(START)
        while True:
            action = transition.action
            if action == CONNECT:
                failure = await self._attempt(stop)
                if failure is None or stop.is_set():
                    transition = self._handle(STOP)
                else:
                    transition = self._handle(REFUSED if failure.refused else FAILED, str(failure))
            elif action == WAIT_RETRY:
                try:
                    await asyncio.wait_for(stop.wait(), transition.retry_in)
                except TimeoutError:
                    pass
                transition = self._handle(STOP if stop.is_set() else RETRY)
            elif action == WAIT_STOP:
                await stop.wait()
                transition = self._handle(STOP)
            else:  # FINISH
                return

    async def _attempt(self, stop: asyncio.Event) -> TargetFailure | None:
        """One connection (plus any switch it goes through); None when stopped cleanly."""
        config = self.config
        try:
            link = await open_link(config, Endpoint(config.host, config.port, config.app, config.tc_url), self,
                                   enhanced=self._enhanced())
        except TargetFailure as failure:
            return failure
        self._link = link
        self._timeline = Timeline()
        self._handle(CONNECTED)
        self.buffer.join()
        self.write()
        try:
            while True:
                current = self._link
                assert current is not None
                waiters: set[asyncio.Future[Any]] = {
                    asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._link_changed.wait()),
                    current.closed,
                }
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        if waiter is not current.closed:
                            waiter.cancel()
                if stop.is_set():
                    await self._finish(current)
                    return None
                if self._link_changed.is_set():
                    self._link_changed.clear()
                    continue
                return current.closed.result()
        finally:
            self.buffer.leave()
            self.buffer.block()
            for other in (self._link, self._next_link):
                if other is not None:
                    other.fail(TargetFailure("session over"))
            if self._switch_task is not None:
                self._switch_task.cancel()
            self._link = self._next_link = None
            self._switch_task = None

    async def _finish(self, link: TargetLink) -> None:
        """The session ends: write what is gathered and queued (waiting for the platform to take
        it, within DRAIN_TIMEOUT), then unpublish and close."""
        self.write()
        self.buffer.leave()
        deadline = self._loop.time() + DRAIN_TIMEOUT
        self.write()
        while self.buffer.backlog and link.sendable:
            if not await link.drained(deadline - self._loop.time()):
                break
            self.write()
        if self.buffer.backlog:
            # Never written: counted, so that bytes in = bytes sent + bytes dropped still holds.
            frames, size = self.buffer.abandon()
            self.log.warning("target_backlog_dropped", dropped_frames=frames, dropped_bytes=size,
                             reason="the platform did not take it before the session ended")
        if not await link.close_cleanly():
            self.log.warning("target_close_timeout")
