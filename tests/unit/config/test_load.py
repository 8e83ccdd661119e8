"""relay.config: loading, every problem at its path, stream keys that never leak.

Ported from the tests of the hand-written schema; problems are now reported as
FILE:LINE:COLUMN: path: message, and ``problems()`` drops the line:column
(test_positions.py checks them).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from relay.config import (
    ConfigError,
    QueuePolicy,
    ReconnectPolicy,
    Secret,
    Timeouts,
    load_config,
    parse_config,
    redact,
    summarize,
)
from relay.config.scrub import MIN_KEY_LENGTH
from relay.errors import RelayError
from tests.unit.config.support import (
    ALL_KEYS,
    DELETE,
    ENV_KEY,
    EXAMPLE,
    FB,
    FILE_KEY,
    INGEST_A,
    INGEST_B,
    SOURCE,
    T0,
    T2,
    TW,
    YT,
    assert_no_keys,
    base,
    edit,
    located,
    parse,
    problems,
    problems_text,
)

# (field to set, value, path of the problem, the problem's message or its start)
ONE_PROBLEM = [
    ("serverr", {}, "serverr", "unknown field (did you mean server?)"),
    (f"{T0}.pasthrough", "x", f"{T0}.pasthrough", "unknown field (did you mean passthrough?)"),
    ("server.listen", 1935, "server.listen", "must be a string, not a number (put it in quotes)"),
    ("server.listen", "1935", "server.listen", "must be HOST:PORT"),
    ("server.listen", "0.0.0.0:0", "server.listen", "the port must be a number from 1 to 65535"),
    ("server.listen", "0.0.0.0:70000", "server.listen", "the port must be"),
    ("server.listen", ":::1935", "server.listen", "an IPv6 address goes in brackets"),
    ("server.listen", "[nope]:1935", "server.listen", "the part in brackets must be an IPv6 address"),
    ("server.listen", "999.0.0.1:1935", "server.listen", "the host must be an IP address or a host name"),
    ("server.app", "live/extra", "server.app", "must be one path segment"),
    ("server.app", "", "server.app", "must not be empty"),
    ("live_streams", DELETE, "live_streams", "required field missing"),
    ("live_streams", [], "live_streams", "at least one live stream is required (or an http.access_tokens entry "
     "with write permission"),
    ("live_streams", "studio-a", "live_streams", "must be a list, not a string"),
    ("live_streams[0].name", "studio a", "live_streams[0].name", "must be 1 to 64 letters, digits and _ . -"),
    ("live_streams[0].reconnect_window", "soon", "live_streams[0].reconnect_window", "must be a number"),
    ("live_streams[0].reconnect_window", -1, "live_streams[0].reconnect_window",
     "must be a number from 0 to 3600"),
    ("live_streams[0].reconnect_window", True, "live_streams[0].reconnect_window", "must be a number"),
    ("live_streams[0].stream_key", None, "live_streams[0].stream_key", "has no value"),
    ("live_streams[0].stream_key", DELETE, "live_streams[0]", ("needs exactly one of stream_key, "
     "stream_key_file, stream_key_env")),
    ("live_streams[0].stream_key_env", "X", "live_streams[0]", ("needs exactly one of stream_key, "
     "stream_key_file, stream_key_env (found stream_key, stream_key_env)")),
    (f"{T0}.stream_key", "two words", f"{T0}.stream_key", "gives a key with spaces"),
    (f"{T0}.url", DELETE, f"{T0}.url", "required field missing"),
    (f"{T0}.url", "http://a.rtmp.youtube.com/live2", f"{T0}.url", "must start with rtmp:// or rtmps://"),
    (f"{T0}.url", "rtmp:///live2", f"{T0}.url", "must name a host"),
    (f"{T0}.url", "rtmp://a.rtmp.youtube.com", f"{T0}.url", "must include the app"),
    (f"{T0}.url", "rtmp://a.rtmp.youtube.com/", f"{T0}.url", "must include the app"),
    (f"{T0}.url", "rtmp://me:pw@a.rtmp.youtube.com/live2", f"{T0}.url", "must not hold user:password@"),
    (f"{T0}.url", "rtmp://a.rtmp.youtube.com/live2?k=v", f"{T0}.url", "must not have a ?query"),
    (f"{T0}.url", "rtmp://a.rtmp.youtube.com:0/live2", f"{T0}.url", "the port must be"),
    (f"{T0}.url", "rtmp://a.rtmp.youtube.com:99999/live2", f"{T0}.url", "is not a valid URL"),
    (f"{T0}.url", f"rtmp://a.rtmp.youtube.com/live2/{YT}", f"{T0}.url", "contains this target's stream key"),
    (f"{T0}.tls_verify", False, f"{T0}.tls_verify", "only applies to rtmps:// urls"),
    (f"{T0}.tls_ca_file", "/", f"{T0}.tls_ca_file", "only applies to rtmps:// urls"),
    (f"{T2}.tls_ca_file", str(EXAMPLE), f"{T2}.tls_ca_file", "holds no PEM certificate"),
    (f"{T2}.tls_verify", "yes", f"{T2}.tls_verify", "must be true or false, not a string"),
    (f"{T2}.queue.max_bytes", 1.5, f"{T2}.queue.max_bytes", "must be a whole number"),
    (f"{T2}.timeouts.connect", 0, f"{T2}.timeouts.connect", "must be a number from 0.5 to 300"),
    (f"{T2}.reconnect.initial_delay", 60, f"{T2}.reconnect.initial_delay",
     "must not be greater than max_delay"),
    ("target_defaults.reconnect.max_delay", -5, "target_defaults.reconnect.max_delay",
     "must be a number from 0.1 to 3600"),
    ("target_defaults.queue", [], "target_defaults.queue", "must be a mapping, not a list"),
    (f"{T2}.passthrough", "Twitch", f"{T2}.passthrough",
     "duplicate passthrough label (also simulcast_targets[1])"),
]


@pytest.mark.parametrize(("field", "value", "path", "message"), ONE_PROBLEM,
                         ids=[f"{case[2]}:{case[3][:30]}" for case in ONE_PROBLEM])
def test_each_problem_names_its_path(field: str, value: object, path: str, message: str) -> None:
    found = problems(edit(base(), field, value))
    assert len(found) == 1, found
    assert found[0].startswith(f"{SOURCE}: {path}: {message}")


def test_more_than_six_targets_is_reported_at_the_seventh() -> None:
    data = base()
    data["live_streams"][0]["simulcast_targets"] = [
        {"url": f"rtmp://ingest{i}.example.com/live", "stream_key": f"k{i}-SEKRIT"} for i in range(8)]
    assert problems(data) == (
        (f"{SOURCE}: live_streams[0].simulcast_targets[6]: at most 6 simulcast targets per live "
        "stream (the limit Mux's Simulcast API sets); this live stream has 8"),)


def test_duplicate_names_and_ingest_keys_name_both_indexes_not_the_key() -> None:
    data = base()
    second = copy.deepcopy(data["live_streams"][0])
    data["live_streams"].append(second)
    assert problems(data) == (
        f"{SOURCE}: live_streams[1].name: duplicate live stream name (also live_streams[0])",
        (f"{SOURCE}: live_streams[1].stream_key: same stream key as live_streams[0]; each live "
        "stream needs its own"),
    )


def test_default_passthrough_is_the_host_and_must_be_unique() -> None:
    data = base()
    targets = data["live_streams"][0]["simulcast_targets"]
    for target in targets:
        del target["passthrough"]
    assert [t.passthrough for t in parse(data).live_streams[0].simulcast_targets] == [
        "a.rtmp.youtube.com", "live.twitch.tv", "live-api-s.facebook.com"]
    targets.append({"url": "rtmp://b.rtmp.youtube.com/live2?backup=1", "stream_key": "yt2-SEKRIT"})
    targets[3]["url"] = "rtmp://a.rtmp.youtube.com/live2b"
    assert problems(data) == (
        (f"{SOURCE}: live_streams[0].simulcast_targets[3].passthrough: duplicate passthrough label "
        "(also simulcast_targets[0]); give each target its own"),)


def test_same_url_and_key_twice_is_an_error() -> None:
    data = base()
    targets = data["live_streams"][0]["simulcast_targets"]
    targets.append(dict(targets[0], passthrough="YouTube again"))
    assert problems(data) == (
        (f"{SOURCE}: live_streams[0].simulcast_targets[3]: same url and stream key as "
        "simulcast_targets[0]; the server takes only one"),)


def test_several_problems_are_reported_together_in_file_order() -> None:
    data = base()
    edit(data, "server.listen", "nowhere")
    edit(data, "server.colour", "blue")
    edit(data, f"{T0}.url", "ftp://example.com/x")
    edit(data, f"{T2}.queue.max_seconds", "lots")
    edit(data, "live_streams[0].stream_key_file", "key.txt")
    with pytest.raises(ConfigError) as info:
        parse(data)
    found = [located(problem) for problem in info.value.problems]
    # yaml.safe_dump sorts the keys: live_streams comes before server.
    assert [rest.split(": ")[0] for _, _, rest in found] == [
        "live_streams[0]", f"{T0}.url", f"{T2}.queue.max_seconds", "server.colour", "server.listen"]
    assert [(line, column) for line, column, _ in found] == sorted((line, column) for line, column, _ in found)


def test_valid_config_loads_with_parsed_urls_and_merged_policies() -> None:
    data = base()
    data["server"] = {"listen": "[::]:1935", "app": "live"}
    data["target_defaults"] = {"reconnect": {"max_delay": 20}, "queue": {"max_bytes": 100_000}}
    edit(data, f"{T2}.reconnect.initial_delay", 2)
    edit(data, f"{T2}.timeouts", {"publish": 5})
    config = parse(data)
    assert config.server.listen_host == "::" and config.server.listen_port == 1935
    assert config.server.app == "live" and config.server.tls_listen_host is None
    (stream,) = config.live_streams
    assert stream.name == "studio-a" and stream.reconnect_window == 60.0
    assert stream.stream_key.matches(INGEST_A)
    yt, tw, fb = stream.simulcast_targets
    assert (yt.scheme, yt.host, yt.port, yt.app, yt.tc_url) == (
        "rtmp", "a.rtmp.youtube.com", 1935, "live2", "rtmp://a.rtmp.youtube.com/live2")
    assert (fb.scheme, fb.port, fb.app, fb.tc_url, fb.tls_verify, fb.tls_ca_file) == (
        "rtmps", 443, "rtmp", "rtmps://live-api-s.facebook.com:443/rtmp", True, None)
    assert tw.stream_key.reveal() == TW
    assert yt.reconnect == ReconnectPolicy(initial_delay=1.0, max_delay=20.0, reset_after=60.0)
    assert fb.reconnect == ReconnectPolicy(initial_delay=2.0, max_delay=20.0, reset_after=60.0)
    assert fb.timeouts == Timeouts(publish=5.0)
    assert fb.queue == QueuePolicy(max_bytes=100_000) and yt.queue == fb.queue
    assert yt.publish_url_redacted == f"rtmp://a.rtmp.youtube.com/live2/<key sha256:{yt.stream_key.fingerprint}>"
    assert config.warnings == ()
    with pytest.raises(ValidationError, match="frozen"):
        yt.url = "rtmp://elsewhere/app"  # type: ignore[misc]


@pytest.mark.parametrize(("url", "host", "port", "app", "tc_url"), [
    ("rtmps://live-api-s.facebook.com:443/rtmp/", "live-api-s.facebook.com", 443, "rtmp",
     "rtmps://live-api-s.facebook.com:443/rtmp"),
    ("rtmps://global-live.mux.com/app", "global-live.mux.com", 443, "app", "rtmps://global-live.mux.com/app"),
    ("rtmp://host.example/app/instance", "host.example", 1935, "app/instance", "rtmp://host.example/app/instance"),
    ("RTMP://Host.Example:1936/live/", "host.example", 1936, "live", "rtmp://host.example:1936/live"),
    ("rtmp://[2001:db8::1]:1935/live", "2001:db8::1", 1935, "live", "rtmp://[2001:db8::1]:1935/live"),
])
def test_target_url_parts(url: str, host: str, port: int, app: str, tc_url: str) -> None:
    data = edit(base(), f"{T0}.url", url)
    target = parse(data).live_streams[0].simulcast_targets[0]
    assert (target.url, target.host, target.port, target.app, target.tc_url) == (url, host, port, app, tc_url)


def test_reconnect_window_zero_disables() -> None:
    assert parse(edit(base(), "live_streams[0].reconnect_window", 0)).live_streams[0].reconnect_window == 0.0


# --- where stream keys come from -------------------------------------------------------------


def test_stream_key_file_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "youtube.key").write_text(FILE_KEY + "\n")
    data = edit(base(), f"{T0}.stream_key", DELETE)
    edit(data, f"{T0}.stream_key_file", "youtube.key")
    config = parse(data, base_dir=tmp_path)
    assert config.live_streams[0].simulcast_targets[0].stream_key.reveal() == FILE_KEY


def test_stream_key_file_is_looked_up_in_credentials_directory(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "youtube.key").write_text(FILE_KEY)
    (tmp_path / "youtube.key").write_text("wrong-one-SEKRIT")
    data = edit(base(), f"{T0}.stream_key", DELETE)
    edit(data, f"{T0}.stream_key_file", "youtube.key")
    config = parse(data, environ={"CREDENTIALS_DIRECTORY": str(credentials)}, base_dir=tmp_path)
    assert config.live_streams[0].simulcast_targets[0].stream_key.reveal() == FILE_KEY
    # An absolute path is used as it is.
    edit(data, f"{T0}.stream_key_file", str(tmp_path / "youtube.key"))
    config = parse(data, environ={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert config.live_streams[0].simulcast_targets[0].stream_key.reveal() == "wrong-one-SEKRIT"


@pytest.mark.parametrize(("content", "message"), [
    (None, ("cannot read the file: No such file or directory (a relative path is looked up in "
           "$CREDENTIALS_DIRECTORY)")),
    ("\n", "gives an empty key"),
    (f"{FILE_KEY}\nsecond line\n", "gives a key with spaces, line breaks or control characters"),
    (b"\xff\xfe-SEKRIT", "the file is not UTF-8 text"),
    ("k" * 5000, "the file is over 4096 bytes; it should hold only the key"),
])
def test_stream_key_file_problems(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    # A key pasted as the file name must not come back in the message.
    name = ENV_KEY
    if isinstance(content, str):
        (tmp_path / name).write_text(content)
    elif isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    data = edit(base(), "live_streams[0].stream_key", DELETE)
    edit(data, "live_streams[0].stream_key_file", name)
    assert problems(data, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)}) == (
        f"{SOURCE}: live_streams[0].stream_key_file: {message}",)


def test_stream_key_env() -> None:
    data = edit(base(), f"{T2}.stream_key", DELETE)
    edit(data, f"{T2}.stream_key_env", "FACEBOOK_KEY")
    config = parse(data, environ={"FACEBOOK_KEY": ENV_KEY + "\n"})
    assert config.live_streams[0].simulcast_targets[2].stream_key.reveal() == ENV_KEY
    assert problems(data) == (
        f"{SOURCE}: {T2}.stream_key_env: names an environment variable that is not set",)
    assert problems(data, environ={"FACEBOOK_KEY": " "}) == (
        f"{SOURCE}: {T2}.stream_key_env: gives an empty key",)
    edit(data, f"{T2}.stream_key_env", FB)  # the key itself, pasted in the wrong field
    assert problems(data) == (
        f"{SOURCE}: {T2}.stream_key_env: must be an environment variable name (letters, digits, _)",)


def test_environ_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_TEST_INGEST_KEY", ENV_KEY)
    data = edit(base(), "live_streams[0].stream_key", DELETE)
    edit(data, "live_streams[0].stream_key_env", "RELAY_TEST_INGEST_KEY")
    config = parse_config(yaml.safe_dump(data), SOURCE)
    assert config.live_streams[0].stream_key.reveal() == ENV_KEY


# --- keys never leak -------------------------------------------------------------------------


def test_keys_never_appear_in_problems_even_when_misplaced() -> None:
    data = base()
    stream = data["live_streams"][0]
    stream["stream_key"] = [INGEST_A]                    # wrong type
    stream["simulcast_targets"][0]["stream_key"] = 12345678  # a number; still not echoed
    stream["simulcast_targets"][0]["url"] = f"rtmp://{YT}@host/app?key={YT}"
    stream["simulcast_targets"][1]["passthrough"] = {TW: TW}
    stream["simulcast_targets"][1]["stream_key_env"] = TW
    stream["simulcast_targets"][2]["tls_verify"] = FB
    stream["notes"] = FB                                # an unknown field's value
    found = problems({**data, "server": {"listen": INGEST_B, "app": f"{INGEST_B}/x"}})
    assert len(found) == 9
    assert not any("12345678" in p for p in found)


def test_yaml_syntax_error_names_the_line_but_not_its_text() -> None:
    text = f"server:\n  listen: '0.0.0.0:1935'\nlive_streams:\n  - name: a\n    stream_key: \"{INGEST_A}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, SOURCE, environ={})
    (problem,) = info.value.problems
    assert problem == (f"{SOURCE}:5:17: invalid YAML: this double quote (`\"`) is never closed: end the value "
                       "with the same quote, on the same line")
    assert_no_keys(problem)
    with pytest.raises(ConfigError) as info:
        parse_config(f"live_streams: [{{stream_key: !!int {INGEST_A}}}]", SOURCE, environ={})
    assert_no_keys(str(info.value))


def test_duplicate_yaml_keys_are_problems() -> None:
    text = yaml.safe_dump(base()).replace(f"stream_key: {INGEST_A}",
                                          f"stream_key: {INGEST_A}\n  stream_key: {INGEST_B}")
    found = problems_text(text)
    assert len(found) == 1 and re.fullmatch(
        rf"{SOURCE}:\d+:3: live_streams\[0\]\.stream_key: duplicate key; the later one would silently win",
        found[0])


@pytest.mark.parametrize(("text", "problem"), [
    ("", f"{SOURCE}: the config file is empty"),
    ("# only a comment\n", f"{SOURCE}: the config file is empty"),
    ("- server\n", f"{SOURCE}:1:1: the top level must be a mapping (server, live_streams, ...), not a list"),
    (INGEST_A, f"{SOURCE}:1:1: the top level must be a mapping (server, live_streams, ...), not a string"),
])
def test_empty_or_not_a_mapping(text: str, problem: str) -> None:
    assert problems_text(text) == (problem,)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml")
    assert info.value.problems == (
        f"{tmp_path / 'missing.yaml'}: cannot read the config file: No such file or directory",)
    assert isinstance(info.value, RelayError)
    with pytest.raises(ConfigError, match="cannot read the config file: Is a directory"):
        load_config(tmp_path)
    (tmp_path / "latin1.yaml").write_bytes(b"server: {app: \xe9}\n")
    with pytest.raises(ConfigError, match="is not valid UTF-8"):
        load_config(str(tmp_path / "latin1.yaml"))


def test_secret_never_shows_itself() -> None:
    secret = Secret(YT)
    expected = f"Secret(sha256:{hashlib.sha256(YT.encode()).hexdigest()[:8]})"
    assert repr(secret) == str(secret) == f"{secret}" == format(secret, "") == expected
    assert f"{secret:>40}".strip() == expected
    assert secret.fingerprint == hashlib.sha256(YT.encode()).hexdigest()[:8]
    assert secret.matches(YT) and not secret.matches(YT[:-1]) and not secret.matches("\udcff")
    assert secret == Secret(YT) and secret != Secret(TW) and hash(secret) == hash(Secret(YT))
    assert copy.deepcopy(secret) is secret
    with pytest.raises(TypeError) as info:
        pickle.dumps(secret)
    assert_no_keys(str(info.value))
    with pytest.raises(AttributeError):
        secret._value = "other"
    with pytest.raises(ValueError):
        Secret("")


def test_config_repr_asdict_summary_and_warnings_hold_no_keys(tmp_path: Path) -> None:
    data = edit(base(), f"{T2}.tls_verify", False)
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o644)
    config = load_config(path)
    for text in (repr(config), repr(config.model_dump()), config.model_dump_json(), summarize(config),
                 *config.warnings):
        assert_no_keys(text)
    dumped = json.loads(config.model_dump_json(by_alias=True))
    assert dumped["live_streams"][0]["stream_key"] == f"sha256:{config.live_streams[0].stream_key.fingerprint}"
    assert f"{T2}.tls_verify: certificate checks are off for simulcast target 'Facebook'" in config.warnings[1]


def test_redact_raw_percent_encoded_and_overlapping_keys() -> None:
    short, long, slash = Secret("abc-SEKRIT"), Secret("abc-SEKRIT-longer"), Secret("a/b+SEKRIT")
    text = "publish abc-SEKRIT-longer, then abc-SEKRIT; url rtmp://h/app/a%2Fb%2BSEKRIT or a/b+SEKRIT"
    assert redact(text, [short, long, slash]) == (
        f"publish <redacted:{long.fingerprint}>, then <redacted:{short.fingerprint}>; url "
        f"rtmp://h/app/<redacted:{slash.fingerprint}> or <redacted:{slash.fingerprint}>")
    assert redact(text, []) == text


def test_find_live_stream_and_all_secrets() -> None:
    data = base()
    data["live_streams"].append({"name": "studio-b", "stream_key": INGEST_B, "simulcast_targets": [
        {"url": "rtmp://live.twitch.tv/app", "stream_key": "other-twitch-SEKRIT"}]})
    config = parse(data)
    assert config.find_live_stream(INGEST_B) is config.live_streams[1]
    assert config.find_live_stream(INGEST_A) is config.live_streams[0]
    assert config.find_live_stream(INGEST_A + "x") is None
    assert config.find_live_stream("") is None
    assert {s.reveal() for s in config.all_secrets()} == {
        INGEST_A, INGEST_B, YT, TW, FB, "other-twitch-SEKRIT"}


# --- warnings --------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "inline", "warned"), [
    (0o644, True, True), (0o640, True, True), (0o604, True, True),
    (0o600, True, False), (0o644, False, False),
])
def test_group_or_world_readable_inline_keys_warn(tmp_path: Path, mode: int, inline: bool, warned: bool) -> None:
    data = base()
    if not inline:
        for obj in [data["live_streams"][0], *data["live_streams"][0]["simulcast_targets"]]:
            obj["stream_key_env"] = "KEY_" + str(id(obj))
            del obj["stream_key"]
    environ = {"KEY_" + str(id(o)): f"k{i}-{'x' * 16}" for i, o in enumerate(
        [data["live_streams"][0], *data["live_streams"][0]["simulcast_targets"]])}
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(mode)
    warnings = load_config(path, environ=environ).warnings
    assert warnings == ((
        (f"{path}: holds inline stream keys and is readable by group or others (mode {mode:04o}); "
        "run chmod 600 on it, or move the keys to stream_key_file or stream_key_env"),) if warned else ())


def test_short_ingest_key_and_no_targets_warn() -> None:
    data = edit(base(), "live_streams[0].stream_key", "short-SEKRIT")
    data["live_streams"][0]["simulcast_targets"] = []
    warnings = tuple(located(warning)[2] for warning in parse(data).warnings)
    assert warnings == (
        ("live_streams[0].simulcast_targets: is empty; a publisher will be accepted and its stream "
         "relayed nowhere"),
        ("live_streams[0].stream_key: the ingest stream key is shorter than 16 characters: anyone who "
         "guesses it can publish, and the log scrubber cannot tell a key this short from ordinary text"),
    )


# --- TLS files ---------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    ca = trustme.CA()
    leaf = ca.issue_cert("relay.example")
    other = trustme.CA().issue_cert("relay.example")
    files = {
        "ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem",
        "other_key": tmp_path / "other-key.pem", "encrypted_key": tmp_path / "encrypted-key.pem",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    leaf.cert_chain_pems[0].write_to_path(str(files["cert"]))
    leaf.private_key_pem.write_to_path(str(files["key"]))
    other.private_key_pem.write_to_path(str(files["other_key"]))
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    files["encrypted_key"].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    yield files


def with_tls(cert: Path | str, key: Path | str) -> dict[str, Any]:
    data = base()
    data["server"].update(tls_listen="[::]:1936", tls_cert_file=str(cert), tls_key_file=str(key))
    return data


def test_rtmps_ingest_loads(tls_files: dict[str, Path]) -> None:
    server = parse(with_tls("cert.pem", "key.pem"), base_dir=tls_files["cert"].parent).server
    assert (server.tls_listen_host, server.tls_listen_port) == ("::", 1936)
    assert server.tls_cert_file == str(tls_files["cert"]) and server.tls_key_file == str(tls_files["key"])


@pytest.mark.parametrize(("cert", "key", "path", "message"), [
    ("missing.pem", "key", "server.tls_cert_file", "cannot read the certificate file: No such file"),
    ("key", "key", "server.tls_cert_file", "holds no PEM certificate"),
    ("cert", "other_key", "server.tls_key_file", "is not the PEM private key of tls_cert_file"),
    ("cert", "cert", "server.tls_key_file", "is not the PEM private key of tls_cert_file"),
    ("cert", "encrypted_key", "server.tls_key_file", "is encrypted with a passphrase"),
])
def test_rtmps_ingest_problems(tls_files: dict[str, Path], cert: str, key: str, path: str, message: str) -> None:
    found = problems(with_tls(tls_files.get(cert, cert), tls_files[key]))
    assert len(found) == 1 and found[0].startswith(f"{SOURCE}: {path}: {message}"), found


def test_a_tls_key_readable_by_others_warns(tls_files: dict[str, Path]) -> None:
    tls_files["key"].chmod(0o640)
    config = parse(with_tls("cert.pem", "key.pem"), base_dir=tls_files["cert"].parent)
    assert [located(w)[2] for w in config.warnings] == [
        "server.tls_key_file: the file is readable by group or others; run chmod 600 on it"]
    tls_files["key"].chmod(0o600)
    assert parse(with_tls("cert.pem", "key.pem"), base_dir=tls_files["cert"].parent).warnings == ()


def test_tls_listen_needs_cert_and_key_and_they_need_it(tls_files: dict[str, Path]) -> None:
    assert problems(edit(base(), "server.tls_listen", "0.0.0.0:1936")) == tuple(
        f"{SOURCE}: server.{name}: required field missing (tls_listen needs it)"
        for name in ("tls_cert_file", "tls_key_file"))
    data = with_tls(tls_files["cert"], tls_files["key"])
    del data["server"]["tls_listen"]
    assert problems(data) == tuple(
        f"{SOURCE}: server.{name}: only used with tls_listen; set it or remove this"
        for name in ("tls_cert_file", "tls_key_file"))
    data["server"]["tls_listen"] = "0.0.0.0:1935"
    assert problems(data) == (f"{SOURCE}: server.tls_listen: must differ from server.listen",)


def test_tls_ca_file(tls_files: dict[str, Path]) -> None:
    data = edit(base(), f"{T2}.tls_ca_file", "ca.pem")
    target = parse(data, base_dir=tls_files["ca"].parent).live_streams[0].simulcast_targets[2]
    assert target.tls_ca_file == str(tls_files["ca"])
    assert f"(TLS, certificate checked against {tls_files['ca']})" in summarize(
        parse(data, base_dir=tls_files["ca"].parent))
    assert problems(data, base_dir=tls_files["ca"].parent / "nowhere") == (
        f"{SOURCE}: {T2}.tls_ca_file: cannot read the certificate file: No such file or directory",)


# --- summary -----------------------------------------------------------------


def test_summary() -> None:
    config = parse(base())
    text = summarize(config)
    assert_no_keys(text)
    assert "ingest: rtmp://0.0.0.0:1935/live" in text
    stream = config.live_streams[0]
    assert f"live stream studio-a: stream key sha256:{stream.stream_key.fingerprint}, reconnect window 60s" in text
    for target in stream.simulcast_targets:
        assert f"  - {target.passthrough}: {target.publish_url_redacted}" in text


# --- anything anywhere -----------------------------------------------------------------------

FUZZ_PATHS = [
    "server", "server.listen", "server.app", "server.tls_listen", "server.tls_key_file",
    "target_defaults", "target_defaults.reconnect", "target_defaults.queue.max_bytes",
    "live_streams", "live_streams[0]", "live_streams[0].name", "live_streams[0].stream_key",
    "live_streams[0].stream_key_file", "live_streams[0].stream_key_env",
    "live_streams[0].reconnect_window", "live_streams[0].simulcast_targets", T0, f"{T0}.url",
    f"{T0}.stream_key", f"{T0}.passthrough", f"{T2}.tls_verify", f"{T2}.tls_ca_file",
    f"{T2}.reconnect", f"{T2}.timeouts.publish", f"{T2}.queue",
]
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(ALL_KEYS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FUZZ_PATHS), YAML_VALUES), min_size=1, max_size=3))
def test_any_value_anywhere_is_a_config_or_a_config_error_without_keys(
        edits: list[tuple[str, object]]) -> None:
    data = base()
    for path, value in edits:
        try:
            edit(data, path, value)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit replaced the parent
    try:
        config = parse(data)
    except ConfigError as err:
        assert err.problems and all(p.startswith(f"{SOURCE}:") for p in err.problems)
        assert_no_keys(str(err))
        return
    # Not repr(config): a key typed as a label (passthrough, app) is the user's to see;
    # summaries and warnings are redacted all the same. A key under 16 characters cannot be
    # told from ordinary text (scrubbing "e" would cut every word): it gets a warning instead.
    shown = summarize(config) + "".join(config.warnings)
    assert not any(secret.reveal() in shown for secret in config.all_secrets()
                   if len(secret.reveal()) >= MIN_KEY_LENGTH)
    for secret in config.all_secrets():
        if len(secret.reveal()) < MIN_KEY_LENGTH:
            assert any("shorter than 16 characters" in warning for warning in config.warnings)


def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = edit(base(), "live_streams[0].stream_key", DELETE)
    edit(data, "live_streams[0].stream_key_file", str(fifo))
    edit(data, f"{T2}.tls_ca_file", str(tmp_path))
    assert problems(data) == (
        f"{SOURCE}: {T2}.tls_ca_file: the certificate file is not a regular file",
        (f"{SOURCE}: live_streams[0].stream_key_file: the file is not a regular file (a relative "
         f"path is looked up in {Path.cwd()})"),
    )


def test_passthrough_with_control_characters() -> None:
    assert problems(edit(base(), f"{T0}.passthrough", "You\x1b[31mTube")) == (
        f"{SOURCE}: {T0}.passthrough: must not contain control characters",)
