"""Recording end to end: ffmpeg publishes the test clip through the relay daemon, which records it.

Checked with real tools: the recording's tags against the published clip (payload for
payload), ffprobe for durations and playability, a real tmpfs that fills up, a daemon
killed with SIGKILL mid-show and started again. Waits are on the daemon's log events and
on files growing, each with a timeout.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from relay.flv import VIDEO, Tag, read_tags
from relay.recording import names
from testbed.ffmpeg import FfmpegListener, publish_with_ffmpeg, start_publish
from testbed.ports import free_port, wait_until
from testbed.relay_proc import RelayProcess, write_config
from tests.support.flvcheck import assert_same_media
from tests.support.recording import assert_tracks_monotonic, media, metadata_of, recording_files

pytestmark = pytest.mark.e2e

INGEST_KEY = "e2e-recording-ingest-KEY-71c3e9"
TARGET_KEY = "e2e-recording-target-KEY-0d5a"
ALL_KEYS = (INGEST_KEY, TARGET_KEY)
GROWN = 150_000  # bytes of a .part that say "the show is well under way"


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    """The shared daemon factory with this module's keys (checked for leaks at teardown)."""
    return functools.partial(relay_daemon, ingest_key=INGEST_KEY, secrets=ALL_KEYS)


def recording(folder: Path, **fields: Any) -> dict[str, Any]:
    return {"recording": {"enabled": True, "dir": str(folder), **fields}}


def ingest_url(daemon: RelayProcess) -> str:
    return f"rtmp://127.0.0.1:{daemon.port}/live/{INGEST_KEY}"


def probe(path: Path | str) -> dict[str, Any]:
    """ffprobe's format and streams; fails if ffprobe cannot read the file."""
    done = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"ffprobe cannot read {path}: {done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def packets(path: Path | str) -> int:
    """How many packets ffprobe reads from the file, to its end."""
    done = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_entries", "stream=nb_read_packets",
                           "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"ffprobe cannot read {path}: {done.stderr}"
    return sum(int(s["nb_read_packets"]) for s in json.loads(done.stdout)["streams"])


def duration(path: Path | str) -> float:
    return float(probe(path)["format"]["duration"])


def pictures_and_sounds(tags: list[Tag]) -> int:
    """Frames ffprobe counts as packets: not the AVC end-of-sequence marker (AVCPacketType 2) ffmpeg ends with."""
    return sum(not (t.kind == VIDEO and t.payload[1:2] == b"\x02") for t in media(tags))


def wait_part_grown(folder: Path, size: int = GROWN, timeout: float = 30.0) -> Path:
    """Wait until the recording being written holds `size` bytes; its path."""
    def grown() -> bool:
        return any(name.endswith(".flv.part") and (folder / name).stat().st_size >= size
                   for name in recording_files(folder))
    wait_until(grown, timeout, f"a .part of {size} bytes in {folder}")
    return next(folder / name for name in recording_files(folder) if name.endswith(".flv.part"))


def test_a_recording_is_the_published_clip_byte_for_byte_with_its_duration(
    source_flv: Path, relay: Callable[..., RelayProcess], tmp_path: Path,
) -> None:
    daemon = relay([], live_stream=recording(tmp_path / "recordings"))
    publish_with_ffmpeg(ingest_url(daemon), source_flv, realtime=False, timeout=60)
    finished = daemon.wait_for("recording_finished", timeout=20)

    folder = tmp_path / "recordings" / "studio"
    path = Path(finished["path"])
    assert recording_files(folder) == [path.name] and path.suffix == ".flv" and path.parent == folder
    assert names.parse(path.name) is not None
    assert_same_media(path, source_flv, allow_late_start=False)
    assert abs(duration(path) - duration(source_flv)) <= 0.5
    values = metadata_of(path)
    assert values["filesize"] == path.stat().st_size == finished["size"]
    assert values["duration"] == finished["duration"] and abs(values["duration"] - duration(source_flv)) <= 0.5
    started = daemon.wait_for("recording_started")
    assert started["path"] == str(path) + ".part"
    assert daemon.terminate(timeout=15) == 0


