"""The schema against CONFIG-SCHEMA.md: every field, default and bound; checks across fields; inheritance."""

from __future__ import annotations

import copy
import math
import os
import stat
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from relay.config import (
    HealthPolicy,
    HttpConfig,
    IngestLimits,
    RelayConfig,
    TargetDefaults,
    load_config,
    parse_config,
    summarize,
)
from relay.config.messages import field_at, yaml_fields
from tests.unit.config.support import (
    ENV_KEY,
    FILE_KEY,
    INGEST_A,
    SOURCE,
    T0,
    T1,
    T2,
    assert_no_keys,
    base,
    edit,
    located,
    parse,
    problems,
)

KIB, MIB, GIB = 1024, 1024**2, 1024**3
WEBHOOK_SECRET = "hookKEY-SEKRIT-0a1b2c3d4e"

SECONDS_3600 = (0.1, 3600)
# CONFIG-SCHEMA.md, written out again: path -> (default, min, max). A second statement of the
# lead's table, so that the schema cannot drift from it unnoticed.
SPEC: dict[str, tuple[float | None, float, float]] = {
    "server.limits.max_connections": (256, 1, 100_000),
    "server.limits.max_connections_per_address": (16, 1, 10_000),
    "server.limits.handshake_timeout": (10.0, 0.5, 120),
    "server.limits.tls_handshake_timeout": (10.0, 0.5, 120),
    "server.limits.publish_timeout": (30.0, 1, 600),
    "server.limits.idle_timeout": (30.0, 1, 3600),
    "server.limits.max_chunk_size": (1_048_576, 128, 16_777_215),
    "server.limits.max_message_size": (16_777_215, 1024, 16_777_215),
    "server.limits.max_command_size": (65_536, 1024, 16_777_215),
    "server.limits.max_unauthenticated_memory": (262_144, 65_536, 67_108_864),
    "server.limits.max_output_bytes": (1_048_576, 65_536, 67_108_864),
    "server.limits.failed_publishes_per_minute": (10, 1, 10_000),
    "http.max_request_bytes": (65_536, 1024, 16_777_216),
    "http.request_timeout": (10.0, 1, 300),
    "http.limits.max_connections": (64, 4, 10_000),
    "http.limits.max_connections_per_address": (16, 1, 10_000),
    "http.limits.failed_sign_ins_per_minute": (10, 1, 10_000),
    "http.max_api_live_streams": (100, 1, 10_000),
    "webhooks[0].timeout": (10.0, 1, 120),
    "webhooks[0].max_queue": (1000, 1, 100_000),
    "health.max_keyframe_interval": (4.0, 0.5, 60),
    "health.media_timeout": (5.0, 1, 600),
    "health.bitrate_collapse_ratio": (0.25, 0.01, 1),
    "health.max_bitrate_kbps": (None, 1, 1_000_000),
    "recording.max_remux_jobs": (1, 1, 16),
    "recording.max_buffer_bytes": (32 * MIB, MIB, GIB),
    "target_defaults.reconnect.initial_delay": (1.0, *SECONDS_3600),
    "target_defaults.reconnect.max_delay": (30.0, *SECONDS_3600),
    "target_defaults.reconnect.reset_after": (60.0, 1, 86_400),
    "target_defaults.timeouts.connect": (10.0, 0.5, 300),
    "target_defaults.timeouts.handshake": (10.0, 0.5, 300),
    "target_defaults.timeouts.publish": (10.0, 0.5, 300),
    "target_defaults.queue.max_seconds": (4.0, 0.5, 60),
    "target_defaults.queue.max_bytes": (16 * MIB, 65_536, GIB),
    "target_defaults.queue.max_behind_seconds": (30.0, 1, 3600),
    "target_defaults.write_interval": (0.1, 0, 0.1),
    "target_defaults.limits.max_chunk_size": (MIB, 128, 16_777_215),
    "target_defaults.limits.max_message_size": (65_536, 1024, 16_777_215),
    "target_defaults.limits.max_output_bytes": (MIB, 65_536, 64 * MIB),
    "target_defaults.limits.log_lines_per_second": (10, 1, 10_000),
    "live_streams[0].reconnect_window": (60.0, 0, 3600),
    "reconnect_slate.after": (1.0, 0, 30),
    "live_streams[0].recording.keep_last": (None, 1, 100_000),
    "live_streams[0].recording.max_age": (None, 60, 315_360_000),
    "live_streams[0].recording.max_total_size": (None, MIB, 1024 * 1024 * GIB),
}
# A live stream's health and a target's policies: the same fields, inherited.
SPEC.update({f"live_streams[0].{path}": spec for path, spec in SPEC.items()
             if path.startswith(("health.", "reconnect_slate."))})
