"""One simulcast target's supervisor: its session task, carrying out the status table.

A target runs one asyncio task per publish session of its live stream, keeping a
TargetLink (link.py) publishing. Each attempt is a fresh RTMP session: a new Timeline
starting at 0, an empty queue and the hub's init burst (metadata, sequence headers,
current GOP), so nothing stale is replayed after a reconnect.

The target is split by job, because they run on different clocks. The supervisor
(here) acts a few times per connection: it opens links, waits, retries and stops, and
keeps the status. Its writer (writer.py: TargetWriter) runs at every write, on the
publisher's read path: it owns the send buffer, the current link and the counters. An
Enhanced RTMP reconnect request (switch.py: LinkSwitch) opens a second link and hands it
to the writer at a keyframe; it asks the supervisor through a small protocol, so that
no module of this package imports this one.

The decisions live in pure code, and this module carries them out:
- status and retry policy (idle / starting / broadcasting / errored, severity,
  refusals, backoff): relay/targets/statustable.py, one event at a time; each
  transition also goes to `status_listener` (the live stream, for its webhooks);
- which transitions are logged, at which level (a failure once, then a summary at
  most every few minutes): relay/targets/logpolicy.py;
- whether a connect announces Enhanced RTMP: relay/fanout/enhanced.py, at each connect.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from relay.config import TargetConfig
from relay.fanout.backoff import Backoff
from relay.fanout.enhanced import announce_enhanced
from relay.fanout.hub import Hub
from relay.fanout.queue import TargetQueue
from relay.fanout.sendbuffer import SendBuffer
from relay.rtmp.encoded import EncodedMessage
from relay.runtime.logs import get_logger
from relay.status import TargetSnapshot
from relay.targets.link import Endpoint, LinkOwner, TargetFailure, TargetLink, open_link
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
from relay.targets.switch import LinkSwitch
from relay.targets.writer import TargetWriter


class Target(LinkOwner):
    """A simulcast target of one live stream: its session loop, status and counters (its writer writes)."""

    def __init__(self, live_stream: str, config: TargetConfig, hub: Hub[EncodedMessage],
                 rand: Callable[[], float] = random.random) -> None:
        self.live_stream = live_stream
        self.config = config
        self.hub = hub
        self.policy = TargetStatus(Backoff(config.reconnect.initial_delay, config.reconnect.max_delay, rand),
                                   config.reconnect.reset_after)
        self.log_policy = TargetLogPolicy()
        self.writer = writer = TargetWriter(live_stream, config, hub)
        self.switch = LinkSwitch(self, self, writer)
        self.log = writer.log
        self.queue: TargetQueue[EncodedMessage] = writer.queue
        self.buffer: SendBuffer[EncodedMessage] = writer.buffer
        # The writer's own method, not a wrapper: the publisher's read path calls it at every batch.
        self.write_following = writer.write_following
        self._loop = asyncio.get_running_loop()
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
            self.log = self.writer.log = get_logger(live_stream=self.live_stream, target=config.passthrough)
        self.config = self.writer.config = config

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
        self.writer.resync(gap_ms)

    def snapshot(self) -> TargetSnapshot:
        """This target's status and counters (this publish session's, and lifetime totals), at this moment."""
        policy, config, queue, writer = self.policy, self.config, self.queue, self.writer
        sent, tags, frames, dropped = writer.session_base
        return TargetSnapshot(
            passthrough=config.passthrough, url=config.url, status=policy.status,
            error_severity=policy.severity, last_error=policy.last_error, next_attempt_at=policy.next_attempt_at,
            connected_since=policy.connected_since, reconnects=policy.reconnects, connections=policy.connections,
            attempts=policy.attempts, last_connected_at=policy.last_connected_at,
            failing_since=policy.failing_since, bytes_sent=writer.bytes_sent - sent, tags_sent=writer.tags_sent - tags,
            dropped_frames=queue.dropped_frames - frames, dropped_bytes=queue.dropped_bytes - dropped,
            bytes_sent_total=writer.bytes_sent, dropped_frames_total=queue.dropped_frames,
            dropped_bytes_total=queue.dropped_bytes, connections_total=policy.connections_total,
            reconnects_total=policy.reconnects_total, tls_verify=config.tls_verify,
            write_interval=config.write_interval,
        )

    # -- what the link tells --------------------------------------------------------------

    def link_resumed(self, link: TargetLink) -> None:
        """Flow control let go: the writer sends what queued up meanwhile."""
        self.writer.link_resumed(link)

    def link_blocked(self, link: TargetLink) -> None:
        """Paused or failed: the writer queues from now on, under the queue's bound."""
        self.writer.link_blocked(link)

    def link_message(self, link: TargetLink, level: str, code: str, description: str) -> None:
        # At debug: an error among them fails the link, and its words are then the failure's reason.
        link.lines.line(self.log, "debug", "target_status_message", level=level, code=code, description=description)

    def link_reconnect_requested(self, link: TargetLink, tc_url: str | None) -> None:
        self.switch.request(link, tc_url)

    # -- what the switch asks (switch.py: SwitchOwner) --------------------------------------

    def enhanced(self) -> bool:
        """Announce Enhanced RTMP in this connect? Only when the stream needs it (or the config says)."""
        return announce_enhanced(self.config.enhanced_rtmp, self.hub.state)

    def switch_ready(self) -> None:
        self._handle(SWITCHED)

    # -- the session ---------------------------------------------------------------

    def _handle(self, event: str, reason: str | None = None) -> Transition:
        """Apply an event to the status policy, log what the log policy says it is worth, and tell the listener."""
        policy = self.policy
        if event == START:  # a new publish session: its counters start from here
            self.writer.new_session()
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
        config, writer = self.config, self.writer
        try:
            link = await open_link(config, Endpoint(config.host, config.port, config.app, config.tc_url), self,
                                   enhanced=self.enhanced())
        except TargetFailure as failure:
            return failure
        writer.attach(link)
        self._handle(CONNECTED)
        writer.join()
        changed = self.switch.changed
        try:
            while True:
                current = writer.link
                assert current is not None
                waiters: set[asyncio.Future[Any]] = {
                    asyncio.ensure_future(stop.wait()), asyncio.ensure_future(changed.wait()), current.closed,
                }
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        if waiter is not current.closed:
                            waiter.cancel()
                if stop.is_set():  # what is left written (within DRAIN_TIMEOUT), then unpublish and close
                    await writer.drain(current)
                    if not await current.close_cleanly():
                        self.log.warning("target_close_timeout")
                    return None
                if changed.is_set():
                    changed.clear()
                    continue
                return current.closed.result()
        finally:
            writer.detach()
            self.switch.cancel()
