"""Status snapshots as JSON: Mux's shape, the OpenAPI document's schemas, and never a key."""

from __future__ import annotations

import json

import jsonschema
import pytest

from relay.status import (
    HealthSnapshot,
    IngestSnapshot,
    LiveStreamSnapshot,
    RecordingSnapshot,
    RelaySnapshot,
    ReloadResult,
    TargetSnapshot,
    utc_text,
)
from tests.support.openapi import component, spec, validate

TARGET = TargetSnapshot(
    passthrough="YouTube", url="rtmp://a.rtmp.youtube.com/live2", status="errored", error_severity="normal",
    last_error="connection refused by a.rtmp.youtube.com:1935", next_attempt_at=1_800_000_000.5,
    connected_since=None, reconnects=1, connections=2, attempts=4, last_connected_at=1_799_999_000.0,
    failing_since=1_799_999_900.0, bytes_sent=123_456, tags_sent=789, dropped_frames=4, dropped_bytes=5000,
    bytes_sent_total=999_999, dropped_frames_total=40, dropped_bytes_total=50_000, connections_total=5,
    reconnects_total=2, tls_verify=True, write_interval=0.05,
)
INGEST = IngestSnapshot(
    publisher_address="192.0.2.7:50123", connected_since=1_800_000_000.0, uptime=12.5, video_codec="h264",
    video_profile="High@3.1", audio_codec="aac", audio_profile="LC", width=1280, height=720, frame_rate=30.0,
    audio_sample_rate=48000, audio_channels=2, bitrate_kbps=4123.4, video_bitrate_kbps=3960.0,
    audio_bitrate_kbps=160.2, keyframe_interval=2.0, bytes_received=10**7, encoder="obs-output module",
)
ACTIVE = LiveStreamSnapshot(
    name="studio-a", status="active", reconnect_window=60.0, publisher_connected=True, awaiting_publisher=False,
    sessions=2, active_since=1_800_000_000.0, bytes_received=10**7, bytes_received_total=3 * 10**7,
    simulcast_targets=(TARGET,), ingest=INGEST,
    health=HealthSnapshot("unhealthy", (("keyframe_interval", "keyframes arrive 6.0 s apart"),)),
    recording=RecordingSnapshot("recording", "/var/lib/x/studio-a/20261129T190000Z.flv.part", 1000, 1.0, None),
)
IDLE = LiveStreamSnapshot(
    name="studio-b", status="idle", reconnect_window=0.0, publisher_connected=False, awaiting_publisher=False,
    sessions=0, active_since=None, bytes_received=0, bytes_received_total=0,
    simulcast_targets=(TargetSnapshot("Twitch", "rtmp://live.twitch.tv/app", "idle", None, None, None, None, 0, 0,
                                      0, None, None, 0, 0, 0, 0, 0, 0, 0, 0, 0, True, 0.05),),
    ingest=None, health=HealthSnapshot("unknown"),
)


def test_the_openapi_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate as validate_spec

    validate_spec(spec())  # raises with the path of what is wrong
    assert spec()["openapi"].startswith("3.1")


def test_live_stream_objects_match_the_openapi_schemas() -> None:
    body = {"data": [ACTIVE.to_json(), IDLE.to_json()]}

    validate(body, "/api/v1/live-streams", "get", 200)
    validate({"data": ACTIVE.to_json()}, "/api/v1/live-streams/{name}", "get", 200)


def test_the_schema_is_strict_enough_to_catch_drift() -> None:
    extra = {**IDLE.to_json(), "stream_key": "oops"}
    with pytest.raises(jsonschema.ValidationError):
        validate({"data": extra}, "/api/v1/live-streams/{name}", "get", 200)
    wrong_status = {**TARGET.to_json(), "status": "connected"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong_status, component("SimulcastTarget"))


def test_uses_mux_words() -> None:
    data = ACTIVE.to_json()

    assert data["status"] == "active" and data["reconnect_window"] == 60.0
    target = data["simulcast_targets"][0]
    assert {"passthrough", "url", "status", "error_severity", "last_error", "next_attempt_at", "connected_since",
            "reconnects", "bytes_sent", "dropped_frames"} <= target.keys()
    # Per publish session, with the lifetime totals beside them.
    assert {"bytes_sent_total", "dropped_frames_total", "reconnects_total", "attempts", "last_connected_at"} \
        <= target.keys()
    assert "bytes_received_total" in data
    assert data["health"] == {"status": "unhealthy",
                              "reasons": [{"code": "keyframe_interval", "message": "keyframes arrive 6.0 s apart"}]}


def test_utc_text_is_iso_8601_to_the_second() -> None:
    assert utc_text(1_800_000_000.75) == "2027-01-15T08:00:00Z"
    assert utc_text(None) is None


def test_every_field_of_the_snapshots_is_documented() -> None:
    schemas = spec()["components"]["schemas"]
    for name, value in (("SimulcastTarget", TARGET.to_json()), ("Ingest", INGEST.to_json()),
                        ("LiveStream", ACTIVE.to_json())):
        assert set(schemas[name]["properties"]) == set(value), name


def test_reload_results_match_the_schema() -> None:
    validate({"data": ReloadResult(True, (), "config ok").to_json()}, "/api/v1/reload", "post", 200)
    validate({"data": ReloadResult(False, ("relay.yaml:3:5: live_streams: required",)).to_json()},
             "/api/v1/reload", "post", 422)


def test_the_relay_snapshot_is_plain_json() -> None:
    text = json.dumps(RelaySnapshot((ACTIVE, IDLE), 1.0).to_dict())

    assert json.loads(text)["live_streams"][1]["name"] == "studio-b"
