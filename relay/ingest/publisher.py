"""One ingest connection: publishers (OBS, ffmpeg...) connect here and publish on a stream key.

The connection is the transport's side; what the peer says is its session's
(session.py): bytes fed to the sans-I/O ServerConnection, connect and publish answered,
media handed to the live stream's hub. Nothing on this path awaits a target. Each
decision is made elsewhere and carried out here:
- who may connect at all (admission.py): refused at accept, with no reply;
- how input reaches the core (intake.py): a stranger's in slices within the loop's budget
  (workbudget.py), a publisher's whole, read once per write interval (readbatch.py);
- which deadline applies and what passing it means (deadlines.py): one timer, armed when
  the connection's phase changes, never per read or per tag;
- the way out (replyflow.py): replies within a budget, a peer that does not read closed,
  a closed connection given a grace to flush its last answer.

Until a peer publishes with a valid key it is a stranger, and the port is on the
internet. Every limit comes from the config's `server.limits` (read when the connection
opens, so a reload applies to new connections); memory and work per read are bounded by
the RTMP core, which gets the limits too. A peer that breaks the protocol has its
connection closed and one log line written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from relay.config import IngestLimits
from relay.addresses import address_key
from relay.ingest.admission import Admission, PeerLogBudget
from relay.ingest.deadlines import DeadlineState, expired, next_deadline
from relay.ingest.intake import Intake
from relay.ingest.replyflow import ReplyFlow
from relay.ingest.session import IngestSession
from relay.live.stream import LiveStream
from relay.runtime.workbudget import IterationBudget
from relay.rtmp.server import ServerConnection
from relay.rtmp.states import HANDSHAKE


@dataclass(eq=False)
class IngestSettings:
    """What every ingest connection shares; a reload replaces `app` and `limits` for new connections."""

    app: str
    limits: IngestLimits
    find: Callable[[str], LiveStream | None]
    admission: Admission
    log_budget: PeerLogBudget
    budget: IterationBudget = field(default_factory=IterationBudget)
    connections: set[IngestProtocol] = field(default_factory=set)


def new_server_connection(limits: IngestLimits) -> ServerConnection:
    """The sans-I/O connection of one publisher, bounded by the config's limits."""
    return ServerConnection(
        max_chunk_size=limits.max_chunk_size,
        max_message_size=limits.max_message_size,
        max_command_size=limits.max_command_size,
        max_unauthenticated_memory=limits.max_unauthenticated_memory,
        max_output_bytes=limits.max_output_bytes,
    )


