"""YAML config -> validated, frozen config; every problem reported at once, with its path.

Loading runs in two passes. ``relay.configschema`` checks the structure (unknown
fields, types, bounds) against the one schema; this module then checks what
needs more than a type: addresses, URLs, stream keys and where they come from,
TLS files, uniqueness, Mux's limit of six simulcast targets. Both passes collect
problems instead of stopping at the first, and a problem names its file and
path (``relay.yaml: live_streams[0].simulcast_targets[2].url: ...``) but never
the offending value, which might be a stream key.

This module only reads files and returns values; it does not log. Warnings
(say, a world-readable file of keys) come back in ``RelayConfig.warnings``.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from relay.configschema import SCHEMA, Node, check, read_yaml, type_name
from relay.configvalue import (
    Invalid,
    app_name,
    ca_file,
    host_port,
    key_from_env,
    key_from_file,
    readable,
    server_tls,
    stream_key,
    target_url,
)
from relay.errors import RelayError
from relay.secret import Secret, redact

__all__ = [
    "MAX_SIMULCAST_TARGETS",
    "ConfigError",
    "LiveStreamConfig",
    "QueuePolicy",
    "ReconnectPolicy",
    "RelayConfig",
    "Secret",
    "ServerConfig",
    "TargetConfig",
    "Timeouts",
    "load_config",
    "parse_config",
    "redact",
    "summarize",
]

# Mux's Simulcast API allows six targets per live stream; we keep its limit so a
# config can move between the two.
MAX_SIMULCAST_TARGETS = 6
_KEY_SOURCES = ("stream_key", "stream_key_file", "stream_key_env")
_MIN_INGEST_KEY = 16  # shorter keys are guessable, and the key is the only ingest credential
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_T = TypeVar("_T")


class ConfigError(RelayError):
    """The config cannot be used; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(*self.problems)

    def __str__(self) -> str:
        return "\n".join(self.problems)


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Backoff after a target fails: doubling from initial_delay up to max_delay, with jitter."""

    initial_delay: float = 1.0
    max_delay: float = 30.0
    reset_after: float = 60.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines, in seconds, so that a stalled server fails instead of hanging."""

    connect: float = 10.0
    handshake: float = 10.0
    publish: float = 10.0


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """Bounds of a target's queue before it drops frames or reconnects."""

    max_seconds: float = 4.0
    max_bytes: int = 16 * 1024 * 1024
    max_behind_seconds: float = 30.0


class _Policies(NamedTuple):
    reconnect: ReconnectPolicy
    timeouts: Timeouts
    queue: QueuePolicy


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Where publishers connect: plain RTMP, and RTMPS when tls_listen is set."""

    listen_host: str
    listen_port: int
    app: str
    tls_listen_host: str | None = None
    tls_listen_port: int | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """One simulcast target: a platform's server and app, plus the key to publish with."""

    url: str
    stream_key: Secret
    passthrough: str
    scheme: str
    host: str
    port: int
    app: str
    tc_url: str
    tls_ca_file: str | None
    tls_verify: bool
    reconnect: ReconnectPolicy
    timeouts: Timeouts
    queue: QueuePolicy

    @property
    def publish_url_redacted(self) -> str:
        """The full publish URL as logs may show it: the key replaced by its fingerprint."""
        return f"{self.url.rstrip('/')}/<key sha256:{self.stream_key.fingerprint}>"


