"""Recording file names: UTC start in ISO 8601 basic, unique, recognised."""

from __future__ import annotations

from relay.recording import names

START = 1795976213.0  # 2026-11-29 18:16:53 UTC


def test_the_stem_is_the_utc_start_in_iso_8601_basic() -> None:
    assert names.stem_for(START) == "20261129T181653Z"
    assert names.stem_for(START + 0.9) == "20261129T181653Z"


def test_a_taken_stem_gets_a_number() -> None:
    assert names.unique_stem(START, set()) == "20261129T181653Z"
    assert names.unique_stem(START, {"20261129T181653Z.mp4"}) == "20261129T181653Z-1"
    taken = {"20261129T181653Z.flv.part", "20261129T181653Z-1.mp4.part", "other"}
    assert names.unique_stem(START, taken) == "20261129T181653Z-2"


def test_parse_recognises_only_our_names() -> None:
    parsed = names.parse("20261129T181653Z-3.mp4.part")
    assert parsed == names.RecordingName("20261129T181653Z-3", START, ".mp4", True)
    assert names.parse("20261129T181653Z.flv") == names.RecordingName("20261129T181653Z", START, ".flv", False)
    for other in ("20261129T181653Z.flv.bak", "show.flv", "20261129T181653Z-0.flv", "20261399T181653Z.flv",
                  "x20261129T181653Z.flv", "20261129T181653Z.mkv"):
        assert names.parse(other) is None, other
