"""The reconnect slate with real peers: the platforms see one continuous stream across a drop.

ffmpeg publishes, is SIGKILLed (a crashed encoder: no FCUnpublish), and a second ffmpeg
comes back 5 s later, inside the reconnect window. nginx-rtmp and ffmpeg's RTMP listener,
as targets, and the relay's own recording each keep one file, which must be: the first
publisher's frames byte for byte, the slate (a clip of the stream's size, its sequence
headers switched in) and the second publisher's frames byte for byte from its first
keyframe, each track's timestamps going forward with no gap over `after` + 0.1 s, and
ffprobe decoding it end to end. Timing is only checked in the files' timestamps.
"""

from __future__ import annotations

import functools
import itertools
import json
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from relay.flv import AUDIO, SCRIPT, VIDEO, Tag, encode_tag, file_header, read_tags
from testbed.ffmpeg import FfmpegListener, FfmpegProcess
from testbed.media import SOURCE_CLIP_ARGS, cached_clip
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import wait_until
from testbed.relay_proc import RelayProcess
from tests.support.probe import ffprobe_streams
from tests.support.recording import media
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.long]

INGEST_KEY = "slate-ingest-KEY-5e0a7d31"
KEYS = {"nginx": "slate-nginx-KEY-c81f", "listener": "slate-listener-KEY-27b9"}
WEBHOOK_SECRET = "slate-webhook-secret-KEY-9f04"  # noqa: S105
AFTER = 1.0
FRAME_SLACK_MS = 100  # a step between two frames of one track, beyond the gap itself


@pytest.fixture(scope="session")
def other_clip() -> Path:
    """The test clip's recipe with other encoder settings: 426x240 at 25 fps, 44.1 kHz mono, 6 s."""
    args = list(SOURCE_CLIP_ARGS)
    args[args.index("testsrc2=size=640x360:rate=30")] = "testsrc2=size=426x240:rate=25"
    args[args.index("-g") + 1] = args[args.index("-keyint_min") + 1] = "50"
    args[args.index("-ar") + 1], args[args.index("-ac") + 1] = "44100", "1"
    args[args.index("-t") + 1] = "6"
    return cached_clip(tuple(args), "other-h264-240p25")


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    return functools.partial(relay_daemon, ingest_key=INGEST_KEY, secrets=KEYS.values())


def slate_daemon(relay: Callable[..., RelayProcess], nginx: NginxRtmp, listener: FfmpegListener,
                 window: float, recordings: Path | None = None, webhook: str | None = None) -> RelayProcess:
    targets = [{"url": nginx.url("rec"), "stream_key": KEYS["nginx"], "passthrough": "nginx"},
               {"url": listener.url.rsplit("/", 1)[0], "stream_key": KEYS["listener"], "passthrough": "listener"}]
    live_stream: dict[str, Any] = {"reconnect_slate": {"enabled": True, "after": AFTER}}
    if recordings is not None:
        live_stream["recording"] = {"enabled": True, "dir": str(recordings)}
    extra = {} if webhook is None else {"webhooks": [{"url": webhook, "secret": WEBHOOK_SECRET}]}
    return relay(targets, reconnect_window=window, live_stream=live_stream, extra=extra)


def slate_status(daemon: RelayProcess) -> str:
    """The live stream's `slate` in the status API."""
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.http_port}/api/v1/live-streams/studio", timeout=10) as r:
        return str(json.load(r)["data"]["slate"])


def ingest_url(daemon: RelayProcess) -> str:
    return f"rtmp://127.0.0.1:{daemon.port}/live/{INGEST_KEY}"


# --- what a file must show -------------------------------------------------------------------

def segments(tags: list[Tag]) -> list[tuple[Tag, list[Tag]]]:
    """The file cut at each video sequence header: (that header, the audio header and frames after it)."""
    out: list[tuple[Tag, list[Tag]]] = []
    for tag in tags:
        if tag.kind == VIDEO and tag.is_header:
            if out and not [t for t in out[-1][1] if not t.is_header]:
                out[-1] = (tag, out[-1][1])  # a header repeated before any frame: the newer counts
            else:
                out.append((tag, []))
        elif out and tag.kind != SCRIPT:
            out[-1][1].append(tag)
    return out


