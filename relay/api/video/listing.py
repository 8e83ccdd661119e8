"""The read side of the API's live streams: listing, Mux's objects, keys to scrub, clashes with the file.

`Listing` shows the API-made live streams (records) and the config file's (read-only) as
Mux's objects, each with the status of its running LiveStream; the catalog (catalog.py)
adds the changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from relay.api.video.build import labels
from relay.api.video.errors import not_found
from relay.api.video.objects import api_live_stream, yaml_live_stream
from relay.config import LiveStreamConfig, RelayConfig
from relay.live.stream import LiveStream
from relay.secret import Secret
from relay.store.records import LiveStreamRecord


class Running(Protocol):
    """What the catalog changes: the running relay (relay/app.py)."""

    config: RelayConfig
    live_streams: dict[str, LiveStream]
    disabled: set[str]  # live streams whose key the ingest refuses

    def new_live_stream(self, config: LiveStreamConfig) -> LiveStream:
        """A live stream of this relay, not running yet."""


class Listing:
    """The API's live streams (records by id) beside the config file's, as the API shows them."""

    def __init__(self, relay: Running) -> None:
        self.relay = relay
        self.records: dict[str, LiveStreamRecord] = {}

    def secrets(self) -> Iterable[Secret]:
        """Every key the API holds (to scrub from answers)."""
        for record in self.records.values():
            yield from keys(record)

    def ids(self) -> list[str]:
        """Every live stream the API shows: the config file's, then the API's (oldest first)."""
        return [ls.name for ls in self.relay.config.live_streams] + list(self.records)

    def show(self, live_stream_id: str) -> dict[str, Any]:
        """The live stream as Mux shows one (no key); MuxError(404) if unknown."""
        live = self.relay.live_streams.get(live_stream_id)
        snap = live.snapshot() if live is not None else None
        record = self.records.get(live_stream_id)
        if record is not None:
            return api_live_stream(record, labels(record.targets), snap, self.relay.config.reconnect_slate)
        config = next((ls for ls in self.relay.config.live_streams if ls.name == live_stream_id), None)
        if config is None:
            raise not_found()
        return yaml_live_stream(config, snap)

    def show_target(self, live_stream_id: str, target_id: str) -> dict[str, Any]:
        """One target as Mux shows one; MuxError(404) if unknown."""
        targets: list[dict[str, Any]] = self.show(live_stream_id)["simulcast_targets"]
        found = next((t for t in targets if t["id"] == target_id), None)
        if found is None:
            raise not_found("simulcast target")
        return found

    def stream_key(self, live_stream_id: str) -> str | None:
        """The live stream's own key, for a caller with write permission (None: a config-file one)."""
        record = self.records.get(live_stream_id)
        return None if record is None else record.stream_key.reveal()

    def conflicts(self, config: RelayConfig) -> list[str]:
        """Why the config file `config` cannot run beside the API's live streams (a reload)."""
        problems = []
        for ls in config.live_streams:
            if ls.name in self.records:
                problems.append(f"{config.source}: live_streams: {ls.name} is the id of a live stream made through "
                                "the /video/v1 API; give the file's live stream another name")
            if any(r.stream_key == ls.stream_key for r in self.records.values()):
                problems.append(f"{config.source}: live_streams: {ls.name} has the stream key of a live stream "
                                "made through the /video/v1 API; each live stream needs its own")
        return problems



def keys(record: LiveStreamRecord) -> list[Secret]:
    """The live stream's key and its targets' keys."""
    return [record.stream_key, *(t.stream_key for t in record.targets)]
