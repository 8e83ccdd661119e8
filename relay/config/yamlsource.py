"""YAML text -> plain data, with the position of every key and value, and nothing that expands.

PyYAML's ``safe_load`` expands aliases and merge keys: a 515-byte file of
nested aliases builds millions of objects, and it happens during a reload. So
the document is composed node by node here and refused at the first anchor,
alias, merge key (``<<``) or unknown tag, before anything is built; it is also
capped in size (by the caller) and in nesting depth. Mappings and lists are then
built by hand, which is where duplicate keys are caught and where every value's
line and column is noted for the error messages.

Messages never quote the text: the line may be the one holding a stream key.
Syntax errors are put in plain words by ``yamlerrors``.
"""

from __future__ import annotations

import re
from collections.abc import Container, Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml

from relay.config.errors import ConfigError, Loc, Problem, format_loc
from relay.config.yamlerrors import explain

__all__ = ["MAX_CONFIG_BYTES", "MAX_DEPTH", "YamlDocument", "read_yaml"]

MAX_CONFIG_BYTES = 1 << 20  # 1 MiB; a real config is a few kilobytes
MAX_DEPTH = 32  # the schema is 6 levels deep; no legitimate file nests further
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in (
    "null", "bool", "int", "float", "str", "timestamp", "binary"))
_Position = tuple[int, int]


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed config file: its data, where each value and key was, and duplicate keys."""

    data: object
    values: dict[Loc, _Position] = field(default_factory=dict)
    keys: dict[Loc, _Position] = field(default_factory=dict)
    duplicates: tuple[Problem, ...] = ()

    def position(self, loc: Loc, at_key: bool = False) -> _Position:
        """Line and column of the key or value at ``loc``, else of its nearest written parent."""
        if at_key and loc in self.keys:
            return self.keys[loc]
        while loc not in self.values and loc:
            loc = loc[:-1]
        return self.values.get(loc, (1, 1))


_Mark = Any  # yaml.error.Mark, or the C extension's Mark


class _Refused(Exception):
    def __init__(self, mark: _Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """Composes nodes like SafeLoader, refusing what could expand; builds no objects itself."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, "YAML aliases (*name) are not allowed; write the value "
                           "out where it is used")
        if getattr(event, "anchor", None) is not None:
            raise _Refused(event.start_mark, "YAML anchors (&name) are not allowed; write the value "
                           "out where it is used")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if node is not None and node.tag == _MERGE:
            raise _Refused(node.start_mark, "YAML merge keys (<<) are not allowed; write the fields "
                           "out in each mapping")
        return node


# YAML 1.1 (PyYAML) reads 1e306 and 16e6 as strings; YAML 1.2 and every editor read
# them as numbers. Read them as numbers too, so that the range check answers.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _position(mark: _Mark) -> _Position:
    return mark.line + 1, mark.column + 1


class _Builder:
    """Nodes -> dicts, lists and scalars, noting positions and duplicate keys."""

    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.values: dict[Loc, _Position] = {}
        self.keys: dict[Loc, _Position] = {}
        self.duplicates: list[Problem] = []

    def build(self, node: yaml.Node, loc: Loc) -> object:
        self.values[loc] = _position(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise _Refused(node.start_mark, "YAML tags (!name) are not allowed here")
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        if node.tag not in _SCALAR_TAGS:
            raise _Refused(node.start_mark, "YAML tags (!name) are not allowed here")
        try:
            value: object = self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            # e.g. "!!int abc": the exception quotes the value, so it is dropped.
            raise _Refused(node.start_mark, "a value cannot be read as its tagged type") from None
        return value

    def mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Hashable, object]:
        if node.tag != _MAP:
            raise _Refused(node.start_mark, "YAML tags (!name) are not allowed here")
        result: dict[Hashable, object] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(key_node.start_mark, "a key must be a plain name, not a list or mapping")
            # The key as written: `1935:` and `yes:` are names here, not a number and a boolean.
            key = str(key_node.value)
            key_loc = (*loc, key)
            if key in result:
                line, column = _position(key_node.start_mark)
                self.duplicates.append(Problem(line, column, format_loc(key_loc),
                                               "duplicate key; the later one would silently win"))
            self.keys[key_loc] = _position(key_node.start_mark)
            result[key] = self.build(value_node, key_loc)
        return result


def read_yaml(text: str, source: str, names: Container[str] = ()) -> YamlDocument:
    """Parse ``text``; raise ConfigError for what makes it unreadable (syntax, anchors...).

    A syntax error may name the line's field when it is one of ``names`` (the schema's)."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader checks the characters here
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None)
        builder = _Builder(loader)
        data = builder.build(node, ())
    except _Refused as err:
        raise ConfigError([_located(source, err.mark, f"invalid config: {err}")]) from None
    except yaml.MarkedYAMLError as err:
        # Not str(err): PyYAML appends a snippet of the offending line, which
        # may be the line holding a stream key. explain() says it in words instead.
        said = explain(err, text, names)
        raise ConfigError([f"{source}:{said.line}:{said.column}: invalid YAML: {said.message}"]) from None
    except yaml.YAMLError:
        # ReaderError: a control character or bad encoding; its text quotes the character.
        raise ConfigError([f"{source}: invalid YAML: the file holds a character YAML does not "
                           "allow (a control character?)"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return YamlDocument(data, builder.values, builder.keys, tuple(builder.duplicates))


def _located(source: str, mark: _Mark, message: str) -> str:
    if mark is None:
        return f"{source}: {message}"
    line, column = _position(mark)
    return f"{source}:{line}:{column}: {message}"
