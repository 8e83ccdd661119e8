"""Frozen snapshots of the relay's state, for the status API, metrics and tests.

Built on demand from the running objects (app.py), never updated in place, so a reader
always sees one consistent moment. Nothing here holds a stream key: targets are named by
their passthrough label and their url without the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TargetSnapshot:
    """One simulcast target, in Mux's words: idle, starting, broadcasting or errored."""

    passthrough: str
    url: str  # without the key
    status: str
    reason: str | None
    severity: str
    next_attempt_at: float | None  # Unix time of the next attempt while errored
    broadcasting_since: float | None
    connections: int
    sent_tags: int
    sent_bytes: int
    dropped_frames: int
    dropped_bytes: int
    tls_verify: bool


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
    """One live stream: idle or active, and its targets."""

    name: str
    status: str
    publisher_connected: bool
    awaiting_publisher: bool  # inside the reconnect window
    sessions: int
    simulcast_targets: tuple[TargetSnapshot, ...]


@dataclass(frozen=True, slots=True)
class RelaySnapshot:
    """The whole relay at one moment."""

    live_streams: tuple[LiveStreamSnapshot, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data, ready for JSON."""
        return asdict(self)
