"""Shared by the config tests: a valid config to break, distinctive keys, and problem parsing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay.config import ConfigError, RelayConfig, parse_config

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "example.yaml"
SCHEMA_JSON = EXAMPLE.with_name("schema.json")
SOURCE = "relay.yaml"

# Distinctive keys, so that "never in any message" is a plain substring test.
INGEST_A = "ingestA-SEKRIT-4b1f9d2e7c"
INGEST_B = "ingestB-SEKRIT-8e3a6c0f1d"
YT = "ytKEY-SEKRIT-a1b2-c3d4"
TW = "live_twKEY_SEKRIT_998877"
FB = "FB-fbKEY-SEKRIT-0-5566"
FILE_KEY = "fileKEY-SEKRIT-77aa88bb"
ENV_KEY = "envKEY-SEKRIT-3c4d5e6f"
ALL_KEYS = (INGEST_A, INGEST_B, YT, TW, FB, FILE_KEY, ENV_KEY)

T0 = "live_streams[0].simulcast_targets[0]"
T1 = "live_streams[0].simulcast_targets[1]"
T2 = "live_streams[0].simulcast_targets[2]"

_LINE = re.compile(r"(?P<source>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<rest>.*)", re.DOTALL)


def assert_no_keys(text: str) -> None:
    for key in ALL_KEYS:
        assert key not in text
    assert "SEKRIT" not in text


def base() -> dict[str, Any]:
    return {
        "server": {"listen": "0.0.0.0:1935", "app": "live"},
        "live_streams": [{
            "name": "studio-a",
            "stream_key": INGEST_A,
            "simulcast_targets": [
                {"url": "rtmp://a.rtmp.youtube.com/live2", "stream_key": YT, "passthrough": "YouTube"},
                {"url": "rtmp://live.twitch.tv/app", "stream_key": TW, "passthrough": "Twitch"},
                {"url": "rtmps://live-api-s.facebook.com:443/rtmp/", "stream_key": FB,
                 "passthrough": "Facebook"},
            ],
        }],
    }


class NoAliases(yaml.SafeDumper):
    """The relay refuses YAML anchors and aliases; PyYAML writes them for an object used twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(data: object) -> str:
    """``data`` as YAML the way a person writes it: keys sorted, no anchors."""
    return yaml.dump(data, Dumper=NoAliases)


def parse(data: object, environ: dict[str, str] | None = None, base_dir: Path | None = None) -> RelayConfig:
    return parse_config(dump(data), SOURCE, environ={} if environ is None else environ, base_dir=base_dir)


def problems(data: object, **kwargs: Any) -> tuple[str, ...]:
    """The problems of ``data``, each without its line:column (tests of positions use ``located``)."""
    with pytest.raises(ConfigError) as info:
        parse(data, **kwargs)
    assert str(info.value) == "\n".join(info.value.problems)
    assert_no_keys(str(info.value))
    return tuple(unplaced(problem) for problem in info.value.problems)


def problems_text(text: str, environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The problems of YAML ``text``, exactly as reported."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, SOURCE, environ={} if environ is None else environ)
    assert_no_keys(str(info.value))
    return info.value.problems


def unplaced(problem: str) -> str:
    """``relay.yaml:14:7: path: message`` -> ``relay.yaml: path: message``."""
    match = _LINE.fullmatch(problem)
    assert match is not None, f"no FILE:LINE:COLUMN in {problem!r}"
    assert int(match["line"]) >= 1 and int(match["column"]) >= 1
    return f"{match['source']}: {match['rest']}"


def located(problem: str) -> tuple[int, int, str]:
    """``relay.yaml:14:7: path: message`` -> (14, 7, "path: message")."""
    match = _LINE.fullmatch(problem)
    assert match is not None, f"no FILE:LINE:COLUMN in {problem!r}"
    return int(match["line"]), int(match["column"]), match["rest"]


DELETE = object()


def edit(data: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """Set (or delete) ``live_streams[0].simulcast_targets[1].url``-style paths."""
    steps: list[str | int] = []
    for part in path.split("."):
        name, *indexes = part.split("[")
        steps.append(name)
        steps.extend(int(index.rstrip("]")) for index in indexes)
    node: Any = data
    for step in steps[:-1]:
        if isinstance(node, dict) and step not in node:
            node[step] = {}
        node = node[step]
    if value is DELETE:
        del node[steps[-1]]
    else:
        node[steps[-1]] = value
    return data
