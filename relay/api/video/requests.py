"""The bodies and queries the /video/v1 API takes, checked before anything is touched.

Each body is a strict model: no unknown field, no wrong type, no over-long string. A
problem becomes one message that names its field (`simulcast_targets[1].url: must start
with rtmp:// or rtmps://`), worded as the config file's are (relay/config/messages.py).
What a field means for the relay (a valid url, a stream key, at most six targets, unique
labels) is checked afterwards by the config's own models (build.py), so an API-made live
stream passes exactly the checks a YAML one does.

Beyond Mux: a target's `enabled`, and `recording` (the relay's own recording section, less
`dir`). Mux's `new_asset_settings` turns recording on; its content is not used (the relay
makes no assets). Mux's `use_slate_for_standard_latency` turns the reconnect slate on or off
and `reconnect_slate_url` is its image: a path on the relay's machine or a `file://` URL (the
relay downloads nothing); null, the built-in card. `playback_policy(ies)`, `latency_mode` and
`max_continuous_duration` (which Mux's SDKs send with their defaults) are accepted and not used
(the relay plays nothing back and passes the stream through as it comes), so that code written
for Mux need not change.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from relay.api.video.errors import MuxError
from relay.config.errors import format_loc
from relay.config.messages import describe
from relay.config.scrub import MIN_KEY_LENGTH

MAX_PASSTHROUGH = 255  # Mux's limit
MAX_URL = 1024
MAX_STREAM_KEY = 512
MAX_RECONNECT_WINDOW = 1800  # Mux's limit (its SDKs refuse more)
DEFAULT_PAGE_SIZE = 25  # Mux's
MAX_PAGE_SIZE = 100

_M = TypeVar("_M", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, hide_input_in_errors=True)


class TargetBody(_Body):
    """A simulcast target to create."""

    url: str = Field(min_length=1, max_length=MAX_URL)
    # A platform's key is far longer; a shorter one could be an ordinary word ("idle"), and every
    # answer, log line and webhook would have that word redacted (relay/api/redaction.py).
    stream_key: str = Field(min_length=MIN_KEY_LENGTH, max_length=MAX_STREAM_KEY)
    passthrough: str | None = Field(None, max_length=MAX_PASSTHROUGH)
    enabled: bool = True


class TargetUpdateBody(_Body):
    """Changes to a simulcast target (beyond Mux)."""

    passthrough: str | None = Field(None, max_length=MAX_PASSTHROUGH)
    enabled: bool | None = None


class RecordingBody(_Body):
    """The relay's recording section of a live stream (its `dir` is the operator's to set)."""

    enabled: bool = True
    format: Literal["flv", "mp4"] = "flv"
    keep_last: int | None = None
    max_age: float | None = None
    max_total_size: int | None = None

    def section(self) -> dict[str, Any]:
        """As the config's recording section (the config's models check the ranges)."""
        return self.model_dump(exclude_none=True)


class _LiveStreamFields(_Body):
    passthrough: str | None = Field(None, max_length=MAX_PASSTHROUGH)
    new_asset_settings: dict[str, Any] | None = None
    recording: RecordingBody | None = None
    playback_policy: list[Literal["public", "signed", "drm"]] | None = None
    playback_policies: list[Literal["public", "signed", "drm"]] | None = None
    use_slate_for_standard_latency: bool | None = None  # the reconnect slate on/off (null: the relay's default)
    reconnect_slate_url: str | None = Field(None, min_length=1, max_length=MAX_URL)  # null: the built-in card
    # What Mux's SDKs send with their defaults; accepted, not used (a relay passes the stream through
    # as it comes: no latency modes, no 12-hour cut).
    latency_mode: Literal["standard", "reduced", "low"] | None = None
    max_continuous_duration: int | None = Field(None, ge=60, le=43200)

    def recording_section(self, current: dict[str, Any]) -> dict[str, Any]:
        """The recording section after this body: `recording` wins, `new_asset_settings` turns it on
        (null: off)."""
        if self.recording is not None:
            return self.recording.section()
        if "new_asset_settings" in self.model_fields_set:
            return {**current, "enabled": self.new_asset_settings is not None}
        return current

    def slate_section(self, current: dict[str, Any]) -> dict[str, Any]:
        """The live stream's reconnect_slate section (`enabled`, `image`) after this body; the config's
        models check the image (build.py). MuxError(400) for a url the relay cannot take."""
        section = dict(current)
        if self.use_slate_for_standard_latency is not None:
            section["enabled"] = self.use_slate_for_standard_latency
        if "reconnect_slate_url" in self.model_fields_set:
            url = self.reconnect_slate_url
            section["image"] = None if url is None else slate_image_path(url)
        return section


class CreateBody(_LiveStreamFields):
    """A live stream to create."""

    reconnect_window: float = Field(60.0, ge=0, le=MAX_RECONNECT_WINDOW)
    simulcast_targets: list[TargetBody] = []


class UpdateBody(_LiveStreamFields):
    """Changes to a live stream (PATCH: only the fields given change)."""

    reconnect_window: float | None = Field(None, ge=0, le=MAX_RECONNECT_WINDOW)


def slate_image_path(url: str) -> str:
    """The local path of `reconnect_slate_url` (an absolute path or a file:// URL); MuxError(400) else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        raise MuxError(400, "reconnect_slate_url: the relay does not download images; give a path on the relay's "
                            "machine, e.g. file:///etc/simulcast-relay/slate.png")
    if scheme == "file" and parts.netloc not in ("", "localhost"):
        raise MuxError(400, "reconnect_slate_url: a file:// URL must name a file on the relay's machine "
                            "(file:///path, no host)")
    path = unquote(parts.path) if scheme == "file" and not parts.query and not parts.fragment else url
    if scheme not in ("", "file") or not path.startswith("/") or "\0" in path:
        raise MuxError(400, "reconnect_slate_url: must be an absolute path on the relay's machine or a file:// URL, "
                            "e.g. file:///etc/simulcast-relay/slate.png")
    return path


def parse(model: type[_M], raw: bytes) -> _M:
    """The body as `model`, or MuxError(400) with every problem."""
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno} column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise MuxError(400, f"the body is not valid JSON{where}") from None
    if not isinstance(data, dict):
        raise MuxError(400, "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise MuxError(400, [message(error, model) for error in err.errors()]) from None


def message(error: ErrorDetails, model: type[BaseModel]) -> str:
    """One problem as `field: what is wrong`."""
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "string_too_long":
        text = f"must be at most {ctx.get('max_length')} characters"
    elif kind == "string_too_short":
        least = ctx.get("min_length", 1)
        text = "must not be empty" if least == 1 else f"must be at least {least} characters"
    elif kind == "too_long":
        text = f"must have at most {ctx.get('max_length')} items"
    elif kind == "extra_forbidden":
        text = "unknown field (not part of Mux's API, or not supported by simulcast-relay)"
    elif error.get("input") is None and kind not in ("missing",):
        text = "must not be null"
    else:
        text = describe(error, model)[1]
    where = format_loc(loc)
    return f"{where}: {text}" if where else text


def page_query(query: Any) -> tuple[int, int]:
    """(limit, page) of a list request (Mux's: 25 a page, pages from 1)."""
    def number(name: str, default: int, low: int, high: int) -> int:
        raw = query.get(name)
        if raw is None:
            return default
        # isascii: "²" is a digit that int() refuses; the length: a 5,000-digit number is refused by int() too.
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
            raise MuxError(400, f"{name}: must be a whole number from {low} to {high}")
        return int(raw)
    return number("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE), number("page", 1, 1, 1_000_000)
