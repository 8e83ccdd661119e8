"""Targets that survive the real world: servers that are down, die, crawl, refuse, or ask to move.

Real peers on 127.0.0.1: ffmpeg publishes a ~18 s clip (the 6 s test clip looped, with its
timestamps carried on), nginx-rtmp records what each target received, a throttling proxy
(testbed/throttle.py) plays a slow uplink and a fake platform
(tests/support/fakeplatform.py, the relay's own sans-I/O ServerConnection) refuses stream
keys or sends Enhanced RTMP reconnect requests. What arrives is compared with the source
tag payload for tag payload. Nothing here measures time or sleeps: waits are on the relay's
log and on what the peers saw. (The memory a slow target costs is a figure of
`bench/fanout.py --scenario slow-target`, not an assertion here.)
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from relay.flv import AUDIO, SCRIPT, VIDEO, Tag, encode_tag, file_header, read_tags
from testbed.ffmpeg import FfmpegProcess, publish_with_ffmpeg
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import free_port, is_listening, wait_until
from testbed.relay_proc import RelayProcess
from testbed.throttle import ThrottleProxy
from tests.support.fakeplatform import FakePlatform
from tests.support.flvcheck import assert_same_media, assert_starts_decodable, describe
from tests.support.probe import ffprobe_decode
from tests.support.recording import media

pytestmark = pytest.mark.e2e

INGEST_KEY = "faults-ingest-KEY-2b7e91c4"
KEYS = {
    "late": "faults-late-KEY-a1f3",
    "late_raw": "faults-late-raw-KEY-d26b",
    "steady": "faults-steady-KEY-5c0d",
    "flaky": "faults-flaky-KEY-77e2",
    "fast1": "faults-fast1-KEY-0b9a",
    "fast2": "faults-fast2-KEY-c4d8",
    "slow": "faults-slow-KEY-e615",
    "picky": "faults-picky-KEY-93aa",
    "one": "faults-one-KEY-4f1b",
    "two": "faults-two-KEY-8d2c",
    "enhanced": "faults-enhanced-KEY-6a07",
}
FAST_RETRY = {"initial_delay": 0.2, "max_delay": 1.0}
LOOPS = 3  # 3 x 6.08 s: long enough to be down, die, come back or fall behind mid-show


# --- the source ------------------------------------------------------------------------------

def _is_end_of_sequence(tag: Tag) -> bool:
    """ffmpeg's AVC end-of-sequence marker (AVCPacketType 2), the clip's last video tag."""
    return tag.kind == VIDEO and len(tag.payload) > 1 and tag.payload[0] & 0x0F == 7 and tag.payload[1] == 2


def loop_clip(clip: bytes, loops: int) -> bytes:
    """`clip` played `loops` times as one FLV: headers once, every loop's timestamps after the last's.

    The end-of-sequence marker is kept only at the very end: a decoder would flush at one.
    """
    tags = read_tags(clip)
    first = next(i for i, t in enumerate(tags) if t.kind != SCRIPT and not t.is_header)
    head, body = tags[:first], tags[first:]
    frames = [t for t in body if not _is_end_of_sequence(t)]
    assert not [t for t in frames if t.is_header or t.kind == SCRIPT], "headers or script data mid-clip"
    period = 0
    for kind in (AUDIO, VIDEO):
        stamps = [t.timestamp for t in frames if t.kind == kind]
        period = max(period, stamps[-1] + (stamps[-1] - stamps[-2]))  # one frame after the last one
    out = [file_header()]
    out += [encode_tag(t.kind, t.timestamp, t.payload) for t in head]
    for n in range(loops):
        out += [encode_tag(t.kind, t.timestamp + n * period, t.payload) for t in frames]
    out += [encode_tag(t.kind, t.timestamp + (loops - 1) * period, t.payload)
            for t in body if _is_end_of_sequence(t)]
    return b"".join(out)


@pytest.fixture(scope="session")
def long_source(source_flv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 6 s test clip looped LOOPS times (~18 s), built once per session."""
    path = tmp_path_factory.mktemp("long-source") / f"source-x{LOOPS}.flv"
    path.write_bytes(loop_clip(source_flv.read_bytes(), LOOPS))
    return path


# --- peers and the daemon ----------------------------------------------------------------------

