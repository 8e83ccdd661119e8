"""pydantic's errors -> the config's messages: plain words, the allowed range, never the value.

pydantic's own messages are written for developers ("Input should be a valid
string") and some quote the input. Each error is rewritten here from its type
and from the schema field it is about (found by walking the models along the
error's path), which also gives the "did you mean" of an unknown field and the
range of a number.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from relay.config.errors import CUSTOM, Loc

__all__ = ["describe", "field_at", "field_names", "number_range", "type_name", "yaml_fields"]


def type_name(value: object) -> str:
    """How a YAML value's type is described to a user (never the value itself)."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    names: dict[type, str] = {str: "a string", list: "a list", tuple: "a list", dict: "a mapping",
                              bytes: "binary data"}
    return names.get(type(value), f"a {type(value).__name__}")


def yaml_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The model's fields under the names they have in the file."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


@functools.cache
def field_names(root: type[BaseModel]) -> frozenset[str]:
    """Every field name of the schema, at any depth: the names a message may show (any other
    name in a file could be a key pasted in the wrong place)."""
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()
    waiting = [root]
    while waiting:
        model = waiting.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in yaml_fields(model).items():
            names.add(name)
            waiting.extend(_models(info.annotation))
    return frozenset(names)


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The models an annotation holds (``X | None``, ``tuple[X, ...]``, ``Annotated[X, ...]``...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models(arg)


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, ...]`` -> X, ``X | None`` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _step(annotation: Any, part: str | int) -> tuple[Any, FieldInfo | None] | None:
    """The annotation (and field) one path element below ``annotation``."""
    annotation = _unwrap(annotation)
    if isinstance(part, int):
        if typing.get_origin(annotation) in (tuple, list):
            return typing.get_args(annotation)[0], None
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = yaml_fields(annotation).get(part)
        return (info.annotation, info) if info is not None else None
    return None


def field_at(root: type[BaseModel], loc: Loc) -> tuple[Any, FieldInfo | None] | None:
    """The annotation and field that ``loc`` names under ``root``, if the schema has it."""
    annotation: Any = root
    info: FieldInfo | None = None
    for part in loc:
        step = _step(annotation, part)
        if step is None:
            return None
        annotation, info = step
    return _unwrap(annotation), info


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def number_range(info: FieldInfo | None) -> tuple[float, float] | None:
    """The (min, max) that a number field allows."""
    if info is None:
        return None
    # Field(ge=..., le=...) leaves annotated_types.Ge / Le objects in the metadata.
    low = next((m.ge for m in info.metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in info.metadata if hasattr(m, "le")), None)
    if low is None or high is None:
        return None
    return float(low), float(high)


def _ranged(annotation: Any, info: FieldInfo | None) -> str:
    whole = annotation is int
    kind = "a whole number" if whole else "a number"
    bounds = number_range(info)
    if bounds is None:
        return f"must be {kind}"
    return f"must be {kind} from {_number(bounds[0])} to {_number(bounds[1])}"


def _choices(annotation: Any) -> str | None:
    if typing.get_origin(annotation) is not Literal:
        return None
    options = [str(option) for option in typing.get_args(annotation)]
    return ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else options[0]


def describe(error: ErrorDetails, root: type[BaseModel]) -> tuple[Loc, str, bool]:
    """(where, message, whether ``where`` is a key rather than a value) for one pydantic error."""
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    given = error.get("input")
    if kind == CUSTOM:
        return loc, str((error.get("ctx") or {}).get("message", "is not valid")), False
    if kind == "missing":
        return loc, "required field missing", False
    if kind == "extra_forbidden":
        parent = field_at(root, loc[:-1])
        names = list(yaml_fields(parent[0])) if parent and isinstance(parent[0], type) and issubclass(
            parent[0], BaseModel) else []
        near = difflib.get_close_matches(str(loc[-1]), names, n=1)
        return loc, "unknown field" + (f" (did you mean {near[0]}?)" if near else ""), True
    if given is None:
        return loc, "has no value; give one or remove the line", False
    found = field_at(root, loc)
    annotation, info = found if found else (None, None)
    if kind in ("string_type", "string_sub_type"):
        # An unquoted all-digit key is read by YAML as a number.
        hint = " (put it in quotes)" if isinstance(given, (int, float)) else ""
        return loc, f"must be a string, not {type_name(given)}{hint}", False
    if kind == "bool_type":
        return loc, f"must be true or false, not {type_name(given)}", False
    if kind in ("int_type", "int_parsing", "int_from_float", "float_type", "float_parsing",
                "finite_number", "greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        if isinstance(given, bool) or not isinstance(given, (int, float)):
            return loc, f"must be a number, not {type_name(given)}", False
        return loc, _ranged(annotation, info), False
    if kind == "literal_error":
        choices = _choices(annotation)
        return loc, f"must be {choices}" if choices else "is not one of the allowed values", False
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return loc, f"must be a mapping, not {type_name(given)}", False
    if kind in ("tuple_type", "list_type"):
        return loc, f"must be a list, not {type_name(given)}", False
    return loc, "is not valid", False