@dataclass(frozen=True, slots=True)
class LiveStreamConfig:
    """One stream accepted at the ingest, under its own stream key."""

    name: str
    stream_key: Secret
    reconnect_window: float
    simulcast_targets: tuple[TargetConfig, ...]


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """A whole, valid config; ``warnings`` are for the caller to show or log."""

    server: ServerConfig
    live_streams: tuple[LiveStreamConfig, ...]
    source: str
    warnings: tuple[str, ...] = ()

    def all_secrets(self) -> tuple[Secret, ...]:
        """Every stream key in the config, ingest and target, for ``redact``."""
        keys: list[Secret] = []
        for live_stream in self.live_streams:
            keys.append(live_stream.stream_key)
            keys.extend(target.stream_key for target in live_stream.simulcast_targets)
        return tuple(keys)

    def find_live_stream(self, stream_name: str) -> LiveStreamConfig | None:
        """The live stream whose ingest key is ``stream_name``, compared in constant time."""
        found: LiveStreamConfig | None = None
        # No early exit: the time taken must not tell which live stream matched.
        for live_stream in self.live_streams:
            if live_stream.stream_key.matches(stream_name):
                found = live_stream
        return found


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> RelayConfig:
    """Read, check and freeze the config at ``path``; raise ConfigError listing every problem."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            data = file.read()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError([f"{source}: cannot read the config file: {reason}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{source}: the config file is not valid UTF-8"]) from None
    return _parse(text, source, environ, Path(source).absolute().parent, mode)


def parse_config(
    text: str,
    source: str,
    environ: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> RelayConfig:
    """Like load_config, for text in hand; relative paths are taken from ``base_dir``."""
    base = Path(base_dir).absolute() if base_dir is not None else Path.cwd()
    return _parse(text, source, environ, base, None)


def _parse(
    text: str, source: str, environ: Mapping[str, str] | None, base_dir: Path, mode: int | None
) -> RelayConfig:
    data, problems, fatal = read_yaml(text, source)
    if fatal:
        raise ConfigError(problems)
    if data is None:
        raise ConfigError([*problems, f"{source}: the config file is empty"])
    if not isinstance(data, dict):
        raise ConfigError([*problems, (f"{source}: the top level must be a mapping "
                           f"(server, target_defaults, live_streams), not {type_name(data)}")])
    checker = _Checker(source, os.environ if environ is None else environ, base_dir)
    checker.problems.extend(problems)
    config = checker.run(data)
    # Messages never quote values, but a key can still be typed where a name
    # goes (a field name, a passthrough label); redact whatever keys were read.
    if config is None or checker.problems:
        raise ConfigError(redact(problem, checker.secrets) for problem in checker.problems)
    if mode is not None and checker.inline_keys and stat.S_IMODE(mode) & (stat.S_IRGRP | stat.S_IROTH):
        checker.warnings.insert(0, (
            f"{source}: holds inline stream keys and is readable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 on it, or move the keys "
            "to stream_key_file or stream_key_env"))
    warnings = tuple(redact(warning, checker.secrets) for warning in checker.warnings)
    return RelayConfig(config.server, config.live_streams, source, warnings)


class _Checker:
    """The second pass: turns checked nodes into config objects, collecting problems."""

    def __init__(self, source: str, environ: Mapping[str, str], base_dir: Path) -> None:
        self.source = source
        self.environ = environ
        self.base_dir = base_dir
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.inline_keys = False
        self.secrets: list[Secret] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{self.source}: {path}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{self.source}: {path}: {message}")

    def parsed(self, node: Node, name: str, parse: Callable[[str], _T]) -> _T | None:
        """``parse`` of the field's text, or None after reporting why it failed."""
        text = node.text(name)
        if text is None:
            return None  # absent, or its type problem is already reported
        try:
            return parse(text)
        except Invalid as err:
            self.problem(f"{node.path}.{err.field or name}", str(err))
            return None

    def file(self, node: Node, name: str, kind: str) -> str | None:
        # An absolute path replaces base_dir in the join.
        return self.parsed(node, name, lambda value: readable(self.base_dir / value, kind))

    def run(self, data: dict[object, object]) -> RelayConfig | None:
        top = check(data, SCHEMA, "", self.problem)
        if top is None:
            return None
        server_node = top.child("server")
        server = self.server(server_node) if server_node else None
        policies = self.policies(top.child("target_defaults"), _Policies(
            ReconnectPolicy(), Timeouts(), QueuePolicy()))
        nodes = top.items("live_streams")
        if nodes == []:
            self.problem("live_streams", "at least one live stream is required")
        names: dict[str, int] = {}
        keys: dict[Secret, int] = {}
        streams = [self.live_stream(node, i, policies, names, keys)
                   for i, node in enumerate(nodes or []) if node is not None]
        live_streams = tuple(stream for stream in streams if stream is not None)
        if server is None or not nodes or len(live_streams) != len(nodes):
            return None
        return RelayConfig(server, live_streams, self.source)

    def server(self, node: Node) -> ServerConfig | None:
        listen = self.parsed(node, "listen", host_port)
        tls_listen = self.parsed(node, "tls_listen", host_port)
        app = self.parsed(node, "app", app_name)
        cert = self.file(node, "tls_cert_file", "certificate")
        key = self.file(node, "tls_key_file", "key")
        if "tls_listen" in node.written:
            for name in ("tls_cert_file", "tls_key_file"):
                if name not in node.written:
                    self.problem(f"{node.path}.{name}", "required field missing (tls_listen needs it)")
            if cert and key:
                try:
                    server_tls(cert, key)
                except Invalid as err:
                    self.problem(f"{node.path}.{err.field}", str(err))
            if listen and listen == tls_listen:
                self.problem(f"{node.path}.tls_listen", "must differ from server.listen")
        else:
            for name in ("tls_cert_file", "tls_key_file"):
                if name in node.written:
                    self.problem(f"{node.path}.{name}", "only used with tls_listen; set it or remove this")
        if listen is None or app is None or ("tls_listen" in node.written and tls_listen is None):
            return None
        return ServerConfig(listen[0], listen[1], app, tls_listen[0] if tls_listen else None,
                            tls_listen[1] if tls_listen else None, cert, key)

    def policies(self, node: Node | None, base: _Policies) -> _Policies:
        """``base`` with the reconnect / timeouts / queue fields ``node`` sets."""
        if node is None:
            return base
        r, t, q = (node.child(name) for name in _Policies._fields)
        merged = _Policies(
            ReconnectPolicy(_num(r, "initial_delay", base.reconnect.initial_delay),
                            _num(r, "max_delay", base.reconnect.max_delay),
                            _num(r, "reset_after", base.reconnect.reset_after)),
            Timeouts(_num(t, "connect", base.timeouts.connect),
                     _num(t, "handshake", base.timeouts.handshake),
                     _num(t, "publish", base.timeouts.publish)),
            QueuePolicy(_num(q, "max_seconds", base.queue.max_seconds),
                        _int(q, "max_bytes", base.queue.max_bytes),
                        _num(q, "max_behind_seconds", base.queue.max_behind_seconds)),
        )
        if r and r.written and merged.reconnect.initial_delay > merged.reconnect.max_delay:
            self.problem(f"{r.path}.initial_delay", "must not be greater than max_delay")
        return merged

    def secret(self, node: Node) -> tuple[Secret | None, str]:
        """The stream key from whichever one of the three sources ``node`` names, and its path."""
        given = [name for name in _KEY_SOURCES if name in node.written]
        if len(given) != 1:
            found = f" (found {', '.join(given)})" if given else ""
            self.problem(node.path, f"needs exactly one of {', '.join(_KEY_SOURCES)}{found}")
            return None, node.path
        source = given[0]
        self.inline_keys |= source == "stream_key"
        read: dict[str, Callable[[str], str]] = {
            "stream_key": stream_key,
            "stream_key_file": lambda value: key_from_file(value, self.environ, self.base_dir),
            "stream_key_env": lambda value: key_from_env(value, self.environ)}
        key = self.parsed(node, source, read[source])
        if key:
            self.secrets.append(Secret(key))
        return (self.secrets[-1] if key else None), f"{node.path}.{source}"

    def live_stream(self, node: Node, index: int, policies: _Policies,
                    names: dict[str, int], keys: dict[Secret, int]) -> LiveStreamConfig | None:
        name = node.text("name")
        if name is not None and not _NAME.fullmatch(name):
            self.problem(f"{node.path}.name", "may hold only letters, digits and _ . -")
            name = None
        elif name is not None and name in names:
            self.problem(f"{node.path}.name", f"duplicate live stream name (also "
                         f"live_streams[{names[name]}])")
        elif name is not None:
            names[name] = index
        key, key_path = self.secret(node)
        if key is not None and key in keys:  # Secret equality is constant-time
            self.problem(key_path, f"same stream key as live_streams[{keys[key]}]; "
                         "each live stream needs its own")
        elif key is not None:
            keys[key] = index
            if len(key.reveal()) < _MIN_INGEST_KEY:
                self.warn(key_path, f"the ingest stream key is shorter than {_MIN_INGEST_KEY} "
                          "characters; anyone who guesses it can publish")
        nodes = node.items("simulcast_targets") or []
        if len(nodes) > MAX_SIMULCAST_TARGETS:
            self.problem(f"{node.path}.simulcast_targets[{MAX_SIMULCAST_TARGETS}]",
                         f"at most {MAX_SIMULCAST_TARGETS} simulcast targets per live stream (the "
                         f"limit Mux's Simulcast API sets); this live stream has {len(nodes)}")
        elif "simulcast_targets" in node.values and not nodes:
            self.warn(f"{node.path}.simulcast_targets", "is empty; a publisher will be accepted "
                      "and its stream relayed nowhere")
        built = {i: self.target(t, policies) for i, t in enumerate(nodes) if t is not None}
        targets = {i: t for i, t in built.items() if t is not None}
        self.check_unique(node.path, targets)
        window = node.number("reconnect_window")
        if (name is None or key is None or window is None or len(targets) != len(nodes)
                or len(nodes) > MAX_SIMULCAST_TARGETS):
            return None
        return LiveStreamConfig(name, key, window, tuple(targets.values()))

    def check_unique(self, path: str, targets: dict[int, TargetConfig]) -> None:
        labels: dict[str, int] = {}
        publishes: dict[tuple[str, Secret], int] = {}
        for i, target in targets.items():
            where = f"{path}.simulcast_targets[{i}]"
            if target.passthrough in labels:
                self.problem(f"{where}.passthrough", "duplicate passthrough label (also "
                             f"simulcast_targets[{labels[target.passthrough]}]); give each "
                             "target its own")
            labels.setdefault(target.passthrough, i)
            publish = (target.tc_url, target.stream_key)
            if publish in publishes:
                self.problem(where, "same url and stream key as "
                             f"simulcast_targets[{publishes[publish]}]; the server takes only one")
            publishes.setdefault(publish, i)

    def target(self, node: Node, defaults: _Policies) -> TargetConfig | None:
        key, _ = self.secret(node)
        url = self.parsed(node, "url", target_url)
        url_text = node.text("url") or ""
        if key is not None and key.reveal() in url_text:
            self.problem(f"{node.path}.url", "contains this target's stream key; the url is "
                         "only the server and app, the key goes in stream_key")
            url = None
        ca: str | None = None
        if url is not None and url.scheme == "rtmp":
            for name in ("tls_ca_file", "tls_verify"):
                if name in node.written:
                    self.problem(f"{node.path}.{name}", "only applies to rtmps:// urls")
        else:
            ca = self.parsed(node, "tls_ca_file", lambda value: ca_file(self.base_dir / value))
        policies = self.policies(node, defaults)
        verify = node.flag("tls_verify")
        if url is None or key is None or verify is None:
            return None
        passthrough = node.text("passthrough") or url.host
        if not passthrough.isprintable():
            self.problem(f"{node.path}.passthrough", "must not contain control characters")
        if url.scheme == "rtmps" and not verify:
            self.warn(f"{node.path}.tls_verify", "certificate checks are off for simulcast "
                      f"target {passthrough!r}; anyone on the network path can pose as the "
                      "server and take the stream key")
        return TargetConfig(url_text, key, passthrough, url.scheme, url.host, url.port, url.app,
                            url.tc_url, ca, verify, *policies)


