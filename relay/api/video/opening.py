"""At start-up: the database opened, checked against the config file, and its live streams put to run.

The database is opened when the API can be used (`http.access_tokens` is set) or when
one already exists in the state directory (its live streams run even when the tokens are
gone). A live stream whose id is a name of the config file, or whose key is one of its
keys, stops the start with that problem: which one is meant cannot be guessed.
"""

from __future__ import annotations

from collections.abc import Callable

from relay.api.video.catalog import Catalog
from relay.api.video.listing import Running
from relay.runtime.logs import get_logger
from relay.status import StatusChange
from relay.store.store import Store, StoreError, exists


async def open_catalog(relay: Running, announce: Callable[[StatusChange], None]) -> Catalog | None:
    """The catalog of the API's live streams, running; None when the API is not configured and nothing is
    stored. StoreError when the database cannot be used."""
    config = relay.config
    if not config.http.access_tokens and not exists(config.state_dir):
        return None
    store = await Store.open(config.state_dir)
    try:
        records = await store.load()
    except Exception:
        await store.close()
        raise
    catalog = Catalog(store, relay, announce)
    catalog.records = {record.id: record for record in records}
    problems = catalog.conflicts(config)
    if problems:
        await store.close()
        raise StoreError(f"{store.path}: " + "; ".join(problems))
    catalog.records = {}
    for record in records:
        catalog.adopt(record)
    get_logger().info("api_store_opened", path=str(store.path), live_streams=len(records))
    return catalog
