"""Publish sessions one after another on one running relay, and what every target got of each.

An encoder that stops cleanly ("Stop Streaming": FCUnpublish, deleteStream) and starts
again makes a new publish session on the same live stream; each target then makes a new
connection to its platform, and must get onMetaData and the sequence headers of the new
session before its first frame, however soon or late it connects.

`TargetPeer` is one simulcast target and the server behind it: nginx-rtmp recording (one
nginx for the whole show; its file for the target is copied aside after each session,
since the next publish to nginx rewrites it), `ffmpeg -listen 1` (one-shot: a new one for
each session, on a new port), or the fake platform (tests/support/fakeplatform.py), whose
connections keep every tag as the relay sent it, script data included. The fake platform
is the only one of the three that shows whether onMetaData came first: nginx-rtmp's
recorder writes no script data, and ffmpeg's FLV muxer writes an onMetaData of its own.
A target given a `delay` goes through a DelayProxy (tests/support/delayproxy.py), so its
connection gets going that long after the relay opens it (when the publisher claims the
live stream). A live stream's publisher may go through one too (`path`, with a latency):
its metadata and headers then reach the relay after every quick target is up.

`run_session` publishes on every live stream at once, stops each publisher with SIGINT
once it has sent `stop_at` s of the clip and every target is broadcasting, waits until
everything of the session is over (the relay's targets idle, nginx's publishers gone, the
listeners exited), and returns what each target received. `check_received` lists what is
wrong with one of those files; `assert_all_received` fails with every broken file at once.

Every wait is on a condition (a log event, nginx's log, a process exit, ffmpeg's
progress report); the only pauses are the proxies' delays, which are the scenario.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relay.flv import SCRIPT, encode_tag, file_header, is_metadata, read_tags
from tests.support.delayproxy import DelayProxy
from tests.support.fakeplatform import FakePlatform, PlatformConnection
from testbed.ffmpeg import FfmpegListener, FfmpegProcess, published_seconds, start_publish
from tests.support.flvcheck import assert_same_media, assert_starts_decodable, describe
from testbed.nginx import NginxRtmp
from testbed.ports import wait_until
from tests.support.probe import ffprobe_streams
from testbed.relay_proc import RelayProcess

NGINX_APP = "rec"  # the recording application of the show's nginx
LISTENER_APP = "live"
KINDS = ("nginx", "ffmpeg", "platform")
FIRST_GOP_S = 2.0  # the test clip's keyframe interval: a target connecting sooner gets the show from its start
_BIND_ATTEMPTS = 3  # a free port can be taken by someone else between our probe and ffmpeg's bind
_SIGINT_EXIT = 255  # ffmpeg's exit status after a SIGINT it handled


@dataclass
class Received:
    """What one target received of one publish session."""

    session: int
    target: TargetPeer
    path: Path
    problems: list[str] = field(default_factory=list)  # seen while the session ended (a listener that failed)

    def label(self) -> str:
        return f"session {self.session}, {self.target.name} ({self.target.kind}, {self.target.describe_delay()})"


class TargetPeer:
    """One simulcast target (`name` is its passthrough) and the server that receives it."""

    def __init__(self, name: str, key: str, kind: str, delay: float | None, *, nginx: NginxRtmp | None = None,
                 workdir: Path) -> None:
        assert kind in KINDS and (kind != "nginx" or nginx is not None)
        self.name, self.key, self.kind, self.delay = name, key, kind, delay
        self.nginx = nginx
        self.workdir = workdir
        self.proxy: DelayProxy | None = None
        self.listener: FfmpegListener | None = None
        self.platform = FakePlatform().start() if kind == "platform" else None
        # A one-shot listener gets a new port each session: it is always behind a proxy (delay 0 if none).
        if kind == "ffmpeg" or delay is not None:
            upstream = {"nginx": nginx.port if nginx is not None else 0, "ffmpeg": 0,
                        "platform": self.platform.port if self.platform is not None else 0}[kind]
            self.proxy = DelayProxy(upstream, delay or 0.0).start()

    @property
    def keeps_script_data(self) -> bool:
        """Does what it received show the script tags as the relay sent them (onMetaData first)?"""
        return self.kind == "platform"

    def describe_delay(self) -> str:
        if not self.delay:
            return "connects at once"
        return f"connects {self.delay * 1000:.0f} ms late" if self.delay < 1 else f"connects {self.delay:g} s late"

    def config(self) -> dict[str, Any]:
        """Its entry in the live stream's simulcast_targets."""
        app = NGINX_APP if self.kind == "nginx" else LISTENER_APP
        if self.proxy is not None:
            url = self.proxy.url(app)
        elif self.platform is not None:
            url = self.platform.url(app)
        else:
            assert self.nginx is not None
            url = self.nginx.url(app)
        return {"url": url, "stream_key": self.key, "passthrough": self.name}

    def before_session(self, session: int) -> None:
        """A listener for this session (ffmpeg); nothing to do for nginx."""
        if self.kind != "ffmpeg":
            return
        assert self.proxy is not None
        output = self.workdir / f"session{session}-{self.name}.flv"
        for attempt in range(_BIND_ATTEMPTS):
            listener = FfmpegListener(output, app=LISTENER_APP, stream_key=self.key)
            self.listener = listener
            try:
                listener.wait_listening()
                break
            except RuntimeError:
                if "Address already in use" not in listener.stderr_text() or attempt == _BIND_ATTEMPTS - 1:
                    raise
        self.proxy.upstream_port = listener.port

    def after_session(self, session: int, timeout: float = 20.0) -> Received:
        """Once the relay's target is idle: wait until the server is done with the session; what it got."""
        if self.kind == "nginx":
            nginx = self.nginx
            assert nginx is not None
            # Every publish of this key so far (one a session) has disconnected: nginx closed the file.
            wait_until(lambda: len(p := nginx.publishers(self.key)) >= session and all(p.values()), timeout,
                       f"session {session} of {self.name} to leave nginx", interval=0.05)
            path = self.workdir / f"session{session}-{self.name}.flv"
            shutil.copyfile(nginx.recorded_flv(self.key, NGINX_APP), path)
            return Received(session, self, path)
        if self.platform is not None:
            # This session's connection (one a session) has unpublished and closed.
            def published(connections: list[PlatformConnection]) -> list[PlatformConnection]:
                return [c for c in connections if c.published]

            def over(connections: list[PlatformConnection]) -> bool:
                done = published(connections)
                return len(done) >= session and all(c.closed for c in done)

            connections = self.platform.wait_until(over, timeout, f"session {session} of {self.name} to end")
            connection = published(connections)[session - 1]
            path = self.workdir / f"session{session}-{self.name}.flv"
            path.write_bytes(file_header() + b"".join(encode_tag(t.kind, t.timestamp, t.payload)
                                                      for t in connection.tags))
            received = Received(session, self, path)
            if not connection.unpublished:
                received.problems.append("the relay closed the connection without unpublishing")
            return received
        listener = self.listener
        assert listener is not None
        self.listener = None
        received = Received(session, self, listener.output)
        try:
            code = listener.wait(timeout)
        except TimeoutError:
            listener.stop()
            code = None
        if code != 0:
            said = listener.stderr_text().replace(self.key, "<key>")  # its URL holds the key: kept out of reports
            received.problems.append(f"ffmpeg's listener exited {code}: {said[-600:].strip()}")
        return received

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        if self.proxy is not None:
            self.proxy.stop()
        if self.platform is not None:
            self.platform.stop()


