"""config/example.yaml and config/schema.json, generated from the schema so they cannot drift.

    python -m relay.config.example            # rewrite both files
    python -m relay.config.example --check    # exit 1 if either differs from the schema

The example shows every field with its description (the field's docstring),
its range, and its default; ``SAMPLE`` adds what a streamer's first config
needs (a live stream, YouTube, Twitch and Facebook targets) and the commented
alternatives. A test checks that the committed files equal what this writes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticUndefined, core_schema

from relay.config.fields import SecretSources
from relay.config.messages import field_at, number_range, yaml_fields
from relay.config.model import RelayConfig
from relay.config.values import Address

__all__ = ["SAMPLE", "Commented", "render_example", "render_schema", "main"]

WIDTH = 100
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


@dataclass(frozen=True, slots=True)
class Commented:
    """A sample value shown commented out: an alternative, or an example to uncomment."""

    value: Any


# The example's ingest key: a placeholder, refused by validation (anyone could publish with a
# published key); scripts/run-example and scripts/install-service put a random key in its place.
EXAMPLE_INGEST_KEY = "REPLACE-ME-with-a-long-random-ingest-key"

SAMPLE: dict[str, Any] = {
    "live_streams": [{
        "name": "studio-a",
        "stream_key": EXAMPLE_INGEST_KEY,
        "stream_key_file": Commented("studio-a.key"),
        "stream_key_env": Commented("STUDIO_A_STREAM_KEY"),
        "reconnect_window": 60.0,
        "simulcast_targets": [
            {"url": "rtmp://a.rtmp.youtube.com/live2", "stream_key": "xxxx-xxxx-xxxx-xxxx-xxxx",
             "stream_key_file": Commented("youtube.key"),
             "stream_key_env": Commented("YOUTUBE_STREAM_KEY"), "passthrough": "YouTube"},
            {"url": "rtmp://live.twitch.tv/app", "stream_key": "live_000000000_REPLACEME",
             "passthrough": "Twitch"},
            {"url": "rtmps://live-api-s.facebook.com:443/rtmp/",
             "stream_key": "FB-0000000000000000-0-REPLACEME", "passthrough": "Facebook",
             "tls_verify": True, "queue": Commented({"max_seconds": 8.0})},
        ],
    }],
    "http": {"access_tokens": Commented([{"id": "my-app", "secret_env": "RELAY_API_SECRET",
                                          "permissions": ["read", "write"]}])},
    "webhooks": Commented([{"url": "https://example.com/hooks/simulcast-relay",
                            "secret_env": "RELAY_WEBHOOK_SECRET"}]),
}

HEADER = """\
# yaml-language-server: $schema=./schema.json
#
# simulcast-relay example config.
#
# One publisher (OBS, ffmpeg, a hardware encoder) sends one RTMP stream to this
# relay; the relay forwards it, byte for byte, to up to six platforms. The words
# follow Mux's Simulcast API: a *live stream* is what the publisher sends, under
# its *stream key*; each *simulcast target* is a platform url + stream key, with
# a *passthrough* label that names it in logs and status.
#
# Check a config without starting anything:   relay check-config relay.yaml
#
# The stream keys below are placeholders. Real keys are credentials: prefer
# stream_key_file or stream_key_env to inline keys, and if you do keep keys in
# this file, make it readable by the relay's user only (chmod 600); the relay
# warns otherwise.
#
# Every field below is shown with its default; delete what you do not change.
# Relative paths are relative to this file's folder, except that a relative
# *_file key is looked up in $CREDENTIALS_DIRECTORY when systemd's
# LoadCredential= sets it. schema.json (beside this file) lets editors check
# and complete this file.
#
# Generated from the schema (relay/config/) by `python -m relay.config.example`.
"""


def _comment(text: str, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        words = " ".join(paragraph.split())
        lines += [f"{pad}# {line}" for line in textwrap.wrap(words, WIDTH - indent - 2)]
    return lines


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Address):
        value = str(value)
    if isinstance(value, str):
        plain = re.fullmatch(r"[A-Za-z0-9_/][A-Za-z0-9_./:-]*", value) is not None
        # Plain only when YAML reads it back as this very string (not a number, bool, null).
        return value if plain and yaml.safe_load(value) == value else json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_scalar(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"cannot render {type(value).__name__}")


def file_default(info: FieldInfo) -> Any:
    """A field's default as the file would spell it (sections as mappings)."""
    if info.default_factory is not None:
        factory = info.default_factory
        if isinstance(factory, type) and issubclass(factory, BaseModel):
            return _file_defaults(factory)
        raise TypeError("only section default factories are supported")
    default = info.default
    if default is PydanticUndefined:
        return PydanticUndefined
    if isinstance(default, BaseModel):
        return _file_defaults(type(default))
    if isinstance(default, Address):
        return str(default)
    if isinstance(default, tuple):
        return list(default)
    return default


def _file_defaults(model: type[BaseModel]) -> dict[str, Any]:
    return {name: file_default(info) for name, info in yaml_fields(model).items()}


def _description(info: FieldInfo) -> str:
    text = info.description or ""
    bounds = number_range(info)
    if bounds is not None:
        low, high = (int(b) if b.is_integer() else b for b in bounds)
        optional = " or null" if info.default is None else ""
        text += f" [{low} to {high}{optional}]"
    return text


