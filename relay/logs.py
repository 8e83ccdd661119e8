"""structlog set-up: readable key=value lines on a terminal, one JSON object per line otherwise.

Under systemd (JOURNAL_STREAM set) or whenever stderr is not a terminal, logs are JSON so
the journal and log shippers can parse them. Event names are snake_case; context such as
`live_stream=` and `target=` is bound per connection. Stream keys never reach a logger:
they are redacted at the source (Secret's repr), and the final processor scrubs any
known key out of every string value as a last line of defence.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from relay.secret import Secret

# One alternation of every known key, longest first: a single regex pass per string is
# ~100x cheaper than testing each key in turn, which matters for the status snapshot.
_known_pattern: re.Pattern[str] | None = None
_fingerprints: dict[str, str] = {}


def set_known_secrets(secrets: Iterable[Secret]) -> None:
    """Tell the scrubber which keys the current config holds."""
    global _known_pattern, _fingerprints
    _fingerprints = {secret.reveal(): secret.fingerprint for secret in secrets}
    keys = sorted(_fingerprints, key=len, reverse=True)
    _known_pattern = re.compile("|".join(re.escape(key) for key in keys)) if keys else None


def _redacted(match: re.Match[str]) -> str:
    return f"<redacted:{_fingerprints[match.group(0)]}>"


def _scrub_value(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(_redacted, value)
    if isinstance(value, dict):
        return {k: _scrub_value(v, pattern) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v, pattern) for v in value]
    return value


def _scrub(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace any known stream key found in a rendered value with its fingerprint."""
    pattern = _known_pattern
    if pattern is not None:
        for key, value in event_dict.items():
            event_dict[key] = _scrub_value(value, pattern)
    return event_dict


def configure(level: str = "info", json: bool | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog once for the process."""
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = bool(os.environ.get("JOURNAL_STREAM")) or not out.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _scrub,
    ]
    if json:
        processors.append(structlog.processors.JSONRenderer())
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=out.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Any:
    """A bound logger with the given context."""
    return structlog.get_logger().bind(**context)
