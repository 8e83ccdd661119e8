"""A reload of the config file (SIGHUP, POST /api/v1/reload): prepared beside the running config,
then swapped in, all or nothing.

The file is read and validated in a worker thread (a config is small, but a reload must
never stall the show). Everything new (live streams, targets, the RTMPS certificate) is
built first without touching what runs; only when all of it is ready is it put in place,
in steps that cannot fail half-way (assignments and starts). A file that does not
validate, or a certificate that does not load, is reported with every problem and
ignored: the relay keeps running on its last good config.

Live streams and targets whose config did not change keep broadcasting (a target renamed
only keeps its connection: relay/live/stream.py); a live stream whose stream key changed
has its publisher cut off (the old key is revoked; no reconnect window), and so has a live
stream that left the config. The ingest's limits and app apply to connections that
arrive after the reload; listen addresses and `http` only on restart, except the HTTP
token (token, token_file, token_env) and the /video/v1 access tokens, which are in force,
and the old ones refused, as soon as the reload is done: a token is rotated because it
leaked. Live streams made through the /video/v1 API are not the file's: a reload keeps
them (with the file's new defaults: target_defaults, health, recording, reconnect_slate),
and a file that names one of them (or uses one of their keys) is refused. With an RTMPS
ingest, every reload loads the certificate chain again (a renewed certificate under the
same path) into a fresh SSLContext for new connections.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any, Protocol

from relay.api.webhooks import WebhookDispatcher
from relay.config import (
    ConfigError,
    HttpConfig,
    LiveStreamConfig,
    RelayConfig,
    ServerConfig,
    load_config,
    summarize,
)
from relay.config.values import is_loopback
from relay.ingest.listeners import Ingest, server_tls_context
from relay.live.retarget import Reconfiguration
from relay.live.stream import LiveStream
from relay.runtime.logs import add_known_secrets, get_logger
from relay.status import ReloadResult


class Reloadable(Protocol):
    """What a reload changes: the running relay (relay/app.py)."""

    config: RelayConfig
    live_streams: dict[str, LiveStream]
    ingest: Ingest
    webhooks: WebhookDispatcher

    def new_live_stream(self, config: LiveStreamConfig) -> LiveStream:
        """A live stream of this relay, not running yet."""

    def api_live_streams(self) -> frozenset[str]:
        """The live streams the /video/v1 API made: not the file's, kept by a reload."""

    def api_conflicts(self, config: RelayConfig) -> list[str]:
        """Why `config` cannot run beside the API's live streams."""

    def api_configs(self, config: RelayConfig) -> dict[str, LiveStreamConfig]:
        """The API's live streams as they run under `config`'s defaults."""


@dataclass
class ReloadPlan:
    """Everything a new config needs, built and not yet in place."""

    config: RelayConfig
    plans: dict[str, Reconfiguration] = field(default_factory=dict)  # live streams that change
    added: list[LiveStream] = field(default_factory=list)
    tls_context: ssl.SSLContext | None = None


async def reload_config(relay: Reloadable, path: str) -> ReloadResult:
    """Re-read `path` and apply it all or nothing; the outcome, with every problem."""
    log = get_logger()
    try:
        new = await asyncio.to_thread(load_config, path)
    except ConfigError as exc:
        return _failed(tuple(exc.problems))
    # Before anything is said about the new config: its keys are scrubbed from now on,
    # and the old ones stay scrubbed (an old session's error may still carry one).
    add_known_secrets(new.all_secrets())
    clashes = relay.api_conflicts(new)
    if clashes:
        return _failed(tuple(clashes))
    for warning in new.warnings:
        log.warning("config_warning", message=warning)
    server, notes = server_for(relay.config.server, new.server)
    tls_context: ssl.SSLContext | None = None
    if relay.ingest.tls_context is not None and server.tls_cert_file and server.tls_key_file:
        try:
            tls_context = await asyncio.to_thread(server_tls_context, server.tls_cert_file, server.tls_key_file)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
            return _failed((f"{path}: server.tls_cert_file: the RTMPS certificate chain "
                            f"and key do not load ({reason}); kept the current one",))
    http, http_notes = http_for(relay.config.http, new.http)
    notes += http_notes
    if http.token != relay.config.http.token:
        log.info("http_token_changed", token_set=http.token is not None)
    new = new.model_copy(update={"server": server, "http": http})
    plan = prepare(relay, new)
    plan.tls_context = tls_context
    changes = swap(relay, plan)
    summary = describe(changes)
    log.info("config_reloaded", live_streams=len(relay.live_streams), summary=summary, **changes)
    for note in notes:
        log.warning("config_unchanged_until_restart", reason=note)
    # What changed, then what runs now (keys as fingerprints), as `relay check-config` shows it.
    return ReloadResult(True, (), f"{summary}\n{summarize(relay.config)}")