def test_a_publisher_that_rejoins_inside_the_window_leaves_one_file_with_monotonic_timestamps(
    source_flv: Path, relay: Callable[..., RelayProcess], tmp_path: Path,
) -> None:
    daemon = relay([], reconnect_window=30, live_stream=recording(tmp_path))
    first = start_publish(ingest_url(daemon), source_flv, realtime=True)
    try:
        wait_part_grown(tmp_path / "studio")
        first.proc.kill()  # SIGKILL: the connection drops without FCUnpublish
        first.proc.wait(5)
    finally:
        first.stop()
    daemon.wait_for("publisher_lost")
    publish_with_ffmpeg(ingest_url(daemon), source_flv, realtime=False, timeout=60)
    daemon.wait_for("publisher_resumed")
    finished = daemon.wait_for("recording_finished", timeout=20)

    path = Path(finished["path"])
    assert recording_files(tmp_path / "studio") == [path.name]
    tags = read_tags(path.read_bytes())
    assert_tracks_monotonic(tags)
    got, source = media(tags), media(read_tags(source_flv.read_bytes()))
    split = len(got) - len(source)
    assert split > 0, "the first session is missing"
    assert [t.payload for t in got[:split]] == [t.payload for t in source[:split]], "first session altered"
    assert [t.payload for t in got[split:]] == [t.payload for t in source], "second session altered"
    assert got[split].timestamp > got[split - 1].timestamp
    assert abs(duration(path) - finished["duration"]) <= 0.5
    assert packets(path) == pictures_and_sounds(tags)
    assert daemon.terminate(timeout=15) == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (needs root and a mount namespace that allows it; skipped otherwise)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mount)],
                              capture_output=True, text=True, timeout=10, check=False)
    except FileNotFoundError:
        pytest.skip("no mount command")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=10, check=False)


def test_a_full_disk_errors_the_recording_while_the_target_gets_every_byte(
    small_disk: Path, source_flv: Path, ffmpeg_listener: Callable[..., FfmpegListener],
    relay: Callable[..., RelayProcess],
) -> None:
    listener = ffmpeg_listener(app="live", stream_key=TARGET_KEY)
    target = {"url": f"rtmp://127.0.0.1:{listener.port}/live", "stream_key": TARGET_KEY, "passthrough": "ffmpeg"}
    daemon = relay([target], live_stream=recording(small_disk))
    publish_with_ffmpeg(ingest_url(daemon), source_flv, realtime=True, timeout=60)
    errored = daemon.wait_for("recording_errored", timeout=20)
    daemon.wait_for("target_status", target="ffmpeg", to="idle", timeout=20)
    listener.check(timeout=20)

    assert errored["error"] == "write failed: No space left on device"
    assert len([e for e in daemon.events if e.get("event") == "recording_errored"]) == 1
    assert_same_media(listener.output, source_flv, allow_late_start=False)  # the show went on, byte for byte
    # What fitted is kept as a finished, playable file.
    finished = daemon.wait_for("recording_finished", timeout=20)
    assert finished["complete"] is False
    path = Path(finished["path"])
    assert recording_files(small_disk / "studio") == [path.name]
    kept = media(read_tags(path.read_bytes()))
    source = media(read_tags(source_flv.read_bytes()))
    assert 0 < len(kept) < len(source)
    assert [t.payload for t in kept] == [t.payload for t in source[: len(kept)]]
    assert packets(path) == pictures_and_sounds(read_tags(path.read_bytes()))
    assert daemon.terminate(timeout=15) == 0


