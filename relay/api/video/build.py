"""An API-made live stream as the relay runs it: a LiveStreamConfig, built with the config's models.

The record (relay/store/records.py) becomes the mapping a live stream has in the YAML
file, with the id as its name, and is validated by `LiveStreamConfig` in a LoadContext
that carries the running config's `target_defaults`, `health` and `recording` (what a YAML
live stream inherits), so every check and every message is the config file's. Every
target is checked, the disabled ones too (they must be valid to be enabled later, and
count towards the six); the live stream runs with its enabled targets only.

A target without a passthrough is labelled with its url's host (the config's default),
or, when another target has that label, with the host and the start of its id.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from relay.api.video.errors import MuxError
from relay.config import LiveStreamConfig, RelayConfig
from relay.config.context import LoadContext
from relay.config.errors import format_loc
from relay.config.messages import describe
from relay.config.values import Invalid, target_url
from relay.store.records import LiveStreamRecord, TargetRecord


def labels(targets: tuple[TargetRecord, ...]) -> list[str]:
    """Each target's label in logs and status: its passthrough, else its url's host (made unique)."""
    given = {t.passthrough for t in targets if t.passthrough}
    found: list[str] = []
    for target in targets:
        if target.passthrough:
            found.append(target.passthrough)
            continue
        try:
            host = target_url(target.url).host
        except Invalid:
            host = "target"
        label = host if host not in given and host not in found else f"{host}-{target.id[:6]}"
        found.append(label)
    return found


def _mapping(record: LiveStreamRecord, targets: list[tuple[TargetRecord, str]]) -> dict[str, Any]:
    return {
        "name": record.id,
        "stream_key": record.stream_key.reveal(),
        "reconnect_window": record.reconnect_window,
        "recording": dict(record.recording),
        "reconnect_slate": dict(record.reconnect_slate),
        "simulcast_targets": [{**t.settings, "url": t.url, "stream_key": t.stream_key.reveal(), "passthrough": label}
                              for t, label in targets],
    }


def _context(config: RelayConfig) -> LoadContext:
    return LoadContext(dict(os.environ), Path(config.state_dir), source="api",
                       target_defaults=config.target_defaults, health=config.health, recording=config.recording,
                       reconnect_slate=config.reconnect_slate)


def running_config(record: LiveStreamRecord, config: RelayConfig) -> LiveStreamConfig:
    """The live stream the relay runs for `record`; MuxError(400) naming each field that is wrong."""
    pairs = list(zip(record.targets, labels(record.targets), strict=True))
    context = _context(config)
    try:
        LiveStreamConfig.model_validate(_mapping(record, pairs), context=context)  # every target, disabled too
        enabled = [(t, label) for t, label in pairs if t.enabled]
        return LiveStreamConfig.model_validate(_mapping(record, enabled), context=context)
    except ValidationError as err:
        raise MuxError(400, [_message(error) for error in err.errors()]) from None


# The reconnect slate's fields as the API names them (Mux's).
_API_NAMES: dict[tuple[str | int, ...], str] = {
    ("reconnect_slate", "image"): "reconnect_slate_url",
    ("reconnect_slate", "enabled"): "use_slate_for_standard_latency"}


def _message(error: Any) -> str:
    loc, text, _ = describe(error, LiveStreamConfig)
    where = _API_NAMES.get(tuple(loc[:2])) or format_loc(loc)
    return f"{where}: {text}" if loc else text
