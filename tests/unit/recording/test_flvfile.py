"""The recording's bytes: header, onMetaData first, every tag with its back-pointer, patches at the end."""

from __future__ import annotations

import struct

from relay.flv import AUDIO, SCRIPT, VIDEO, Tag, iter_tags, read_tags
from relay.recording.flvfile import FILE_START, DurationClock, FlvFileWriter, Patch, tag_header
from relay.rtmp import amf0
from tests.support.tags import audio, audio_header, inter, keyframe, script, video_header


def write(tags: list[tuple[Tag, int]]) -> tuple[bytes, FlvFileWriter]:
    writer = FlvFileWriter()
    data = b"".join(piece for tag, ts in tags for piece in writer.add(tag, ts))
    assert writer.size == len(data)
    return data, writer


def patched(data: bytes, patches: list[Patch]) -> bytes:
    buf = bytearray(data)
    for patch in patches:
        end = patch.offset + len(patch.data)
        assert end <= len(buf), "a patch must not grow the file"
        buf[patch.offset : end] = patch.data
    return bytes(buf)


def on_metadata(**values: float) -> Tag:
    return Tag(SCRIPT, 0, amf0.encode("onMetaData", amf0.ECMAArray(values)))


def show() -> list[tuple[Tag, int]]:
    """onMetaData, both sequence headers, then 3 video frames (33 ms) and 3 audio frames (21 ms)."""
    return [(on_metadata(width=640.0, duration=6.0), 0), (video_header(), 0), (audio_header(), 0),
            (keyframe(size=40), 0), (audio(size=20), 0), (audio(size=21), 21), (inter(size=30), 33),
            (audio(size=22), 42), (inter(size=31), 66)]


def test_the_file_is_flv_with_metadata_first_and_every_payload_unchanged() -> None:
    tags = show()
    data, writer = write(tags)
    assert data[:3] == b"FLV" and len(data) > FILE_START
    parsed = read_tags(data)
    assert parsed[0].kind == SCRIPT and amf0.decode(parsed[0].payload)[0] == "onMetaData"
    assert [(t.kind, t.timestamp, t.payload) for t in parsed[1:]] == [
        (t.kind, ts, t.payload) for t, ts in tags[1:]]
    assert writer.tags == len(tags) and writer.frames == 6


def test_payloads_are_handed_on_not_copied() -> None:
    tag = keyframe(size=1000)
    writer = FlvFileWriter()
    writer.add(video_header(), 0)
    pieces = writer.add(tag, 0)
    assert len(pieces) == 3 and pieces[1] is tag.payload


def test_every_tag_is_followed_by_its_back_pointer() -> None:
    data, _ = write(show())
    pos = FILE_START
    while pos < len(data):
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        pos += 11 + size
        assert struct.unpack_from(">I", data, pos)[0] == size + 11
        pos += 4
    assert pos == len(data)


def test_patches_give_duration_filesize_and_the_tracks_seen() -> None:
    data, writer = write(show())
    final = patched(data, writer.patches())
    values = amf0.decode(read_tags(final)[0].payload)[1]
    assert values["duration"] == 0.099  # last video frame at 66 ms + its 33 ms
    assert values["filesize"] == len(final) == len(data)
    assert values["width"] == 640.0
    assert final[4] == 0x05
    before = amf0.decode(read_tags(data)[0].payload)[1]
    assert before["duration"] == 0.0 and before["filesize"] == 0.0  # unknown until patched


def test_header_flags_follow_the_tracks_that_were_recorded() -> None:
    data, writer = write([(audio_header(), 0), (audio(), 0), (audio(), 21)])
    assert patched(data, writer.patches())[4] == 0x04
    data, writer = write([(video_header(), 0), (keyframe(), 0)])
    assert patched(data, writer.patches())[4] == 0x01


def test_a_missing_onmetadata_is_made_up_before_the_first_tag() -> None:
    data, writer = write([(video_header(), 0), (keyframe(), 0), (inter(), 40)])
    parsed = read_tags(data)
    assert amf0.decode(parsed[0].payload) == ["onMetaData", {"duration": 0.0, "filesize": 0.0}]
    assert [t.payload for t in parsed[1:]] == [video_header().payload, keyframe().payload, inter().payload]
    assert amf0.decode(read_tags(patched(data, writer.patches()))[0].payload)[1]["duration"] == 0.08


def test_a_later_onmetadata_is_left_out_and_other_script_tags_are_kept() -> None:
    data, _ = write([*show(), (on_metadata(width=1280.0), 100), (script(), 100), (keyframe(), 100)])
    parsed = read_tags(data)
    metadata_tags = [t for t in parsed if t.kind == SCRIPT and t.payload.startswith(b"\x02\x00\x0aonMetaData")]
    assert len(metadata_tags) == 1
    assert parsed[-2].payload == script().payload and parsed[-1].kind == VIDEO


def test_timestamps_past_24_bits_use_the_extended_byte() -> None:
    ts = (5 << 24) | 0x010203
    header = tag_header(VIDEO, 10, ts)
    assert header[4:8] == bytes((0x01, 0x02, 0x03, 5)) and header[8:] == b"\x00\x00\x00"
    data, _ = write([(video_header(), ts), (keyframe(), ts)])
    assert [t for _, t, _ in iter_tags(data)][-1] == ts


def test_duration_clock_ends_each_track_one_frame_after_its_last_one() -> None:
    clock = DurationClock()
    assert clock.duration_ms == 0
    for ts in (1000, 1033, 1066):
        clock.frame(VIDEO, ts)
    for ts in (1000, 1021, 1042, 1064, 1085):
        clock.frame(AUDIO, ts)
    assert clock.duration_ms == 106  # audio ends at 1085 + 21, after video's 1066 + 33
    clock.frame(VIDEO, 1050)  # out of order (B-frames interleave): neither the end nor the step moves
    assert clock.duration_ms == 106