@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    """The shared daemon factory with this module's keys (checked for leaks at teardown)."""
    return functools.partial(relay_daemon, ingest_key=INGEST_KEY, secrets=KEYS.values())


@pytest.fixture
def nginx_at(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., NginxRtmp]]:
    """Factory: `nginx_at(port, *apps)` starts nginx-rtmp on a port chosen earlier (a server coming up)."""
    started: list[NginxRtmp] = []

    def start(port: int, *apps: RtmpApp) -> NginxRtmp:
        nginx = NginxRtmp(tmp_path_factory.mktemp("nginx"), apps, port=port)
        started.append(nginx)
        nginx.start()
        return nginx

    yield start
    for nginx in started:
        nginx.stop()


def ingest_url(daemon: RelayProcess) -> str:
    return f"rtmp://127.0.0.1:{daemon.port}/live/{INGEST_KEY}"


def target(name: str, url: str, **policies: Any) -> dict[str, Any]:
    return {"url": url, "stream_key": KEYS[name], "passthrough": name, **policies}


def statuses(daemon: RelayProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in daemon.events if e.get("event") == "target_status" and e.get("target") == name]


def status_path(daemon: RelayProcess, name: str) -> list[str]:
    """The statuses a target went through, in order."""
    return [str(e["to"]) for e in statuses(daemon, name)]


def relay_status(daemon: RelayProcess) -> dict[str, dict[str, Any]]:
    """SIGUSR1, then the snapshot it logs: passthrough -> target status."""
    count = sum(e.get("event") == "relay_status" for e in daemon.events)
    daemon.proc.send_signal(signal.SIGUSR1)
    event = daemon.wait_for("relay_status", count=count + 1)
    (stream,) = event["live_streams"]
    return {t["passthrough"]: t for t in stream["simulcast_targets"]}


