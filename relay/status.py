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
    error_severity: str | None  # "normal" (retrying) or "fatal" (stopped retrying) while errored
    last_error: str | None  # why the latest attempt or connection failed (keys redacted)
    next_attempt_at: float | None  # Unix time of the next attempt while errored
    connected_since: float | None  # Unix time the current connection began publishing
    reconnects: int  # successful connections after the first one, over the live stream's lifetime
    connections: int  # successful connections
    bytes_sent: int  # payload bytes handed to the transport
    tags_sent: int
    dropped_frames: int
    dropped_bytes: int
    tls_verify: bool
    write_interval: float  # seconds of media gathered into one write


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