def test_a_daemon_killed_mid_recording_leaves_a_playable_part_that_the_next_start_finalises(
    source_flv: Path, relay: Callable[..., RelayProcess], tmp_path: Path,
) -> None:
    folder = tmp_path / "studio"
    daemon = relay([], live_stream=recording(tmp_path))
    publisher = start_publish(ingest_url(daemon), source_flv, realtime=True)
    try:
        part = wait_part_grown(folder)
        daemon.proc.kill()  # SIGKILL
        daemon.proc.wait(10)
    finally:
        publisher.stop()

    assert packets(part) > 0, "ffprobe reads nothing from the .part"
    whole = part.stat().st_size
    # A power cut can also leave half a tag: the start of one more video tag, cut short.
    with part.open("ab") as f:
        f.write(bytes((VIDEO, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0)) + b"\x17\x01" + b"\x00" * 30)

    second = relay([], live_stream=recording(tmp_path))
    recovered = second.wait_for("recording_recovered", timeout=20)
    assert recovered["action"] == "finalised" and recovered["part"] == str(part)
    assert recovered["torn_bytes"] >= 43 and recovered["size"] <= whole
    path = Path(recovered["path"])
    assert path == part.with_suffix("") and recording_files(folder) == [path.name]
    kept = media(read_tags(path.read_bytes()))
    source = media(read_tags(source_flv.read_bytes()))
    assert 0 < len(kept) < len(source)
    assert [t.payload for t in kept] == [t.payload for t in source[: len(kept)]]
    values = metadata_of(path)
    assert values["filesize"] == path.stat().st_size
    assert abs(duration(path) - values["duration"]) <= 0.5 and values["duration"] > 0
    assert packets(path) == pictures_and_sounds(read_tags(path.read_bytes()))
    assert second.terminate(timeout=15) == 0


def test_sigterm_mid_recording_finalises_the_file_and_exits_in_time(
    source_flv: Path, relay: Callable[..., RelayProcess], tmp_path: Path,
) -> None:
    daemon = relay([], live_stream=recording(tmp_path))
    publisher = start_publish(ingest_url(daemon), source_flv, realtime=True)
    try:
        wait_part_grown(tmp_path / "studio")
        # The relay bounds its own shutdown (4 s) and says when the disk did not finish in time
        # (recording_not_finalised); 15 s is the test's deadline, not a measurement.
        assert daemon.terminate(timeout=15) == 0
    finally:
        publisher.stop()
    assert "recording_not_finalised" not in daemon.output
    finished = daemon.wait_for("recording_finished", timeout=1)
    path = Path(finished["path"])
    assert recording_files(tmp_path / "studio") == [path.name]
    assert packets(path) == pictures_and_sounds(read_tags(path.read_bytes()))
    assert metadata_of(path)["filesize"] == path.stat().st_size


def test_recordings_default_to_the_state_directory_and_work_on_a_read_only_system(
    source_flv: Path, tmp_path: Path,
) -> None:
    """systemd's ProtectSystem=strict with StateDirectory=: everything read-only but $STATE_DIRECTORY."""
    state = tmp_path / "state"
    state.mkdir()
    # A mount namespace in which / is read-only and only the state directory is writable.
    read_only = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount --bind "$0" "$0" && mount -o remount,bind,ro / && exec "$@"', str(state))
    probe_run = subprocess.run([*read_only, "sh", "-c", f"! touch {tmp_path}/x && touch {state}/y"],
                               capture_output=True, text=True, timeout=10, check=False)
    if probe_run.returncode != 0:
        pytest.skip(f"cannot make a read-only mount namespace here: {probe_run.stderr.strip()}")
    (state / "y").unlink()
    config = write_config(tmp_path / "relay.yaml", {
        "server": {"listen": f"127.0.0.1:{free_port()}", "app": "live"},
        "http": {"listen": f"127.0.0.1:{free_port()}"},  # not the default port, which another daemon may hold
        "live_streams": [{"name": "studio", "stream_key": INGEST_KEY, "reconnect_window": 0,
                          "simulcast_targets": [], "recording": {"enabled": True}}],  # no dir: the default
    })
    daemon = RelayProcess(config, env={"STATE_DIRECTORY": str(state)}, wrapper=read_only)
    try:
        publish_with_ffmpeg(ingest_url(daemon), source_flv, realtime=False, timeout=60)
        finished = daemon.wait_for("recording_finished", timeout=20)
        assert daemon.terminate(timeout=15) == 0
    finally:
        daemon.kill()
    path = Path(finished["path"])
    assert path.parent == state / "recordings" / "studio"
    assert_same_media(path, source_flv, allow_late_start=False)
    assert INGEST_KEY not in daemon.output
    assert not [e for e in daemon.events if e.get("event") == "<unparsed>"]


