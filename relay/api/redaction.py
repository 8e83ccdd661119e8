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

The keys are compiled once per set of keys (a dict of whole values, one regex of the long
ones and their percent-encoded forms), not tried one by one per value: 100 live streams
with 6 targets each are 700 keys, and trying each on every value of a full answer held
the event loop 2.5 s.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from relay.config.scrub import MIN_KEY_LENGTH
from relay.secret import Secret

__all__ = ["ScrubbedMetrics", "scrub_values"]


def scrub_values(value: Any, secrets: Iterable[Secret]) -> Any:
    """A copy of the JSON-able `value` whose string values hold no key (dict keys are names: kept)."""
    keys = tuple(secrets)
    return _walk(value, _scrubber(keys)) if keys else value


class _ValueScrubber:
    """One set of keys, compiled: scrub_part of relay/config/scrub.py for every key at once."""

    __slots__ = ("whole", "forms", "pattern")

    def __init__(self, keys: tuple[Secret, ...]) -> None:
        self.whole = {key.reveal(): f"<redacted:{key.fingerprint}>" for key in keys}  # a value that is a key
        forms: dict[str, str] = {}  # a long key, or its percent-encoded form, anywhere in a value
        for key in keys:
            text = key.reveal()
            if len(text) >= MIN_KEY_LENGTH:
                forms[text] = forms[quote(text, safe="")] = f"<redacted:{key.fingerprint}>"
        self.forms = forms
        # Longest first, so a key that contains another key is not half-replaced.
        self.pattern = re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))) \
            if forms else None

    def __call__(self, text: str) -> str:
        label = self.whole.get(text)
        if label is not None:
            return label
        if self.pattern is None:
            return text
        return self.pattern.sub(self._label, text)

    def _label(self, match: re.Match[str]) -> str:
        return self.forms[match.group(0)]


@functools.lru_cache(maxsize=8)
def _scrubber(keys: tuple[Secret, ...]) -> _ValueScrubber:
    """The compiled scrubber of a set of keys; the same keys (a config, the API's live streams) reuse it."""
    return _ValueScrubber(keys)


def _walk(value: Any, scrub: _ValueScrubber) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {name: _walk(item, scrub) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(item, scrub) for item in value]
    return value


class ScrubbedMetrics(Collector):
    """Every family of `registry`, with its label values scrubbed (names and label names as they are)."""

    def __init__(self, registry: CollectorRegistry, secrets: Iterable[Secret]) -> None:
        self._registry = registry
        keys = tuple(secrets)
        self._scrub = _scrubber(keys) if keys else None

    def collect(self) -> Iterator[Any]:
        scrub = self._scrub
        for family in self._registry.collect():
            if scrub is not None:
                family.samples = [_scrub_sample(sample, scrub) for sample in family.samples]
            yield family


def _scrub_sample(sample: Sample, scrub: _ValueScrubber) -> Sample:
    return sample._replace(labels={name: scrub(value) for name, value in sample.labels.items()})