SPEC.update({f"{T0}.{path.removeprefix('target_defaults.')}": spec
             for path, spec in SPEC.items() if path.startswith("target_defaults.")})


def full() -> dict[str, Any]:
    """base() with a webhook, so that every section of the schema is present."""
    data = base()
    data["webhooks"] = [{"url": "https://example.com/hooks", "secret": WEBHOOK_SECRET}]
    return data


def get(config: object, path: str) -> Any:
    node: Any = config
    for part in path.replace("]", "").replace("[", ".").split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    return node


def numeric_paths(model: type[BaseModel], prefix: str) -> list[str]:
    """Every int/float field under ``model``, lists at index 0."""
    found = []
    for name in yaml_fields(model):
        path = f"{prefix}.{name}" if prefix else name
        annotation = field_at(model, (name,))
        item = field_at(model, (name, 0))
        if item and isinstance(item[0], type) and issubclass(item[0], BaseModel):
            found += numeric_paths(item[0], f"{path}[0]")
        elif annotation and isinstance(annotation[0], type) and issubclass(annotation[0], BaseModel):
            found += numeric_paths(annotation[0], path)
        elif annotation and annotation[0] in (int, float):
            found.append(path)
    return found


def test_every_number_in_the_schema_is_in_the_spec_and_bounded() -> None:
    assert sorted(numeric_paths(RelayConfig, "")) == sorted(SPEC)


def test_defaults_are_the_specs() -> None:
    config = parse(full())
    for path, (default, _, _) in SPEC.items():
        assert get(config, path) == default, path
    assert get(config, "target_defaults.enhanced_rtmp") == "auto"
    assert config.target_defaults.reconnect_hosts == ()
    assert (config.server.listen_host, config.server.listen_port, config.server.app) == ("0.0.0.0", 1935, "live")
    assert (config.http.listen_host, config.http.listen_port, config.http.token) == ("127.0.0.1", 8935, None)
    recording = config.live_streams[0].recording
    assert (recording.enabled, recording.format) == (False, "flv")


def whole(path: str) -> bool:
    found = field_at(RelayConfig, tuple(int(p) if p.isdigit() else p
                                        for p in path.replace("]", "").replace("[", ".").split(".")))
    assert found is not None
    return bool(found[0] is int)


