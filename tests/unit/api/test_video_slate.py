"""The reconnect slate through the /video/v1 API: Mux's `use_slate_for_standard_latency` turns it on
or off, `reconnect_slate_url` is its image (a local path or a file:// URL, never downloaded), checked
by the config's own model with the API's field name in every message; the object shows both."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.api.video.build import running_config
from relay.api.video.errors import MuxError
from relay.api.video.objects import api_live_stream
from relay.api.video.requests import CreateBody, UpdateBody, parse
from relay.config import parse_config
from relay.config.slate import SlateConfig
from relay.secret import Secret
from relay.store.records import LiveStreamRecord

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32

CONFIG = parse_config("""
reconnect_slate:
  after: 2.5
live_streams:
  - name: studio
    stream_key: studio-key-5c1e0b7d9a
    simulcast_targets: []
""", "relay.yaml")


@pytest.fixture
def png(tmp_path: Path) -> Path:
    image = tmp_path / "my slate.png"
    image.write_bytes(PNG)
    return image


def section(body: bytes, current: dict[str, object] | None = None, model: type = CreateBody) -> dict[str, object]:
    parsed: CreateBody | UpdateBody = parse(model, body)
    return parsed.slate_section(current or {})


def record(slate: dict[str, object]) -> LiveStreamRecord:
    return LiveStreamRecord(id="S" * 32, stream_key=Secret("ingest-key-0123456789abcdef"), reconnect_slate=slate)


def test_the_body_becomes_the_slate_section(png: Path) -> None:
    assert section(b"{}") == {}
    assert section(b'{"use_slate_for_standard_latency": true}') == {"enabled": True}
    assert section(f'{{"reconnect_slate_url": "{png}"}}'.encode()) == {"image": str(png)}
    assert section(f'{{"reconnect_slate_url": "{png.as_uri()}"}}'.encode()) == {"image": str(png)}
    assert section(b'{"reconnect_slate_url": "file://localhost/etc/x.png"}') == {"image": "/etc/x.png"}
    current = {"enabled": True, "image": str(png)}
    assert section(b'{"use_slate_for_standard_latency": false, "reconnect_slate_url": null}', current,
                   UpdateBody) == {"enabled": False, "image": None}
    assert section(b'{"passthrough": "x"}', current, UpdateBody) == current
    assert section(b'{"use_slate_for_standard_latency": null}', current, UpdateBody) == current


@pytest.mark.parametrize(("url", "expected"), [
    ("https://example.com/slate.png", "reconnect_slate_url: the relay does not download images; give a path on the "
                                      "relay's machine, e.g. file:///etc/simulcast-relay/slate.png"),
    ("HTTP://example.com/slate.png", "reconnect_slate_url: the relay does not download images"),
    ("file://other-host/slate.png", "reconnect_slate_url: a file:// URL must name a file on the relay's machine"),
    ("slate.png", "reconnect_slate_url: must be an absolute path on the relay's machine or a file:// URL"),
    ("ftp://example.com/slate.png", "reconnect_slate_url: must be an absolute path"),
])
def test_a_url_the_relay_cannot_take_is_refused_naming_the_field(url: str, expected: str) -> None:
    body = parse(CreateBody, f'{{"reconnect_slate_url": "{url}"}}'.encode())
    with pytest.raises(MuxError) as caught:
        body.slate_section({})
    assert caught.value.status == 400 and caught.value.messages[0].startswith(expected), caught.value.messages


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"use_slate_for_standard_latency": "yes"}', "use_slate_for_standard_latency: must be"),
    (b'{"reconnect_slate_url": 7}', "reconnect_slate_url: must be"),
    (b'{"reconnect_slate_url": ""}', "reconnect_slate_url: must not be empty"),
])
def test_a_wrong_type_names_the_field(body: bytes, expected: str) -> None:
    with pytest.raises(MuxError) as caught:
        parse(UpdateBody, body)
    assert any(m.startswith(expected) for m in caught.value.messages), caught.value.messages


def test_the_config_checks_the_image_under_the_api_name(tmp_path: Path) -> None:
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    for path, expected in ((tmp_path / "missing.png", "reconnect_slate_url: cannot read the image file: No such file or directory"),
                           (not_an_image, "reconnect_slate_url: is neither a PNG nor a JPEG image")):
        with pytest.raises(MuxError) as caught:
            running_config(record({"enabled": True, "image": str(path)}), CONFIG)
        assert caught.value.status == 400 and caught.value.messages == [expected]


def test_the_running_config_takes_the_rest_from_the_top_level(png: Path) -> None:
    config = running_config(record({"enabled": True, "image": str(png)}), CONFIG)
    assert config.reconnect_slate == SlateConfig(enabled=True, image=str(png), after=2.5)
    assert running_config(record({}), CONFIG).reconnect_slate == SlateConfig(after=2.5)
    card = running_config(record({"enabled": True, "image": None}), CONFIG).reconnect_slate
    assert card.enabled and card.image is None


def test_the_object_shows_the_slate_as_mux_does(png: Path) -> None:
    shown = api_live_stream(record({"enabled": True, "image": str(png)}), [], None, CONFIG.reconnect_slate)
    assert shown["use_slate_for_standard_latency"] is True and shown["reconnect_slate_url"] == png.as_uri()
    assert "%20" in shown["reconnect_slate_url"]
    inherited = api_live_stream(record({}), [], None, SlateConfig(enabled=True))
    assert inherited["use_slate_for_standard_latency"] is True and inherited["reconnect_slate_url"] is None
