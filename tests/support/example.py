"""config/example.yaml made runnable, as scripts/run-example and scripts/install-service make it:
the published placeholder ingest key (a config error) replaced by a key of its own."""

from __future__ import annotations

import secrets
from pathlib import Path

from relay.config.example import EXAMPLE_INGEST_KEY

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"


def example_text(key: str | None = None) -> str:
    """The example's text with `key` (a random one by default) as its ingest key."""
    return EXAMPLE.read_text(encoding="utf-8").replace(EXAMPLE_INGEST_KEY, key or secrets.token_urlsafe(32))


def example_ready(folder: Path, key: str | None = None) -> Path:
    """The example, with a real ingest key, written to `folder`/relay.yaml, readable by its owner only."""
    path = folder / "relay.yaml"
    path.write_text(example_text(key), encoding="utf-8")
    path.chmod(0o600)
    return path
