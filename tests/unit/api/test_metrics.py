"""Prometheus metrics from a snapshot, read back with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from relay import __version__
from relay.api.history import RateHistory
from relay.api.metrics import RelayCollector, make_registry, render
from relay.api.webhooks import WebhookStats
from relay.status import RelaySnapshot
from tests.unit.test_status import ACTIVE, IDLE


def scrape(snapshot: RelaySnapshot, history: RateHistory | None = None,
           hooks: tuple[WebhookStats, ...] = ()) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    text = render(make_registry(RelayCollector(lambda: snapshot, history or RateHistory(), lambda: hooks))).decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_parse_and_carry_the_snapshot() -> None:
    history = RateHistory()
    history.sample(("studio-a", "YouTube"), 0, 0.0)
    history.sample(("studio-a", "YouTube"), 1_000_000, 2.0)

    m = scrape(RelaySnapshot((ACTIVE, IDLE)), history, (WebhookStats(0, "hooks.example", 3, 10, 2, 1),))

    assert m["relay_build_info"][(("version", __version__),)] == 1
    assert m["relay_live_stream_status"][(("live_stream", "studio-a"), ("status", "active"))] == 1
    assert m["relay_live_stream_status"][(("live_stream", "studio-b"), ("status", "active"))] == 0
    # Counters are lifetime totals (monotonic), never the per-session figures of the API.
    assert m["relay_ingest_received_bytes_total"][(("live_stream", "studio-a"),)] == 3 * 10**7
    assert m["relay_ingest_bitrate_bits_per_second"][(("live_stream", "studio-a"),)] == 4123400
    assert (("live_stream", "studio-b"),) not in m["relay_ingest_bitrate_bits_per_second"]  # idle: no reading
    yt = (("live_stream", "studio-a"), ("target", "YouTube"))
    for state in ("idle", "starting", "broadcasting", "errored"):
        assert m["relay_simulcast_target_status"][(*yt[:1], ("status", state), yt[1])] == (state == "errored")
    assert m["relay_simulcast_target_sent_bytes_total"][yt] == 999_999
    assert m["relay_simulcast_target_reconnects_total"][yt] == 2
    assert m["relay_simulcast_target_connections_total"][yt] == 5
    assert m["relay_simulcast_target_dropped_frames_total"][yt] == 40
    assert m["relay_simulcast_target_dropped_bytes_total"][yt] == 50_000
    assert m["relay_simulcast_target_attempts"][yt] == 4
    assert m["relay_simulcast_target_last_connected_timestamp_seconds"][yt] == 1_799_999_000.0
    twitch = (("live_stream", "studio-b"), ("target", "Twitch"))
    assert twitch not in m["relay_simulcast_target_last_connected_timestamp_seconds"]  # never connected
    assert m["relay_simulcast_target_bitrate_bits_per_second"][yt] == 4_000_000
    assert m["relay_live_stream_publish_sessions_total"][(("live_stream", "studio-a"),)] == 2
    assert m["relay_live_stream_healthy"][(("live_stream", "studio-a"),)] == 0
    problem = m["relay_live_stream_health_problem"]
    assert problem[(("live_stream", "studio-a"), ("reason", "keyframe_interval"))] == 1
    assert problem[(("live_stream", "studio-a"), ("reason", "audio_missing"))] == 0
    hook = (("host", "hooks.example"), ("webhook", "0"))
    assert m["relay_webhook_dropped_events_total"][hook] == 1
    assert m["relay_webhook_queued_events"][hook] == 3
    assert "process_cpu_seconds_total" in m


def test_labels_are_names_never_urls_or_keys() -> None:
    m = scrape(RelaySnapshot((ACTIVE, IDLE)))

    label_names = {name for series in m.values() for labels in series for name, _ in labels}
    assert label_names <= {"live_stream", "target", "status", "reason", "version", "webhook", "host"}
