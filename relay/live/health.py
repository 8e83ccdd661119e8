"""Stream health: is what the publisher sends what the platforms want?

`assess()` turns an `IngestReading` and the live stream's health policy into the
issues of that moment (pure: the same inputs always give the same answer).
`Episodes` remembers which issues are already known, so the glue warns once when an
issue starts and once when it clears, not on every check.

The thresholds are the platforms' advice: a keyframe every 2 s and never over 4 s;
audio and video both present; a bitrate that neither collapses (a failing uplink)
nor exceeds the configured ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from relay.live.meter import IngestReading

HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
UNKNOWN = "unknown"  # nobody is publishing

KEYFRAME_INTERVAL = "keyframe_interval"
VIDEO_MISSING = "video_missing"
AUDIO_MISSING = "audio_missing"
BITRATE_COLLAPSE = "bitrate_collapse"
BITRATE_CEILING = "bitrate_over_ceiling"
REASON_CODES = (KEYFRAME_INTERVAL, VIDEO_MISSING, AUDIO_MISSING, BITRATE_COLLAPSE, BITRATE_CEILING)


class Policy(Protocol):
    """The health thresholds (the config's HealthPolicy has these fields)."""

    @property
    def max_keyframe_interval(self) -> float: ...
    @property
    def media_timeout(self) -> float: ...
    @property
    def bitrate_collapse_ratio(self) -> float: ...
    @property
    def max_bitrate_kbps(self) -> int | float | None: ...


@dataclass(frozen=True, slots=True)
class HealthIssue:
    """One thing wrong with the incoming stream: a stable code and a sentence for people."""

    code: str
    message: str


def assess(reading: IngestReading, policy: Policy) -> tuple[HealthIssue, ...]:
    """The issues of the stream now; empty when it is healthy."""
    issues: list[HealthIssue] = []
    max_gop = policy.max_keyframe_interval
    worst_gap = max(reading.keyframe_interval or 0.0, reading.since_keyframe or 0.0)
    if reading.has_video and reading.since_video < policy.media_timeout and worst_gap > max_gop:
        issues.append(HealthIssue(KEYFRAME_INTERVAL, (
            f"keyframes arrive {worst_gap:.1f} s apart (over {max_gop:g} s); set the encoder's "
            "keyframe interval to 2 s")))
    if reading.since_video >= policy.media_timeout:
        issues.append(HealthIssue(VIDEO_MISSING, f"no video for {reading.since_video:.0f} s"))
    if reading.since_audio >= policy.media_timeout:
        issues.append(HealthIssue(AUDIO_MISSING, f"no audio for {reading.since_audio:.0f} s"))
    mean = reading.minute_bitrate_kbps
    if mean is not None and mean > 0 and reading.bitrate_kbps < mean * policy.bitrate_collapse_ratio:
        issues.append(HealthIssue(BITRATE_COLLAPSE, (
            f"bitrate fell to {reading.bitrate_kbps:.0f} kbit/s over 5 s, from a mean of {mean:.0f} kbit/s "
            "over the last minute")))
    ceiling = policy.max_bitrate_kbps
    if ceiling is not None and reading.duration >= 5 and reading.bitrate_kbps > ceiling:
        issues.append(HealthIssue(BITRATE_CEILING, (
            f"bitrate {reading.bitrate_kbps:.0f} kbit/s is over the ceiling of {ceiling:g} kbit/s")))
    return tuple(issues)


class Episodes:
    """Which issues are ongoing; `update()` says which started and which ended."""

    def __init__(self) -> None:
        self.current: dict[str, HealthIssue] = {}

    def update(self, issues: tuple[HealthIssue, ...]) -> tuple[list[HealthIssue], list[str]]:
        """(issues that began now, codes of issues that are over)."""
        now = {issue.code: issue for issue in issues}
        started = [issue for code, issue in now.items() if code not in self.current]
        ended = [code for code in self.current if code not in now]
        self.current = now
        return started, ended

    def clear(self) -> list[str]:
        """The session ended: every ongoing issue is over (their codes)."""
        ended = list(self.current)
        self.current = {}
        return ended
