"""The /video/v1 request bodies: each problem is one message naming its field; a record becomes a
LiveStreamConfig through the config's own checks (the same messages as a YAML file's)."""

from __future__ import annotations

import base64
import json

import pytest

from relay.api.video.access import Access, access_of, basic_credential
from relay.api.video.build import labels, running_config
from relay.api.video.errors import MuxError
from relay.api.video.requests import CreateBody, TargetBody, UpdateBody, page_query, parse
from relay.config import parse_config
from relay.config.sections import AccessToken
from relay.secret import Secret
from relay.store.records import LiveStreamRecord, TargetRecord

CONFIG = parse_config("""
live_streams:
  - name: studio
    stream_key: studio-key-5c1e0b7d9a
    simulcast_targets: []
""", "relay.yaml")


def problems(model: type, body: object) -> list[str]:
    with pytest.raises(MuxError) as caught:
        parse(model, json.dumps(body).encode() if not isinstance(body, bytes) else body)
    assert caught.value.status == 400
    return caught.value.messages


@pytest.mark.parametrize(("body", "expected"), [
    (b"{not json", "the body is not valid JSON (line 1 column 2)"),
    (b"[1, 2]", "the body must be a JSON object"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"reconnect_window": "60"}, "reconnect_window: must be a number, not a string"),
    ({"reconnect_window": 1801}, "reconnect_window: must be"),
    ({"passthrough": "x" * 256}, "passthrough: must be at most 255 characters"),
    ({"simulcast_targets": [{"url": "rtmp://a/b"}]}, "simulcast_targets[0].stream_key: required field missing"),
    ({"simulcast_targets": [{"url": "rtmp://a/b", "stream_key": ""}]},
     "simulcast_targets[0].stream_key: must be at least 16 characters"),
    ({"simulcast_targets": {"url": "rtmp://a/b"}}, "simulcast_targets: must be a list"),
    # A key that could be an ordinary word ("idle") would be redacted from every answer.
    ({"simulcast_targets": [{"url": "rtmp://a/b", "stream_key": "idle"}]},
     "simulcast_targets[0].stream_key: must be at least 16 characters"),
    ({"recording": {"dir": "/etc"}}, "recording.dir: unknown field"),
    ({"passthrough": None, "simulcast_targets": [{"url": None, "stream_key": "k"}]},
     "simulcast_targets[0].url: must not be null"),
])
def test_a_bad_body_names_its_field(body: object, expected: str) -> None:
    assert any(m.startswith(expected) for m in problems(CreateBody, body)), problems(CreateBody, body)


def test_mux_fields_the_relay_does_not_use_are_accepted() -> None:
    body = parse(CreateBody, b'{"playback_policy": ["public"], "new_asset_settings": {"playback_policy": ["public"]}}')
    assert body.recording_section({}) == {"enabled": True}
    assert parse(UpdateBody, b'{"new_asset_settings": null}').recording_section({"enabled": True}) == {"enabled": False}
    assert parse(UpdateBody, b'{"passthrough": "x"}').recording_section({"enabled": True}) == {"enabled": True}


def target(i: int, url: str = "rtmp://127.0.0.1/live", **fields: object) -> TargetRecord:
    return TargetRecord(id=f"t{i:031d}", url=url, stream_key=Secret(f"target-key-{i}"), **fields)  # type: ignore[arg-type]


def stream(*targets: TargetRecord) -> LiveStreamRecord:
    return LiveStreamRecord(id="A" * 32, stream_key=Secret("ingest-key-0123456789abcdef"), targets=targets)


def test_the_config_checks_the_targets_with_its_own_messages() -> None:
    record = stream(target(0, "http://127.0.0.1/live"), *(target(i) for i in range(1, 7)))
    with pytest.raises(MuxError) as caught:
        running_config(record, CONFIG)
    messages = caught.value.messages
    assert "simulcast_targets[0].url: must start with rtmp:// or rtmps://" in messages
    assert any(m.startswith("simulcast_targets[6]: at most 6 simulcast targets") for m in messages)


def test_disabled_targets_are_checked_and_not_run() -> None:
    record = stream(target(0), target(1, enabled=False), target(2, url="rtmp://10.0.0.1/app", passthrough="yt"))
    config = running_config(record, CONFIG)
    assert [t.passthrough for t in config.simulcast_targets] == ["127.0.0.1", "yt"]
    assert labels(record.targets) == ["127.0.0.1", "127.0.0.1-t00000", "yt"]
    assert config.name == record.id and config.stream_key == record.stream_key


def test_basic_credentials_and_permissions() -> None:
    tokens = (AccessToken.model_validate({"id": "app", "secret": "s3cret-0123456789", "permissions": ["read", "write"]}),
              AccessToken.model_validate({"id": "view", "secret": "other-0123456789"}))
    header = "Basic " + base64.b64encode(b"app:s3cret-0123456789").decode()
    credential = basic_credential(header)
    assert credential == ("app", "s3cret-0123456789")
    assert access_of(credential, tokens) is Access.WRITE
    assert access_of(("view", "other-0123456789"), tokens) is Access.READ
    assert access_of(("view", "s3cret-0123456789"), tokens) is Access.NONE
    assert basic_credential("Bearer abc") is None and basic_credential("Basic !!!") is None


def test_a_page_query() -> None:
    assert page_query({}) == (25, 1)
    assert page_query({"limit": "2", "page": "3"}) == (2, 3)
    for bad in ("0", "²", "9" * 5000, "-1", "1.5"):
        with pytest.raises(MuxError, match="limit: must be a whole number from 1 to 100"):
            page_query({"limit": bad})
