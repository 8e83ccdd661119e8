"""The reconnect slate's section: what the platforms are shown while the publisher is away.

Like every section, each field's docstring is its description in config/example.yaml and
config/schema.json. A live stream's `reconnect_slate` takes each field it does not set from
the top-level `reconnect_slate` (relay.config.model), as `health` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, PlainValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from relay.config.context import load_context
from relay.config.errors import CUSTOM
from relay.config.fields import Section, not_null, text_value
from relay.config.values import Invalid, readable

__all__ = ["SlateConfig", "image_kind"]

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"


def image_kind(head: bytes) -> str | None:
    """'png' or 'jpeg' from a file's first bytes, else None."""
    if head.startswith(_PNG):
        return "png"
    if head.startswith(_JPEG):
        return "jpeg"
    return None


def _image(value: object, info: ValidationInfo) -> str:
    path = load_context(info).path(text_value(value))
    try:
        name = readable(Path(path), "image")
        with open(name, "rb") as image:
            head = image.read(8)
    except (Invalid, OSError) as err:
        raise PydanticCustomError(CUSTOM, "{message}", {"message": str(err)}) from None
    if image_kind(head) is None:
        raise PydanticCustomError(CUSTOM, "{message}", {"message": "is neither a PNG nor a JPEG image"})
    return name


ImageFile = Annotated[str, PlainValidator(_image, json_schema_input_type=str)]


class SlateConfig(Section):
    """What the platforms are shown while the publisher is away inside the reconnect window: a
    short clip made once per stream settings with ffmpeg, looped, instead of a dead stream."""

    enabled: bool = False
    """Show the slate when the publisher drops without Stop Streaming. Off by default: it needs
    ffmpeg on the relay's machine (run once per stream settings, never while the show runs)."""
    image: ImageFile | None = Field(None, json_schema_extra=not_null, examples=["/etc/simulcast-relay/slate.png"])
    """A PNG or JPEG shown on the slate, scaled to the stream's size (relative: next to this
    file). Not set: a card with the live stream's name and "we'll be right back"."""
    after: float = Field(1.0, ge=0, le=30)
    """Seconds a drop waits before the slate starts: a publisher back sooner goes on without one
    (a blip), and platforms see a gap of at most this much."""