def kill_nginx(nginx: NginxRtmp) -> None:
    """SIGKILL nginx's master and workers (a crashed server: no goodbye, sockets reset)."""
    proc = nginx.proc
    assert proc is not None
    pids = [proc.pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == proc.pid:  # the parent pid: a worker
            pids.append(int(stat.parent.name))
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    proc.wait(5)
    wait_until(lambda: not is_listening(nginx.port), 5, f"nginx's port {nginx.port} to close")


def wait_recorded(path: Path, size: int, timeout: float = 20) -> None:
    """Wait until a recording holds at least `size` bytes (that much of the show went through)."""
    wait_until(lambda: path.exists() and path.stat().st_size >= size, timeout, f"{size} bytes in {path.name}")


def assert_tracks_monotonic(tags: list[Tag], what: str) -> None:
    """Per track, every timestamp is at or after the previous one."""
    for kind in (AUDIO, VIDEO):
        stamps = [t.timestamp for t in tags if t.kind == kind and not t.is_header]
        back = [(i, a, b) for i, (a, b) in enumerate(itertools.pairwise(stamps)) if b < a]
        assert not back, f"{what}: {'audio' if kind == AUDIO else 'video'} timestamp goes back {back[:3]}"


def source_positions(received: list[Tag], source: list[Tag]) -> list[int]:
    """For each received frame, its index in the source frames; fail on a frame the source lacks.

    A target connected from the start keeps one timestamp offset to the source for its
    whole connection (drops remove frames, they do not move timestamps), so a frame is
    found by kind and timestamp, then its payload is compared byte for byte.
    """
    assert received, "no frames received"
    start = next((i for i, s in enumerate(source) if s.payload == received[0].payload), None)
    assert start is not None, f"first received frame {describe(received[0])} is not in the source"
    offset = received[0].timestamp - source[start].timestamp
    where: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(source):
        where.setdefault((s.kind, s.timestamp), []).append(i)  # a clip's end-of-sequence shares its time
    positions: list[int] = []
    for k, tag in enumerate(received):
        candidates = where.get((tag.kind, tag.timestamp - offset), [])
        same = [i for i in candidates if source[i].payload == tag.payload]
        assert same, (f"received frame {k} ({describe(tag)}) is not the source's frame at that time: "
                      f"{[describe(source[i]) for i in candidates]}")
        assert not positions or same[-1] > positions[-1], f"received frame {k} ({describe(tag)}) repeats or goes back"
        positions.append(next(i for i in same if not positions or i > positions[-1]))
    return positions


# --- the tests ---------------------------------------------------------------------------------

@pytest.mark.long
def test_target_down_at_publish_start_joins_when_it_comes_up(
    long_source: Path, nginx_at: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess],
    publishers: Callable[[Path, str], FfmpegProcess],
) -> None:
    # Nothing listens on these ports yet. nginx's recorder rebases timestamps to its first
    # frame, so a fake platform beside it shows the timestamps the relay actually sends.
    port, raw_port = free_port(), free_port()
    daemon = relay([
        target("late", f"rtmp://127.0.0.1:{port}/rec", reconnect=FAST_RETRY),
        target("late_raw", f"rtmp://127.0.0.1:{raw_port}/live", reconnect=FAST_RETRY),
    ])
    publisher = publishers(long_source, ingest_url(daemon))
    daemon.wait_for("publish_started")

    for name in ("late", "late_raw"):
        errored = daemon.wait_for("target_status", target=name, to="errored")
        assert "refused" in errored["reason"] and errored["severity"] == "normal" and errored["retry_in_s"] > 0
    # The scenario: the platforms come up a few seconds into the show, past its first GOP (2 s):
    # once each target was refused 8 times (FAST_RETRY's delays, jitter included, add up to 3.2 s at least).
    for name in ("late", "late_raw"):
        daemon.wait_for("target_status", target=name, to="errored", count=8, timeout=30)
    with FakePlatform(port=raw_port) as platform:
        nginx = nginx_at(port, RtmpApp("rec", record=True))
        for name in ("late", "late_raw"):
            daemon.wait_for("target_status", target=name, to="broadcasting", timeout=10)
        publisher.check(timeout=40)
        for name in ("late", "late_raw"):
            daemon.wait_for("target_status", target=name, to="idle", timeout=15)
        nginx.wait_unpublished(KEYS["late"])
        connections = platform.wait_until(lambda cs: bool(cs) and all(c.closed for c in cs))

    for name in ("late", "late_raw"):
        path = status_path(daemon, name)
        assert path[:2] == ["starting", "errored"] and path[-3:] == ["starting", "broadcasting", "idle"], path
        assert path.count("broadcasting") == 1, path
    recording = nginx.recorded_flv(KEYS["late"])
    tags = read_tags(recording.read_bytes())
    assert_starts_decodable(tags, "the late target's recording")
    match = assert_same_media(recording, long_source, allow_late_start=True, check_timestamps=True)
    assert match.start > 0, "the target was down for the first 5 s, yet got the start of the show"
    assert_tracks_monotonic(tags, "the late target's recording")

    # What the relay sent: from a keyframe to the end, byte for byte, one timestamp offset
    # to the source, the first frame at ~0 (a platform wants a session to start near 0).
    assert len(connections) == 1 and connections[0].unpublished, connections
    sent = connections[0].tags
    assert_starts_decodable(sent, "the late platform's connection")
    assert_tracks_monotonic(sent, "the late platform's connection")
    source = media(read_tags(long_source.read_bytes()))
    got = media(sent)
    positions = source_positions(got, source)
    assert positions == list(range(positions[0], len(source))), "the late platform missed frames"
    assert positions[0] > 0 and source[positions[0]].is_keyframe
    assert got[0].timestamp <= 50, (
        f"the relay's first frame to the late platform is at {got[0].timestamp} ms, not ~0 "
        f"(source media[{positions[0]}] is at {source[positions[0]].timestamp} ms)")
    assert daemon.terminate(timeout=15) == 0


