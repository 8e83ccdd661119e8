"""What a live stream's publishers send, watched: the ingest meter, stream health, byte counts.

One IngestWatch per live stream. Its meter (meter.py) is a hub subscriber like the
targets and measures each publisher connection from its claim; the byte counts are kept
across connections, per publish session (a publisher back inside the reconnect window
continues its session) and since the relay started. `check()` (every 2 s, from
relay/api/sampler.py) logs a stream-health issue once when it begins and once when it
clears (health.py decides what an issue is).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from relay.config import HealthPolicy
from relay.fanout.hub import Hub
from relay.live.health import HEALTHY, UNHEALTHY, UNKNOWN, Episodes, assess
from relay.live.meter import IngestMeter
from relay.live.metertap import IngestSubscriber
from relay.status import HealthSnapshot, IngestSnapshot


class IngestWatch:
    """The meter, health episodes and byte counts of one live stream's ingest."""

    def __init__(self, hub: Hub[Any], log: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self.log = log
        self.meter = IngestMeter(self._loop.time())
        self.tap = IngestSubscriber(self.meter)  # paused while the reconnect slate plays
        hub.join(self.tap)
        self.health = Episodes()
        self.publisher_address: str | None = None
        self.publisher_since = 0.0  # wall clock
        self._bytes_before = 0  # received in earlier publisher connections
        self._session_from = 0  # bytes_received when the current (or last) publish session began

    def connected(self, publisher_address: str | None) -> None:
        """A publisher connection claimed the live stream: measure it from now on."""
        self._bytes_before += self.meter.bytes_received
        self.meter.reset(self._loop.time())
        self.publisher_address = publisher_address
        self.publisher_since = time.time()

    def session_started(self) -> None:
        """A new publish session (not a publisher back inside the reconnect window)."""
        self._session_from = self._bytes_before

    @property
    def bytes_received(self) -> int:
        """Media bytes received from publishers since the relay started."""
        return self._bytes_before + self.meter.bytes_received

    @property
    def session_bytes(self) -> int:
        """Media bytes received in the current (or last) publish session."""
        return self.bytes_received - self._session_from

    def snapshot(self, policy: HealthPolicy, publishing: bool) -> tuple[IngestSnapshot | None, HealthSnapshot]:
        """The ingest and its health at this moment (nothing to say while no publisher is connected)."""
        if not publishing:
            return None, HealthSnapshot(UNKNOWN)
        reading = self.meter.reading(self._loop.time())
        now = time.time()
        ingest = IngestSnapshot(
            publisher_address=self.publisher_address, connected_since=self.publisher_since,
            uptime=round(max(0.0, now - self.publisher_since), 1),
            video_codec=reading.video_codec, video_profile=reading.video_profile,
            audio_codec=reading.audio_codec, audio_profile=reading.audio_profile,
            width=reading.width, height=reading.height, frame_rate=reading.frame_rate,
            audio_sample_rate=reading.audio_sample_rate, audio_channels=reading.audio_channels,
            bitrate_kbps=reading.bitrate_kbps, video_bitrate_kbps=reading.video_bitrate_kbps,
            audio_bitrate_kbps=reading.audio_bitrate_kbps, keyframe_interval=reading.keyframe_interval,
            bytes_received=reading.bytes_received, encoder=reading.encoder,
        )
        issues = assess(reading, policy)
        return ingest, HealthSnapshot(UNHEALTHY if issues else HEALTHY, tuple((i.code, i.message) for i in issues))

    def check(self, policy: HealthPolicy, publishing: bool) -> None:
        """Log each stream-health issue once when it begins and once when it clears."""
        if not publishing:
            self.health.clear()
            return
        issues = assess(self.meter.reading(self._loop.time()), policy)
        started, ended = self.health.update(issues)
        for issue in started:
            self.log.warning("stream_health_warning", reason=issue.code, message=issue.message)
        for code in ended:
            self.log.info("stream_health_recovered", reason=code)