@dataclass
class LiveStreamPeers:
    """One live stream of the show: its name, its publisher's key for the next session, its targets,
    and the publisher's network path to the relay (a DelayProxy with a latency; None: direct)."""

    name: str
    ingest_key: str
    targets: list[TargetPeer]
    path: DelayProxy | None = None


def run_session(daemon: RelayProcess, streams: Sequence[LiveStreamPeers], source: Path, session: int,
                workdir: Path, *, stop_at: float) -> list[Received]:
    """Publish session number `session` (from 1) on every live stream at once, stop it cleanly, and
    return what each target received of it."""
    targets = [t for s in streams for t in s.targets]
    for peer in targets:
        peer.before_session(session)
    publishers: dict[str, tuple[FfmpegProcess, Path]] = {}
    try:
        for stream in streams:
            progress = workdir / f"progress-{stream.name}-{session}.txt"
            port = daemon.port if stream.path is None else stream.path.port
            url = f"rtmp://127.0.0.1:{port}/live/{stream.ingest_key}"
            publishers[stream.name] = (start_publish(url, source, progress=progress), progress)
        for stream in streams:
            daemon.wait_for("publish_started", live_stream=stream.name, count=session)
        for peer in targets:
            daemon.wait_for("target_status", target=peer.name, to="broadcasting", count=session, timeout=20)
        for name, (publisher, progress) in publishers.items():
            _wait_published(publisher, progress, stop_at, name)
        for publisher, _ in publishers.values():
            publisher.interrupt()  # "Stop Streaming"
        for publisher, _ in publishers.values():
            code = publisher.wait(15)
            assert code in (0, _SIGINT_EXIT), f"the publisher exited {code}: {publisher.stderr_text()[-2000:]}"
    finally:
        for publisher, _ in publishers.values():
            publisher.stop()
    for stream in streams:
        ended = daemon.wait_for("publish_ended", live_stream=stream.name, count=session)
        assert ended["clean"] is True, f"{stream.name}: the relay did not see a clean stop: {ended}"
        daemon.wait_for("live_stream_status", live_stream=stream.name, to="idle", count=session)
    for peer in targets:
        daemon.wait_for("target_status", target=peer.name, to="idle", count=session, timeout=20)
    return [peer.after_session(session) for peer in targets]