class IngestProtocol(asyncio.Protocol):
    """One publisher connection (plain TCP, or TLS after tlsgate's handshake)."""

    def __init__(self, settings: IngestSettings, *, accepted_at: float | None = None,
                 admitted_address: str | None = None) -> None:
        self.settings = settings
        self.limits = settings.limits
        self.loop = asyncio.get_running_loop()
        now = self.loop.time()
        # RTMPS: the gate took the TCP connection earlier and counted it in already.
        self.accepted_at = now if accepted_at is None else accepted_at
        self.address = admitted_address
        self._admitted = admitted_address is not None
        self.transport: asyncio.Transport | None = None
        self.flow: ReplyFlow | None = None
        self.peer = "?"
        self.closing = False
        # Neither holds a reference to this connection: it is passed to them.
        self.session = IngestSession(settings, new_server_connection(self.limits))
        self.intake = Intake(settings.budget, self.loop)
        self._backlog = self.intake.backlog  # read and not yet fed to the core (a stranger's)
        self.last_data = now
        self._handshake_from = float("inf")  # set when the transport is made
        self._publish_from = self.accepted_at  # and again when the publisher unpublishes
        self.timer: asyncio.TimerHandle | None = None
        # Set by the RTMPS gate while the TLS handshake runs: how to end it if evicted (admission.py).
        self.on_evict: Callable[[], None] | None = None

    @property
    def live(self) -> LiveStream | None:
        """The live stream it publishes to (None: a stranger)."""
        return self.session.live

    # -- transport callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        transport = cast(asyncio.Transport, transport)
        if self.closing:
            return  # a TLS connection that was lost before it was handed over
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if peer else "?"
        self.peer = self.session.peer = f"{host}:{peer[1]}" if peer else "?"
        if not self._admitted:
            self.address = address_key(host)
            if not self.settings.admission.admit(self.address, self):
                self.closing = True
                transport.abort()  # refused: no handshake, no reply, no log line of its own
                return
            self._admitted = True
        self.transport = self.intake.transport = transport
        # For RTMPS, the RTMP handshake's deadline starts when the TLS handshake is done.
        self._handshake_from = self.loop.time()
        self.flow = ReplyFlow(transport, self.limits.max_output_bytes, self.loop)
        self.settings.connections.add(self)
        self.arm()

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.closing:
            return
        self.last_data = self.loop.time()
        session = self.session
        live = session.live
        if live is not None and not self._backlog:
            session.feed(self, data)  # a publisher: all of it, now
            batch = session.batch
            if batch is not None and session.live is live and not self.closing:
                interval = live.read_interval
                if batch.after_read(len(data), interval, live.read_phase):
                    live.read_batch_done(interval)
            return
        self.intake.add(self, data)  # a stranger: in slices, within the loop's budget

    def feed(self, data: bytes | memoryview) -> None:
        """Bytes to the session (the intake's way in)."""
        self.session.feed(self, data)

    def pause_batch(self) -> None:
        self.intake.hold()

    def resume_batch(self) -> None:
        self.intake.release()

    def pause_writing(self) -> None:
        if self.flow is not None:
            self.flow.pause()
            # Stop reading too: a peer that does not read must not make us produce more replies.
            self.intake.pause("replies")
            self.arm()

    def resume_writing(self) -> None:
        if self.flow is not None and not self.closing:
            self.flow.resume()
            self.intake.resume("replies")
            self.write()
            self.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.flow is not None:
            self.flow.cancel()
        self.release_admission()
        self.intake.close()
        if self.transport is None:
            return  # refused at admission, or a TLS connection lost before it was handed over
        self.settings.connections.discard(self)
        # No FCUnpublish/deleteStream first: the publisher may come back (reconnect window).
        self.session.release(self, "connection closed" if exc is None else f"connection lost: {exc}", clean=False)

    def release_admission(self) -> None:
        """Count this connection out of the admission limits (once, whoever calls first)."""
        if self._admitted and self.address is not None:
            self._admitted = False
            self.settings.admission.release(self.address, self)

    def evict(self) -> None:
        """Admission counted this stranger out to make room for a newcomer: close it now."""
        self._admitted = False
        if self.on_evict is not None:
            self.on_evict()  # still in its TLS handshake: the gate ends it
        if self.transport is not None and not self.closing:
            self.end(abort=True)

    # -- deadlines (deadlines.py decides) ---------------------------------------------

    def _deadlines(self) -> DeadlineState:
        flow, intake = self.flow, self.intake
        # A peer is silent only while we read it: while we hold its input (a batch, the loop's
        # budget, its unread replies), and until we read again, its silence is ours. On a busy
        # machine a batch's resume comes late, and a publisher must not be cut for that.
        held = intake.paused_for or intake.held
        heard = self.loop.time() if held else max(self.last_data, intake.reading_since)
        return DeadlineState(handshaking=self.session.conn.state == HANDSHAKE, publishing=self.live is not None,
                             handshake_from=self._handshake_from, publish_from=self._publish_from,
                             last_data=heard, paused_since=None if flow is None else flow.paused_since)

    def arm(self) -> None:
        """(Re)arm the one timer at the earliest deadline that applies now."""
        if self.closing:
            return
        when = next_deadline(self._deadlines(), self.limits).at
        if self.timer is not None:
            if self.timer.when() == when:
                return
            self.timer.cancel()
        self.timer = self.loop.call_at(when, self._check_deadlines)

    def unpublished(self) -> None:
        """The publisher stopped its stream: it has `publish_timeout` to publish again."""
        self._publish_from = self.loop.time()
        self.arm()

    def _check_deadlines(self) -> None:
        """Close connections that never publish, publishers that went silent, peers that stopped reading."""
        self.timer = None
        if self.closing:
            return
        timeout = expired(self._deadlines(), self.limits, self.loop.time())
        if timeout is None:
            self.arm()
            return
        self.session.warn(timeout.event, reason=timeout.reason)
        self.end(abort=True)

    # -- output and closing (replyflow.py) -----------------------------------------------

    def write(self) -> None:
        """Send what the core has queued for the peer; close a peer whose replies are over budget."""
        flow = self.flow
        if flow is None:
            return
        queued = flow.send(self.session.conn)
        if queued is not None:
            self.session.warn("ingest_peer_not_reading", queued_bytes=queued, max_output_bytes=flow.max_output_bytes)
            self.end(abort=True)

    def end(self, abort: bool = False) -> None:
        """Close: at once, or after the last answer is flushed (within replyflow's grace)."""
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.flow is not None:
            self.flow.close(abort)

    def cut_off(self, reason: str) -> None:
        """End this publisher's session now, without a reconnect window (shutdown, revoked key, removed stream)."""
        self.session.release(self, reason, clean=True)
        self.end()

    def close(self) -> None:
        """Shut this connection (daemon shutdown)."""
        self.cut_off("relay shutting down")
