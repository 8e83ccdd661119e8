"""Prometheus metrics: a collector that reads one status snapshot per scrape.

Nothing is counted on the media path for metrics: the counters already exist (targets
count what they send and drop, the ingest meter what arrives), and the collector turns
the snapshot into metric families when Prometheus asks. A scrape costs the same an hour
or a month into a show. Labels are live stream names and passthrough labels, never keys.

Counters are the snapshots' lifetime totals (`*_total`), never the per-session figures the
API shows beside them: a Prometheus counter only goes up (rate() reads a drop as a restart).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from relay import __version__
from relay.live.health import REASON_CODES
from relay.api.history import RateHistory
from relay.api.webhooks import WebhookStats
from relay.status import RelaySnapshot

TARGET_STATES = ("idle", "starting", "broadcasting", "errored")
LIVE_STREAM_STATES = ("idle", "active")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class RelayCollector(Collector):
    """Metric families from `snapshot()` (and the bitrate history and webhook counters)."""

    def __init__(self, snapshot: Callable[[], RelaySnapshot], history: RateHistory,
                 webhooks: Callable[[], tuple[WebhookStats, ...]]) -> None:
        self._snapshot = snapshot
        self._history = history
        self._webhooks = webhooks

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        info = InfoMetricFamily("relay_build", "simulcast-relay version")
        info.add_metric([], {"version": __version__})
        yield info

        ls = ["live_stream"]
        status = GaugeMetricFamily("relay_live_stream_status", "1 for the live stream's current status",
                                   labels=[*ls, "status"])
        sessions = CounterMetricFamily("relay_live_stream_publish_sessions", "Publish sessions started",
                                       labels=ls)
        received = CounterMetricFamily("relay_ingest_received_bytes", "Media bytes received from publishers",
                                       labels=ls)
        bitrate = GaugeMetricFamily("relay_ingest_bitrate_bits_per_second",
                                    "Incoming bitrate over the last 5 s", labels=ls)
        keyframes = GaugeMetricFamily("relay_ingest_keyframe_interval_seconds",
                                      "Stream time between the last two keyframes", labels=ls)
        fps = GaugeMetricFamily("relay_ingest_frame_rate", "Video frames per second over the last 5 s",
                                labels=ls)
        uptime = GaugeMetricFamily("relay_ingest_uptime_seconds", "Seconds since the publisher connected",
                                   labels=ls)
        healthy = GaugeMetricFamily("relay_live_stream_healthy",
                                    "1 while the incoming stream is healthy, 0 while not (absent when idle)",
                                    labels=ls)
        problem = GaugeMetricFamily("relay_live_stream_health_problem", "1 for each current health problem",
                                    labels=[*ls, "reason"])
        tl = ["live_stream", "target"]
        t_status = GaugeMetricFamily("relay_simulcast_target_status", "1 for the target's current status",
                                     labels=[*tl, "status"])
        t_sent = CounterMetricFamily("relay_simulcast_target_sent_bytes", "Media bytes sent to the target",
                                     labels=tl)
        t_rate = GaugeMetricFamily("relay_simulcast_target_bitrate_bits_per_second",
                                   "Bitrate sent to the target over the last 2 s", labels=tl)
        t_conn = CounterMetricFamily("relay_simulcast_target_connections", "Connections made to the target",
                                     labels=tl)
        t_reconn = CounterMetricFamily("relay_simulcast_target_reconnects",
                                       "Connections made after the first of each publish session", labels=tl)
        t_frames = CounterMetricFamily("relay_simulcast_target_dropped_frames",
                                       "Frames dropped because the target was not keeping up", labels=tl)
        t_bytes = CounterMetricFamily("relay_simulcast_target_dropped_bytes", "Bytes of those frames", labels=tl)
        t_attempts = GaugeMetricFamily("relay_simulcast_target_attempts",
                                       "Connection attempts since the last success in this publish session",
                                       labels=tl)
        t_last = GaugeMetricFamily("relay_simulcast_target_last_connected_timestamp_seconds",
                                   "Unix time of the target's last successful connection (absent before one)",
                                   labels=tl)
        for live in snap.live_streams:
            name = live.name
            for state in LIVE_STREAM_STATES:
                status.add_metric([name, state], 1.0 if live.status == state else 0.0)
            sessions.add_metric([name], live.sessions)
            received.add_metric([name], live.bytes_received_total)
            if live.ingest is not None:
                bitrate.add_metric([name], round(live.ingest.bitrate_kbps * 1000))
                uptime.add_metric([name], live.ingest.uptime)
                if live.ingest.keyframe_interval is not None:
                    keyframes.add_metric([name], live.ingest.keyframe_interval)
                if live.ingest.frame_rate is not None:
                    fps.add_metric([name], live.ingest.frame_rate)
                healthy.add_metric([name], 0.0 if live.health.reasons else 1.0)
                current = {code for code, _ in live.health.reasons}
                for code in REASON_CODES:
                    problem.add_metric([name, code], 1.0 if code in current else 0.0)
            for target in live.simulcast_targets:
                labels = [name, target.passthrough]
                for state in TARGET_STATES:
                    t_status.add_metric([*labels, state], 1.0 if target.status == state else 0.0)
                t_sent.add_metric(labels, target.bytes_sent_total)
                t_rate.add_metric(labels, round((self._history.latest((name, target.passthrough)) or 0.0) * 1000))
                t_conn.add_metric(labels, target.connections_total)
                t_reconn.add_metric(labels, target.reconnects_total)
                t_frames.add_metric(labels, target.dropped_frames_total)
                t_bytes.add_metric(labels, target.dropped_bytes_total)
                t_attempts.add_metric(labels, target.attempts)
                if target.last_connected_at is not None:
                    t_last.add_metric(labels, target.last_connected_at)
        yield from (status, sessions, received, bitrate, keyframes, fps, uptime, healthy, problem,
                    t_status, t_sent, t_rate, t_conn, t_reconn, t_frames, t_bytes, t_attempts, t_last)

        wl = ["webhook", "host"]
        w_done = CounterMetricFamily("relay_webhook_delivered_events", "Events the receiver accepted", labels=wl)
        w_fail = CounterMetricFamily("relay_webhook_failed_attempts", "Delivery attempts that failed", labels=wl)
        w_drop = CounterMetricFamily("relay_webhook_dropped_events", "Events dropped from a full queue",
                                     labels=wl)
        w_queue = GaugeMetricFamily("relay_webhook_queued_events", "Events waiting for delivery", labels=wl)
        for hook in self._webhooks():
            labels = [str(hook.index), hook.host]
            w_done.add_metric(labels, hook.delivered)
            w_fail.add_metric(labels, hook.failed_attempts)
            w_drop.add_metric(labels, hook.dropped)
            w_queue.add_metric(labels, hook.queued)
        yield from (w_done, w_fail, w_drop, w_queue)


def make_registry(collector: RelayCollector) -> CollectorRegistry:
    """A registry of its own (not the global one): the relay's families plus process CPU and memory."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry


def render(registry: Collector) -> bytes:
    """The Prometheus text exposition of everything in `registry`."""
    return generate_latest(registry)
