"""A target's write path: what its send buffer holds goes out on its current link, and nothing else.

The job is kept apart from the supervisor (supervisor.py) because it runs on a different
clock: the supervisor acts a few times per connection, the writer at every write of every
target, on the publisher's read path (after each batch read, relay/ingest/readbatch.py, the
live stream calls `write_following`) or in the target's slot of the write ticker
(relay/runtime/writetick.py calls `flush`). So it is one
slotted object, the send buffer's owner (relay/fanout/sendbuffer.py), whose `write` reads
only its own attributes: per tag, a timestamp mapping (its Timeline) and a 12-byte header.

It holds what a write needs: the current link (and, during an Enhanced RTMP switch, the
one ready to take over: while it waits, writes go through the switch, switch.py), the
timeline of this connection, the byte and tag counters (over the target's lifetime, and
where this publish session's share starts). Everything written passes through the link's
Primer (relay/fanout/primer.py): a frame about to go out without its header is repaired
and logged once per connection. When the queue drops, a line is logged at most once a
second. At the end of a session it drains what is left, within DRAIN_TIMEOUT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from relay.config import TargetConfig
from relay.fanout.hub import Hub
from relay.fanout.queue import TargetQueue
from relay.fanout.sendbuffer import SendBuffer
from relay.fanout.accel import Timeline
from relay.flv import TagLike
from relay.rtmp.encoded import EncodedMessage
from relay.runtime.logs import get_logger
from relay.runtime.writetick import write_ticker
from relay.targets.link import TargetFailure, TargetLink

DROP_LOG_INTERVAL = 1.0  # seconds between two target_dropping lines of one target
# At the end of a session, how long a paused link may take to accept what is still queued;
# then close_cleanly() has CLOSE_TIMEOUT of its own (shutdown allows 4 s in all).
DRAIN_TIMEOUT = 1.0


class TargetWriter:
    """Writes one target's send buffer to its current link; counts what went out and what was dropped."""

    __slots__ = ("config", "hub", "log", "queue", "buffer", "link", "next_link", "switching", "tags_sent",
                 "bytes_sent", "session_base", "_loop", "_ticker", "_phase", "_scheduled", "_timeline",
                 "_drops_logged", "_drop_logged_at")

    def __init__(self, live_stream: str, config: TargetConfig, hub: Hub[EncodedMessage]) -> None:
        self.config = config
        self.hub = hub
        self.log = get_logger(live_stream=live_stream, target=config.passthrough)
        self.queue: TargetQueue[EncodedMessage] = TargetQueue(config.queue.max_bytes,
                                                              int(config.queue.max_seconds * 1000))
        self.buffer: SendBuffer[EncodedMessage] = SendBuffer(hub, self.queue, self,
                                                             immediate=config.write_interval <= 0)
        self.link: TargetLink | None = None
        self.next_link: TargetLink | None = None  # ready to take over at the next keyframe (switch.py)
        # What write() sends with while next_link waits (switch.py's LinkSwitch.send, set by the switch).
        self.switching: Callable[[TargetLink, list[EncodedMessage]], TargetLink] | None = None
        # Over the target's lifetime; session_base is where this publish session's share starts.
        self.tags_sent = 0
        self.bytes_sent = 0
        self.session_base = (0, 0, 0, 0)  # bytes_sent, tags_sent, dropped frames and bytes at START
        self._loop = asyncio.get_running_loop()
        self._ticker = write_ticker()
        self._phase = self._ticker.phase_for(live_stream)
        self._scheduled = False  # waiting for this target's slot in the ticker
        self._timeline = Timeline()
        self._drops_logged = 0
        self._drop_logged_at = -DROP_LOG_INTERVAL

    # -- the session's side -----------------------------------------------------------------

    def new_session(self) -> None:
        """A publish session starts: its counters start from here."""
        self.session_base = (self.bytes_sent, self.tags_sent, self.queue.dropped_frames, self.queue.dropped_bytes)

    def attach(self, link: TargetLink) -> None:
        """A new connection: a fresh timeline, starting at 0."""
        self.link = link
        self._timeline = Timeline()

    def join(self) -> None:
        """The connection publishes: take the hub's init burst and write it."""
        self.buffer.join()
        self.write()

    def detach(self) -> None:
        """The connection is over: stop taking the feed, fail what is still open."""
        self.buffer.leave()
        self.buffer.block()
        for other in (self.link, self.next_link):
            if other is not None:
                other.fail(TargetFailure("session over"))
        self.link = self.next_link = None

    def resync(self, gap_ms: int) -> None:
        """Continue from the next keyframe, timestamps moving on by `gap_ms`."""
        self.buffer.resync()
        self._timeline.discontinuity(gap_ms)

    async def drain(self, link: TargetLink) -> None:
        """The session ends: write what is gathered and queued, waiting for the platform to take it
        within DRAIN_TIMEOUT; what it did not take is counted as dropped."""
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

    # -- what the link tells (through the supervisor) ------------------------------------------

    def link_resumed(self, link: TargetLink) -> None:
        """Flow control let go: send what queued up meanwhile."""
        if link is self.link:
            self._loop.call_soon(self._write_if_current, link)

    def _write_if_current(self, link: TargetLink) -> None:
        if link is self.link:
            self.write()

    def link_blocked(self, link: TargetLink) -> None:
        """Paused or failed: queue from now on, under the queue's bound."""
        if link is self.link:
            self.buffer.block()

    # -- the send buffer's owner ------------------------------------------------------------

    def send_soon(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._ticker.schedule(self, self.config.write_interval, self._phase)

    def send_now(self) -> None:
        self.write()

    def send_message(self, message: EncodedMessage) -> None:
        """write_interval 0, caught up: this tag alone, now (the link takes data: else not live)."""
        link = self.link
        assert link is not None
        admitted = self._admit(link, (message,))
        if len(admitted) == 1 and admitted[0] is message:
            self.bytes_sent += link.send_one(message, self._timeline.map(message))
            self.tags_sent += 1
        elif admitted:
            self.send(link, admitted)

    def set_following(self, following: bool) -> None:
        if following:
            self._ticker.add(self, self.config.write_interval, self._phase)
        else:
            self._ticker.remove(self, self.config.write_interval, self._phase)

    def flush(self) -> None:
        """This target's slot in the write ticker came."""
        self._scheduled = False
        # A follower that has written all of the feed has nothing to do here: a batched
        # publisher's tags are read just after this slot, and written then (write_following).
        if self.buffer.idle:
            return
        self.write()

    def write_following(self) -> None:
        """The publisher's batch was read (readbatch.py): a target that follows the feed writes it now."""
        if self.buffer.following:
            self.write()

    def write(self) -> None:
        """Write what the send buffer holds for now, in one writelines."""
        link = self.link
        if link is None or link.closing:
            return
        buffer = self.buffer
        messages = buffer.take(link.flow.writable)
        if messages:
            if self.next_link is not None:
                assert self.switching is not None
                link = self.switching(link, messages)
            else:  # send(), inline: this runs at every write of every target
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
            buffer.settle(writable, self.next_link is not None)

    def send(self, link: TargetLink, messages: Sequence[EncodedMessage]) -> None:
        """Send `messages` on `link`, through its primer, and count them."""
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
        if queue.behind_for(newest.timestamp) > behind * 1000 and self.link is not None:
            self.link.fail(TargetFailure(
                f"fell behind the live stream for over {behind:g} s; reconnecting to resync"))
            return
        now = self._loop.time()
        if now - self._drop_logged_at >= DROP_LOG_INTERVAL:
            _, _, frames, dropped = self.session_base
            self.log.warning("target_dropping", dropped_frames=queue.dropped_frames - frames,
                             dropped_bytes=queue.dropped_bytes - dropped,
                             new_drops=queue.dropped_frames - self._drops_logged,
                             reason="the platform is not taking data fast enough")
            self._drop_logged_at = now
            self._drops_logged = queue.dropped_frames
