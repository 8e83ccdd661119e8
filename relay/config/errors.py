"""ConfigError, and the problems it lists: each placed in the file, named by its path.

A check deep in the schema does not know where in the file its value was
written; it raises pydantic errors located by path (``loc``), relative to the
model it checks. ``relay.config.messages`` later turns them into ``Problem``s,
which the YAML node positions place at a line and column. The helpers here are
how the config's own checks raise: ``problem`` for one located message,
``fail`` for several at once, ``details`` to raise again what pydantic found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from relay.errors import RelayError

__all__ = ["CUSTOM", "ConfigError", "Loc", "Problem", "details", "fail", "format_loc", "problem"]

Loc = tuple[str | int, ...]
# The type of every error the config's own checks raise; its message is ready to show.
CUSTOM = "relay_config"


class ConfigError(RelayError):
    """The config cannot be used; ``problems`` lists every reason, one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__(*self.problems)

    def __str__(self) -> str:
        return "\n".join(self.problems)


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong (or worth a warning) in a config file; line 0 = the file as a whole."""

    line: int
    column: int
    path: str
    message: str

    def render(self, source: str) -> str:
        """``relay.yaml:14:7: live_streams[0].name: message``."""
        where = f"{source}:{self.line}:{self.column}" if self.line else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def format_loc(loc: Loc) -> str:
    """``("live_streams", 0, "name")`` -> ``live_streams[0].name``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def problem(loc: Loc, message: str) -> InitErrorDetails:
    """A problem at ``loc`` (relative to the model being checked), for ``fail``."""
    return {"type": PydanticCustomError(CUSTOM, "{message}", {"message": message}), "loc": loc,
            "input": None}


def fail(problems: Sequence[InitErrorDetails]) -> NoReturn:
    """Raise ``problems`` from a validator; pydantic prefixes their locations with its own."""
    raise ValidationError.from_exception_data("config", list(problems))


def details(err: ValidationError, prefix: Loc = ()) -> list[InitErrorDetails]:
    """The errors of ``err``, located under ``prefix``, ready to ``fail`` with again."""
    found: list[InitErrorDetails] = []
    for error in err.errors():
        loc = (*prefix, *error["loc"])
        ctx = error.get("ctx")
        if error["type"] == CUSTOM and ctx is not None:
            found.append({"type": PydanticCustomError(CUSTOM, "{message}", ctx), "loc": loc,
                          "input": None})
            continue
        item: InitErrorDetails = {"type": error["type"], "loc": loc, "input": error["input"]}
        if ctx is not None:
            item["ctx"] = ctx
        found.append(item)
    return found