def shown(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


@pytest.mark.parametrize("path", sorted(SPEC))
def test_each_number_refuses_what_is_out_of_range(path: str) -> None:
    _, low, high = SPEC[path]
    kind = "a whole number" if whole(path) else "a number"
    expected = f"{SOURCE}: {path}: must be {kind} from {shown(low)} to {shown(high)}"
    step = 1 if whole(path) else max(high - low, 1) / 1000
    for value in (low - step, high + step, 1e306, 10**400, -10**400, math.nan, math.inf, -math.inf):
        assert problems(edit(full(), path, value)) == (expected,), value


@pytest.mark.parametrize("path", sorted(SPEC))
def test_each_number_takes_its_bounds(path: str) -> None:
    _, low, high = SPEC[path]
    for value in (low, high):
        data = edit(full(), path, value)
        if path.endswith("reconnect.initial_delay"):  # must stay <= max_delay
            edit(data, path.replace("initial_delay", "max_delay"), 3600)
        if path.endswith("reconnect.max_delay"):
            edit(data, path.replace("max_delay", "initial_delay"), 0.1)
        assert get(parse(data), path) == value


@pytest.mark.parametrize(("written", "message"), [
    ("1e306", "must be a number from 0.5 to 60"),
    ("1.0e+306", "must be a number from 0.5 to 60"),
    ("1" * 400, "must be a number from 0.5 to 60"),
    (".nan", "must be a number from 0.5 to 60"),
    ("-.inf", "must be a number from 0.5 to 60"),
    ("0.0001", "must be a number from 0.5 to 60"),
    ("'4'", "must be a number, not a string"),
    ("true", "must be a number, not true/false"),
])
def test_the_issues_numbers(written: str, message: str) -> None:
    # The values of issue #8 that used to pass validation and crash later.
    text = parse_config_text(full()).replace("live_streams:", f"target_defaults:\n  queue:\n    max_seconds: "
                                             f"{written}\nlive_streams:", 1)
    with pytest.raises(Exception) as info:
        parse_config(text, SOURCE, environ={})
    (problem,) = info.value.problems  # type: ignore[attr-defined]
    assert located(problem)[2] == f"target_defaults.queue.max_seconds: {message}"


def parse_config_text(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def test_a_tiny_backoff_is_refused() -> None:
    assert problems(edit(full(), "target_defaults.reconnect", {"initial_delay": 0.0001, "max_delay": 0.0001})) == (
        f"{SOURCE}: target_defaults.reconnect.initial_delay: must be a number from 0.1 to 3600",
        f"{SOURCE}: target_defaults.reconnect.max_delay: must be a number from 0.1 to 3600",
    )


# --- checks across fields ----------------------------------------------------------------------


def test_max_delay_is_at_least_initial_delay_after_inheritance() -> None:
    assert problems(edit(full(), "target_defaults.reconnect", {"initial_delay": 40})) == (
        f"{SOURCE}: target_defaults.reconnect.initial_delay: must not be greater than max_delay",)
    # A target's own max_delay under the inherited initial_delay.
    data = edit(full(), "target_defaults.reconnect", {"initial_delay": 5})
    assert problems(edit(data, f"{T1}.reconnect", {"max_delay": 2})) == (
        f"{SOURCE}: {T1}.reconnect.initial_delay: must not be greater than max_delay",)
    assert parse(edit(data, f"{T1}.reconnect", {"max_delay": 5})).live_streams[0].simulcast_targets[1].reconnect \
        .initial_delay == 5


@pytest.mark.parametrize("listen", ["127.0.0.1:8935", "127.8.9.10:80", "[::1]:8935", "localhost:8935"])
def test_http_on_loopback_needs_no_token(listen: str) -> None:
    assert parse(edit(full(), "http.listen", listen)).http.token is None


@pytest.mark.parametrize("listen", ["0.0.0.0:8935", "[::]:8935", "192.0.2.1:80", "status.example.com:80"])
def test_http_beyond_loopback_needs_a_token(listen: str) -> None:
    assert problems(edit(full(), "http.listen", listen)) == (
        (f"{SOURCE}: http.listen: listens beyond this machine without a token; set token, token_file or "
         "token_env, or listen on 127.0.0.1"),)
    data = edit(full(), "http", {"listen": listen, "token_env": "RELAY_TOKEN"})
    http = parse(data, environ={"RELAY_TOKEN": ENV_KEY}).http
    assert http.token is not None and http.token.reveal() == ENV_KEY
    assert (http.listen_host, http.listen_port) == tuple(listen.replace("[", "").replace("]", "").rsplit(":", 1)[:1]) \
        + (int(listen.rsplit(":", 1)[1]),)


def test_http_off_and_token_sources() -> None:
    http = parse(edit(full(), "http.listen", None)).http
    assert (http.listen, http.listen_host, http.listen_port) == (None, None, None)
    assert problems(edit(full(), "http", {"token": ENV_KEY, "token_env": "X"})) == (
        f"{SOURCE}: http: needs at most one of token, token_file, token_env (found token, token_env)",)
    config = parse(edit(full(), "http.token", ENV_KEY))
    assert config.http.token in config.all_secrets()
    assert f"token sha256:{config.http.token.fingerprint}" in summarize(config)  # type: ignore[union-attr]


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.com/hooks", "must start with https:// or http://"),
    ("rtmp://example.com/hooks", "must start with https:// or http://"),
    ("https://user:pw@example.com/hooks", "must not hold user:password@"),
    ("https:///hooks", "must name a host"),
    ("https://exa mple.com/", "must not contain spaces or control characters"),
    ("https://example.com:0/", "the port must be a number from 1 to 65535"),
])
def test_webhook_urls(url: str, message: str) -> None:
    (problem,) = problems(edit(full(), "webhooks[0].url", url))
    assert problem.startswith(f"{SOURCE}: webhooks[0].url: {message}"), problem


