"""Mux's live stream and simulcast target objects, from a record (or a YAML live stream) and a snapshot.

Field names and status words are Mux's, so that its SDKs read them into their models:
a live stream is `idle`, `active` or `disabled`; a target `idle`, `starting`,
`broadcasting` or `errored` (a disabled target is `idle`, with `enabled: false`). Beyond
Mux: `source` (`api`, or `config` for a live stream of the config file, read-only here),
a target's `enabled` and `last_error`, and the live stream's `recording` section. Mux's
`use_slate_for_standard_latency` and `reconnect_slate_url` show the reconnect slate the live
stream runs with (its own fields over the top-level `reconnect_slate`); the image as a
`file://` URL, null for the built-in card.

No object holds a target's stream key. The live stream's own key is added by the routes,
and only for a caller with write permission.

A live stream of the config file has its name as id; each of its targets the first 32 hex
digits of a SHA-256 of the live stream's name and the target's label (stable across restarts).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from relay.config import LiveStreamConfig
from relay.config.slate import SlateConfig
from relay.status import LiveStreamSnapshot, TargetSnapshot
from relay.store.records import LiveStreamRecord


def yaml_target_id(live_stream: str, label: str) -> str:
    """The id of a config-file target."""
    return hashlib.sha256(f"{live_stream}\0{label}".encode()).hexdigest()[:32]


def _target(target_id: str, label: str, url: str, enabled: bool, snap: TargetSnapshot | None) -> dict[str, Any]:
    found: dict[str, Any] = {"id": target_id, "passthrough": label, "url": url, "enabled": enabled,
                             "status": snap.status if snap is not None and enabled else "idle"}
    if snap is not None and enabled:
        if snap.error_severity is not None:
            found["error_severity"] = snap.error_severity
        found["last_error"] = snap.last_error
    return found


def _recording(section: dict[str, Any], enabled: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {"recording": section}
    if enabled:
        fields["new_asset_settings"] = {}
    return fields


def _slate(enabled: bool, image: str | None) -> dict[str, Any]:
    return {"use_slate_for_standard_latency": enabled,
            "reconnect_slate_url": None if image is None else Path(os.path.abspath(image)).as_uri()}


def api_live_stream(record: LiveStreamRecord, labels: list[str], snap: LiveStreamSnapshot | None,
                    slate: SlateConfig) -> dict[str, Any]:
    """An API-made live stream as Mux shows one (without its key); `slate`: the top-level reconnect_slate."""
    targets = [_target(t.id, label, t.url, t.enabled, None if snap is None else snap.target(label))
               for t, label in zip(record.targets, labels, strict=True)]
    found: dict[str, Any] = {
        "id": record.id,
        "created_at": str(record.created_at),
        "status": "disabled" if not record.enabled else (snap.status if snap is not None else "idle"),
        "reconnect_window": record.reconnect_window,
        "latency_mode": "standard",
        "playback_ids": [],
        "recent_asset_ids": [],
        "simulcast_targets": targets,
        "source": "api",
        **_recording({"enabled": False, **record.recording}, bool(record.recording.get("enabled"))),
        **_slate(bool(record.reconnect_slate.get("enabled", slate.enabled)),
                 record.reconnect_slate.get("image", slate.image)),
    }
    if record.passthrough is not None:
        found["passthrough"] = record.passthrough
    return found


def yaml_live_stream(config: LiveStreamConfig, snap: LiveStreamSnapshot | None) -> dict[str, Any]:
    """A live stream of the config file, in the same shape (its key is never shown: it is the operator's)."""
    targets = [_target(yaml_target_id(config.name, t.passthrough), t.passthrough, t.url, True,
                       None if snap is None else snap.target(t.passthrough))
               for t in config.simulcast_targets]
    recording = config.recording
    section = {"enabled": recording.enabled, "format": recording.format}
    return {
        "id": config.name,
        "status": snap.status if snap is not None else "idle",
        "reconnect_window": min(config.reconnect_window, 1800.0),
        "latency_mode": "standard",
        "playback_ids": [],
        "recent_asset_ids": [],
        "simulcast_targets": targets,
        "source": "config",
        "passthrough": config.name,
        **_recording(section, recording.enabled),
        **_slate(config.reconnect_slate.enabled, config.reconnect_slate.image),
    }