@pytest.mark.long
def test_target_server_killed_mid_stream_is_rejoined_when_it_restarts(
    long_source: Path, nginx_rtmp: Callable[..., NginxRtmp], nginx_at: Callable[..., NginxRtmp],
    relay: Callable[..., RelayProcess], publishers: Callable[[Path, str], FfmpegProcess],
) -> None:
    steady = nginx_rtmp(RtmpApp("rec", record=True))
    flaky = nginx_at(free_port(), RtmpApp("rec", record=True))
    daemon = relay([
        target("steady", steady.url("rec"), reconnect=FAST_RETRY),
        target("flaky", flaky.url("rec"), reconnect=FAST_RETRY),
    ])
    publisher = publishers(long_source, ingest_url(daemon))
    daemon.wait_for("target_status", target="flaky", to="broadcasting")
    first_recording = flaky.recorded_flv(KEYS["flaky"])
    wait_recorded(first_recording, 300_000)  # ~3 s of the show

    kill_nginx(flaky)
    daemon.wait_for("target_status", target="flaky", to="errored")
    reborn = nginx_at(flaky.port, RtmpApp("rec", record=True))
    daemon.wait_for("target_status", target="flaky", to="broadcasting", count=2, timeout=10)
    publisher.check(timeout=40)
    for name in ("steady", "flaky"):
        daemon.wait_for("target_status", target=name, to="idle", timeout=15)
    steady.wait_unpublished(KEYS["steady"])
    reborn.wait_unpublished(KEYS["flaky"])

    assert status_path(daemon, "steady") == ["starting", "broadcasting", "idle"]
    flaky_path = status_path(daemon, "flaky")
    assert flaky_path[:3] == ["starting", "broadcasting", "errored"], flaky_path
    assert flaky_path[-3:] == ["starting", "broadcasting", "idle"], flaky_path
    match = assert_same_media(steady.recorded_flv(KEYS["steady"]), long_source)
    assert match.start == 0, f"the steady target lost the start: first tag is source media[{match.start}]"
    # Before the crash: the show from its start, as far as it got.
    before = media(read_tags(first_recording.read_bytes()))
    source = media(read_tags(long_source.read_bytes()))
    assert before and [t.payload for t in before] == [t.payload for t in source[: len(before)]]
    # After the restart: a fresh connection from a keyframe (the current GOP's, which may
    # repeat what the crashed server had) to the end of the show, its timeline from 0.
    after = reborn.recorded_flv(KEYS["flaky"])
    after_tags = read_tags(after.read_bytes())
    assert_starts_decodable(after_tags, "the restarted server's recording")
    resumed = assert_same_media(after, long_source, allow_late_start=True)
    assert resumed.start > 0 and media(after_tags)[0].timestamp <= 50
    assert daemon.terminate(timeout=15) == 0


