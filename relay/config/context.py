"""What validation needs from outside the YAML: environment, folder, PATH, the defaults to inherit.

One ``LoadContext`` is made per load and passed to pydantic as the validation
context; nothing else is shared between loads, so loading is pure and can run
in a worker thread while the event loop goes on. The one mutable part,
``secrets``, collects every key read during this load so that problems about
this file can be scrubbed of them even when the file does not validate.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import ValidationInfo

from relay.secret import Secret

__all__ = ["LoadContext", "load_context"]


class RecordingDefaultsLike(Protocol):
    """What a live stream inherits from the top-level `recording` section (sections.py)."""

    @property
    def dir(self) -> str:
        """The recordings folder."""


@dataclass(frozen=True, slots=True)
class LoadContext:
    """The world one config file is checked against."""

    environ: Mapping[str, str]
    base_dir: Path  # the config file's folder: relative paths start here
    source: str = "config"
    # Validated ahead of the rest, because lower levels inherit them (None: the section is
    # invalid, its problems are reported where it is). Typed loosely on purpose: the models
    # that hold them import this module, and this module imports none of them (no import
    # circle); model.py reads them field by field.
    target_defaults: object | None = None  # a TargetDefaults
    health: object | None = None  # a HealthPolicy
    reconnect_slate: object | None = None  # a SlateConfig
    recording: RecordingDefaultsLike | None = None  # a RecordingDefaults
    secrets: list[Secret] = field(default_factory=list)

    def which(self, program: str) -> str | None:
        """Where ``program`` is on this load's PATH, if anywhere."""
        return shutil.which(program, path=self.environ.get("PATH", ""))

    def path(self, value: str) -> Path:
        """``value`` resolved from the config file's folder (an absolute value stays as it is)."""
        return self.base_dir / value

    def keep(self, secret: Secret) -> Secret:
        """Note a key just read, so that messages about this file can be scrubbed of it."""
        self.secrets.append(secret)
        return secret


def load_context(info: ValidationInfo) -> LoadContext:
    """The LoadContext of the load in progress; outside a load, the process's own world."""
    context = info.context
    if isinstance(context, LoadContext):
        return context
    # A model built directly in Python (a test, another module): no file, cwd as folder.
    return LoadContext(dict(os.environ), Path.cwd())