def test_webhook_secret_is_required_and_read_like_a_key(tmp_path: Path) -> None:
    assert problems(edit(full(), "webhooks[0]", {"url": "http://127.0.0.1:9000/"})) == (
        f"{SOURCE}: webhooks[0]: needs exactly one of secret, secret_file, secret_env",)
    (tmp_path / "hook.key").write_text(FILE_KEY + "\n")
    data = edit(full(), "webhooks[0]", {"url": "http://127.0.0.1:9000/", "secret_file": "hook.key"})
    config = parse(data, base_dir=tmp_path)
    (webhook,) = config.webhooks
    assert webhook.secret.reveal() == FILE_KEY and webhook.secret in config.all_secrets()
    assert (webhook.timeout, webhook.max_queue) == (10.0, 1000)
    assert_no_keys(repr(config) + summarize(config) + config.model_dump_json())


def test_recording_mp4_needs_ffmpeg_on_path(tmp_path: Path) -> None:
    data = edit(full(), "live_streams[0].recording", {"enabled": True, "format": "mp4"})
    assert problems(data, environ={"PATH": str(tmp_path)}) == (
        (f"{SOURCE}: live_streams[0].recording.format: mp4 needs ffmpeg, which is not on PATH; install "
         "it or record flv"),)
    ffmpeg = tmp_path / "ffmpeg"
    ffmpeg.write_text("#!/bin/sh\n")
    ffmpeg.chmod(0o755)
    assert parse(data, environ={"PATH": str(tmp_path)}).live_streams[0].recording.format == "mp4"
    # Not recording: nothing to check.
    edit(data, "live_streams[0].recording.enabled", False)
    assert parse(data, environ={"PATH": ""}).live_streams[0].recording.format == "mp4"


def test_recording_dirs(tmp_path: Path) -> None:
    config = parse(full(), base_dir=tmp_path)
    assert config.recording.dir == str(tmp_path / "recordings")
    assert config.live_streams[0].recording.dir == str(tmp_path / "recordings")
    assert config.base_dir == str(tmp_path)
    state = tmp_path / "state"
    config = parse(full(), environ={"STATE_DIRECTORY": f"{state}:/elsewhere"}, base_dir=tmp_path)
    assert config.recording.dir == str(state / "recordings") == config.live_streams[0].recording.dir
    data = edit(full(), "recording.dir", "../media")
    edit(data, "live_streams[0].recording.dir", "/srv/studio")
    config = parse(data, base_dir=tmp_path)
    assert config.recording.dir == str(tmp_path.parent / "media")
    assert config.live_streams[0].recording.dir == "/srv/studio"
    data["live_streams"].append({"name": "b", "stream_key": ENV_KEY, "simulcast_targets": [],
                                 "recording": {"dir": "b-recordings", "enabled": True}})
    assert parse(data, base_dir=tmp_path).live_streams[1].recording.dir == str(tmp_path / "b-recordings")
    assert problems(edit(data, "recording.dir", "")) == (f"{SOURCE}: recording.dir: must not be empty",)


@pytest.mark.parametrize("name", ["..", "../x", "a/b", ".hidden", "-dash", "a..b", "x" * 65, "", "stüdio",
                                  "a b", "a\\b", "a\x00"])
def test_live_stream_names_cannot_leave_a_folder(name: str) -> None:
    (problem,) = problems(edit(full(), "live_streams[0].name", name))
    assert problem.startswith(f"{SOURCE}: live_streams[0].name: must "), problem


@pytest.mark.parametrize("name", ["a", "studio-a", "Studio_A.2", "x" * 64, "1080p"])
def test_live_stream_names_that_are_fine(name: str) -> None:
    assert parse(edit(full(), "live_streams[0].name", name)).live_streams[0].name == name


def test_reconnect_hosts_are_host_names() -> None:
    data = edit(full(), "target_defaults.reconnect_hosts", ["B.RTMP.YouTube.com", "192.0.2.7", "2001:db8::1"])
    assert parse(data).target_defaults.reconnect_hosts == ("b.rtmp.youtube.com", "192.0.2.7", "2001:db8::1")
    for bad in ("rtmp://b.example.com", "b.example.com:1935", "-bad.example.com", "a..b", "", "x" * 64 + ".com"):
        (problem,) = problems(edit(full(), f"{T0}.reconnect_hosts", ["ok.example.com", bad]))
        assert problem.startswith(f"{SOURCE}: {T0}.reconnect_hosts[1]: must "), (bad, problem)
    assert problems(edit(full(), f"{T0}.reconnect_hosts", "a.example.com")) == (
        f"{SOURCE}: {T0}.reconnect_hosts: must be a list, not a string",)


