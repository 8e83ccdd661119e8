"""structlog set-up: readable key=value lines on a terminal, one JSON object per line otherwise.

Under systemd (JOURNAL_STREAM set) or whenever stderr is not a terminal, logs are JSON so
the journal and log shippers can parse them. Event names are snake_case; context such as
`live_stream=` and `target=` is bound per connection.

Stream keys never reach a logger: they are redacted at the source (Secret's repr), and
the last processor scrubs every key the process has ever loaded out of every value, as a
last line of defence (a key rotated away by a reload is still a key: an old session's
error may still carry it). It scrubs values only, never the event name or field names,
and it finds a key as it is, percent-encoded (a tcUrl, a URL library's error), in nested
dict keys and in bytes. Keys of MIN_KEY_LENGTH characters or more are replaced wherever
they appear; a shorter key only where it stands as a whole token, between characters that
cannot be part of a key (`/ ? = & :`, a space, the ends of the string): replacing a
2-letter key everywhere would cut words apart, and where the cuts land would spell it.

Strings a peer sent (app names, tcUrl pieces, flashVer, command names) go into a line
through `peer_text`, which cuts them to PEER_TEXT_LIMIT characters and gives their length:
a megabyte app name is one short line, not a megabyte of log.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO
from urllib.parse import unquote, unquote_plus

import structlog

from relay.config.scrub import MIN_KEY_LENGTH
from relay.secret import Secret
from relay.text import printable

__all__ = [
    "PEER_TEXT_LIMIT", "add_known_secrets", "configure", "console_stream", "get_logger", "peer_text",
    "reset_known_secrets", "scrub_text",
]

#: Characters of a peer-supplied string shown in a log line.
PEER_TEXT_LIMIT = 200
# What may stand next to a short key inside one token: letters, digits and the rest of
# RFC 3986's unreserved characters. Anything else (/ ? = & : space, quotes, the ends of the
# string) delimits a token.
_TOKEN_CHAR = r"\w.~\-"


class _Scrubber:
    """Every key ever loaded, compiled into one regex per type (str, bytes), longest first.

    One alternation matched in one pass is ~100x cheaper than testing each key in turn,
    which matters for the status snapshot (every target's fields).
    """

    def __init__(self) -> None:
        self.labels: dict[str, str] = {}  # key -> "<redacted:fingerprint>"
        self.text: re.Pattern[str] | None = None
        self.data: re.Pattern[bytes] | None = None
        self.longest = 0

    def add(self, secrets: Iterable[Secret]) -> None:
        added = False
        for secret in secrets:
            key = secret.reveal()
            if key not in self.labels:
                self.labels[key] = f"<redacted:{secret.fingerprint}>"
                added = True
        if added:
            self._compile()

    def reset(self) -> None:
        self.labels = {}
        self.text = self.data = None
        self.longest = 0

    def _compile(self) -> None:
        keys = sorted(self.labels, key=len, reverse=True)
        parts = [_pattern(key) for key in keys if len(key) >= MIN_KEY_LENGTH]
        short = [_pattern(key) for key in keys if len(key) < MIN_KEY_LENGTH]
        if short:
            parts.append(f"(?<![{_TOKEN_CHAR}])(?:{'|'.join(short)})(?![{_TOKEN_CHAR}])")
        source = "|".join(parts)
        self.text = re.compile(source)
        # The same pattern over UTF-8 bytes: every literal is escaped per character, so
        # encoding the source encodes each literal.
        self.data = re.compile(source.encode("utf-8", "surrogatepass"))
        self.longest = 3 * 4 * len(keys[0]) if keys else 0  # every character percent-encoded

    def label(self, found: str) -> str:
        labels = self.labels
        for candidate in (found, unquote(found), unquote_plus(found)):
            label = labels.get(candidate)
            if label is not None:
                return label
        return "<redacted>"  # a form of some key; which one does not matter


def _pattern(key: str) -> str:
    """A regex for a key as it is or percent-encoded, wholly or in part, in a path or a query.

    Characters outside RFC 3986's unreserved set may come as themselves or as %XX (hex in
    either case); a space may also come as "+".
    """
    out = []
    for char in key:
        if char.isascii() and (char.isalnum() or char in "-._~"):
            out.append(re.escape(char))
            continue
        encoded = "".join(f"%{byte >> 4:X}{byte & 15:X}" for byte in char.encode("utf-8", "surrogatepass"))
        hex_any_case = re.sub(r"[A-F]", lambda m: f"[{m.group(0)}{m.group(0).lower()}]", encoded)
        plus = "|\\+" if char == " " else ""
        out.append(f"(?:{re.escape(char)}|{hex_any_case}{plus})")
    return "".join(out)


_scrubber = _Scrubber()


def add_known_secrets(secrets: Iterable[Secret]) -> None:
    """Have the scrubber replace these keys from now on, besides every key it already knows."""
    _scrubber.add(secrets)


def reset_known_secrets() -> None:
    """Forget every key (tests only: a daemon keeps every key it ever loaded)."""
    _scrubber.reset()


def scrub_text(text: str) -> str:
    """``text`` with every known key replaced by ``<redacted:FINGERPRINT>``."""
    pattern = _scrubber.text
    if pattern is None:
        return text
    return pattern.sub(_text_label, text)


def _text_label(match: re.Match[str]) -> str:
    return _scrubber.label(match.group(0))


def _data_label(match: re.Match[bytes]) -> bytes:
    return _scrubber.label(match.group(0).decode("utf-8", "surrogatepass")).encode()


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        assert _scrubber.data is not None
        return _scrubber.data.sub(_data_label, bytes(value))
    if isinstance(value, dict):
        # A nested dict's keys are data too (a problem list keyed by what was wrong).
        return {_scrub_value(k): _scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub_value(v) for v in value]
    # Anything else is rendered with repr() by the JSON renderer: scrub what it will show.
    return scrub_text(repr(value))


def _printable_value(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {_printable_value(k): _printable_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable_value(v) for v in value]
    return value


def _printable(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Console format only: terminal control characters in values written as escapes (relay/text.py);
    a traceback keeps its lines (each escaped on its own)."""
    for key, value in event_dict.items():
        if key in _MULTILINE and isinstance(value, str):
            event_dict[key] = "\n".join(printable(line) for line in value.split("\n"))
        else:
            event_dict[key] = _printable_value(value)
    return event_dict


