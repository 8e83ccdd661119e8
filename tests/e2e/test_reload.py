"""Config reloads against a running daemon on 127.0.0.1: SIGHUP, a file edited in place, real peers.

A reload is prepared beside the running config and then swapped in, all or nothing
(relay/reload.py): a broken file leaves the last good config running; a changed target
moves while the unchanged ones keep their session; a changed stream key or a removed live
stream cuts its publisher off without a reconnect window; a renewed RTMPS certificate is
served to new connections. `relay reload` and POST /api/v1/reload are tested with the
command line (test_cli.py) and the HTTP API (test_http.py), the READY/RELOADING
notifications with the systemd unit (test_systemd.py).
"""

from __future__ import annotations

import functools
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay.flv import VIDEO, read_tags
from testbed.ffmpeg import FfmpegProcess, publish_args, start_publish
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import distinct_ports, wait_until
from testbed.relay_proc import RelayProcess, write_config
from tests.support.flvcheck import assert_same_media
from tests.support.probe import ffprobe_decode
from tests.support.tls import make_pki

pytestmark = pytest.mark.e2e

INGEST_KEY = "reload-ingest-KEY-61c0d2e4b7"
TARGET_KEY = "reload-target-KEY-3f9a05"
MOVED_KEY = "reload-moved-KEY-33fe71"
NEW_KEY = "reload-rotated-KEY-9d04c1a2e8"
ALL_KEYS = (INGEST_KEY, TARGET_KEY, MOVED_KEY, NEW_KEY)


@pytest.fixture
def relay(relay_daemon: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    """The shared daemon factory with this module's keys (checked for leaks at teardown), and a live stream
    with a 60 s reconnect window (which a revoked key must not get)."""
    return functools.partial(relay_daemon, ingest_key=INGEST_KEY, secrets=ALL_KEYS, reconnect_window=60)


def publish_live(port: int, key: str, clip: Path) -> FfmpegProcess:
    return start_publish(f"rtmp://127.0.0.1:{port}/live/{key}", clip)


def reload_with(daemon: RelayProcess, change: Callable[[dict[str, Any]], None], count: int = 1) -> dict[str, Any]:
    """Edit the daemon's config file, SIGHUP, and wait for the count-th config_reloaded."""
    config = yaml.safe_load(daemon.config_path.read_text())
    change(config)
    write_config(daemon.config_path, config)
    daemon.proc.send_signal(signal.SIGHUP)
    return daemon.wait_for("config_reloaded", count=count)


def test_sighup_keeps_the_last_good_config_when_the_new_one_is_broken(relay: Callable[..., RelayProcess]) -> None:
    daemon = relay([{"url": "rtmp://127.0.0.1:1/app/instance", "stream_key": TARGET_KEY, "passthrough": "one"}])
    path = daemon.config_path
    config = yaml.safe_load(path.read_text())
    daemon.wait_for("relay_listening")
    path.write_text("live_streams: [\n")  # a YAML syntax error

    daemon.proc.send_signal(signal.SIGHUP)

    failed = daemon.wait_for("config_reload_failed")
    assert any(str(path) in problem for problem in failed["problems"])
    config["live_streams"].append({"name": "second", "stream_key": INGEST_KEY + "-2", "simulcast_targets": []})
    write_config(path, config)
    daemon.proc.send_signal(signal.SIGHUP)
    assert daemon.wait_for("config_reloaded")["live_streams"] == 2
    assert daemon.proc.poll() is None
    assert daemon.terminate(timeout=15) == 0


def test_reload_moves_a_changed_target_and_leaves_the_others_broadcasting(
    source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess]
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True), RtmpApp("rec2", record=True), RtmpApp("moved", record=True))
    steady = {"url": nginx.url("rec"), "stream_key": TARGET_KEY, "passthrough": "steady"}
    mover = {"url": nginx.url("rec2"), "stream_key": MOVED_KEY, "passthrough": "mover"}
    daemon = relay([steady, mover])
    publisher = publish_live(daemon.port, INGEST_KEY, source_flv)
    try:
        daemon.wait_for("target_status", target="steady", to="broadcasting")
        daemon.wait_for("target_status", target="mover", to="broadcasting")

        reload_with(daemon, lambda c: c["live_streams"][0]["simulcast_targets"][1].update(url=nginx.url("moved")))

        daemon.wait_for("target_status", target="mover", to="broadcasting", count=2)
        wait_until(lambda: len(nginx.publishers(MOVED_KEY)) == 2, 10, "the moved target's second publish")
        publisher.check(timeout=60)
    finally:
        publisher.stop()
    daemon.wait_for("target_status", target="steady", to="idle", timeout=20)
    nginx.wait_unpublished(TARGET_KEY)
    # The unchanged target went through the reload untouched: one session, byte for byte.
    assert [e["to"] for e in daemon.events if e.get("event") == "target_status" and e.get("target") == "steady"] \
        == ["starting", "broadcasting", "idle"]
    assert assert_same_media(nginx.recorded_flv(TARGET_KEY, "rec"), source_flv).start == 0
    # The moved target's new session starts at a keyframe and carries the rest of the show byte for byte,
    # and an independent decoder reads every frame of it.
    nginx.wait_unpublished(MOVED_KEY)
    moved = nginx.recorded_flv(MOVED_KEY, "moved")
    match = assert_same_media(moved, source_flv)
    decoded = ffprobe_decode(moved)
    assert decoded["video"] > 0 and decoded["audio"] > 0, decoded
    pictures = [t for t in read_tags(moved.read_bytes())
                if t.kind == VIDEO and not t.is_header and t.payload[1] != 2]  # AVC end of sequence: no picture
    assert decoded["video"] == len(pictures), (decoded, match)
    assert daemon.terminate(timeout=15) == 0