def _wait_published(publisher: FfmpegProcess, progress: Path, seconds: float, name: str) -> None:
    wait_until(lambda: published_seconds(progress) >= seconds, 30,
               f"the publisher of {name} to send {seconds:g} s of the clip", interval=0.05,
               abort=lambda: None if publisher.returncode is None else "it exited")


def check_received(received: Received, source: Path, resolution: tuple[int, int]) -> list[str]:
    """What is wrong with one target's file of one session: [] when it is a playable copy of the show.

    It starts with onMetaData (where the receiver shows it), then both sequence headers,
    then a video keyframe; ffprobe decodes every frame without a complaint and finds the
    source's video resolution; its audio and video are the publisher's, byte for byte, from
    a keyframe on (from the very start for a target that connected within the first GOP).
    """
    problems = list(received.problems)
    data = received.path.read_bytes() if received.path.exists() else b""
    tags = read_tags(data) if data else []
    if not tags:
        return [*problems, f"no tags at all ({len(data)} bytes: {'no file' if not data else 'an FLV header only'})"]
    if received.target.keeps_script_data and (tags[0].kind != SCRIPT or not is_metadata(tags[0].payload)):
        problems.append(f"does not start with onMetaData: first tag is {describe(tags[0])}")
    checks: tuple[Callable[[], None], ...] = (
        lambda: assert_starts_decodable(tags, "the file"),
        lambda: _check_media(received, source),
        lambda: _check_decodes(received.path, resolution),
    )
    for check in checks:
        try:
            check()
        except AssertionError as exc:
            problems.append(str(exc))
    return problems


def _check_media(received: Received, source: Path) -> None:
    match = assert_same_media(received.path, source, allow_late_start=True, to_end=False)
    delay = received.target.delay or 0.0
    if delay < FIRST_GOP_S / 2:
        assert match.start == 0, (
            f"lost the start of the session: its first frame is source media[{match.start}], "
            f"yet it connected within the first GOP")


def _check_decodes(path: Path, resolution: tuple[int, int]) -> None:
    streams = ffprobe_streams(path)
    video = [s for s in streams if s.get("codec_type") == "video"]
    assert video, f"ffprobe finds no video stream: {streams}"
    size = (video[0].get("width"), video[0].get("height"))
    assert size == resolution, (
        f"ffprobe finds video of {size[0]}x{size[1]}, the source is {resolution[0]}x{resolution[1]}")
    frames = {s.get("codec_type"): int(s.get("nb_read_frames", 0)) for s in streams}
    assert frames.get("video", 0) > 0 and frames.get("audio", 0) > 0, f"ffprobe decodes no frames: {frames}"


def source_resolution(source: Path) -> tuple[int, int]:
    """The width and height of the source's video, as ffprobe reads them."""
    (video,) = [s for s in ffprobe_streams(source) if s.get("codec_type") == "video"]
    return int(video["width"]), int(video["height"])


def assert_all_received(results: list[Received], source: Path) -> None:
    """Check every file; fail with the list of every broken one and why (not just the first)."""
    resolution = source_resolution(source)
    broken = [(r, p) for r in results if (p := check_received(r, source, resolution))]
    lines = [f"{len(broken)} of {len(results)} received files are not a playable copy of their session:"]
    for received, problems in broken:
        lines.append(f"- {received.label()}:")
        lines.extend(f"    {line}" for problem in problems for line in problem.splitlines())
    assert not broken, "\n".join(lines)

