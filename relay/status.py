"""Frozen snapshots of the relay's state, for the status API, metrics, webhooks and logs.

Built on demand from the running objects (`Relay.snapshot()`, `LiveStream.snapshot()`),
never updated in place, so a reader always sees one consistent moment. Nothing here
holds a stream key: targets are named by their passthrough label and their url without
the key. `to_json()` gives the status API's objects, in Mux's shape and words
(relay/api/web/openapi.yaml describes them).

Counters a person reads per publish session are per session (a session runs from the
publisher's claim of the live stream to the end of its broadcast; a reconnect within the
reconnect window continues it): a target's `bytes_sent`, `tags_sent`, `dropped_frames`,
`dropped_bytes`, `connections`, `reconnects` and `attempts`, and a live stream's
`bytes_received`. They start again from zero when the next session starts. Lifetime
totals (`*_total`, since the relay started, or since a reload made the target) stand
beside those that are worth it; Prometheus counters use them (they never go down).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

IDLE = "idle"
ACTIVE = "active"


def utc_text(when: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC to the second (2026-11-29T18:16:53Z), for log lines people read."""
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class TargetSnapshot:
    """One simulcast target, in Mux's words: idle, starting, broadcasting or errored."""

    passthrough: str
    url: str  # without the key
    status: str
    error_severity: str | None  # "normal" (retrying) or "fatal" (stopped retrying) while errored
    last_error: str | None  # the publish session's latest failure, kept after recovery (keys redacted)
    next_attempt_at: float | None  # Unix time of the next attempt while errored
    connected_since: float | None  # Unix time the current connection began publishing
    reconnects: int  # successful connections after the first one, in this publish session
    connections: int  # successful connections, in this publish session
    attempts: int  # connection attempts since the last success, in this publish session (the current one too)
    last_connected_at: float | None  # Unix time of the last successful connection, in any session
    failing_since: float | None  # Unix time of the first failure since the last success, in this session
    bytes_sent: int  # payload bytes handed to the transport, in this publish session
    tags_sent: int  # in this publish session
    dropped_frames: int  # in this publish session
    dropped_bytes: int  # in this publish session
    bytes_sent_total: int  # over the target's lifetime
    dropped_frames_total: int
    dropped_bytes_total: int
    connections_total: int
    reconnects_total: int  # connections after a session's first, summed over the sessions
    tls_verify: bool
    write_interval: float  # seconds of media gathered into one write

    def to_json(self) -> dict[str, Any]:
        """The simulcast target object of the status API."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class IngestSnapshot:
    """What the publisher sends (an active live stream with a publisher connected)."""

    publisher_address: str | None
    connected_since: float  # Unix time this publisher connected
    uptime: float  # seconds since then
    video_codec: str | None
    video_profile: str | None
    audio_codec: str | None
    audio_profile: str | None
    width: int | None
    height: int | None
    frame_rate: float | None
    audio_sample_rate: int | None
    audio_channels: int | None
    bitrate_kbps: float  # over the last 5 s
    video_bitrate_kbps: float
    audio_bitrate_kbps: float
    keyframe_interval: float | None  # seconds
    bytes_received: int
    encoder: str | None

    def to_json(self) -> dict[str, Any]:
        """The ingest object of the status API."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """healthy, unhealthy (with reasons) or unknown (nobody is publishing)."""

    status: str
    reasons: tuple[tuple[str, str], ...] = ()  # (code, message)

    def to_json(self) -> dict[str, Any]:
        """The health object of the status API."""
        return {"status": self.status, "reasons": [{"code": c, "message": m} for c, m in self.reasons]}


@dataclass(frozen=True, slots=True)
class RecordingSnapshot:
    """The recording of an active live stream (issue #11)."""

    status: str  # idle | recording | errored | finalizing
    path: str | None
    bytes: int
    started_at: float | None
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        """The recording object of the status API."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RecordingReady:
    """A recording's file is final (the `video.live_stream.recording.ready` webhook's news)."""

    live_stream: str
    path: str
    format: str  # flv | mp4
    duration: float  # seconds
    size: int  # bytes
    started_at: float | None  # Unix time the publish session began
    complete: bool  # False: cut short by a disk error, or by a crash (recovered at the next start)

    def to_json(self) -> dict[str, Any]:
        """Plain data, ready for JSON."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LiveStreamSnapshot:
    """One live stream: idle or active, what comes in, and its targets."""

    name: str
    status: str
    reconnect_window: float
    publisher_connected: bool
    awaiting_publisher: bool  # inside the reconnect window
    sessions: int  # publish sessions since the relay started
    active_since: float | None  # Unix time the stream went active
    bytes_received: int  # in this (or the last) publish session
    bytes_received_total: int  # since the relay started
    simulcast_targets: tuple[TargetSnapshot, ...]
    ingest: IngestSnapshot | None
    health: HealthSnapshot
    recording: RecordingSnapshot | None = None
    slate: str = "off"  # the reconnect slate: off | preparing | ready | unavailable | playing (relay/slate/)

    def to_json(self) -> dict[str, Any]:
        """The live stream object of the status API (Mux's live stream, with our additions)."""
        return {
            "id": self.name,
            "name": self.name,
            "status": self.status,
            "reconnect_window": self.reconnect_window,
            "publisher_connected": self.publisher_connected,
            "awaiting_publisher": self.awaiting_publisher,
            "slate": self.slate,
            "sessions": self.sessions,
            "active_since": self.active_since,
            "bytes_received": self.bytes_received,
            "bytes_received_total": self.bytes_received_total,
            "health": self.health.to_json(),
            "ingest": None if self.ingest is None else self.ingest.to_json(),
            "recording": None if self.recording is None else self.recording.to_json(),
            "simulcast_targets": [t.to_json() for t in self.simulcast_targets],
        }

    def target(self, passthrough: str) -> TargetSnapshot | None:
        """The target with this passthrough label."""
        return next((t for t in self.simulcast_targets if t.passthrough == passthrough), None)


@dataclass(frozen=True, slots=True)
class RelaySnapshot:
    """The whole relay at one moment."""

    live_streams: tuple[LiveStreamSnapshot, ...]
    taken_at: float = 0.0  # Unix time

    def to_dict(self) -> dict[str, Any]:
        """Plain data, ready for JSON (the SIGUSR1 log line)."""
        return {"live_streams": [ls.to_json() for ls in self.live_streams]}

    def live_stream(self, name: str) -> LiveStreamSnapshot | None:
        """The live stream with this name."""
        return next((ls for ls in self.live_streams if ls.name == name), None)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """The outcome of a config reload: applied, or refused with every problem."""

    ok: bool
    problems: tuple[str, ...] = ()
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        """The reload answer of the status API."""
        return {"ok": self.ok, "problems": list(self.problems), "summary": self.summary}


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A live stream or one of its targets changed status: what webhooks announce.

    `type` is Mux's event name (video.live_stream.active, video.live_stream.simulcast_target.errored...).
    """

    type: str
    live_stream: LiveStreamSnapshot
    target: TargetSnapshot | None
    at: float  # Unix time
    recording: RecordingReady | None = None  # video.live_stream.recording.ready: the final file
