"""Finishing a `.part` a crash left: cut after the last complete tag, patch like a normal end."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.flv import FLVError, Tag, read_tags
from relay.recording import recovery
from relay.recording.flvfile import FILE_START, FlvFileWriter, Patch
from relay.rtmp import amf0
from tests.support.tags import audio, audio_header, inter, keyframe, video_header


def recording(frames: int = 12) -> tuple[bytes, FlvFileWriter, list[int]]:
    """A finished-looking recording (unpatched) and the end offset of each tag, onMetaData first."""
    writer = FlvFileWriter()
    tags: list[tuple[Tag, int]] = [(video_header(), 0), (audio_header(), 0)]
    for i in range(frames):
        tags.append((keyframe(size=50) if i % 6 == 0 else inter(size=40 + i), i * 40))
        tags.append((audio(size=20 + i), i * 40 + 5))
    data = b"".join(piece for tag, ts in tags for piece in writer.add(tag, ts))
    ends = []
    pos = FILE_START
    while pos < len(data):
        pos += 11 + int.from_bytes(data[pos + 1 : pos + 4], "big") + 4
        ends.append(pos)
    return data, writer, ends


def scan(data: bytes) -> recovery.Recovery:
    return recovery.scan(lambda offset, n: data[offset : offset + n], len(data))


def apply(data: bytes, patches: tuple[Patch, ...]) -> bytes:
    buf = bytearray(data)
    for patch in patches:
        buf[patch.offset : patch.offset + len(patch.data)] = patch.data
    return bytes(buf)


def test_a_complete_file_is_kept_whole_and_patched_as_the_writer_would() -> None:
    data, writer, _ = recording()
    found = scan(data)
    assert found.keep == len(data) and found.torn_bytes == 0
    assert found.tags == writer.tags and found.frames == writer.frames
    assert found.duration_ms == writer.clock.duration_ms
    assert list(found.patches) == writer.patches()


def test_every_cut_keeps_exactly_the_complete_tags_before_it() -> None:
    data, _, ends = recording(frames=4)
    for cut in range(len(data) + 1):
        if cut < 3:
            with pytest.raises(FLVError):  # not even the signature (recordfiles removes such a file)
                scan(data[:cut])
            continue
        found = scan(data[:cut])
        if cut < FILE_START:
            assert found.keep == 0 and found.tags == 0
            continue
        complete = [end for end in ends if end <= cut]
        assert found.keep == (complete[-1] if complete else FILE_START), cut
        assert found.tags == len(complete)
        kept = apply(data[: found.keep], found.patches)
        tags = read_tags(kept)
        assert len(tags) == found.tags
        if tags:
            values = amf0.decode(tags[0].payload)[1]
            assert values["filesize"] == found.keep
            assert values["duration"] == found.duration_ms / 1000


@given(st.binary(min_size=1, max_size=64))
def test_garbage_after_the_last_tag_is_cut_off(tail: bytes) -> None:
    data, writer, _ = recording(frames=3)
    found = scan(data + tail)
    assert found.keep == len(data) and found.torn_bytes == len(tail) and found.tags == writer.tags


def test_a_wrong_back_pointer_ends_the_file_at_that_tag() -> None:
    data, _, ends = recording(frames=6)
    broken = bytearray(data)
    broken[ends[5] - 4 : ends[5]] = b"\x00\x00\x00\x01"
    found = scan(bytes(broken))
    assert found.keep == ends[4] and found.tags == 5  # onMetaData and the four tags before the broken one


def test_a_file_that_is_not_flv_is_refused() -> None:
    with pytest.raises(FLVError):
        scan(b"<html>not a recording</html>")


def test_timestamps_that_wrap_at_32_bits_still_give_the_right_duration() -> None:
    writer = FlvFileWriter()
    start = (1 << 32) - 100
    data = b"".join(p for ts, tag in [(start, video_header()), (start, keyframe()), (start + 40, inter()),
                                       (start + 80, inter()), (start + 120, inter()), (start + 160, inter())]
                    for p in writer.add(tag, ts))
    assert scan(data).duration_ms == 200  # 160 ms from the first frame, plus one 40 ms frame


def test_a_foreign_flv_without_our_metadata_only_gets_its_flags_patched() -> None:
    from relay.flv import encode_tag, file_header
    data = file_header() + encode_tag(9, 0, video_header().payload) + encode_tag(9, 0, keyframe().payload)
    found = scan(data)
    assert found.tags == 2 and [p.offset for p in found.patches] == [4]