_MULTILINE = frozenset({"exception", "stack"})  # format_exc_info's traceback, a stack_info


def _scrub(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace every known stream key found in a value (never in the event or field names)."""
    if _scrubber.text is not None:
        for key, value in event_dict.items():
            if key != "event":
                event_dict[key] = _scrub_value(value)
    return event_dict


def peer_text(field: str, value: object, limit: int = PEER_TEXT_LIMIT) -> dict[str, Any]:
    """Log fields for a string a peer sent: ``{field: first limit characters…, field_len: length}``.

    The length is given only when the string was cut. Known keys are scrubbed before the
    cut, so that a key across the cut cannot leave half of itself in the line.
    """
    if value is None:
        return {field: None}
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return {field: scrub_text(text)}
    shown = scrub_text(text[: limit + _scrubber.longest])[:limit]
    return {field: shown + "…", f"{field}_len": len(text)}


# Where console-format logs go (None when they are JSON): the few messages written for a
# person at a terminal (relay/runtime/announce.py) go there too, and nowhere under systemd.
_console: TextIO | None = None


def console_stream() -> TextIO | None:
    """The log's stream when logs are for a person (the console format), else None."""
    return _console


def configure(level: str = "info", json: bool | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog once for the process."""
    global _console
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = bool(os.environ.get("JOURNAL_STREAM")) or not out.isatty()
    _console = None if json else out
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
        # The console renderer writes strings as they are: a peer's words must not drive the terminal.
        processors.append(_printable)
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