@pytest.mark.long
def test_slow_target_drops_at_keyframes_while_the_others_get_everything(
    long_source: Path, nginx_rtmp: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess],
    publishers: Callable[[Path, str], FfmpegProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec1", record=True), RtmpApp("rec2", record=True), RtmpApp("slow", record=True))
    proxy = ThrottleProxy(nginx.port, rate=50_000).start()  # about half the clip's bitrate
    try:
        daemon = relay([
            target("fast1", nginx.url("rec1")),
            target("fast2", nginx.url("rec2")),
            target("slow", proxy.url("slow"), queue={"max_seconds": 1}),
        ])
        publisher = publishers(long_source, ingest_url(daemon))
        first = daemon.wait_for("target_dropping", target="slow", timeout=30)
        later = daemon.wait_for("target_dropping", target="slow", count=2, timeout=10)
        # The uplink recovers. What the relay holds for a 50 KB/s link (its 512 KiB write
        # buffer and the kernel's share) takes ~15 s to drain at that rate: without this,
        # the media after the first gap would still be in those buffers when the show ends.
        proxy.set_rate(None)
        publisher.check(timeout=40)
        for name in ("fast1", "fast2", "slow"):
            daemon.wait_for("target_status", target=name, to="idle", timeout=15)
        snapshot = relay_status(daemon)
        for key in ("fast1", "fast2", "slow"):
            nginx.wait_unpublished(KEYS[key])
    finally:
        proxy.stop()

    assert 0 < first["dropped_frames"] < later["dropped_frames"], (first, later)
    assert 0 < first["dropped_bytes"] < later["dropped_bytes"], (first, later)
    assert snapshot["slow"]["dropped_frames"] >= later["dropped_frames"], snapshot["slow"]
    for name, app in (("fast1", "rec1"), ("fast2", "rec2")):
        assert snapshot[name]["dropped_frames"] == 0 and snapshot[name]["dropped_bytes"] == 0, snapshot[name]
        assert not [e for e in daemon.events if e.get("event") == "target_dropping" and e.get("target") == name]
        match = assert_same_media(nginx.recorded_flv(KEYS[name], app), long_source)
        assert match.start == 0, f"{name} lost the start: first tag is source media[{match.start}]"
    assert status_path(daemon, "slow") == ["starting", "broadcasting", "idle"]
    assert "target_close_timeout" not in daemon.output

    slow_recording = nginx.recorded_flv(KEYS["slow"], "slow")
    slow_tags = read_tags(slow_recording.read_bytes())
    assert_starts_decodable(slow_tags, "the slow target's recording")
    assert_tracks_monotonic(slow_tags, "the slow target's recording")
    source = media(read_tags(long_source.read_bytes()))
    received = media(slow_tags)
    positions = source_positions(received, source)
    assert positions[0] == 0 and positions[-1] == len(source) - 1, (
        f"the slow target got source frames {positions[0]}..{positions[-1]} of 0..{len(source) - 1}")
    video = [(i, tag) for i, tag in zip(positions, received) if tag.kind == VIDEO]
    gaps = 0
    for (before, _), (after, tag) in itertools.pairwise(video):
        skipped = [s for s in source[before + 1 : after] if s.kind == VIDEO]
        if skipped:
            gaps += 1
            assert tag.is_keyframe, (
                f"after {len(skipped)} dropped video frames the slow target resumed on {describe(tag)}, "
                "not a keyframe")
    assert gaps > 0, "the slow target's recording has no gap, yet the relay counted drops"
    decoded = ffprobe_decode(slow_recording)
    assert decoded.get("video", 0) > 0 and decoded.get("audio", 0) > 0, decoded
    assert daemon.terminate(timeout=15) == 0


def test_platform_refusing_the_stream_key_is_fatal_after_three_refusals(
    long_source: Path, relay: Callable[..., RelayProcess], publishers: Callable[[Path, str], FfmpegProcess],
) -> None:
    with FakePlatform(refuse_publish=("NetStream.Publish.BadName", "No such stream: {stream_name}")) as platform:
        daemon = relay([target("picky", platform.url("app"), reconnect=FAST_RETRY)])
        publishers(long_source, ingest_url(daemon))
        fatal = daemon.wait_for("target_status", target="picky", to="errored", severity="fatal")
        # Given up: the relay's own status has no next attempt. Then the daemon runs through its
        # shutdown, and the platform still saw three connections only.
        snapshot = relay_status(daemon)["picky"]
        assert daemon.terminate(timeout=15) == 0
        connections = platform.connections

    assert snapshot["status"] == "errored" and snapshot["error_severity"] == "fatal", snapshot
    assert snapshot["next_attempt_at"] is None, snapshot
    assert len(connections) == 3, f"the platform saw {len(connections)} connections"
    assert all(c.refused and c.stream_name == KEYS["picky"] for c in connections)
    errored = [e for e in statuses(daemon, "picky") if e["to"] == "errored"]
    assert [e["severity"] for e in errored] == ["normal", "normal", "fatal"]
    assert "retry_in_s" not in fatal
    delays = [e["retry_in_s"] for e in errored[:2]]
    assert 0 < delays[0] < delays[1] <= 1.0, f"retry delays {delays} do not grow"
    for event in errored:
        assert "refused the stream key" in event["reason"], event["reason"]
        assert "NetStream.Publish.BadName" in event["reason"], event["reason"]
        assert KEYS["picky"] not in event["reason"]  # the platform echoed it; the relay must not
    assert status_path(daemon, "picky").count("starting") == 3


@pytest.mark.long
def test_publisher_coming_back_within_the_reconnect_window_keeps_targets_connected(
    long_source: Path, nginx_rtmp: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess],
    publishers: Callable[[Path, str], FfmpegProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec1", record=True), RtmpApp("rec2", record=True))
    apps = {"one": "rec1", "two": "rec2"}
    # A window with margin for a busy machine: the second ffmpeg starts as soon as the first is lost.
    daemon = relay([target(name, nginx.url(app)) for name, app in apps.items()], reconnect_window=10)
    recordings = {name: nginx.recorded_flv(KEYS[name], app) for name, app in apps.items()}
    first = publishers(long_source, ingest_url(daemon))
    for name in apps:
        daemon.wait_for("target_status", target=name, to="broadcasting")
        wait_recorded(recordings[name], 150_000)

    first.proc.kill()  # SIGKILL: the connection drops without FCUnpublish
    first.proc.wait(5)
    lost = daemon.wait_for("publisher_lost")
    assert lost["reconnect_window_s"] == 10
    # The scenario: the encoder comes back inside the window (here as soon as the relay saw it go).
    second = publishers(long_source, ingest_url(daemon))
    resumed = daemon.wait_for("publisher_resumed")
    sizes = {name: path.stat().st_size for name, path in recordings.items()}
    for name, path in recordings.items():
        wait_recorded(path, sizes[name] + 150_000)
    second.proc.kill()
    second.proc.wait(5)
    daemon.wait_for("publisher_lost", count=2)
    daemon.wait_for("live_stream_status", to="idle", timeout=30)  # the 10 s window, with margin
    for name in apps:
        daemon.wait_for("target_status", target=name, to="idle", timeout=10)
        nginx.wait_unpublished(KEYS[name])

    away = resumed["away_ms"]
    assert [(e["from"], e["to"]) for e in daemon.events if e.get("event") == "live_stream_status"] == [
        ("idle", "active"), ("active", "idle")]
    source = media(read_tags(long_source.read_bytes()))
    for name, path in recordings.items():
        assert status_path(daemon, name) == ["starting", "broadcasting", "idle"], name
        assert list(nginx.publishers(KEYS[name]).values()) == [True], f"{name}: not one publish on nginx"
        tags = read_tags(path.read_bytes())
        assert_tracks_monotonic(tags, f"{name}'s recording")
        got = media(tags)
        # The first session from the start of the show, then the second one from its start.
        split = next((i for i, (g, s) in enumerate(zip(got, source)) if g.payload != s.payload), len(got))
        assert 0 < split < len(got), f"{name}: no second session in the recording"
        rest = got[split:]
        assert [t.payload for t in rest] == [t.payload for t in source[: len(rest)]], (
            f"{name}: after the join, the recording is not the second session from its first keyframe")
        assert rest[0].kind == VIDEO and rest[0].is_keyframe
        # The join moves forward by the time the publisher was away: no jump back to 0.
        last_before = max(t.timestamp for t in got[:split])
        assert rest[0].timestamp >= last_before + away, (
            f"{name}: second session starts at {rest[0].timestamp} ms, last frame before was {last_before} ms, "
            f"publisher away {away} ms")
        decoded = ffprobe_decode(path)
        assert decoded.get("video", 0) > 0 and decoded.get("audio", 0) > 0, decoded
    assert daemon.terminate(timeout=15) == 0


def test_enhanced_rtmp_reconnect_request_switches_connections_without_a_gap(
    source_flv: Path, relay: Callable[..., RelayProcess],
) -> None:
    with FakePlatform(reconnect_request_at_ms=2000) as platform:
        daemon = relay([target("enhanced", platform.url("live"))])
        publish_with_ffmpeg(ingest_url(daemon), source_flv, realtime=True, timeout=30)
        daemon.wait_for("target_status", target="enhanced", to="idle", timeout=15)
        connections = platform.wait_until(lambda cs: len(cs) >= 2 and all(c.closed for c in cs),
                                          what="both connections to close")

    assert len(connections) == 2, f"{len(connections)} connections"
    old, new = connections
    assert old.reconnect_requested_after is not None
    assert old.unpublished and new.unpublished, "a connection was not unpublished before closing"
    assert new.stream_name == KEYS["enhanced"] and new.app == "live"
    daemon.wait_for("target_reconnect_requested", target="enhanced")
    daemon.wait_for("target_switched", target="enhanced")
    assert status_path(daemon, "enhanced") == ["starting", "broadcasting", "idle"]

    assert_starts_decodable(new.tags, "the second connection")
    source = media(read_tags(source_flv.read_bytes()))
    first, second = media(old.tags), media(new.tags)
    assert len(old.tags) > old.reconnect_requested_after, "the first connection stopped at the request"
    k = len(first)
    assert [t.payload for t in first] == [t.payload for t in source[:k]], (
        "the first connection is not the show from its start")
    assert k < len(source) and source[k].kind == VIDEO and source[k].is_keyframe, (
        f"the first connection stopped before source frame {k} ({describe(source[k])}), not before a keyframe")
    missing = len(source) - k - len(second)
    assert [t.payload for t in second] == [t.payload for t in source[k:]], (
        f"the second connection is not the rest of the show from frame {k}: {len(second)} frames, "
        f"{missing} short of the source's rest" + (
            f"; its first is {describe(second[0])}, the source's next is {describe(source[k])}" if second else ""))
    assert daemon.terminate(timeout=15) == 0
