"""Stop Streaming, Start Streaming: every publish session reaches every target whole, however soon it connects.

OBS's "Stop Streaming" is a clean stop (FCUnpublish, deleteStream); "Start Streaming" again
makes a new publish session on the same running relay, and each target a new connection.
Each such connection must get onMetaData and the sequence headers before its first frame,
also when it is up before the publisher's own headers have reached the relay, though
they are the same bytes as the last session's. A connection that misses them gives the
platform a stream no decoder can start (nginx-rtmp records an FLV header and nothing
else; ffprobe: "No start code is found").

Real peers on 127.0.0.1: ffmpeg publishes the 6 s test clip in real time and is stopped
with SIGINT (it then unpublishes cleanly, as OBS does) once it has sent STOP_AT s. The
publisher is near (direct) or far (FAR s each way, tests/support/delayproxy.py: its
headers then reach the relay after every quick target is up, as for an encoder at home
and a relay in a data centre next to the platforms). The targets are nginx-rtmp
recording, `ffmpeg -listen 1` (a new one each session) and, where a test has room for it
beside them (six targets at most), the fake platform, the one receiver that keeps the
script data as sent; each connects at once, SOON (tens of ms) or LATE (seconds) after the
publish (a DelayProxy holds the connection). What every target got of every session is
checked (tests/support/sessions.py): it starts with onMetaData (fake platform), the
sequence headers and a keyframe, ffprobe decodes it without a complaint and finds the
source's resolution, and its audio and video are the publisher's byte for byte.
Every daemon's output is searched for the stream keys.
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.delayproxy import DelayProxy
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import free_port
from testbed.relay_proc import RelayProcess, write_config
from tests.support.sessions import NGINX_APP, LiveStreamPeers, Received, TargetPeer, assert_all_received, run_session

pytestmark = pytest.mark.e2e

INGEST_KEYS = ("stopstart-ingest-KEY-6e0c2a9d41", "stopstart-second-KEY-b83f17e5c2")
ROTATED_KEY = "stopstart-rotated-KEY-49d0a7c3f1"
SOON = 0.04  # tens of ms after the publish
LATE = 2.2  # seconds: joins mid-show, after the clip's second keyframe (2 s), from the init burst
FAR = 0.15  # one way, publisher to relay: its headers arrive 0.3 s after the relay accepted its publish
STOP_AT = 3.5  # s of the clip sent when "Stop Streaming" comes: the late targets have over a second of it
QUICK_STOP_AT = 2.5  # the same when no target is late


def _key(name: str) -> str:
    """A target's stream key: long, unique, and findable in the daemon's output if it leaked."""
    return f"stopstart-{name}-KEY-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


@pytest.fixture
def daemon_with(tmp_path: Path) -> Iterator[Callable[..., RelayProcess]]:
    """Factory: `daemon_with(live_streams, secrets)` runs the relay with these live streams.

    At teardown it is killed and everything it wrote is searched for every key in `secrets`
    (none may appear); every line must be a JSON log event.
    """
    started: list[tuple[RelayProcess, tuple[str, ...]]] = []

    def start(live_streams: list[dict[str, Any]], secrets: tuple[str, ...]) -> RelayProcess:
        config = {
            "server": {"listen": f"127.0.0.1:{free_port()}", "app": "live"},
            "http": {"listen": f"127.0.0.1:{free_port()}"},
            "live_streams": live_streams,
        }
        proc = RelayProcess(write_config(tmp_path / f"relay{len(started)}.yaml", config))
        started.append((proc, secrets))
        return proc

    yield start
    for proc, keys in started:
        proc.kill()
        leaked = [key for key in keys if key in proc.output]
        assert not leaked, f"{len(leaked)} stream key(s) leaked into the relay's output"
        unparsed = [e["line"] for e in proc.events if e.get("event") == "<unparsed>"]
        assert not unparsed, "the relay wrote lines that are not JSON log events:\n" + "".join(unparsed)[:3000]


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Callable[..., TargetPeer]]:
    """Factory: `peers(name, kind, delay, nginx=...)` is a TargetPeer recording into tmp_path; stopped at teardown."""
    made: list[TargetPeer] = []

    def make(name: str, kind: str, delay: float | None, nginx: NginxRtmp | None = None) -> TargetPeer:
        peer = TargetPeer(name, _key(name), kind, delay, nginx=nginx, workdir=tmp_path)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.stop()


@pytest.fixture
def far_path() -> Iterator[Callable[[RelayProcess], DelayProxy]]:
    """Factory: `far_path(daemon)` is a network path FAR s long each way to the relay's ingest."""
    made: list[DelayProxy] = []

    def make(daemon: RelayProcess) -> DelayProxy:
        made.append(DelayProxy(daemon.port, latency=FAR).start())
        return made[-1]

    yield make
    for proxy in made:
        proxy.stop()


def live_stream(name: str, ingest_key: str, targets: list[TargetPeer], **fields: Any) -> dict[str, Any]:
    return {"name": name, "stream_key": ingest_key, **fields, "simulcast_targets": [t.config() for t in targets]}


def secrets_of(*streams: LiveStreamPeers) -> tuple[str, ...]:
    return (*INGEST_KEYS, ROTATED_KEY, *(t.key for s in streams for t in s.targets))


