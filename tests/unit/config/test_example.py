"""config/example.yaml and config/schema.json: generated from the schema, fresh, valid, and at the defaults."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from relay.config import (
    HealthPolicy,
    HttpConfig,
    RecordingDefaults,
    RelayConfig,
    ServerConfig,
    TargetDefaults,
    load_config,
)
from relay.config.example import SAMPLE, Commented, file_default, render_example, render_schema
from relay.config.messages import field_at, yaml_fields
from tests.support.example import example_ready
from tests.unit.config.support import EXAMPLE, SCHEMA_JSON

REPO = EXAMPLE.parents[1]


def test_the_committed_files_are_what_the_schema_generates() -> None:
    # If this fails: python -m relay.config.example
    assert EXAMPLE.read_text(encoding="utf-8") == render_example()
    assert SCHEMA_JSON.read_text(encoding="utf-8") == render_schema()


def test_the_generator_checks_and_rewrites(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "relay.config.example", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=60, check=False)

    assert run("--check").returncode == 0
    (tmp_path / "example.yaml").write_text(render_example().replace("max_connections: 256", "max_connections: 1"))
    stale = run("--check", "--dir", str(tmp_path))
    assert stale.returncode == 1
    assert "example.yaml: stale" in stale.stderr and "schema.json: stale" in stale.stderr
    assert run("--dir", str(tmp_path)).returncode == 0
    assert (tmp_path / "example.yaml").read_text() == render_example()
    assert (tmp_path / "schema.json").read_text() == render_schema()
    assert run("--check", "--dir", str(tmp_path)).returncode == 0


def test_the_example_loads_and_looks_like_a_streamers_config(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    assert text.startswith("# yaml-language-server: $schema=./schema.json\n")
    for url in ("rtmp://a.rtmp.youtube.com/live2", "rtmp://live.twitch.tv/app",
                "rtmps://live-api-s.facebook.com:443/rtmp/"):
        assert url in text
    for advice in ("4,000 kbit/s at 720p", "one every 2 s"):
        assert advice in " ".join(line.lstrip("# ") for line in text.splitlines())
    for alternative in ("# stream_key_file:", "# stream_key_env:", "# tls_listen:", "# webhooks:"):
        assert alternative in text
    config = load_config(example_ready(tmp_path), environ={})
    assert [t.passthrough for t in config.live_streams[0].simulcast_targets] == ["YouTube", "Twitch", "Facebook"]
    # The targets' keys are placeholders: each is warned about, and nothing else is.
    assert len(config.warnings) == 3 and all("is a placeholder" in warning for warning in config.warnings)


def test_the_example_is_at_the_defaults(tmp_path: Path) -> None:
    config = load_config(example_ready(tmp_path), environ={})
    context_free = RelayConfig.model_validate({"live_streams": [{"name": "x", "stream_key": "k" * 16,
                                                                  "simulcast_targets": []}]})
    assert config.server == ServerConfig()
    assert config.target_defaults == TargetDefaults()
    assert config.health == HealthPolicy()
    assert config.http == HttpConfig()
    assert config.webhooks == ()
    assert config.recording.model_copy(update={"dir": ""}) == RecordingDefaults.model_validate(
        {"dir": "x"}).model_copy(update={"dir": ""})
    assert config.live_streams[0].recording.model_dump(exclude={"dir"}) == \
        context_free.live_streams[0].recording.model_dump(exclude={"dir"})


def _written_differences(model: type[BaseModel], data: dict[str, Any], path: str) -> set[str]:
    """Paths where the file writes a value other than the schema's default."""
    found = set()
    for name, value in data.items():
        where = f"{path}.{name}" if path else name
        info = yaml_fields(model)[name]
        child = field_at(model, (name,))
        item = field_at(model, (name, 0))
        if isinstance(value, list) and item and isinstance(item[0], type) and issubclass(item[0], BaseModel):
            for i, element in enumerate(value):
                found |= _written_differences(item[0], element, f"{where}[{i}]")
        elif isinstance(value, dict) and child and isinstance(child[0], type) and issubclass(child[0], BaseModel):
            found |= _written_differences(child[0], value, where)
        elif file_default(info) is PydanticUndefined or value != file_default(info):
            found.add(where)
    return found