def probe_segment(video_header: Tag, rest: list[Tag], path: Path) -> dict[str, Any]:
    """ffprobe's view of one segment on its own: the size its frames decode to."""
    parts = [file_header(), encode_tag(VIDEO, 0, video_header.payload)]
    parts += [encode_tag(t.kind, t.timestamp, t.payload) for t in rest]
    path.write_bytes(b"".join(parts))
    done = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                           "stream=width,height", "-of", "json", str(path)],
                          capture_output=True, text=True, check=True, timeout=60)
    stream: dict[str, Any] = json.loads(done.stdout)["streams"][0]
    return stream


def largest_gap_ms(daemon: RelayProcess) -> int:
    """The longest the timeline may step: the slate continues `after` s (and however late its timer
    fired on a busy machine) after the publisher's last frame, and the publisher back after the
    slate's (both logged as away_ms), each plus a frame's step."""
    away = [e["away_ms"] for e in daemon.events if e.get("event") in ("slate_started", "publisher_resumed")]
    assert away and min(away) >= 0
    return max([int(AFTER * 1000), *away]) + FRAME_SLACK_MS


def assert_no_gap(tags: list[Tag], what: str, max_gap_ms: int) -> None:
    """Per track: forward only, and no step over the gaps the relay chose (largest_gap_ms)."""
    for kind in (AUDIO, VIDEO):
        stamps = [t.timestamp for t in tags if t.kind == kind and not t.is_header]
        steps = [(i, b - a) for i, (a, b) in enumerate(itertools.pairwise(stamps))]
        back = [s for s in steps if s[1] < 0]
        assert not back, f"{what}: {'audio' if kind == AUDIO else 'video'} goes back {back[:3]}"
        gaps = [s for s in steps if s[1] > max_gap_ms]
        assert not gaps, f"{what}: {'audio' if kind == AUDIO else 'video'} gaps (index, ms) {gaps[:3]}"


def assert_show(path: Path, sources: list[Path], size: tuple[int, int], work: Path, what: str,
                max_gap_ms: int) -> None:
    """`path` is sources[0]'s start, the slate, then sources[1] from its start (if given)."""
    tags = read_tags(path.read_bytes())
    ffprobe_streams(path)  # decodes end to end, not a complaint
    assert_no_gap(tags, what, max_gap_ms)
    parts = segments(tags)
    assert len(parts) == len(sources) + 1, f"{what}: {len(parts)} video configurations, not {len(sources) + 1}"
    for index, (source, (_, rest)) in enumerate(zip(sources, parts[::2])):
        got = media(rest)
        want = media(read_tags(source.read_bytes()))[: len(got)]
        assert got and [t.payload for t in got] == [t.payload for t in want], (
            f"{what}: publisher {index + 1}'s frames are not the source's, byte for byte")
        assert got[0].kind == VIDEO and got[0].is_keyframe
    slate_header, slate = parts[1]
    frames = media(slate)
    assert frames and frames[0].kind == VIDEO and frames[0].is_keyframe, f"{what}: the slate starts undecodable"
    assert {t.kind for t in frames} == {AUDIO, VIDEO}, f"{what}: the slate has not both tracks"
    found = probe_segment(slate_header, slate, work / f"slate-of-{path.stem}.flv")
    assert (found["width"], found["height"]) == size, f"{what}: slate is {found}"


def recording_of(folder: Path) -> Path:
    (name,) = [n.name for n in (folder / "studio").iterdir() if n.name.endswith(".flv")]
    return folder / "studio" / name


# --- the scenarios -----------------------------------------------------------------------------

