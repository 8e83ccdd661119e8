"""The last line of defence for answers, metrics and webhook bodies: scrub values, never names.

Keys are never put into these objects in the first place: status snapshots name a
target by its passthrough label and its url without the key, and a target's last error
is scrubbed where it is made (relay/targets/link.py). What is left to do here is a
belt-and-braces pass over the *values* of the structure, before it is serialized:
every string value that is a key is replaced whole, and a key long enough to be told
from ordinary text (MIN_KEY_LENGTH) is replaced wherever it appears in a value
(relay/config/scrub.py). Field names, metric names, label names and JSON syntax are
never touched: scrubbing the serialized text for a 2-letter key "ta" once turned
`{"data": ...}` into `{"da<redacted>...` and renamed metrics, and where the cuts landed
spelled the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from relay.config.scrub import scrub_part
from relay.secret import Secret

__all__ = ["ScrubbedMetrics", "scrub_values"]


def scrub_values(value: Any, secrets: Iterable[Secret]) -> Any:
    """A copy of the JSON-able `value` whose string values hold no key (dict keys are names: kept)."""
    keys = tuple(secrets)
    return _walk(value, keys) if keys else value


def _walk(value: Any, keys: tuple[Secret, ...]) -> Any:
    if isinstance(value, str):
        return scrub_part(value, keys)
    if isinstance(value, dict):
        return {name: _walk(item, keys) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(item, keys) for item in value]
    return value


class ScrubbedMetrics(Collector):
    """Every family of `registry`, with its label values scrubbed (names and label names as they are)."""

    def __init__(self, registry: CollectorRegistry, secrets: Iterable[Secret]) -> None:
        self._registry = registry
        self._keys = tuple(secrets)

    def collect(self) -> Iterator[Any]:
        keys = self._keys
        for family in self._registry.collect():
            if keys:
                family.samples = [_scrub_sample(sample, keys) for sample in family.samples]
            yield family


def _scrub_sample(sample: Sample, keys: tuple[Secret, ...]) -> Sample:
    return sample._replace(labels={name: scrub_part(value, keys) for name, value in sample.labels.items()})
