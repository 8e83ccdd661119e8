"""The recorder: a hub subscriber whose file is written by its own thread, and what a bad disk does to it."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from structlog.testing import capture_logs

from relay.config import RecordingConfig
from relay.fanout.hub import Hub
from relay.flv import VIDEO, read_tags
from relay.recording.recorder import Outcome, Recorder
from tests.support.recording import assert_tracks_monotonic, media, metadata_of, recording_files, show
from tests.support.tags import inter, keyframe

TIMEOUT = 10.0


def config(folder: Path, **fields: object) -> RecordingConfig:
    return RecordingConfig(enabled=True, dir=str(folder), **fields)


async def finished(recorder: Recorder) -> Outcome:
    return await asyncio.wait_for(asyncio.shield(recorder.done), TIMEOUT)


def events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == name]


class FullDisk:
    """A write that fits `room` more bytes: it writes what fits, then fails with ENOSPC, like a full disk."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __call__(self, fd: int, pieces: Sequence[bytes]) -> None:
        data = b"".join(pieces)
        if len(data) > self.room:
            os.write(fd, data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.write(fd, data)
        self.room -= len(data)


class StuckDisk:
    """Writes `free` bytes at disk speed, then blocks until released: a disk that stops keeping up."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.passed = threading.Event()  # the free bytes are on disk
        self.release = threading.Event()

    def __call__(self, fd: int, pieces: Sequence[bytes]) -> None:
        if self.passed.is_set():
            self.release.wait(TIMEOUT)
        os.write(fd, b"".join(pieces))
        self.free -= sum(len(p) for p in pieces)
        if self.free <= 0:
            self.passed.set()


async def test_a_session_is_written_tag_for_tag_and_renamed_when_it_ends(tmp_path: Path) -> None:
    hub = Hub("studio")
    tags = show()
    with capture_logs() as logs:
        recorder = Recorder("studio", config(tmp_path), 1 << 20, clock=lambda: 1795976213.0)
        recorder.start(hub)
        assert recorder.snapshot().status == "recording"
        for tag in tags:
            hub.publish(tag)
        recorder.stop()
        assert recorder.snapshot().status == "finalizing"
        assert recorder not in hub.subscribers
        outcome = await finished(recorder)

    folder = tmp_path / "studio"
    assert recording_files(folder) == ["20261129T181653Z.flv"]
    assert outcome.path == str(folder / "20261129T181653Z.flv") and outcome.complete
    recorded = read_tags((folder / "20261129T181653Z.flv").read_bytes())
    assert [(t.kind, t.timestamp, t.payload) for t in recorded[1:]] == [
        (t.kind, t.timestamp, t.payload) for t in tags[1:]]
    values = metadata_of(outcome.path)
    assert values["width"] == 640.0
    assert values["duration"] == outcome.duration_ms / 1000 == 1.2  # 30 frames of 40 ms
    assert values["filesize"] == outcome.size == (folder / "20261129T181653Z.flv").stat().st_size
    [started] = events(logs, "recording_started")
    assert started["path"] == str(folder / "20261129T181653Z.flv.part")
    snapshot = recorder.snapshot()
    assert (snapshot.path, snapshot.bytes, snapshot.started_at) == (
        str(folder / "20261129T181653Z.flv.part"), outcome.size, 1795976213.0)


async def test_a_rejoin_continues_the_file_with_timestamps_moving_forward(tmp_path: Path) -> None:
    hub = Hub("studio")
    recorder = Recorder("studio", config(tmp_path), 1 << 20)
    recorder.start(hub)
    first = show(frames=20)
    for tag in first:
        hub.publish(tag)
    recorder.resync(gap_ms=1500)
    # The new session's encoder starts its clock again, and here with two frames that cannot decode.
    second = [inter(0), inter(40), *show(frames=20, start=80)]
    for tag in second:
        hub.publish(tag)
    recorder.stop()
    outcome = await finished(recorder)

    assert outcome.path is not None and recording_files(tmp_path / "studio") == [os.path.basename(outcome.path)]
    recorded = read_tags(Path(outcome.path).read_bytes())
    assert_tracks_monotonic(recorded)
    got = media(recorded)
    assert [t.payload for t in got] == [t.payload for t in media(first) + media(second)[2:]]
    resumed = got[len(media(first))]
    assert resumed.kind == VIDEO and resumed.is_keyframe
    assert resumed.timestamp >= max(t.timestamp for t in got[: len(media(first))]) + 1500


async def test_a_full_disk_errors_the_recording_once_and_keeps_what_was_written(tmp_path: Path) -> None:
    hub = Hub("studio")
    tags = show(frames=40)
    with capture_logs() as logs:
        recorder = Recorder("studio", config(tmp_path), 1 << 20, write=FullDisk(room=3000))
        recorder.start(hub)
        for tag in tags:
            hub.publish(tag)  # the publisher never notices
        outcome = await finished(recorder)
        for tag in show(frames=5, start=5000):
            hub.publish(tag)
        recorder.stop()

    snapshot = recorder.snapshot()
    assert snapshot.status == "errored"
    assert snapshot.last_error == "write failed: No space left on device"
    [errored] = events(logs, "recording_errored")
    assert errored["error"] == snapshot.last_error and errored["live_stream"] == "studio"
    assert recorder not in hub.subscribers
    # What reached the disk is a complete, playable file: up to its last complete tag.
    assert outcome.path is not None and not outcome.complete
    assert recording_files(tmp_path / "studio") == [os.path.basename(outcome.path)]
    data = Path(outcome.path).read_bytes()
    assert 0 < len(data) <= 3000
    recorded = read_tags(data)
    assert [t.payload for t in media(recorded)] == [t.payload for t in media(tags)[: len(media(recorded))]]
    assert metadata_of(outcome.path)["filesize"] == len(data)


async def test_a_disk_that_does_not_keep_up_errors_the_recording_before_the_buffer_passes_its_bound(
    tmp_path: Path,
) -> None:
    hub = Hub("studio")
    disk = StuckDisk(free=1000)
    bound = 8192
    tags = show(frames=200, size=1000)
    with capture_logs() as logs:
        recorder = Recorder("studio", config(tmp_path), bound, write=disk)
        recorder.start(hub)
        for tag in tags[:6]:  # onMetaData, sequence headers, a keyframe and two audio frames
            hub.publish(tag)
        assert await asyncio.to_thread(disk.passed.wait, TIMEOUT)
        offered = 6
        for tag in tags[6:]:
            hub.publish(tag)
            offered += 1
            writer = recorder._writer
            assert writer is not None and writer.queued <= bound
            if recorder.snapshot().status == "errored":
                break
        assert recorder.snapshot().status == "errored", "the bound was never reached"
        assert offered < len(tags)
        assert "not keeping up" in (recorder.snapshot().last_error or "")
        assert recorder not in hub.subscribers
        for tag in tags[offered:]:
            hub.publish(tag)  # the show goes on without the recorder
        disk.release.set()
        outcome = await finished(recorder)
    assert len(events(logs, "recording_errored")) == 1
    # What had reached the disk is finished as a playable file; what was waiting is gone.
    assert outcome.path is not None and not outcome.complete
    recorded = media(read_tags(Path(outcome.path).read_bytes()))
    assert 3 <= len(recorded) < offered
    assert [t.payload for t in recorded] == [t.payload for t in media(tags)[: len(recorded)]]


async def test_a_folder_that_cannot_be_created_errors_the_recording(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("a file where the recordings' folder should be")
    hub = Hub("studio")
    with capture_logs() as logs:
        recorder = Recorder("studio", config(tmp_path / "not-a-dir"), 1 << 20)
        recorder.start(hub)
        outcome = await finished(recorder)
        hub.publish(keyframe())
    assert outcome.path is None and outcome.error is not None
    assert recorder.snapshot().status == "errored"
    assert (recorder.snapshot().last_error or "").startswith("cannot create the recording file: ")
    assert len(events(logs, "recording_errored")) == 1


async def test_a_session_without_media_leaves_no_file(tmp_path: Path) -> None:
    hub = Hub("studio")
    recorder = Recorder("studio", config(tmp_path), 1 << 20)
    recorder.start(hub)
    for tag in show(frames=0):  # metadata and sequence headers only
        hub.publish(tag)
    recorder.stop()
    outcome = await finished(recorder)
    assert outcome.discarded and outcome.path is None
    assert recording_files(tmp_path / "studio") == []


async def test_two_sessions_in_the_same_second_get_distinct_files(tmp_path: Path) -> None:
    paths = []
    for _ in range(2):
        hub = Hub("studio")
        recorder = Recorder("studio", config(tmp_path), 1 << 20, clock=lambda: 1795976213.0)
        recorder.start(hub)
        for tag in show(frames=3):
            hub.publish(tag)
        recorder.stop()
        outcome = await finished(recorder)
        paths.append(os.path.basename(outcome.path or ""))
    assert paths == ["20261129T181653Z.flv", "20261129T181653Z-1.flv"]
