"""The records the management API keeps: a live stream, its simulcast targets, their ids and keys.

Frozen values; a change is a new record (`dataclasses.replace`), saved whole. Ids are opaque,
32 letters and digits (like Mux's); a generated stream key is 43 URL-safe characters (256 bits).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from relay.secret import Secret

ID_LENGTH = 32
_ID_ALPHABET = string.ascii_letters + string.digits


def new_id() -> str:
    """An opaque id: 32 letters and digits (it names the live stream in logs and its recordings' folder)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


def new_stream_key() -> Secret:
    """A long random URL-safe ingest key (256 bits)."""
    return Secret(secrets.token_urlsafe(32))


@dataclass(frozen=True, slots=True)
class TargetRecord:
    """One simulcast target made through the API."""

    id: str
    url: str
    stream_key: Secret
    passthrough: str | None = None
    enabled: bool = True
    created_at: int = 0  # Unix time
    settings: dict[str, Any] = field(default_factory=dict)  # more target fields (tls_verify...), as given


@dataclass(frozen=True, slots=True)
class LiveStreamRecord:
    """One live stream made through the API, with its targets in order."""

    id: str
    stream_key: Secret
    passthrough: str | None = None
    reconnect_window: float = 60.0
    recording: dict[str, Any] = field(default_factory=dict)  # the live stream's recording section, as given
    reconnect_slate: dict[str, Any] = field(default_factory=dict)  # its reconnect_slate section (enabled, image)
    enabled: bool = True
    created_at: int = 0
    targets: tuple[TargetRecord, ...] = ()

    def target(self, target_id: str) -> TargetRecord | None:
        """The target with this id."""
        return next((t for t in self.targets if t.id == target_id), None)
