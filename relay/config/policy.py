"""The sections that are only bounded numbers and choices: limits, backoff, deadlines, queues, health.

Every number has a floor and a ceiling: a value that passes validation must not
crash the relay later (``1e306`` seconds overflowed a timer; ``0.0001`` s of
backoff meant a thousand TLS handshakes a second). Each field's docstring is
its description in config/example.yaml and config/schema.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from relay.config.errors import fail, problem
from relay.config.fields import FromList, HostName, Section

__all__ = [
    "HealthPolicy", "HttpLimits", "IngestLimits", "QueuePolicy", "ReconnectPolicy", "TargetDefaults", "TargetLimits",
    "Timeouts", "inherit",
]

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


class IngestLimits(Section):
    """Limits that keep peers without a stream key from hurting the relay (port scanners, floods)."""

    max_connections: int = Field(256, ge=1, le=100_000)
    """Ingest connections open at once, in total; more are refused."""
    max_connections_per_address: int = Field(16, ge=1, le=10_000)
    """Ingest connections open at once from one IP address."""
    handshake_timeout: float = Field(10.0, ge=0.5, le=120)
    """Seconds from TCP accept until the RTMP handshake (C0-C2) is done."""
    tls_handshake_timeout: float = Field(10.0, ge=0.5, le=120)
    """Seconds for the TLS handshake of an RTMPS ingest connection."""
    publish_timeout: float = Field(30.0, ge=1, le=600)
    """Seconds from connection open until the peer publishes with a valid key."""
    idle_timeout: float = Field(30.0, ge=1, le=3600)
    """Seconds a publisher may send nothing before it is disconnected."""
    max_chunk_size: int = Field(MIB, ge=128, le=16_777_215)
    """Largest RTMP chunk size (Set Chunk Size) a peer may ask for, in bytes."""
    max_message_size: int = Field(16_777_215, ge=KIB, le=16_777_215)
    """Largest RTMP message (one media frame) accepted, in bytes."""
    max_command_size: int = Field(64 * KIB, ge=KIB, le=16_777_215)
    """Largest command or data message accepted before the peer publishes, in bytes."""
    max_unauthenticated_memory: int = Field(256 * KIB, ge=64 * KIB, le=64 * MIB)
    """Bytes held for a connection that is not publishing yet."""
    max_output_bytes: int = Field(MIB, ge=64 * KIB, le=64 * MIB)
    """Bytes of replies queued to a peer that does not read them; past it, the peer is disconnected."""
    failed_publishes_per_minute: int = Field(10, ge=1, le=10_000)
    """Publishes with a wrong key allowed per IP address and minute; past it, the address is refused
    for a minute (key guessing)."""


class HttpLimits(Section):
    """Limits that keep one HTTP client from taking the status API, metrics and /healthz away
    from everyone else."""

    max_connections: int = Field(64, ge=4, le=10_000)
    """HTTP connections open at once, in total; when full, a newcomer takes the place of the
    oldest idle connection of the address holding the most, or is refused."""
    max_connections_per_address: int = Field(16, ge=1, le=10_000)
    """HTTP connections open at once from one IP address, so that one address cannot fill
    max_connections."""
    failed_sign_ins_per_minute: int = Field(10, ge=1, le=10_000)
    """Wrong tokens (sign-in form or Authorization header) allowed per IP address and minute; past
    it, the address is answered 429 for the rest of the minute (token guessing)."""


class ReconnectPolicy(Section):
    """Backoff after a target fails: doubling from initial_delay up to max_delay, with jitter."""

    initial_delay: float = Field(1.0, ge=0.1, le=3600)
    """Seconds before the first retry after a failure."""
    max_delay: float = Field(30.0, ge=0.1, le=3600)
    """The wait doubles, with jitter, up to this many seconds; at least initial_delay."""
    reset_after: float = Field(60.0, ge=1, le=86_400)
    """Seconds connected after which the wait starts over at initial_delay."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.initial_delay > self.max_delay:
            fail([problem(("initial_delay",), "must not be greater than max_delay")])
        return self


class Timeouts(Section):
    """Deadlines, in seconds, so that a stalled server fails instead of hanging."""

    connect: float = Field(10.0, ge=0.5, le=300)
    """Seconds for the TCP connect."""
    handshake: float = Field(10.0, ge=0.5, le=300)
    """Seconds for the TLS handshake (rtmps), then for the RTMP handshake and connect."""
    publish: float = Field(10.0, ge=0.5, le=300)
    """Seconds for connect, createStream and publish to be answered."""


