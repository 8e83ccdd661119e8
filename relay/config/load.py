"""Reading a config: file -> YAML -> schema -> a frozen RelayConfig, or every problem at once.

``load_config`` reads the file (capped, a regular file only), ``read_yaml``
parses it without expanding anything, and ``RelayConfig.model_validate``
checks it against the schema with a ``LoadContext`` that carries the
environment, the config's folder and the sections lower levels inherit. Every
pydantic error becomes one line that names the file, line:column, path and
what is wrong; duplicate keys join them. Nothing is logged and no global state
is touched, so a reload can load in a worker thread.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from relay.config.context import LoadContext
from relay.config.errors import ConfigError, Problem, format_loc
from relay.config.lint import lint
from relay.config.messages import describe, field_names, type_name
from relay.config.model import RelayConfig
from relay.config.policy import HealthPolicy, TargetDefaults
from relay.config.sections import RecordingDefaults
from relay.config.slate import SlateConfig
from relay.config.yamlsource import MAX_CONFIG_BYTES, YamlDocument, read_yaml
from relay.config.scrub import scrub, scrub_part
from relay.secret import Secret

__all__ = ["load_config", "parse_config"]

_M = TypeVar("_M", bound=BaseModel)
_TOO_BIG = f"the config file is over {MAX_CONFIG_BYTES // (1 << 20)} MiB; a config is a few kilobytes"


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> RelayConfig:
    """Read, check and freeze the config at ``path``; raise ConfigError listing every problem."""
    source = os.fspath(path)
    data, mode = _read(source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{source}: the config file is not valid UTF-8"]) from None
    return _load(text, source, environ, Path(source).absolute().parent, mode)


def parse_config(
    text: str,
    source: str,
    environ: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> RelayConfig:
    """Like load_config, for text in hand; relative paths are taken from ``base_dir``."""
    if len(text) > MAX_CONFIG_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{source}: {_TOO_BIG}"])
    base = Path(base_dir).absolute() if base_dir is not None else Path.cwd()
    return _load(text, source, environ, base, None)


def _read(source: str) -> tuple[bytes, int]:
    try:
        # O_NONBLOCK: a FIFO given as the config must not hang the reload.
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise ConfigError([f"{source}: cannot read the config file: "
                           f"{err.strerror or type(err).__name__}"]) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            reason = os.strerror(errno.EISDIR) if stat.S_ISDIR(mode) else "not a regular file"
            raise ConfigError([f"{source}: cannot read the config file: {reason}"])
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError([f"{source}: cannot read the config file: "
                           f"{err.strerror or type(err).__name__}"]) from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{source}: {_TOO_BIG}"])
    return data, mode


def _load(text: str, source: str, environ: Mapping[str, str] | None, base_dir: Path,
          mode: int | None) -> RelayConfig:
    doc = read_yaml(text, source, field_names(RelayConfig))
    if doc.data is None:
        raise ConfigError([f"{source}: the config file is empty"])
    if not isinstance(doc.data, dict):
        line, column = doc.position(())
        raise ConfigError([f"{source}:{line}:{column}: the top level must be a mapping (server, "
                           f"live_streams, ...), not {type_name(doc.data)}"])
    context = _context(doc.data, dict(os.environ if environ is None else environ), base_dir, source)
    try:
        config = RelayConfig.model_validate(doc.data, context=context)
    except ValidationError as err:
        problems = [*doc.duplicates, *_placed(err, doc, RelayConfig, context.secrets)]
        raise ConfigError(_rendered(problems, source, context.secrets)) from None
    if doc.duplicates:
        raise ConfigError(_rendered(doc.duplicates, source, context.secrets))
    warnings = _rendered(lint(config, doc, mode), source, config.all_secrets())
    return config.with_warnings(warnings)


def _context(data: dict[object, object], environ: dict[str, str], base_dir: Path,
             source: str) -> LoadContext:
    """The context, with the sections that lower levels inherit validated ahead of the rest."""
    context = LoadContext(environ, base_dir, source)

    def ahead(model: type[_M], name: str) -> _M | None:
        try:
            return model.model_validate(data.get(name, {}), context=context)
        except ValidationError:
            return None  # its problems are reported where the section is validated again

    return replace(context, target_defaults=ahead(TargetDefaults, "target_defaults"),
                   health=ahead(HealthPolicy, "health"), recording=ahead(RecordingDefaults, "recording"),
                   reconnect_slate=ahead(SlateConfig, "reconnect_slate"))


def _placed(err: ValidationError, doc: YamlDocument, root: type[BaseModel],
            secrets: list[Secret]) -> list[Problem]:
    problems = []
    for error in err.errors():
        loc, message, at_key = describe(error, root)
        line, column = doc.position(loc, at_key)
        # An unknown field's name is the user's text: a key pasted as a name must not come back.
        shown = tuple(scrub_part(part, secrets) if isinstance(part, str) else part for part in loc)
        problems.append(Problem(line, column, format_loc(shown), message))
    return problems


def _rendered(problems: Iterable[Problem], source: str, secrets: Iterable[Secret]) -> tuple[str, ...]:
    # Belt and braces: the parts that are the user's text were scrubbed where they were put in.
    known = list(secrets)
    lines = [scrub(problem.render(source), known) for problem in sorted(set(problems))]
    return tuple(dict.fromkeys(lines))

