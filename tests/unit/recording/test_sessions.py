"""The relay's recordings: what follows a session (ready, retention), leftovers at start, shutdown, wiring."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path
from typing import Any

import yaml
from structlog.testing import capture_logs

from relay.config import RelayConfig, parse_config
from relay.flv import read_tags
from relay.live.stream import LiveStream
from relay.recording.sessions import Recordings
from relay.recording import names
from relay.recording.flvfile import FlvFileWriter
from relay.status import RecordingReady
from tests.support.recording import assert_tracks_monotonic, media, metadata_of, recording_files, show

TIMEOUT = 10.0
KEY = "unit-recordings-KEY-5e1f0a"


def relay_config(root: Path, **recording: Any) -> RelayConfig:
    text = yaml.safe_dump({"live_streams": [{
        "name": "studio", "stream_key": KEY, "reconnect_window": 60, "simulcast_targets": [],
        "recording": {"enabled": True, "dir": str(root), **recording},
    }]})
    return parse_config(text, "relay.yaml", environ={"PATH": os.environ.get("PATH", "")}, base_dir=root)


def part_bytes(frames: int) -> bytes:
    writer = FlvFileWriter()
    return b"".join(p for tag in show(frames=frames) for p in writer.add(tag, tag.timestamp))


def finished_file(folder: Path, days_ago: float, size: int = 1000) -> Path:
    started = time.time() - days_ago * 86400
    path = folder / (names.stem_for(started) + ".flv")
    path.write_bytes(b"F" * size)
    os.utime(path, (started + 60, started + 60))
    return path


class Publisher:
    def close(self) -> None:
        pass


async def record_session(recordings: Recordings, config: RelayConfig) -> None:
    from relay.fanout.hub import Hub
    hub = Hub("studio")
    recorder = recordings.start("studio", config.live_streams[0].recording, hub)
    for tag in show(frames=10):
        hub.publish(tag)
    recorder.stop()
    await asyncio.wait_for(recordings.drain(), TIMEOUT)


async def test_a_finished_session_is_announced_then_retention_keeps_the_newest(tmp_path: Path) -> None:
    config = relay_config(tmp_path, keep_last=2)
    folder = tmp_path / "studio"
    folder.mkdir()
    oldest, older = finished_file(folder, 3), finished_file(folder, 2)
    (folder / "notes.txt").write_text("the operator's own file")
    recordings = Recordings(lambda: config)
    ready: list[RecordingReady] = []
    recordings.on_ready.append(ready.append)
    with capture_logs() as logs:
        await record_session(recordings, config)

    [news] = ready
    assert news.live_stream == "studio" and news.format == "flv" and news.complete
    assert os.path.dirname(news.path) == str(folder) and news.path.endswith(".flv")
    assert news.size == os.path.getsize(news.path) and news.duration == 0.4
    assert recording_files(folder) == sorted([older.name, os.path.basename(news.path), "notes.txt"])
    assert not oldest.exists()
    [finished] = [e for e in logs if e["event"] == "recording_finished"]
    assert (finished["path"], finished["duration"], finished["size"]) == (news.path, 0.4, news.size)
    [retention] = [e for e in logs if e["event"] == "recording_retention"]
    assert retention["deleted"] == [oldest.name]


async def test_a_recorder_tells_its_own_subscribers_about_its_session_only(tmp_path: Path) -> None:
    from relay.fanout.hub import Hub
    config = relay_config(tmp_path)
    recordings = Recordings(lambda: config)
    everything: list[RecordingReady] = []
    recordings.on_ready.append(everything.append)
    mine: list[RecordingReady] = []
    recorders = []
    for _ in range(2):
        hub = Hub("studio")
        recorder = recordings.start("studio", config.live_streams[0].recording, hub)
        recorders.append(recorder)
        for tag in show(frames=3):
            hub.publish(tag)
        recorder.stop()
    recorders[1].on_ready.append(mine.append)
    await asyncio.wait_for(recordings.drain(), TIMEOUT)
    assert len(everything) == 2
    assert [r.path for r in mine] == [recorders[1].path]
    assert {r.path for r in everything} == {recorders[0].path, recorders[1].path}


async def test_a_failing_ready_callback_does_not_stop_the_others(tmp_path: Path) -> None:
    config = relay_config(tmp_path)
    recordings = Recordings(lambda: config)
    ready: list[RecordingReady] = []

    def broken(_: RecordingReady) -> None:
        raise ValueError("subscriber bug")

    recordings.on_ready.extend([broken, ready.append])
    with capture_logs() as logs:
        await record_session(recordings, config)
    assert len(ready) == 1
    assert [e["event"] for e in logs if e["event"] == "recording_ready_callback_failed"] == [
        "recording_ready_callback_failed"]


async def test_leftovers_are_finalised_at_start_and_what_is_in_use_is_left_alone(tmp_path: Path) -> None:
    config = relay_config(tmp_path)
    folder = tmp_path / "studio"
    folder.mkdir()
    whole = part_bytes(frames=10)
    torn = folder / "20260101T100000Z.flv.part"
    torn.write_bytes(whole + whole[100:157])  # a crash mid-tag
    empty = folder / "20260101T110000Z.flv.part"
    empty.write_bytes(whole[:13])
    busy = folder / "20260101T120000Z.flv.part"
    busy.write_bytes(whole)
    stray_marker = folder / "20260101T090000Z.mp4.part"  # its FLV is gone
    stray_marker.write_bytes(b"")
    recordings = Recordings(lambda: config)
    ready: list[RecordingReady] = []
    recordings.on_ready.append(ready.append)
    holder = os.open(busy, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another relay writing it
        with capture_logs() as logs:
            recordings.recover()
            await asyncio.wait_for(recordings.drain(), TIMEOUT)
    finally:
        os.close(holder)

    assert recording_files(folder) == ["20260101T100000Z.flv", busy.name]
    final = folder / "20260101T100000Z.flv"
    assert final.read_bytes()[:-1] != whole and len(final.read_bytes()) == len(whole)
    assert [t.payload for t in read_tags(final.read_bytes())[1:]] == [t.payload for t in show(frames=10)[1:]]
    assert metadata_of(final)["filesize"] == len(whole)
    recovered = {e["part"]: e for e in logs if e["event"] == "recording_recovered"}
    assert recovered[str(torn)]["action"] == "finalised" and recovered[str(torn)]["torn_bytes"] == 57
    assert recovered[str(empty)]["action"] == "removed_empty"
    assert [e["path"] for e in logs if e["event"] == "recording_recovery_skipped"] == [str(busy)]
    assert [(r.path, r.complete) for r in ready] == [(str(final), False)]


async def test_shutdown_does_not_wait_past_its_deadline_for_a_stuck_disk(tmp_path: Path) -> None:
    import threading

    from relay.fanout.hub import Hub

    config = relay_config(tmp_path)
    recordings = Recordings(lambda: config)
    release = threading.Event()
    hub = Hub("studio")
    recorder = recordings.start("studio", config.live_streams[0].recording, hub)
    writer = recorder._writer
    assert writer is not None

    def stuck(fd: int, pieces: list[bytes]) -> None:
        release.wait(TIMEOUT)
        os.write(fd, b"".join(pieces))

    writer._write_pieces = stuck
    for tag in show(frames=3):
        hub.publish(tag)
    recorder.stop()
    with capture_logs() as logs:
        await recordings.wait_finalised(0.05)  # returns although the file is not final
        await recordings.close()
    assert [e["event"] for e in logs if e["event"].startswith("recording_") and e["event"] != "recording_started"] \
        == ["recording_not_finalised"]
    release.set()
    outcome = await asyncio.wait_for(asyncio.shield(recorder.done), TIMEOUT)  # the thread still finishes
    assert outcome.path is not None and outcome.path.endswith(".flv")


async def test_a_live_stream_records_a_rejoin_into_one_file(tmp_path: Path) -> None:
    config = relay_config(tmp_path)
    recordings = Recordings(lambda: config)
    live = LiveStream(config.live_streams[0], recordings)
    first, second = Publisher(), Publisher()
    assert live.claim(first)
    for tag in show(frames=20):
        live.publish(tag)
    live.release(first, "connection lost", clean=False)  # the reconnect window runs
    assert live.claim(second)
    for tag in show(frames=20):  # the encoder's clock starts again at 0
        live.publish(tag)
    live.release(second, "publisher sent FCUnpublish", clean=True)
    await asyncio.wait_for(recordings.drain(), TIMEOUT)

    [name] = recording_files(tmp_path / "studio")
    assert name.endswith(".flv")
    recorded = read_tags((tmp_path / "studio" / name).read_bytes())
    assert_tracks_monotonic(recorded)
    assert len(media(recorded)) == 2 * len(media(show(frames=20)))
    assert live.recorder is not None and live.recorder.snapshot().status == "idle"


async def test_a_live_stream_without_recording_records_nothing(tmp_path: Path) -> None:
    config = relay_config(tmp_path, enabled=False)
    recordings = Recordings(lambda: config)
    live = LiveStream(config.live_streams[0], recordings)
    publisher = Publisher()
    assert live.claim(publisher)
    for tag in show(frames=3):
        live.publish(tag)
    live.release(publisher, "done", clean=True)
    await asyncio.wait_for(recordings.drain(), TIMEOUT)
    assert live.recorder is None and not (tmp_path / "studio").exists()


async def test_remuxes_run_at_most_max_remux_jobs_at_once(tmp_path: Path, monkeypatch: Any) -> None:
    from relay.recording import sessions as recordings_module
    from relay.recording.remux import Remuxed

    config = relay_config(tmp_path, format="mp4")
    config = config.model_copy(update={"recording": config.recording.model_copy(update={"max_remux_jobs": 2})})
    running, most = 0, 0
    two_started, gate = asyncio.Event(), asyncio.Event()

    async def fake_remux(flv: str, expected: float | None = None) -> Remuxed:
        nonlocal running, most
        running += 1
        most = max(most, running)
        if running == 2:
            two_started.set()
        await gate.wait()
        running -= 1
        return Remuxed(flv[:-4] + ".mp4", 1.0, 10)

    class CountingSlot(asyncio.Condition):
        """The remux slot's condition, counting the remuxes that found no slot free and wait."""

        waiting = 0

        async def wait(self) -> bool:
            CountingSlot.waiting += 1
            if CountingSlot.waiting == 3:
                three_waiting.set()
            try:
                return await super().wait()
            finally:
                CountingSlot.waiting -= 1

    three_waiting = asyncio.Event()
    monkeypatch.setattr(recordings_module, "remux", fake_remux)
    recordings = Recordings(lambda: config)
    recordings._remux_slot = CountingSlot()  # before any remux: the same condition, observed
    ready: list[RecordingReady] = []
    recordings.on_ready.append(ready.append)
    for _ in range(5):
        await record_session_without_drain(recordings, config)
    # Every remux has asked for a slot: two got one and run, three wait for one.
    await asyncio.wait_for(two_started.wait(), TIMEOUT)
    await asyncio.wait_for(three_waiting.wait(), TIMEOUT)
    assert running == 2
    gate.set()
    await asyncio.wait_for(recordings.drain(), TIMEOUT)
    assert most == 2 and len(ready) == 5 and all(r.format == "mp4" for r in ready)


async def record_session_without_drain(recordings: Recordings, config: RelayConfig) -> None:
    from relay.fanout.hub import Hub
    hub = Hub("studio")
    recorder = recordings.start("studio", config.live_streams[0].recording, hub)
    for tag in show(frames=3):
        hub.publish(tag)
    recorder.stop()
    await asyncio.wait_for(asyncio.shield(recorder.done), TIMEOUT)