def test_mp4_recordings_are_remuxed_and_checked_before_the_flv_goes(
    source_flv: Path, relay: Callable[..., RelayProcess], tmp_path: Path,
) -> None:
    daemon = relay([], live_stream=recording(tmp_path, format="mp4"))
    publish_with_ffmpeg(ingest_url(daemon), source_flv, realtime=False, timeout=60)
    remuxed = daemon.wait_for("recording_remuxed", timeout=60)

    path = Path(remuxed["path"])
    assert path.suffix == ".mp4" and recording_files(tmp_path / "studio") == [path.name]
    info = probe(path)
    assert info["format"]["format_name"].startswith("mov,mp4")
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    assert abs(float(info["format"]["duration"]) - duration(source_flv)) <= 0.5
    assert remuxed["size"] == path.stat().st_size
    assert daemon.terminate(timeout=15) == 0


def test_retention_removes_the_oldest_recordings_and_never_the_active_one(
    source_flv: Path, relay: Callable[..., RelayProcess], tmp_path: Path,
) -> None:
    import fcntl

    folder = tmp_path / "studio"
    folder.mkdir()
    now = time.time()
    old = []
    for days in (3, 2, 1):
        path = folder / (names.stem_for(now - days * 86400) + ".flv")
        path.write_bytes(b"an older show" * 100)
        old.append(path)
    # The oldest file of all is a recording in progress (another writer holds its lock).
    active = folder / (names.stem_for(now - 10 * 86400) + ".flv.part")
    active.write_bytes(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")
    notes = folder / "notes.txt"
    notes.write_text("an operator's own file")
    holder = os.open(active, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        daemon = relay([], live_stream=recording(tmp_path, keep_last=2))
        daemon.wait_for("recording_recovery_skipped", path=str(active))
        publish_with_ffmpeg(ingest_url(daemon), source_flv, realtime=False, timeout=60)
        finished = daemon.wait_for("recording_finished", timeout=20)
        retention = daemon.wait_for("recording_retention", timeout=20)
    finally:
        os.close(holder)

    new = Path(finished["path"])
    assert retention["deleted"] == [old[0].name, old[1].name]
    assert recording_files(folder) == sorted([old[2].name, new.name, active.name, notes.name])
    assert daemon.terminate(timeout=15) == 0


async def test_a_remux_interrupted_by_the_last_run_is_done_at_the_next_start(
    source_flv: Path, tmp_path: Path,
) -> None:
    import asyncio
    import shutil

    from relay.config import parse_config
    from relay.recording.sessions import Recordings
    from relay.status import RecordingReady

    folder = tmp_path / "studio"
    folder.mkdir()
    flv = folder / "20261129T181653Z.flv"
    shutil.copyfile(source_flv, flv)
    (folder / "20261129T181653Z.mp4.part").write_bytes(b"half an mp4 from a killed ffmpeg")
    config = parse_config(json.dumps({"live_streams": [{
        "name": "studio", "stream_key": INGEST_KEY, "simulcast_targets": [],
        "recording": {"enabled": True, "dir": str(tmp_path), "format": "mp4"}}]}), "relay.yaml",
        environ={"PATH": os.environ.get("PATH", "")})
    recordings = Recordings(lambda: config)
    ready: list[RecordingReady] = []
    recordings.on_ready.append(ready.append)
    recordings.recover()
    await asyncio.wait_for(recordings.drain(), 60)

    assert recording_files(folder) == ["20261129T181653Z.mp4"]
    [news] = ready
    assert news.path == str(folder / "20261129T181653Z.mp4") and news.format == "mp4"
    assert abs(news.duration - duration(source_flv)) <= 0.5


async def test_an_mp4_that_does_not_check_out_is_removed_and_the_flv_kept(source_flv: Path, tmp_path: Path) -> None:
    import shutil

    from relay.recording.remux import RemuxError, remux

    flv = tmp_path / "20261129T181653Z.flv"
    shutil.copyfile(source_flv, flv)
    (tmp_path / "20261129T181653Z.mp4.part").write_bytes(b"")
    with pytest.raises(RemuxError, match="the MP4 lasts"):
        await remux(str(flv), expected_duration=60.0)  # not the FLV's duration: the check must fail
    assert recording_files(tmp_path) == [flv.name]
    assert flv.read_bytes() == source_flv.read_bytes()