def test_enhanced_rtmp_choices() -> None:
    assert parse(edit(full(), f"{T0}.enhanced_rtmp", "never")).live_streams[0].simulcast_targets[0] \
        .enhanced_rtmp == "never"
    assert problems(edit(full(), f"{T0}.enhanced_rtmp", "sometimes")) == (
        f"{SOURCE}: {T0}.enhanced_rtmp: must be auto, always or never",)
    assert problems(edit(full(), f"{T0}.enhanced_rtmp", False)) == (
        f"{SOURCE}: {T0}.enhanced_rtmp: must be auto, always or never",)


# --- inheritance -------------------------------------------------------------------------------


def test_targets_inherit_target_defaults_and_override_them_field_by_field() -> None:
    data = full()
    data["target_defaults"] = {"reconnect": {"max_delay": 20}, "write_interval": 0, "enhanced_rtmp": "never",
                               "reconnect_hosts": ["b.rtmp.youtube.com"], "timeouts": {"connect": 3}}
    edit(data, f"{T2}.reconnect", {"initial_delay": 2})
    edit(data, f"{T2}.write_interval", 0.1)
    edit(data, f"{T2}.reconnect_hosts", [])
    config = parse(data)
    yt, tw, fb = config.live_streams[0].simulcast_targets
    assert yt.reconnect == tw.reconnect == config.target_defaults.reconnect
    assert (fb.reconnect.initial_delay, fb.reconnect.max_delay, fb.reconnect.reset_after) == (2.0, 20.0, 60.0)
    assert (yt.write_interval, fb.write_interval) == (0.0, 0.1)
    assert yt.enhanced_rtmp == fb.enhanced_rtmp == "never"
    assert (yt.reconnect_hosts, fb.reconnect_hosts) == (("b.rtmp.youtube.com",), ())
    assert yt.timeouts.connect == 3.0 and yt.timeouts.publish == 10.0
    assert config.target_defaults.write_interval == 0.0


def test_an_invalid_target_defaults_is_reported_once_not_per_target() -> None:
    assert problems(edit(full(), "target_defaults.queue.max_seconds", "lots")) == (
        f"{SOURCE}: target_defaults.queue.max_seconds: must be a number, not a string",)


def test_a_live_streams_health_overrides_the_global_one_field_by_field() -> None:
    data = edit(full(), "health", {"max_bitrate_kbps": 6000, "media_timeout": 8})
    edit(data, "live_streams[0].health", {"media_timeout": 2, "max_bitrate_kbps": None})
    data["live_streams"].append({"name": "b", "stream_key": ENV_KEY, "simulcast_targets": []})
    config = parse(data)
    assert config.health == HealthPolicy(max_bitrate_kbps=6000, media_timeout=8)
    assert config.live_streams[0].health == HealthPolicy(media_timeout=2, max_bitrate_kbps=None)
    assert config.live_streams[1].health == config.health
    assert problems(edit(data, "live_streams[0].health.max_keyframe_intervl", 2)) == (
        (f"{SOURCE}: live_streams[0].health.max_keyframe_intervl: unknown field (did you mean "
         "max_keyframe_interval?)"),)


# --- the Python surface other modules use ---------------------------------------------------------


def test_the_python_surface() -> None:
    config = parse(full())
    assert isinstance(config.server.limits, IngestLimits) and config.server.limits == IngestLimits()
    assert isinstance(config.live_streams, tuple) and isinstance(config.webhooks, tuple)
    assert config.source == SOURCE and config.warnings == ()
    target = config.live_streams[0].simulcast_targets[0]
    for name in ("url", "stream_key", "passthrough", "scheme", "host", "port", "app", "tc_url", "tls_ca_file",
                 "tls_verify", "reconnect", "timeouts", "queue", "write_interval", "enhanced_rtmp",
                 "reconnect_hosts", "publish_url_redacted"):
        getattr(target, name)
    for name in ("name", "stream_key", "reconnect_window", "simulcast_targets", "recording", "health"):
        getattr(config.live_streams[0], name)
    assert config.target_defaults == TargetDefaults() and config.http == HttpConfig()
    # Frozen all the way down, and hashable (a reload compares configs).
    assert hash(config) == hash(parse(full()))
    assert config == parse(full())
    changed = config.model_copy(update={"server": parse(edit(full(), "server.app", "other")).server})
    assert changed.server.app == "other" and changed.source == SOURCE


