"""The config file's schema, and the structural pass that checks YAML against it.

One table (``SCHEMA``) names every field, its type, whether it is required, its
default and what it means. The structural pass (``check``) uses it for unknown
fields, missing fields, types and numeric bounds; ``tests/unit/test_config.py``
uses it to catch drift from ``config/example.yaml``; ``relay.config`` reads the
checked values and does the checks that need more than one field.

Messages are built from the path and the expected type only, never from the
value: the value might be a stream key.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Literal

import yaml

__all__ = ["SCHEMA", "Field", "Node", "check", "field_names", "read_yaml", "type_name"]

Kind = Literal["str", "float", "int", "bool", "map", "list"]
Report = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a mapping; ``children`` are a map's fields, or each list item's."""

    name: str
    kind: Kind
    doc: str
    required: bool = False
    default: str | float | bool | None = None
    minimum: Literal["positive", "zero"] | None = None
    children: tuple[Field, ...] = ()


def _seconds(name: str, doc: str) -> Field:
    # Policy fields have no default here: a target inherits target_defaults,
    # which inherit the defaults of the policy dataclasses in relay.config.
    return Field(name, "float", f"{doc} (seconds)", minimum="positive")


def _key_sources(whose: str) -> tuple[Field, ...]:
    return (
        Field("stream_key", "str", f"{whose} stream key, inline"),
        Field("stream_key_file", "str", f"file holding {whose} stream key"),
        Field("stream_key_env", "str", f"environment variable holding {whose} stream key"),
    )


_POLICIES = (
    Field("reconnect", "map", "how a target retries after a failure", children=(
        _seconds("initial_delay", "wait before the first retry"),
        _seconds("max_delay", "longest wait between retries; the wait doubles, with jitter"),
        _seconds("reset_after", "time connected after which the wait starts over"),
    )),
    Field("timeouts", "map", "deadlines of each step of a connection", children=(
        _seconds("connect", "TCP connect"),
        _seconds("handshake", "TLS handshake, then RTMP handshake and connect"),
        _seconds("publish", "connect/createStream/publish commands"),
    )),
    Field("queue", "map", "a target's bounded queue", children=(
        _seconds("max_seconds", "media buffered before frames are dropped"),
        Field("max_bytes", "int", "bytes buffered before frames are dropped", minimum="positive"),
        _seconds("max_behind_seconds", "lag after which the target is reconnected"),
    )),
)

_TARGET = (
    Field("url", "str", "rtmp:// or rtmps:// server and app, without the key", required=True),
    *_key_sources("the platform's"),
    Field("passthrough", "str", "label in logs and status; defaults to the url's host"),
    Field("tls_ca_file", "str", "rtmps only: PEM file of CAs to trust instead of the system's"),
    Field("tls_verify", "bool", "rtmps only: verify the server certificate", default=True),
    *_POLICIES,
)

_LIVE_STREAM = (
    Field("name", "str", "unique name: letters, digits, _ . -", required=True),
    *_key_sources("the ingest"),
    Field("reconnect_window", "float", "seconds targets stay up after the publisher drops",
          default=60.0, minimum="zero"),
    Field("simulcast_targets", "list", "where the stream is relayed; at most 6",
          required=True, children=_TARGET),
)

_SERVER = (
    Field("listen", "str", "HOST:PORT of the RTMP ingest ([::]:1935 for IPv6)",
          default="0.0.0.0:1935"),
    Field("app", "str", "the app OBS publishes to: rtmp://HOST:PORT/<app>", default="live"),
    Field("tls_listen", "str", "HOST:PORT of the RTMPS ingest; needs the cert and key"),
    Field("tls_cert_file", "str", "PEM certificate chain for tls_listen"),
    Field("tls_key_file", "str", "PEM private key for tls_listen, unencrypted"),
)

SCHEMA: tuple[Field, ...] = (
    Field("server", "map", "the ingest", children=_SERVER),
    Field("target_defaults", "map", "policies of every target, unless overridden",
          children=_POLICIES),
    Field("live_streams", "list", "the streams accepted at the ingest", required=True,
          children=_LIVE_STREAM),
)


def field_names(fields: tuple[Field, ...] = SCHEMA) -> Iterator[str]:
    """Every field name in ``fields`` and below, depth first."""
    for field in fields:
        yield field.name
        yield from field_names(field.children)


