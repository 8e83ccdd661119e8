"""onMetaData for a recording: the publisher's own, duration and filesize as numbers at known offsets."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from relay.recording import metadata
from relay.rtmp import amf0
from relay.rtmp.amf0 import ECMAArray

# What ffmpeg 5.1 sends when it publishes a file (`-c copy`): its duration, and filesize 0.
FFMPEG_LIKE = ECMAArray({
    "duration": 6.067, "width": 640.0, "height": 360.0, "videodatarate": 0.0, "framerate": 30.0,
    "videocodecid": 7.0, "audiodatarate": 125.0, "audiosamplerate": 48000.0, "audiosamplesize": 16.0,
    "stereo": True, "audiocodecid": 10.0, "encoder": "Lavf59.27.100", "filesize": 0.0,
})


def on_metadata(value: Any) -> bytes:
    return amf0.encode("onMetaData", value)


def fields(prepared: metadata.PreparedMetadata) -> tuple[float, float]:
    payload = prepared.payload
    for at in (prepared.duration_at, prepared.filesize_at):
        assert payload[at - 1] == 0x00, "not after an AMF0 number marker"
    return (struct.unpack_from(">d", payload, prepared.duration_at)[0],
            struct.unpack_from(">d", payload, prepared.filesize_at)[0])


def test_no_metadata_gives_a_minimal_one_with_both_fields() -> None:
    prepared = metadata.prepare(None)
    assert amf0.decode(prepared.payload) == ["onMetaData", {"duration": 0.0, "filesize": 0.0}]
    assert fields(prepared) == (0.0, 0.0)


def test_ffmpeg_metadata_keeps_its_order_and_bytes_with_both_fields_zeroed_in_place() -> None:
    original = on_metadata(FFMPEG_LIKE)
    prepared = metadata.prepare(original)
    assert len(prepared.payload) == len(original)  # nothing inserted: both fields were numbers already
    name, values = amf0.decode(prepared.payload)
    assert name == "onMetaData" and list(values) == list(FFMPEG_LIKE)
    assert values == {**FFMPEG_LIKE, "duration": 0.0}
    assert fields(prepared) == (0.0, 0.0)
    # Everything but the duration's 8 bytes is the publisher's.
    at = prepared.duration_at
    assert prepared.payload[:at] == original[:at] and prepared.payload[at + 8 :] == original[at + 8 :]


def test_missing_fields_are_appended_and_the_ecma_count_follows() -> None:
    original = on_metadata(ECMAArray({"width": 1280.0, "encoder": "obs-output module (libobs version 30.1.2)"}))
    prepared = metadata.prepare(original)
    name, values = amf0.decode(prepared.payload)
    assert list(values) == ["width", "encoder", "duration", "filesize"]
    count_at = len(amf0.encode("onMetaData")) + 1
    assert struct.unpack_from(">I", prepared.payload, count_at)[0] == 4
    assert fields(prepared) == (0.0, 0.0)


def test_an_anonymous_object_gets_the_fields_too() -> None:
    prepared = metadata.prepare(on_metadata({"width": 1.0}))
    assert prepared.payload[len(amf0.encode("onMetaData"))] == 0x03
    assert amf0.decode(prepared.payload)[1] == {"width": 1.0, "duration": 0.0, "filesize": 0.0}


def test_fields_that_are_not_numbers_are_rewritten_as_numbers() -> None:
    original = on_metadata(ECMAArray({"duration": "live", "width": 2.0, "filesize": None}))
    prepared = metadata.prepare(original)
    assert amf0.decode(prepared.payload)[1] == {"width": 2.0, "duration": 0.0, "filesize": 0.0}
    assert fields(prepared) == (0.0, 0.0)


def test_trailing_values_after_the_object_are_kept() -> None:
    original = on_metadata(ECMAArray({"width": 2.0})) + amf0.encode("extra")
    prepared = metadata.prepare(original)
    assert prepared.payload.endswith(amf0.encode("extra"))


def test_metadata_that_does_not_parse_is_replaced_by_a_minimal_one() -> None:
    for broken in (b"\x02\x00\x0aonMetaData" + b"\x55" * 10, b"\x02\x00\x0aonMetaData\x08\x00\x00",
                   b"\x02\x00\x0aonMetaData\x02\x00\x01x", b"\x02\x00\x0aonMetaData"):
        prepared = metadata.prepare(broken)
        assert amf0.decode(prepared.payload) == ["onMetaData", {"duration": 0.0, "filesize": 0.0}], broken


def test_locate_finds_what_prepare_placed() -> None:
    for original in (None, on_metadata(FFMPEG_LIKE), on_metadata({"a": 1.0})):
        prepared = metadata.prepare(original)
        assert metadata.locate(prepared.payload) == (prepared.duration_at, prepared.filesize_at)
    assert metadata.locate(on_metadata(ECMAArray({"duration": 1.0}))) is None  # no filesize


_values = st.one_of(st.floats(allow_nan=False), st.booleans(), st.text(max_size=20), st.none())


@given(st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=12), st.booleans())
def test_any_metadata_keeps_every_other_field_and_gets_both_numbers(values: dict[str, Any], ecma: bool) -> None:
    original = on_metadata(ECMAArray(values) if ecma else values)
    prepared = metadata.prepare(original)
    name, decoded = amf0.decode(prepared.payload)
    assert name == "onMetaData"
    assert decoded == {**values, "duration": 0.0, "filesize": 0.0}
    assert fields(prepared) == (0.0, 0.0)
    assert metadata.locate(prepared.payload) == (prepared.duration_at, prepared.filesize_at)