def _failed(problems: tuple[str, ...]) -> ReloadResult:
    get_logger().error("config_reload_failed", problems=list(problems), kept="last good config")
    return ReloadResult(False, problems, "kept the last good config")


def server_for(old: ServerConfig, new: ServerConfig) -> tuple[ServerConfig, list[str]]:
    """The server section to run with: the new one, except what only a restart can change."""
    notes = []
    update: dict[str, Any] = {}
    if new.listen != old.listen or new.tls_listen != old.tls_listen:
        notes.append("listen and tls_listen apply on restart; the listeners stay where they are")
        update.update(listen=old.listen, tls_listen=old.tls_listen)
    if old.tls_listen is None:
        update.update(tls_cert_file=None, tls_key_file=None)
    elif new.tls_cert_file is None or new.tls_key_file is None:
        # The RTMPS listener runs on until a restart: keep serving the current certificate.
        update.update(tls_cert_file=old.tls_cert_file, tls_key_file=old.tls_key_file)
    return (new.model_copy(update=update) if update else new), notes


_TOKEN_FIELDS = ("token_inline", "token_file", "token_env", "access_tokens")


def http_for(old: HttpConfig, new: HttpConfig) -> tuple[HttpConfig, list[str]]:
    """The http section to run with: the running one, with the new file's token."""
    notes = []
    token = {name: getattr(new, name) for name in _TOKEN_FIELDS}
    merged = old.model_copy(update=token)
    if merged.token is None and old.listen is not None and not is_loopback(old.listen.host):
        # The server listens beyond this machine until a restart: it must not lose its guard.
        notes.append("http: the token stays until restart, as http still listens beyond this machine")
        # Only the token: the access tokens are the new file's (one revoked there is revoked now).
        merged = old.model_copy(update={"access_tokens": new.access_tokens})
    if merged != new.model_copy(update={name: getattr(merged, name) for name in _TOKEN_FIELDS}):
        notes.append("http settings other than the token apply on restart")
    return merged, notes


def prepare(relay: Reloadable, new: RelayConfig) -> ReloadPlan:
    """Everything the new config needs, built without touching what runs."""
    plan = ReloadPlan(new)
    for ls_config in new.live_streams:
        live = relay.live_streams.get(ls_config.name)
        if live is None:
            plan.added.append(relay.new_live_stream(ls_config))
        elif live.config != ls_config:
            plan.plans[ls_config.name] = live.prepare(ls_config)
    # The API's live streams take the file's defaults too (target_defaults, health, recording, slate).
    for name, api_config in relay.api_configs(new).items():
        live = relay.live_streams.get(name)
        if live is not None and live.config != api_config:
            plan.plans[name] = live.prepare(api_config)
    return plan


def swap(relay: Reloadable, plan: ReloadPlan) -> dict[str, Any]:
    """Put the prepared config in place (nothing here can fail half-way: assignments and starts);
    what changed, for the log line and the answer."""
    new = plan.config
    api = relay.api_live_streams()
    wanted = {ls.name for ls in new.live_streams} | api
    removed = [name for name in relay.live_streams if name not in wanted]
    # The config first: from here on, the ingest only finds the new keys.
    relay.config = new
    relay.ingest.reconfigure(new.server.app, new.server.limits, plan.tls_context)
    relay.webhooks.reconfigure(new.webhooks)
    for name in removed:
        relay.live_streams.pop(name).shut_down("live stream removed from the config")
    rotated = []
    restarted = 0
    for name, reconfiguration in plan.plans.items():
        if reconfiguration.key_changed:
            rotated.append(name)
        restarted += len(reconfiguration.new)
        relay.live_streams[name].apply(reconfiguration)
    for live in plan.added:
        relay.live_streams[live.name] = live
    # Keep the config's order for the snapshot.
    relay.live_streams = {**{ls.name: relay.live_streams[ls.name] for ls in new.live_streams},
                          **{name: live for name, live in relay.live_streams.items() if name in api}}
    return {"added": [live.name for live in plan.added], "removed": removed, "changed": sorted(plan.plans),
            "key_changed": rotated, "targets_restarted": restarted,
            "certificate_reloaded": plan.tls_context is not None}


def describe(changes: dict[str, Any]) -> str:
    """One line for an operator: what the reload changed."""
    parts = []
    for label, names in (("added", changes["added"]), ("removed", changes["removed"]),
                         ("changed", changes["changed"])):
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    if changes["key_changed"]:
        parts.append(f"stream key changed (publisher cut off): {', '.join(changes['key_changed'])}")
    if changes["targets_restarted"]:
        parts.append(f"{changes['targets_restarted']} target(s) (re)started")
    if changes["certificate_reloaded"]:
        parts.append("RTMPS certificate reloaded")
    return "; ".join(parts) or "no change"