def _num(node: Node | None, name: str, fallback: float) -> float:
    value = node.number(name) if node else None
    return fallback if value is None else value


def _int(node: Node | None, name: str, fallback: int) -> int:
    value = node.integer(name) if node else None
    return fallback if value is None else value


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def summarize(config: RelayConfig) -> str:
    """What ``relay check-config`` prints for a valid config; keys appear only as fingerprints."""
    server = config.server
    lines = [f"config {config.source}: OK",
             f"ingest: rtmp://{_address(server.listen_host, server.listen_port)}/{server.app}"]
    if server.tls_listen_host is not None and server.tls_listen_port is not None:
        lines.append(f"ingest: rtmps://{_address(server.tls_listen_host, server.tls_listen_port)}"
                     f"/{server.app} (cert {server.tls_cert_file}, key {server.tls_key_file})")
    for stream in config.live_streams:
        count = len(stream.simulcast_targets)
        window = f"{stream.reconnect_window:g}s" if stream.reconnect_window else "off"
        lines.append(f"live stream {stream.name}: stream key sha256:{stream.stream_key.fingerprint}, "
                     f"reconnect window {window}, {count} simulcast target{'s' * (count != 1)}")
        for target in stream.simulcast_targets:
            tls = ""
            if target.scheme == "rtmps" and not target.tls_verify:
                tls = " (TLS, certificate NOT checked)"
            elif target.scheme == "rtmps":
                tls = f" (TLS, certificate checked against {target.tls_ca_file or 'the system CAs'})"
            lines.append(f"  - {target.passthrough}: {target.publish_url_redacted}{tls}")
    # Belt and braces: nothing above should hold a key, and this proves it.
    return redact("\n".join(lines), config.all_secrets())