def assert_no_target_errored(daemon: RelayProcess) -> None:
    errored = [e for e in daemon.events if e.get("event") == "target_status" and e.get("to") == "errored"]
    assert not errored, f"targets errored: {errored}"


@pytest.mark.long
@pytest.mark.parametrize(("window", "far"), [(0, False), (None, True)],
                         ids=["reconnect_window-0-publisher-near", "reconnect_window-default-publisher-far"])
def test_three_clean_sessions_reach_every_target_at_every_connect_delay(
    window: float | None, far: bool, source_flv: Path, tmp_path: Path, nginx_rtmp: Callable[..., NginxRtmp],
    peers: Callable[..., TargetPeer], daemon_with: Callable[..., RelayProcess],
    far_path: Callable[[RelayProcess], DelayProxy],
) -> None:
    nginx = nginx_rtmp(RtmpApp(NGINX_APP, record=True))
    targets = [peers(f"{kind}-{label}", kind, delay, nginx)
               for kind in ("nginx", "ffmpeg") for label, delay in (("now", None), ("soon", SOON), ("late", LATE))]
    stream = LiveStreamPeers("studio", INGEST_KEYS[0], targets)
    # The default window (60 s) holds the targets for a publisher that drops; a clean stop ends the session.
    fields = {} if window is None else {"reconnect_window": window}
    daemon = daemon_with([live_stream("studio", INGEST_KEYS[0], targets, **fields)], secrets_of(stream))
    if far:
        stream.path = far_path(daemon)

    results: list[Received] = []
    for session in (1, 2, 3):
        results += run_session(daemon, [stream], source_flv, session, tmp_path, stop_at=STOP_AT)

    assert not [e for e in daemon.events if e.get("event") in ("publisher_lost", "publisher_resumed")]
    assert_all_received(results, source_flv)
    assert_no_target_errored(daemon)
    assert daemon.terminate(timeout=15) == 0


@pytest.mark.long
def test_two_live_streams_stopping_and_starting_together(
    source_flv: Path, tmp_path: Path, nginx_rtmp: Callable[..., NginxRtmp],
    peers: Callable[..., TargetPeer], daemon_with: Callable[..., RelayProcess],
    far_path: Callable[[RelayProcess], DelayProxy],
) -> None:
    nginx = nginx_rtmp(RtmpApp(NGINX_APP, record=True))
    near = LiveStreamPeers("near", INGEST_KEYS[0], [
        peers("a-nginx-now", "nginx", None, nginx), peers("a-ffmpeg-soon", "ffmpeg", SOON),
        peers("a-platform-now", "platform", None)])
    far = LiveStreamPeers("far", INGEST_KEYS[1], [
        peers("b-nginx-soon", "nginx", SOON, nginx), peers("b-ffmpeg-now", "ffmpeg", None),
        peers("b-platform-soon", "platform", SOON)])
    daemon = daemon_with([live_stream(s.name, s.ingest_key, s.targets, reconnect_window=0) for s in (near, far)],
                         secrets_of(near, far))
    far.path = far_path(daemon)

    results: list[Received] = []
    for session in (1, 2):
        results += run_session(daemon, [near, far], source_flv, session, tmp_path, stop_at=QUICK_STOP_AT)

    assert_all_received(results, source_flv)
    assert_no_target_errored(daemon)
    assert daemon.terminate(timeout=15) == 0


@pytest.mark.long
def test_new_stream_key_by_reload_between_sessions(
    source_flv: Path, tmp_path: Path, nginx_rtmp: Callable[..., NginxRtmp],
    peers: Callable[..., TargetPeer], daemon_with: Callable[..., RelayProcess],
    far_path: Callable[[RelayProcess], DelayProxy],
) -> None:
    nginx = nginx_rtmp(RtmpApp(NGINX_APP, record=True))
    stream = LiveStreamPeers("studio", INGEST_KEYS[0], [
        peers("nginx-now", "nginx", None, nginx), peers("ffmpeg-soon", "ffmpeg", SOON),
        peers("platform-soon", "platform", SOON), peers("platform-late", "platform", LATE)])
    daemon = daemon_with([live_stream("studio", INGEST_KEYS[0], stream.targets, reconnect_window=0)],
                         secrets_of(stream))
    stream.path = far_path(daemon)
    results = run_session(daemon, [stream], source_flv, 1, tmp_path, stop_at=STOP_AT)

    # Between two sessions the key is changed in the file, and the relay reloads it.
    config = yaml.safe_load(daemon.config_path.read_text())
    config["live_streams"][0]["stream_key"] = ROTATED_KEY
    write_config(daemon.config_path, config)
    daemon.proc.send_signal(signal.SIGHUP)
    reloaded = daemon.wait_for("config_reloaded")
    assert reloaded["key_changed"] == ["studio"] and reloaded["targets_restarted"] == 0, reloaded
    stream.ingest_key = ROTATED_KEY
    results += run_session(daemon, [stream], source_flv, 2, tmp_path, stop_at=STOP_AT)

    assert_all_received(results, source_flv)
    assert_no_target_errored(daemon)
    assert daemon.terminate(timeout=15) == 0