class QueuePolicy(Section):
    """Bounds of a target's queue before it drops frames or reconnects."""

    max_seconds: float = Field(4.0, ge=0.5, le=60)
    """Seconds of media a slow target may have queued before frames are dropped."""
    max_bytes: int = Field(16 * MIB, ge=64 * KIB, le=GIB)
    """The same bound in bytes."""
    max_behind_seconds: float = Field(30.0, ge=1, le=3600)
    """Seconds behind the live stream after which the target is reconnected and resynced."""


class TargetLimits(Section):
    """Limits that keep a hostile or broken platform server from hurting the relay: what a target's
    server sends back is untrusted, like what a stranger sends the ingest."""

    max_chunk_size: int = Field(MIB, ge=128, le=16_777_215)
    """Largest RTMP chunk size (Set Chunk Size) the platform may ask for, in bytes."""
    max_message_size: int = Field(64 * KIB, ge=KIB, le=16_777_215)
    """Largest RTMP message (a command or status: a platform sends no media) accepted from the
    platform, in bytes."""
    max_output_bytes: int = Field(MIB, ge=64 * KIB, le=64 * MIB)
    """Bytes of replies (acknowledgements, ping answers) queued for a platform that does not read
    them; past it, the target fails and reconnects."""
    log_lines_per_second: int = Field(10, ge=1, le=10_000)
    """Log lines a second about what one target's platform says (its status messages); the rest
    are counted in one summary line a second."""


class HealthPolicy(Section):
    """When the relay warns that a live stream is unhealthy (status, logs, webhooks)."""

    max_keyframe_interval: float = Field(4.0, ge=0.5, le=60)
    """Warn when keyframes are further apart than this many seconds. Platforms want one every 2 s
    and never over 4 s: set the encoder's keyframe interval to 2 s."""
    media_timeout: float = Field(5.0, ge=1, le=600)
    """Seconds without audio, or without video, after which that track is reported missing."""
    bitrate_collapse_ratio: float = Field(0.25, ge=0.01, le=1)
    """Warn when the bitrate over 5 s falls under this fraction of the last minute's mean."""
    max_bitrate_kbps: int | None = Field(None, ge=1, le=1_000_000)
    """Warn above this bitrate (kbit/s, audio and video); null: no ceiling. Platforms advise
    about 4,000 kbit/s at 720p."""


class TargetDefaults(Section):
    """Policies of every simulcast target; a target may override each field under the same name."""

    reconnect: ReconnectPolicy = ReconnectPolicy()
    """How a target retries after a failure."""
    timeouts: Timeouts = Timeouts()
    """Deadlines of each step of a target's connection."""
    queue: QueuePolicy = QueuePolicy()
    """A target's bounded queue."""
    limits: TargetLimits = TargetLimits()
    """What the platform's server may make the relay hold, do or log."""
    write_interval: float = Field(0.1, ge=0, le=0.1)
    """Seconds of media gathered into one write to a target: fewer, larger writes cost much less
    CPU, and platforms buffer seconds of video, so a tag waits at most this long; 0 writes each
    frame at once. While every target of a live stream gathers, its publisher is also read only
    once per interval (the shortest of theirs)."""
    enhanced_rtmp: Literal["auto", "always", "never"] = "auto"
    """Announce Enhanced RTMP (HEVC, AV1) to the target: auto = when the publisher's stream uses it;
    never = for servers that cannot parse the announcement."""
    reconnect_hosts: Annotated[tuple[HostName, ...], FromList] = ()
    """Host names an Enhanced RTMP reconnect request may move the target to, besides the target's
    own host; a request to any other host is refused (and logged)."""


def inherit(data: Any, defaults: Mapping[str, object]) -> Any:
    """``data`` with each field of ``defaults`` it does not set taken from there.

    A section the data sets partly (``reconnect: {max_delay: 60}``) is merged
    field by field over the default section.
    """
    if not isinstance(data, dict):
        return data
    merged = dict(data)
    for name, default in defaults.items():
        if name not in merged:
            merged[name] = default
        elif isinstance(default, Section) and isinstance(merged[name], dict):
            merged[name] = {**dict(default), **merged[name]}
    return merged
