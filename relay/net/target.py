"""One simulcast target: its session task, its status, and what it sends.

A target runs one asyncio task per publish session of its live stream, trying to keep
a TargetLink (targetlink.py) publishing, with exponential backoff and jitter between
attempts. Each attempt is a fresh RTMP session: a new Timeline starting at 0, an empty
queue and the hub's init burst (metadata, sequence headers, current GOP), so nothing
stale is replayed after a reconnect.

The publisher's read path reaches a target only through `offer()`, which never awaits.
A target that is caught up (nothing queued, its socket taking data) writes the tag at
once: one `writelines` of a 12-byte header and the body shared by every target, which is
all the per-target work a tag costs. Otherwise the tag is queued and one flush per
event-loop iteration writes everything queued. While the socket's buffer is over its
high-water mark the link is paused and the queue's bound and drop policy take over; a
target that stays behind for `max_behind_seconds` is disconnected and reconnects.

Statuses use Mux's words: idle, starting, broadcasting, errored; an errored target has a
severity, `normal` (it retries) or `fatal` (the platform refused the stream key several
times in a row: it waits for the next publish session or a config change).
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
from relay.fanout.timeline import Timeline
from relay.flv import VIDEO, Tag
from relay.logs import get_logger
from relay.net.targetlink import (
    Endpoint,
    LinkOwner,
    TargetFailure,
    TargetLink,
    endpoint_from_tc_url,
    open_link,
)
from relay.rtmp.chunk import EXTENDED, encode_body

IDLE = "idle"
STARTING = "starting"
BROADCASTING = "broadcasting"
ERRORED = "errored"

NORMAL = "normal"
FATAL = "fatal"
FATAL_REFUSALS = 3  # consecutive stream-key refusals before retrying stops
DROP_LOG_INTERVAL = 1.0  # seconds between two target_dropping lines of one target
_WRAP = 1 << 32


class Target(LinkOwner):
    """A simulcast target of one live stream, with its status and counters."""

    def __init__(self, live_stream: str, config: TargetConfig, hub: Hub,
                 rand: Callable[[], float] = random.random) -> None:
        self.live_stream = live_stream
        self.config = config
        self.hub = hub
        self.log = get_logger(live_stream=live_stream, target=config.passthrough)
        self.status = IDLE
        self.reason: str | None = None
        self.severity = NORMAL
        self.next_attempt_at: float | None = None  # wall clock (time.time()) of the next attempt
        self.broadcasting_since: float | None = None  # wall clock
        self.queue = TargetQueue(config.queue.max_bytes, int(config.queue.max_seconds * 1000))
        self.backoff = Backoff(config.reconnect.initial_delay, config.reconnect.max_delay, rand)
        self.sent_tags = 0
        self.sent_bytes = 0
        self.connections = 0
        self._timeline = Timeline()
        self._link: TargetLink | None = None
        self._next_link: TargetLink | None = None  # ready to take over at the next keyframe
        self._switch_task: asyncio.Task[None] | None = None
        self._link_changed = asyncio.Event()
        self._sent_headers: dict[int, bytes] = {}
        self._flush_scheduled = False
        self._direct_link: TargetLink | None = None  # set while caught up: offer() writes at once
        self._loop = asyncio.get_running_loop()
        self._drops_seen = 0
        self._drops_logged = 0
        self._drop_logged_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._restart = False
        self.status_listener: Callable[[Target], None] | None = None  # told of every _set_status (webhooks)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Begin a publish session: connect and keep reconnecting until request_stop()."""
        self._stop = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"target {self.config.passthrough}")
        else:
            self._restart = True  # the previous session is still closing: run again after it

    def request_stop(self) -> None:
        """End the publish session: flush, unpublish, close."""
        self._restart = False
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """True when no session task is running."""
        return self._task is None or self._task.done()

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
        self._leave_direct()  # the queue waits for the new session's keyframe
        self.queue.resync()
        self._timeline.discontinuity(gap_ms)

    # -- the publisher's side ----------------------------------------------------------

    def offer(self, tag: Tag) -> None:
        """Send or queue a tag for this target (called on the publisher's read path; never blocks)."""
        queue = self.queue
        link = self._direct_link
        if link is not None:
            if tag.kind == VIDEO:
                # The queue is bypassed, but must know the stream has video: a later drop
                # then resyncs on a keyframe rather than on any frame.
                queue.has_video = True
            self._send(link, tag)
            link.write_output()
            return
        queue.push(tag)
        if queue.dropped_frames != self._drops_seen:
            self._drops_seen = queue.dropped_frames
            self._on_drops(tag)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _on_drops(self, tag: Tag) -> None:
        """Aggregate drop logging (at most a line a second) and the behind-for-too-long cut."""
        queue = self.queue
        behind_since = queue.behind_since
        limit_ms = self.config.queue.max_behind_seconds * 1000
        if behind_since is not None and (tag.timestamp - behind_since) % _WRAP > limit_ms and self._link:
            self._link.fail(TargetFailure(
                f"fell behind the live stream for over {self.config.queue.max_behind_seconds:g} s; "
                "reconnecting to resync"))
            return
        now = self._loop.time()
        if now - self._drop_logged_at >= DROP_LOG_INTERVAL:
            self.log.warning("target_dropping", dropped_frames=queue.dropped_frames,
                             dropped_bytes=queue.dropped_bytes,
                             new_drops=queue.dropped_frames - self._drops_logged,
                             reason="the platform is not taking data fast enough")
            self._drop_logged_at = now
            self._drops_logged = queue.dropped_frames

    def link_resumed(self, link: TargetLink) -> None:
        """Flow control let go: send what queued up meanwhile."""
        if link is self._link and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def link_blocked(self, link: TargetLink) -> None:
        """Paused or failed: queue from now on, under the queue's bound."""
        if link is self._direct_link:
            self._leave_direct()

    def _leave_direct(self) -> None:
        self._direct_link = None

    def _flush(self) -> None:
        self._flush_scheduled = False
        link = self._link
        if link is None or not link.writable:
            return
        for tag in self.queue.pop_all():
            if self._next_link is not None and tag.kind == VIDEO and tag.is_keyframe:
                link = self._switch_links(link, self._next_link)
            self._send(link, tag)
        link.write_output()
        if link.writable and self._next_link is None and not self.queue.waiting_for_keyframe:
            self._direct_link = link  # caught up: the next tags go straight out

    def _send(self, link: TargetLink, tag: Tag) -> None:
        """Queue one tag on a link's connection, sharing the encoded body with other targets."""
        kind = tag.kind
        if tag.is_header:
            if self._sent_headers.get(kind) == tag.payload:
                return  # the same codec configuration again (a publisher that came back)
            self._sent_headers[kind] = tag.payload
        conn = link.conn
        chunk_size = conn.out_chunk_size
        ts = self._timeline.map(tag)
        wire = tag.wire
        if ts < EXTENDED and isinstance(wire, tuple) and wire[0] == chunk_size:
            length, body = wire[1], wire[2]
        else:
            payload = conn.wire_payload(kind, tag.payload)
            length = len(payload)
            body = encode_body(payload, chunk_size, conn.csid_for(kind), ts)
            if ts < EXTENDED:
                tag.wire = (chunk_size, length, body)  # every other target reuses these bytes
        conn.send_shared(kind, ts, length, body)
        self.sent_tags += 1
        self.sent_bytes += length

    # -- Enhanced RTMP reconnect request: a second link takes over at a keyframe ---------

    def link_reconnect_requested(self, link: TargetLink, tc_url: str | None) -> None:
        if link is not self._link or self._switch_task is not None:
            return
        endpoint = endpoint_from_tc_url(self.config, tc_url)
        self.log.info("target_reconnect_requested", host=endpoint.host, port=endpoint.port)
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
        self._leave_direct()  # queue again, so the switch happens in _flush at a keyframe
        self.connections += 1

    def _switch_links(self, old: TargetLink, new: TargetLink) -> TargetLink:
        """Move to the new link at a keyframe: old one flushed and unpublished, new one primed."""
        old.write_output()
        asyncio.create_task(old.close_cleanly())
        self._link, self._next_link, self._switch_task = new, None, None
        self._sent_headers = {}
        state = self.hub.state
        for header in (state.metadata, state.video_header, state.audio_header):
            if header is not None:
                self._send(new, header)
        self._link_changed.set()
        self.log.info("target_switched", reason="reconnect request honoured at a keyframe")
        return new

    def link_message(self, link: TargetLink, level: str, code: str, description: str) -> None:
        self.log.info("target_status_message", level=level, code=code, description=description)

    # -- the session ---------------------------------------------------------------

    def _enhanced(self) -> bool:
        """Announce Enhanced RTMP in this connect? Only when the stream needs it (or the config says)."""
        return announce_enhanced(self.config.enhanced_rtmp, self.hub.state)

    def _set_status(self, status: str, reason: str | None = None, retry_in: float | None = None) -> None:
        previous = self.status
        self.status, self.reason = status, reason
        self.next_attempt_at = None if retry_in is None else time.time() + retry_in
        self.broadcasting_since = time.time() if status == BROADCASTING else None
        if previous != status or status == ERRORED:
            fields: dict[str, Any] = {"from": previous, "to": status}
            if reason:
                fields["reason"] = reason
            if status == ERRORED:
                fields["severity"] = self.severity
            if retry_in is not None:
                fields["retry_in_s"] = round(retry_in, 2)
            self.log.info("target_status", **fields)
        if self.status_listener is not None:
            self.status_listener(self)

    async def _run(self) -> None:
        while True:
            await self._session(self._stop)
            if not self._restart:
                return
            self._restart = False

    async def _session(self, stop: asyncio.Event) -> None:
        self.backoff.reset()
        self.severity = NORMAL
        refusals = 0
        while not stop.is_set():
            self._set_status(STARTING)
            failure = await self._attempt(stop)
            if failure is None or stop.is_set():
                break
            refusals = refusals + 1 if failure.refused else 0
            if refusals >= FATAL_REFUSALS:
                self.severity = FATAL
                self._set_status(ERRORED, f"{failure}; refused {refusals} times in a row, so no more retries "
                                          "until the next publish session or a config change")
                await stop.wait()
                break
            delay = self.backoff.next_delay()
            self._set_status(ERRORED, str(failure), delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
        self.severity = NORMAL
        self._set_status(IDLE)

    async def _attempt(self, stop: asyncio.Event) -> TargetFailure | None:
        """One connection (plus any switch it goes through); None when stopped cleanly."""
        loop = asyncio.get_running_loop()
        try:
            link = await open_link(self.config, Endpoint(self.config.host, self.config.port, self.config.app,
                                                         self.config.tc_url), self, enhanced=self._enhanced())
        except TargetFailure as failure:
            return failure
        self.connections += 1
        started = loop.time()
        self._link = link
        self._timeline = Timeline()
        self._sent_headers = {}
        self.queue.clear()
        self._set_status(BROADCASTING)
        for tag in self.hub.join(self):
            self.queue.push(tag)
        self._flush()
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
                    self.hub.leave(self)
                    self._direct_link = None
                    self._flush()
                    if not await current.close_cleanly():
                        self.log.warning("target_close_timeout")
                    return None
                if self._link_changed.is_set():
                    self._link_changed.clear()
                    continue
                return current.closed.result()
        finally:
            self.hub.leave(self)
            if loop.time() - started >= self.config.reconnect.reset_after:
                self.backoff.reset()
            for other in (self._link, self._next_link):
                if other is not None:
                    other.fail(TargetFailure("session over"))
            if self._switch_task is not None:
                self._switch_task.cancel()
            self._link = self._next_link = self._direct_link = None
            self._switch_task = None
