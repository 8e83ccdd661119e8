"""A symbolic link planted in the recordings folder is never followed where the relay writes,
truncates, creates or deletes: the file it points to stays as it was."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from relay.recording import files, names
from relay.recording.remux import remux
from testbed.media import source_clip
from tests.support.recording import recording_files

VICTIM = b"precious bytes the relay must never touch\n" * 100


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "victim"
    path.write_bytes(VICTIM)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


def test_the_remux_marker_replaces_a_planted_link(folder: Path, victim: Path) -> None:
    fd, part = files.open_part(str(folder), 1_800_000_000)
    try:
        marker = part[: -len(names.FLV + names.PART)] + names.MP4 + names.PART
        os.symlink(victim, marker)
        os.write(fd, b"FLV")
        files.finish(fd, part, [], remux_marker=True)
    finally:
        os.close(fd)
    assert victim.read_bytes() == VICTIM
    assert not os.path.islink(marker) and os.path.getsize(marker) == 0


def test_a_planted_part_link_is_not_recovered(folder: Path, victim: Path) -> None:
    link = folder / "20270101T000000Z.flv.part"
    os.symlink(victim, link)
    os.utime(link, (0, 0), follow_symlinks=False)
    leftovers = files.find_leftovers(str(folder), before=1_900_000_000)
    assert leftovers.parts == ()  # a link is never taken for a leftover
    found = files.recover_part(str(link))  # and even asked directly, it is not followed
    assert found.action == "not_flv" and found.path is None
    assert victim.read_bytes() == VICTIM and link.is_symlink()


def test_retention_deletes_no_link_and_no_target(folder: Path, victim: Path) -> None:
    from relay.recording.retention import RetentionPolicy
    link = folder / "20200101T000000Z.flv"
    os.symlink(victim, link)
    assert files.apply_retention(str(folder), RetentionPolicy(keep_last=0, max_age=None, max_total_size=None)) == []
    assert victim.read_bytes() == VICTIM and link.is_symlink()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
async def test_the_remux_writes_through_no_planted_link(folder: Path, victim: Path) -> None:
    flv = folder / "20270101T000000Z.flv"
    shutil.copyfile(source_clip(), flv)
    os.symlink(victim, folder / "20270101T000000Z.mp4.part")
    os.symlink(victim, folder / "20270101T000000Z.mp4")
    made = await remux(str(flv))
    assert victim.read_bytes() == VICTIM
    assert made.path == str(folder / "20270101T000000Z.mp4") and not os.path.islink(made.path)
    assert os.path.getsize(made.path) == made.size > 0
    assert recording_files(folder) == ["20270101T000000Z.mp4"]  # marker, FLV and the remux's folder gone