def type_name(value: object) -> str:
    """How a YAML value's type is described to a user (never the value itself)."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    names: dict[type, str] = {str: "a string", list: "a list", dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Node:
    """The fields of one mapping that passed the structural checks, plus defaults."""

    path: str
    values: dict[str, object]
    written: frozenset[str]  # keys present in the file, valid or not

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        return value if isinstance(value, float) else None

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def flag(self, name: str) -> bool | None:
        value = self.values.get(name)
        return value if isinstance(value, bool) else None

    def child(self, name: str) -> Node | None:
        value = self.values.get(name)
        return value if isinstance(value, Node) else None

    def items(self, name: str) -> list[Node | None] | None:
        value = self.values.get(name)
        return value if isinstance(value, list) else None


def join(path: str, name: str) -> str:
    """``server`` + ``listen`` -> ``server.listen``; the top level has no prefix."""
    return f"{path}.{name}" if path else name


_INVALID = object()


def check(raw: object, fields: tuple[Field, ...], path: str, report: Report) -> Node | None:
    """Check one mapping against ``fields``; report every problem; keep what is valid."""
    if not isinstance(raw, dict):
        report(path or "(top level)", f"must be a mapping, not {type_name(raw)}")
        return None
    by_name = {field.name: field for field in fields}
    for key in raw:
        if key not in by_name:
            near = difflib.get_close_matches(str(key), list(by_name), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            report(join(path, str(key)), f"unknown field{hint}")
    values: dict[str, object] = {}
    for field in fields:
        where = join(path, field.name)
        if field.name not in raw:
            if field.required:
                report(where, "required field missing")
            elif field.default is not None:
                values[field.name] = field.default
            elif field.kind == "map":
                # An absent optional map is an empty one, so its fields' defaults
                # apply (no optional map in SCHEMA has required fields).
                values[field.name] = check({}, field.children, where, report)
            continue
        value = _check_value(raw[field.name], field, where, report)
        if value is not _INVALID:
            values[field.name] = value
    return Node(path, values, frozenset(key for key in raw if isinstance(key, str)))


def _check_value(value: object, field: Field, where: str, report: Report) -> object:
    kind = field.kind
    if value is None:
        report(where, "has no value; give one or remove the line")
        return _INVALID
    if kind == "str":
        if not isinstance(value, str):
            # An unquoted all-digit key is read by YAML as a number.
            hint = " (put it in quotes)" if isinstance(value, (int, float)) else ""
            report(where, f"must be a string, not {type_name(value)}{hint}")
            return _INVALID
        if not value.strip():
            report(where, "must not be empty")
            return _INVALID
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            report(where, f"must be true or false, not {type_name(value)}")
            return _INVALID
        return value
    if kind in ("float", "int"):
        return _check_number(value, field, where, report)
    if kind == "map":
        node = check(value, field.children, where, report)
        return _INVALID if node is None else node
    if not isinstance(value, list):
        report(where, f"must be a list, not {type_name(value)}")
        return _INVALID
    return [check(item, field.children, f"{where}[{i}]", report) for i, item in enumerate(value)]


def _check_number(value: object, field: Field, where: str, report: Report) -> object:
    # bool is an int in Python, but "true" is never a number of seconds.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        report(where, f"must be a number, not {type_name(value)}")
        return _INVALID
    if field.kind == "int" and not isinstance(value, int):
        report(where, "must be a whole number")
        return _INVALID
    if not math.isfinite(value):
        report(where, "must be a finite number")
        return _INVALID
    if field.minimum == "positive" and value <= 0:
        report(where, "must be greater than 0")
        return _INVALID
    if field.minimum == "zero" and value < 0:
        report(where, "must be 0 or more")
        return _INVALID
    return value if field.kind == "int" else float(value)


class _Loader(yaml.SafeLoader):
    """A SafeLoader that notes duplicate keys, which PyYAML would silently merge."""

    duplicates: list[tuple[int, int, str]]

    def construct_mapping(
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[Hashable, object]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            # "<<" merge keys may repeat and be overridden; that is their job.
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = str(key_node.value)
                if key in seen:
                    mark = key_node.start_mark
                    self.duplicates.append((mark.line + 1, mark.column + 1, key))
                seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(text: str, source: str) -> tuple[object, list[str], bool]:
    """Parse ``text``: (data, problems, fatal). Syntax errors name line and column."""
    loader = _Loader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        # Not str(err): PyYAML appends a snippet of the offending line, which
        # may be the line holding a stream key.
        where = ""
        if err.problem_mark is not None:
            where = f"line {err.problem_mark.line + 1}, column {err.problem_mark.column + 1}: "
        context = f" ({err.context})" if err.context else ""
        return None, [f"{source}: {where}invalid YAML: {err.problem}{context}"], True
    except (yaml.YAMLError, ValueError, TypeError):
        # e.g. "!!int abc": the ValueError quotes the value, so it is dropped.
        return None, [f"{source}: invalid YAML: a value cannot be read as its tagged type"], True
    finally:
        loader.dispose()
    problems = [
        f"{source}: line {line}, column {column}: duplicate key {key!r}; "
        "the later one would silently win"
        for line, column, key in loader.duplicates
    ]
    return data, problems, False
