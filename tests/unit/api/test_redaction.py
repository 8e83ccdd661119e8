"""Scrubbing works on values, never on names: a 2-letter key cannot cut `data` or a metric's name."""

from __future__ import annotations

import json

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from relay.api.redaction import ScrubbedMetrics, scrub_values
from relay.secret import Secret

SHORT = [Secret("ta"), Secret("da"), Secret("a")]
LONG = Secret("a-key-long-enough-to-find-9f0e1d")


def test_names_stay_whole_and_a_value_that_is_a_key_goes() -> None:
    data = {"data": [{"status": "starting", "passthrough": "ta", "url": "rtmp://a.example/app",
                      "last_error": f"refused rtmp://x/app/{LONG.reveal()}", "n": 3, "none": None}]}

    out = scrub_values(data, [*SHORT, LONG])

    item = out["data"][0]
    assert list(out) == ["data"] and list(item) == list(data["data"][0])
    assert item["status"] == "starting" and item["url"] == "rtmp://a.example/app"  # short keys: whole values only
    assert item["passthrough"] == f"<redacted:{Secret('ta').fingerprint}>"
    assert LONG.reveal() not in json.dumps(out) and item["n"] == 3 and item["none"] is None


def test_a_long_key_goes_percent_encoded_too_and_the_longer_of_two_keys_first() -> None:
    inner = Secret("a-key-long-enough-to-find")  # LONG begins with it
    spaced = Secret("a key with spaces, long enough!")
    out = scrub_values({"e": f"rtmp://x/app/{LONG.reveal()} and rtmp://x/app/a%20key%20with%20spaces%2C%20long"
                             f"%20enough%21"}, [inner, LONG, spaced])
    assert out == {"e": f"rtmp://x/app/<redacted:{LONG.fingerprint}> and rtmp://x/app/<redacted:{spaced.fingerprint}>"}


class _Families(Collector):
    def collect(self):  # type: ignore[no-untyped-def]
        family = GaugeMetricFamily("relay_data_status", "a gauge named with the keys in it", labels=["target", "ta"])
        family.add_metric(["ta", "data"], 1.0)
        yield family


def test_metrics_keep_their_names_and_label_names() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families())

    text = generate_latest(ScrubbedMetrics(registry, SHORT)).decode()

    (family,) = text_string_to_metric_families(text)
    (sample,) = family.samples
    assert sample.name == "relay_data_status"
    assert sample.labels == {"target": f"<redacted:{Secret('ta').fingerprint}>", "ta": "data"}