@pytest.mark.parametrize("returning", ["same", "other"], ids=["same-settings", "other-settings-on-return"])
def test_a_dropped_publisher_is_bridged_by_the_slate_on_every_target_and_the_recording(
    returning: str, long_clip: Path, source_flv: Path, other_clip: Path, nginx_rtmp: Callable[..., NginxRtmp],
    ffmpeg_listener: Callable[..., FfmpegListener], relay: Callable[..., RelayProcess],
    publishers: Callable[[Path, str], FfmpegProcess], tmp_path: Path,
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    listener = ffmpeg_listener(stream_key=KEYS["listener"], output=tmp_path / "listener.flv")
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    with receiver:
        daemon = slate_daemon(relay, nginx, listener, window=30, recordings=tmp_path / "recordings",
                              webhook=receiver.url)
        run_show(daemon, returning, long_clip, source_flv, other_clip, nginx, listener, publishers, tmp_path)
        types = [t for t in receiver.wait_until(lambda e: "video.live_stream.idle" in [x["type"] for x in e])
                 if t["type"].startswith("video.live_stream.") and ".simulcast_target." not in t["type"]
                 and ".recording." not in t["type"]]
    assert [t["type"] for t in types] == ["video.live_stream.active", "video.live_stream.disconnected",
                                          "video.live_stream.connected", "video.live_stream.idle"]
    assert receiver.bad_signatures == 0
    assert daemon.terminate(timeout=5) == 0


def run_show(daemon: RelayProcess, returning: str, long_clip: Path, source_flv: Path, other_clip: Path,
             nginx: NginxRtmp, listener: FfmpegListener, publishers: Callable[[Path, str], FfmpegProcess],
             tmp_path: Path) -> None:
    first = publishers(long_clip, ingest_url(daemon))
    ready = daemon.wait_for("slate_ready", timeout=30)
    assert slate_status(daemon) == "ready"
    assert (ready["width"], ready["height"], ready["video_codec"], ready["audio_codec"]) == (640, 360, "h264", "aac")
    for name in KEYS:
        daemon.wait_for("target_status", target=name, to="broadcasting")
    nginx.wait_published(KEYS["nginx"])
    recorded = nginx.recorded_flv(KEYS["nginx"], "rec")
    wait_until(lambda: recorded.exists() and recorded.stat().st_size > 400_000, 20, "3 s through nginx")

    first.proc.kill()  # SIGKILL: a crashed encoder, no FCUnpublish
    first.proc.wait(5)
    daemon.wait_for("publisher_lost")
    daemon.wait_for("slate_started", timeout=10)
    assert slate_status(daemon) == "playing"
    on_slate = recorded.stat().st_size
    wait_until(lambda: recorded.stat().st_size > on_slate + 50_000, 20, "the slate's frames at nginx")
    time.sleep(5)  # the scenario: the encoder is back 5 s later
    second_source = source_flv if returning == "same" else other_clip
    second = publishers(second_source, ingest_url(daemon))
    daemon.wait_for("publisher_resumed", timeout=15)
    daemon.wait_for("slate_stopped")
    second.check(30)  # to the end of its file, then Stop Streaming: the session ends with no slate
    daemon.wait_for("live_stream_status", to="idle", timeout=15)
    for name in KEYS:
        daemon.wait_for("target_status", target=name, to="idle", timeout=10)
    nginx.wait_unpublished(KEYS["nginx"])
    listener.check(15)
    daemon.wait_for("recording_finished", timeout=20)
    assert sum(e.get("event") == "slate_started" for e in daemon.events) == 1

    sources = [long_clip, second_source]
    for what, path in (("nginx", recorded), ("listener", listener.output),
                       ("recording", recording_of(tmp_path / "recordings"))):
        assert_show(path, sources, (640, 360), tmp_path, what, largest_gap_ms(daemon))


def test_the_window_running_out_on_the_slate_ends_the_broadcast_as_without_one(
    long_clip: Path, nginx_rtmp: Callable[..., NginxRtmp], ffmpeg_listener: Callable[..., FfmpegListener],
    relay: Callable[..., RelayProcess], publishers: Callable[[Path, str], FfmpegProcess], tmp_path: Path,
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    listener = ffmpeg_listener(stream_key=KEYS["listener"], output=tmp_path / "listener.flv")
    daemon = slate_daemon(relay, nginx, listener, window=4)
    first = publishers(long_clip, ingest_url(daemon))
    daemon.wait_for("slate_ready", timeout=30)
    for name in KEYS:
        daemon.wait_for("target_status", target=name, to="broadcasting")
    recorded = nginx.recorded_flv(KEYS["nginx"], "rec")
    wait_until(lambda: recorded.exists() and recorded.stat().st_size > 400_000, 20, "3 s through nginx")
    first.proc.kill()
    first.proc.wait(5)
    daemon.wait_for("slate_started", timeout=10)
    daemon.wait_for("live_stream_status", to="idle", timeout=15)
    daemon.wait_for("slate_stopped")
    for name in KEYS:
        daemon.wait_for("target_status", target=name, to="idle", timeout=10)
    nginx.wait_unpublished(KEYS["nginx"])
    listener.check(15)
    for what, path in (("nginx", recorded), ("listener", listener.output)):
        assert_show(path, [long_clip], (640, 360), tmp_path, what, largest_gap_ms(daemon))
    assert daemon.terminate(timeout=5) == 0