def _sample_paths(node: Any, path: str) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for name, value in node.items():
            if not isinstance(value, Commented):
                found |= _sample_paths(value, f"{path}.{name}" if path else name)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found |= _sample_paths(value, f"{path}[{i}]")
    else:
        found.add(path)
    return found


def test_the_example_differs_from_the_defaults_only_where_the_sample_says() -> None:
    # A diff of values, field by field: the example writes the schema's defaults, except the
    # sample's live stream and targets (which have no defaults, or a deliberate value).
    written = yaml.safe_load(EXAMPLE.read_text())
    differences = _written_differences(RelayConfig, written, "")
    sample = _sample_paths(SAMPLE, "")
    assert differences <= sample, sorted(differences - sample)
    assert {path for path in sample if path.endswith(("url", "stream_key", "name"))} <= differences


def _all_fields(model: type[BaseModel]) -> set[tuple[type[BaseModel], str]]:
    found = set()
    for name in yaml_fields(model):
        found.add((model, name))
        for step in ((name,), (name, 0)):
            child = field_at(model, step)
            if child and isinstance(child[0], type) and issubclass(child[0], BaseModel):
                found |= _all_fields(child[0])
    return found


def test_every_field_is_named_and_described_in_the_example() -> None:
    text = EXAMPLE.read_text()
    comments = " ".join(" ".join(line.strip().lstrip("#").split()) for line in text.splitlines()
                        if line.strip().startswith("#") or " # " in line)
    for model, name in _all_fields(RelayConfig):
        assert re.search(rf"^\s*(?:#\s*)*(?:- )?{name}:", text, re.MULTILINE), f"{model.__name__}.{name}"
        description = yaml_fields(model)[name].description
        assert description, f"{model.__name__}.{name} has no description"
        assert " ".join(description.split())[:60] in comments, f"{model.__name__}.{name}"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_JSON.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_json_schema_takes_the_example(validator: jsonschema.Draft202012Validator) -> None:
    assert list(validator.iter_errors(yaml.safe_load(EXAMPLE.read_text()))) == []


def _uncommented_example() -> Any:
    """The example with its commented webhook put in, so the schema sees every section."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["webhooks"] = [{"url": "https://example.com/hooks", "secret_env": "HOOK"}]
    data["http"]["token_env"] = "TOKEN"
    return data


@pytest.mark.parametrize(("change", "kind"), [
    (lambda d: d["server"].update(colour="blue"), "additionalProperties"),
    (lambda d: d["server"]["limits"].update(max_connections=0), "minimum"),
    (lambda d: d["target_defaults"]["queue"].update(max_seconds=1e306), "maximum"),
    (lambda d: d["target_defaults"].update(enhanced_rtmp="sometimes"), "enum"),
    (lambda d: d["live_streams"][0].update(stream_key_env="X"), "oneOf"),
    (lambda d: d["live_streams"][0]["simulcast_targets"][0].pop("stream_key"), "oneOf"),
    (lambda d: d["live_streams"][0]["simulcast_targets"].extend([{"url": "rtmp://h/a", "stream_key": "k"}] * 4),
     "maxItems"),
    (lambda d: d["http"].update(token="t"), "not"),
    (lambda d: d["webhooks"][0].pop("secret_env"), "oneOf"),
    (lambda d: d["live_streams"][0]["health"].update(max_bitrate_kbps=0) if "health" in d["live_streams"][0]
     else d["live_streams"][0].update(health={"max_bitrate_kbps": 0}), "anyOf"),  # int or null
])
def test_the_json_schema_refuses_what_the_relay_refuses(
        validator: jsonschema.Draft202012Validator, change: Any, kind: str) -> None:
    data = _uncommented_example()
    assert list(validator.iter_errors(data)) == []
    change(data)
    errors = list(validator.iter_errors(data))
    assert errors and any(error.validator == kind for error in errors), [e.validator for e in errors]


def test_the_json_schema_lets_targets_inherit(validator: jsonschema.Draft202012Validator) -> None:
    data = _uncommented_example()
    data["live_streams"][0]["simulcast_targets"][0]["reconnect"] = {"max_delay": 60}
    data["live_streams"][0]["health"] = {"media_timeout": 2}
    assert list(validator.iter_errors(data)) == []
    properties = json.loads(SCHEMA_JSON.read_text())["$defs"]["TargetConfig"]["properties"]
    assert "default" not in properties["write_interval"]  # a target's default is target_defaults'