# --- reloads that revoke: a changed key, a removed live stream, a renewed certificate -------------

def test_a_reload_that_changes_the_stream_key_cuts_the_publisher_off(
    long_clip: Path, source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    daemon = relay([{"url": nginx.url("rec"), "stream_key": TARGET_KEY, "passthrough": "nginx"}])
    publisher = publish_live(daemon.port, INGEST_KEY, long_clip)
    try:
        daemon.wait_for("target_status", target="nginx", to="broadcasting")

        reloaded = reload_with(daemon, lambda c: c["live_streams"][0].update(stream_key=NEW_KEY))

        assert reloaded["key_changed"] == ["studio"]
        ended = daemon.wait_for("publish_ended")
        assert ended["clean"] is True and "stream key was changed" in ended["reason"]
        daemon.wait_for("live_stream_status", to="idle")
        daemon.wait_for("target_status", target="nginx", to="idle")
        assert publisher.wait(timeout=30) != 0  # the relay closed its connection
    finally:
        publisher.stop()
    # No reconnect window for a revoked key: it was never offered.
    assert not [e for e in daemon.events if e.get("event") == "publisher_lost"]
    # The old key is refused from now on; the new one publishes.
    assert publish_live(daemon.port, INGEST_KEY, long_clip).wait(timeout=30) != 0
    daemon.wait_for("publish_rejected", reason="unknown stream key")
    # The new key publishes, and its show reaches the target from its first frame, byte for byte.
    second = start_publish(f"rtmp://127.0.0.1:{daemon.port}/live/{NEW_KEY}", source_flv, realtime=True)
    try:
        second.check(timeout=60)
    finally:
        second.stop()
    daemon.wait_for("target_status", target="nginx", to="idle", count=2, timeout=20)
    nginx.wait_unpublished(TARGET_KEY)
    assert len(nginx.publishers(TARGET_KEY)) == 2
    assert assert_same_media(nginx.recorded_flv(TARGET_KEY, "rec"), source_flv).start == 0


def test_a_reload_that_removes_the_live_stream_cuts_its_publisher_off(
    long_clip: Path, nginx_rtmp: Callable[..., NginxRtmp], relay: Callable[..., RelayProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    daemon = relay([{"url": nginx.url("rec"), "stream_key": TARGET_KEY, "passthrough": "nginx"}])
    publisher = publish_live(daemon.port, INGEST_KEY, long_clip)
    try:
        daemon.wait_for("target_status", target="nginx", to="broadcasting")

        reloaded = reload_with(daemon, lambda c: c["live_streams"][0].update(name="elsewhere", stream_key=NEW_KEY))

        assert reloaded["removed"] == ["studio"] and reloaded["added"] == ["elsewhere"]
        ended = daemon.wait_for("publish_ended")
        assert ended["clean"] is True and "removed" in ended["reason"]
        assert publisher.wait(timeout=30) != 0
    finally:
        publisher.stop()
    assert not [e for e in daemon.events if e.get("event") == "publisher_lost"]


def served_certificate(port: int) -> str:
    """The PEM certificate the RTMPS ingest presents to a new connection."""
    return ssl.get_server_certificate(("127.0.0.1", port), timeout=10)


def test_sighup_reloads_the_rtmps_certificate_and_keeps_it_when_the_new_one_is_bad(
    tmp_path: Path, long_clip: Path, nginx_rtmp: Callable[..., NginxRtmp],
    relay: Callable[..., RelayProcess],
) -> None:
    old, new = make_pki(tmp_path / "old"), make_pki(tmp_path / "new")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(old.cert_file.read_bytes())
    key.write_bytes(old.key_file.read_bytes())
    key.chmod(0o600)
    nginx = nginx_rtmp(RtmpApp("rec", record=True))
    plain, tls = distinct_ports()
    daemon = relay([{"url": nginx.url("rec"), "stream_key": TARGET_KEY, "passthrough": "nginx"}],
                    server={"listen": f"127.0.0.1:{plain}", "tls_listen": f"127.0.0.1:{tls}",
                            "tls_cert_file": str(cert), "tls_key_file": str(key)})
    tls_port = int(daemon.wait_for("relay_listening", scheme="rtmps")["port"])
    first = served_certificate(tls_port)
    assert first.strip() == old.cert_file.read_text().split("-----END CERTIFICATE-----")[0].strip() \
        + "\n-----END CERTIFICATE-----"
    # An RTMPS publisher live across the reloads: its session is not touched.
    publisher = FfmpegProcess([*publish_args(f"rtmps://127.0.0.1:{tls_port}/live/{INGEST_KEY}", long_clip)[:-1],
                               "-tls_verify", "0", f"rtmps://127.0.0.1:{tls_port}/live/{INGEST_KEY}"])
    try:
        daemon.wait_for("target_status", target="nginx", to="broadcasting")

        # Renewed in place (as certbot does): the same paths, new files.
        cert.write_bytes(new.cert_file.read_bytes())
        key.write_bytes(new.key_file.read_bytes())
        daemon.proc.send_signal(signal.SIGHUP)
        assert daemon.wait_for("config_reloaded")["certificate_reloaded"] is True
        renewed = served_certificate(tls_port)
        assert renewed != first

        # A broken chain: the reload is refused and the renewed certificate stays.
        cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        daemon.proc.send_signal(signal.SIGHUP)
        failed = daemon.wait_for("config_reload_failed")
        assert any("tls_cert_file" in problem for problem in failed["problems"])
        assert served_certificate(tls_port) == renewed
        assert publisher.returncode is None
        # Not ended by the reloads: still the one session.
        assert not [e for e in daemon.events if e.get("event") in ("publish_ended", "publisher_lost")]
    finally:
        publisher.stop()
    assert len([e for e in daemon.events if e.get("event") == "publish_started"]) == 1
    # It ended when we stopped it (ffmpeg, stopped, says FCUnpublish or just closes), and only then.
    ended = daemon.wait_for("publish_ended", timeout=20)
    assert ended["reason"].startswith(("publisher sent ", "connection ")), ended