def test_reload_equality_follows_the_values_not_the_objects(tmp_path: Path) -> None:
    (tmp_path / "k").write_text(FILE_KEY)
    data = edit(full(), f"{T0}.stream_key", None)
    del data["live_streams"][0]["simulcast_targets"][0]["stream_key"]
    edit(data, f"{T0}.stream_key_file", "k")
    first = parse(data, base_dir=tmp_path).live_streams[0]
    assert parse(data, base_dir=tmp_path).live_streams[0] == first
    (tmp_path / "k").write_text(FILE_KEY + "-rotated")
    assert parse(data, base_dir=tmp_path).live_streams[0] != first


# --- warnings ------------------------------------------------------------------------------------


def test_short_target_keys_and_tokens_warn() -> None:
    data = edit(full(), f"{T1}.stream_key", "live_short")
    edit(data, "http.token", "tok")
    warnings = [located(w)[2] for w in parse(data).warnings]
    assert warnings == [
        "http.token: the token is shorter than 16 characters: it can be guessed",
        (f"{T1}.stream_key: the stream key is shorter than 16 characters: the log scrubber cannot tell a key "
         "this short from ordinary text; use the platform's key"),
    ]


def test_key_files_readable_by_others_warn(tmp_path: Path) -> None:
    for name, mode in (("open.key", 0o644), ("group.key", 0o640), ("closed.key", 0o600)):
        (tmp_path / name).write_text(FILE_KEY + name)
        (tmp_path / name).chmod(mode)
    data = full()
    stream = data["live_streams"][0]
    del stream["stream_key"]
    stream["stream_key_file"] = "open.key"
    for target, name in zip(stream["simulcast_targets"], ("group.key", "closed.key"), strict=False):
        del target["stream_key"]
        target["stream_key_file"] = name
    config = parse(data, base_dir=tmp_path)
    # In file order: yaml.safe_dump sorts keys, simulcast_targets before stream_key_file.
    assert [located(w)[2] for w in config.warnings] == [
        f"{T0}.stream_key_file: the file is readable by group or others; run chmod 600 on it",
        "live_streams[0].stream_key_file: the file is readable by group or others; run chmod 600 on it",
    ]


def test_warnings_come_back_from_load_config_placed_and_without_keys(tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(parse_config_text(edit(full(), f"{T2}.tls_verify", False)))
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    (warning,) = load_config(path, environ={}).warnings
    line, column, rest = located(warning)
    assert warning.startswith(f"{path}:") and line > 1 and column > 1
    assert rest.startswith(f"{T2}.tls_verify: certificate checks are off for simulcast target 'Facebook'")
    assert_no_keys(warning)


# --- loading is pure ------------------------------------------------------------------------------


def test_loading_is_pure_and_thread_safe(tmp_path: Path) -> None:
    (tmp_path / "ingest.key").write_text(FILE_KEY)
    data = full()
    del data["live_streams"][0]["stream_key"]
    data["live_streams"][0]["stream_key_file"] = "ingest.key"
    edit(data, f"{T0}.stream_key", None)
    del data["live_streams"][0]["simulcast_targets"][0]["stream_key"]
    edit(data, f"{T0}.stream_key_env", "YT_KEY")
    text = parse_config_text(data)
    environ_before = dict(os.environ)

    def load(i: int) -> RelayConfig:
        # Each thread its own environment: no load may see another's.
        return parse_config(text, SOURCE, environ={"YT_KEY": f"{ENV_KEY}-{i}"}, base_dir=tmp_path)

    with ThreadPoolExecutor(max_workers=8) as pool:
        configs = list(pool.map(load, range(64)))
    for i, config in enumerate(configs):
        assert config.live_streams[0].simulcast_targets[0].stream_key.reveal() == f"{ENV_KEY}-{i}"
        assert config.live_streams[0].stream_key.reveal() == FILE_KEY
        assert config.live_streams[0].simulcast_targets[1:] == configs[0].live_streams[0].simulcast_targets[1:]
    assert dict(os.environ) == environ_before


def test_a_failed_load_leaves_nothing_behind() -> None:
    bad = copy.deepcopy(full())
    edit(bad, "server.listen", "nowhere")
    for _ in range(3):
        with pytest.raises(Exception):
            parse(bad)
    assert parse(full()).live_streams[0].stream_key.reveal() == INGEST_A


def test_typing_of_the_surface() -> None:
    hints = typing.get_type_hints(RelayConfig)
    assert "live_streams" in hints and "webhooks" in hints
