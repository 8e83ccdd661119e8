"""reconnect_slate: defaults, inheritance from the top level, the image's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.config.slate import image_kind
from tests.unit.config.support import base, edit, parse, problems

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16


def test_off_by_default_with_the_built_in_card_after_one_second() -> None:
    slate = parse(base()).live_streams[0].reconnect_slate
    assert (slate.enabled, slate.image, slate.after) == (False, None, 1.0)


def test_a_live_stream_takes_each_field_it_does_not_set_from_the_top_level(tmp_path: Path) -> None:
    (tmp_path / "slate.png").write_bytes(PNG)
    data = edit(base(), "reconnect_slate", {"enabled": True, "image": "slate.png"})
    edit(data, "live_streams[0].reconnect_slate", {"after": 3})
    slate = parse(data, base_dir=tmp_path).live_streams[0].reconnect_slate
    assert (slate.enabled, slate.image, slate.after) == (True, str(tmp_path / "slate.png"), 3.0)


def test_a_jpeg_image_is_taken(tmp_path: Path) -> None:
    (tmp_path / "slate.jpg").write_bytes(JPEG)
    data = edit(base(), "live_streams[0].reconnect_slate", {"enabled": True, "image": str(tmp_path / "slate.jpg")})
    assert parse(data).live_streams[0].reconnect_slate.image == str(tmp_path / "slate.jpg")


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read the image file"),
    (b"GIF89a....", "is neither a PNG nor a JPEG image"),
])
def test_an_image_that_is_missing_or_not_png_or_jpeg_is_refused(tmp_path: Path, content: bytes | None,
                                                                 message: str) -> None:
    if content is not None:
        (tmp_path / "slate.gif").write_bytes(content)
    data = edit(base(), "live_streams[0].reconnect_slate", {"image": "slate.gif"})
    found = problems(data, base_dir=tmp_path)
    assert len(found) == 1 and found[0].startswith("relay.yaml: live_streams[0].reconnect_slate.image: ")
    assert message in found[0]


@pytest.mark.parametrize("after", [-1, 31])
def test_after_has_a_range(after: float) -> None:
    found = problems(edit(base(), "live_streams[0].reconnect_slate", {"after": after}))
    assert found == ("relay.yaml: live_streams[0].reconnect_slate.after: must be a number from 0 to 30",)


def test_image_kind() -> None:
    assert (image_kind(PNG), image_kind(JPEG), image_kind(b"BM")) == ("png", "jpeg", None)