def _section_type(model: type[BaseModel], name: str) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds (and whether it is a list of them), if it holds one."""
    found = field_at(model, (name,))
    annotation = found[0] if found else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    item = field_at(model, (name, 0))
    if item and isinstance(item[0], type) and issubclass(item[0], BaseModel):
        return item[0], True
    return None, False


class _Writer:
    """The example's lines, written section by section."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def section(self, model: type[BaseModel], sample: Mapping[str, Any], indent: int,
                item: str | None = None) -> None:
        """The fields of ``model``; ``item`` is "first" or "other" inside a list."""
        inherited = set(getattr(model, "inherited", ()))
        note: str | None = getattr(model, "inherited_note", None)
        described_by_note = note is not None
        fields = list(yaml_fields(model).items())
        # Fields inherited from another section come last: they are the exceptions.
        fields = [f for f in fields if f[0] not in inherited] + [f for f in fields if f[0] in inherited]
        for name, info in fields:
            given = name in sample
            if item == "other" and not given:
                continue  # each field is described once, in the first item
            child, is_list = _section_type(model, name)
            if given:
                raw = sample[name]
            elif child is not None and not is_list and name not in inherited:
                raw = {}  # a section left to its defaults, field by field
            else:
                raw = file_default(info)
            commented = isinstance(raw, Commented)
            value = raw.value if isinstance(raw, Commented) else raw
            if indent == 0:
                self.lines.append("")  # a blank line between top-level sections
            if name in inherited:
                if note is not None:
                    self.lines += _comment(note, indent)
                    note = None
                elif item != "other" and not described_by_note:
                    self.lines += _comment(_description(info), indent)
                if given and not commented:
                    self.field(model, name, value, indent, False)
                else:
                    self.lines.append(f"{' ' * indent}# {name}: {_scalar(value)}")
                continue
            if not given and item == "first" and child is None:
                commented = True  # shown, not set: an item sets only what its sample sets
                if value is None or value is PydanticUndefined:
                    value = (info.examples or [None])[0]
            elif not given and value is None and info.examples:
                commented = True  # an optional field: how it looks, left unset
                value = info.examples[0]
            if item != "other":
                self.lines += _comment(_description(info), indent)
            self.field(model, name, value, indent, commented)

    def field(self, model: type[BaseModel], name: str, value: Any, indent: int, commented: bool) -> None:
        """``name: value``, or ``name:`` and the section or list below it; ``# `` before if commented."""
        pad = " " * indent
        child, is_list = _section_type(model, name)
        if child is None or (commented and not is_list) or (is_list and not value):
            prefix = "# " if commented else ""
            self.lines.append(f"{pad}{prefix}{name}: {_scalar(value)}")
            return
        start = len(self.lines)
        self.lines.append(f"{pad}{name}:")
        if is_list:
            for i, element in enumerate(value):
                at = len(self.lines)
                self.section(child, element, indent + 4, "first" if i == 0 else "other")
                # The item's first line (its first field, or that field's comment) takes the "- ".
                self.lines[at] = f"{pad}  - {self.lines[at][indent + 4:]}"
                if i < len(value) - 1:
                    self.lines.append("")
        else:
            self.section(child, value, indent + 2)
        if commented:
            self.lines[start:] = [f"{pad}# {line[indent:]}" if line else line
                                  for line in self.lines[start:]]


def render_example() -> str:
    """config/example.yaml: the header, then every section of the schema."""
    writer = _Writer()
    writer.section(RelayConfig, SAMPLE, 0)
    return HEADER + "\n".join(writer.lines) + "\n"


class _SchemaGenerator(GenerateJsonSchema):
    """pydantic's JSON Schema, without a title on every field (descriptions say it better)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def encode_default(self, dft: Any) -> Any:
        return super().encode_default(str(dft) if isinstance(dft, Address) else dft)

    def model_schema(self, schema: core_schema.ModelSchema) -> dict[str, Any]:
        json_schema = super().model_schema(schema)
        cls = schema["cls"]
        properties = json_schema.get("properties", {})
        if issubclass(cls, SecretSources):
            names = list(cls.secret_fields)
            if cls.secret_required:
                json_schema["oneOf"] = [{"required": [name]} for name in names]
            else:
                pairs = [[a, b] for i, a in enumerate(names) for b in names[i + 1:]]
                json_schema["not"] = {"anyOf": [{"required": pair} for pair in pairs]}
        # Inherited fields have no default of their own (they take target_defaults, health), and
        # a section's default is already said field by field inside it.
        inherited = set(getattr(cls, "inherited", ()))
        for name, prop in properties.items():
            if name in inherited or "$ref" in prop:
                prop.pop("default", None)
        return json_schema


def _one_line(node: Any) -> Any:
    """Descriptions as one line each (docstrings wrap; editors show them as they are)."""
    if isinstance(node, dict):
        return {key: " ".join(value.split()) if key == "description" and isinstance(value, str)
                else _one_line(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_one_line(item) for item in node]
    return node


def render_schema() -> str:
    """config/schema.json: the JSON Schema of the file, for editors and other tools."""
    schema = _one_line(RelayConfig.model_json_schema(by_alias=True, mode="validation",
                                                     schema_generator=_SchemaGenerator))
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "title": "simulcast-relay config", **{k: v for k, v in schema.items() if k != "title"}}
    return json.dumps(schema, indent=2) + "\n"


def _outputs(folder: Path) -> Iterator[tuple[Path, str]]:
    yield folder / "example.yaml", render_example()
    yield folder / "schema.json", render_schema()


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) config/example.yaml and config/schema.json."""
    parser = argparse.ArgumentParser(prog="python -m relay.config.example", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs from the schema")
    parser.add_argument("--dir", type=Path, default=CONFIG_DIR, help="folder of the files (default: %(default)s)")
    args = parser.parse_args(argv)
    stale = []
    for path, text in _outputs(args.dir):
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{path}: {'stale; run python -m relay.config.example' if args.check else 'written'}",
              file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
