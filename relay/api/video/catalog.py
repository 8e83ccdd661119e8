"""The management API's live streams: validated, stored, then put into the running relay.

Every change follows one path, under one lock (changes are made one at a time, in
order): the new record is built and checked with the config's models (build.py); it
is written to the database in one transaction on the store's thread (the event loop goes
on meanwhile); only then is it applied to the running relay, in steps that cannot fail
(a new LiveStream, `LiveStream.reconfigure`, a cut-off). A change that fails a check or
cannot be written changes nothing, in the database or in the relay.

Applied to a running live stream, a change goes the way a reload's does (relay/live/
retarget.py): targets whose settings did not change keep broadcasting; a target added
while the stream is active joins at the next keyframe, with metadata and sequence
headers first (the hub's join state); a removed or disabled target unpublishes and
closes; a new stream key revokes the old one (the publisher on it is cut off).

A live stream of the config file is listed and read here, and refused (409) for
changes: the file is the operator's, and the relay never writes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

from relay.api.video.build import labels, running_config
from relay.api.video.errors import MuxError, not_found
from relay.api.video.listing import Listing, Running, keys
from relay.api.video.requests import CreateBody, TargetBody, TargetUpdateBody, UpdateBody
from relay.config import LiveStreamConfig, RelayConfig
from relay.live.stream import LiveStream
from relay.runtime.logs import add_known_secrets, get_logger
from relay.secret import Secret
from relay.status import StatusChange
from relay.store.records import LiveStreamRecord, TargetRecord, new_id, new_stream_key
from relay.store.store import Store

READ_ONLY = ("this live stream is in the relay's config file, which the API does not change; "
             "edit the file and reload instead")


class Catalog(Listing):
    """The API's live streams (records by id), their database, and the relay they run in."""

    def __init__(self, store: Store, relay: Running, announce: Callable[[StatusChange], None]) -> None:
        super().__init__(relay)
        self.store = store
        self.announce = announce
        self._lock = asyncio.Lock()
        self.log = get_logger()

    def adopt(self, record: LiveStreamRecord) -> None:
        """Run a stored live stream (at start-up); one that no longer validates is kept, and not run."""
        self.records[record.id] = record
        add_known_secrets(keys(record))
        try:
            config = running_config(record, self.relay.config)
        except MuxError as exc:
            self.log.error("api_live_stream_not_run", live_stream=record.id, problems=exc.messages)
            return
        self.relay.live_streams[record.id] = self.relay.new_live_stream(config)
        if not record.enabled:
            self.relay.disabled.add(record.id)

    def running_configs(self, config: RelayConfig) -> dict[str, LiveStreamConfig]:
        """Each stored live stream as it runs under `config`'s defaults (a reload's target_defaults,
        health, recording and slate sections apply to them too); one that would not validate is left
        out (it keeps running as it is, and the reload says so in the log)."""
        configs: dict[str, LiveStreamConfig] = {}
        for record in self.records.values():
            try:
                configs[record.id] = running_config(record, config)
            except MuxError as exc:
                self.log.warning("api_live_stream_kept", live_stream=record.id, problems=exc.messages,
                                 reason="the reloaded defaults do not fit it; it keeps running as it was")
        return configs

    # -- changes --------------------------------------------------------------------------

    def _record(self, live_stream_id: str) -> LiveStreamRecord:
        record = self.records.get(live_stream_id)
        if record is None:
            if any(ls.name == live_stream_id for ls in self.relay.config.live_streams):
                raise MuxError(409, READ_ONLY)
            raise not_found()
        return record

    async def create(self, body: CreateBody) -> str:
        """A new live stream with its targets; its id."""
        async with self._lock:
            if len(self.records) >= self.relay.config.http.max_api_live_streams:
                raise MuxError(400, f"this relay allows {self.relay.config.http.max_api_live_streams} live streams "
                                    "made through the API (http.max_api_live_streams); delete one first")
            now = int(time.time())
            taken = {ls.name for ls in self.relay.config.live_streams} | set(self.records)
            live_id = next(i for i in iter(new_id, None) if i not in taken)
            record = LiveStreamRecord(
                id=live_id, stream_key=new_stream_key(), passthrough=body.passthrough,
                reconnect_window=body.reconnect_window, recording=body.recording_section({}), created_at=now,
                reconnect_slate=body.slate_section({}),
                targets=tuple(_new_target(t, now) for t in body.simulcast_targets))
            config = running_config(record, self.relay.config)
            await self.store.save(record)
            add_known_secrets(keys(record))
            self.records[live_id] = record
            live = self.relay.new_live_stream(config)
            self.relay.live_streams[live_id] = live
            self.log.info("api_live_stream_created", live_stream=live_id, targets=len(record.targets))
            self._event("video.live_stream.created", live)
            return live_id

    async def update(self, live_stream_id: str, body: UpdateBody) -> None:
        """PATCH: passthrough, reconnect window, recording, reconnect slate."""
        async with self._lock:
            record = self._record(live_stream_id)
            given = body.model_fields_set
            changed = replace(
                record,
                passthrough=body.passthrough if "passthrough" in given else record.passthrough,
                reconnect_window=record.reconnect_window if body.reconnect_window is None else body.reconnect_window,
                recording=body.recording_section(record.recording),
                reconnect_slate=body.slate_section(record.reconnect_slate))
            await self._save(changed, "video.live_stream.updated")

    async def reset_stream_key(self, live_stream_id: str) -> None:
        """A new ingest key; the old one is refused from now on and its publisher cut off."""
        async with self._lock:
            record = self._record(live_stream_id)
            await self._save(replace(record, stream_key=new_stream_key()), "video.live_stream.updated")

    async def set_enabled(self, live_stream_id: str, enabled: bool) -> None:
        """Mux's disable (the key is refused, a publisher on it cut off) and enable."""
        async with self._lock:
            record = self._record(live_stream_id)
            if record.enabled == enabled:
                return
            await self._save(replace(record, enabled=enabled),
                             "video.live_stream.enabled" if enabled else "video.live_stream.disabled")

    async def complete(self, live_stream_id: str) -> None:
        """Mux's complete: end the broadcast now (no reconnect window); the key stays valid."""
        async with self._lock:
            self._record(live_stream_id)
            live = self.relay.live_streams.get(live_stream_id)
            if live is not None:
                live.cut_off("completed through the API")

    async def delete(self, live_stream_id: str) -> None:
        """Remove the live stream: its publisher is cut off and its targets stop."""
        async with self._lock:
            self._record(live_stream_id)
            await self.store.delete(live_stream_id)
            del self.records[live_stream_id]
            self.relay.disabled.discard(live_stream_id)
            live = self.relay.live_streams.pop(live_stream_id, None)
            if live is not None:
                self._event("video.live_stream.deleted", live)
                live.shut_down("deleted through the API")
            self.log.info("api_live_stream_deleted", live_stream=live_stream_id)

    async def add_target(self, live_stream_id: str, body: TargetBody) -> str:
        """A new target (while active too: it joins at the next keyframe); its id."""
        async with self._lock:
            record = self._record(live_stream_id)
            target = _new_target(body, int(time.time()))
            index = len(record.targets)
            try:
                await self._save(replace(record, targets=(*record.targets, target)),
                                 "video.live_stream.simulcast_target.created", target.id)
            except MuxError as exc:
                prefix = f"simulcast_targets[{index}]"
                raise MuxError(exc.status, [m.removeprefix(prefix + ".").removeprefix(prefix + ": ")
                                            for m in exc.messages]) from None
            return target.id

    async def update_target(self, live_stream_id: str, target_id: str, body: TargetUpdateBody) -> None:
        """Beyond Mux: a target's passthrough, and `enabled` (false: its settings kept, nothing sent)."""
        async with self._lock:
            record = self._record(live_stream_id)
            target = self._target(record, target_id)
            given = body.model_fields_set
            changed = replace(target, passthrough=body.passthrough if "passthrough" in given else target.passthrough,
                              enabled=target.enabled if body.enabled is None else body.enabled)
            targets = tuple(changed if t.id == target_id else t for t in record.targets)
            await self._save(replace(record, targets=targets), "video.live_stream.simulcast_target.updated",
                             target_id, announce_before=not changed.enabled)

    async def delete_target(self, live_stream_id: str, target_id: str) -> None:
        """Remove a target (while active too: it unpublishes; the others go on)."""
        async with self._lock:
            record = self._record(live_stream_id)
            self._target(record, target_id)
            await self._save(replace(record, targets=tuple(t for t in record.targets if t.id != target_id)),
                             "video.live_stream.simulcast_target.deleted", target_id, announce_before=True)

    def _target(self, record: LiveStreamRecord, target_id: str) -> TargetRecord:
        target = record.target(target_id)
        if target is None:
            raise not_found("simulcast target")
        return target

    async def _save(self, record: LiveStreamRecord, event: str, target_id: str | None = None,
                    announce_before: bool = False) -> None:
        """Check, store, then apply a changed live stream; announce `event`."""
        config = running_config(record, self.relay.config)
        before = self.records[record.id]
        await self.store.save(record)
        add_known_secrets(keys(record))
        self.records[record.id] = record
        live = self.relay.live_streams.get(record.id)
        label = _label(before if announce_before else record, target_id)
        if live is not None and announce_before:
            self._event(event, live, label)
        if record.enabled:
            self.relay.disabled.discard(record.id)
        else:
            self.relay.disabled.add(record.id)
        if live is None:
            live = self.relay.new_live_stream(config)
            self.relay.live_streams[record.id] = live
        elif live.config != config:
            live.reconfigure(config)
        if not record.enabled:
            live.cut_off("disabled through the API")
        self.log.info("api_live_stream_changed", live_stream=record.id, change=event)
        if not announce_before:
            self._event(event, live, label)

    def _event(self, event: str, live: LiveStream, label: str | None = None) -> None:
        snap = live.snapshot()
        target = None if label is None else snap.target(label)
        self.announce(StatusChange(type=event, live_stream=snap, target=target, at=time.time()))


def _label(record: LiveStreamRecord, target_id: str | None) -> str | None:
    if target_id is None:
        return None
    return next((label for t, label in zip(record.targets, labels(record.targets), strict=True)
                 if t.id == target_id), None)


def _new_target(body: TargetBody, now: int) -> TargetRecord:
    return TargetRecord(id=new_id(), url=body.url, stream_key=Secret(body.stream_key), passthrough=body.passthrough,
                        enabled=body.enabled, created_at=now)

