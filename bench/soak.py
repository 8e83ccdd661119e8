"""Soak with churn (issue #8): a long run of the daemon while everything around it comes and goes.

Three live streams, each published by ffmpeg (the 6 s test clip looped, at real-time pace),
with targets on nginx-rtmp:

  steady   publisher never drops; targets `steady` (nginx A) and `slow` (nginx A behind a
           throttling proxy at --slow-rate B/s: it drops, and must account for it). No
           reload touches it: its counters are the ones checked.
  dropper  its publisher is killed (no FCUnpublish) and comes back inside the reconnect
           window, killed again and comes back after it, and once a cycle stops cleanly;
           target `dropper` (nginx A).
  flaky    its target `flaky` is on nginx B, which is stopped and started again every
           cycle; target `stable` (nginx A) changes write_interval by reload, and target
           `extra` (nginx A) comes and goes by reload.

The scenario repeats a 20 s cycle; one reload in the middle of the run is invalid (and
must change nothing). RSS and open fds of the daemon are sampled every 2 s. At the end
the publishers stop cleanly, the relay's counters are read from its SIGUSR1 `relay_status`
snapshot, every target that was broadcasting at the end is decoded with ffprobe from what
nginx recorded, and the daemon is stopped (SIGTERM, exit 0). The run passes when:

- the daemon's output holds no traceback, no `unhandled_error`, no line that is not a
  JSON event, and no stream key;
- RSS and fds at the end are within 10 % of their warm value (after the first cycle; for
  fds, or within 3, whichever is larger: a target reconnecting holds one more for a moment);
- every target broadcasting at the end decodes;
- the counters add up on `steady`: for each of its targets, bytes out (bytes_sent) plus
  reported drops (dropped_bytes) equal the bytes received from the publisher, within 1 KiB
  (they differ by the 16-byte @setDataFrame put back on each script tag). The
  throttle is lifted CATCH_UP seconds before the publishers stop, so that the slow target
  has sent what it held: a target stopped while its socket is full closes with what it
  still holds neither sent nor counted as dropped (measured: up to 6.5 % of the input in
  a 60 s run), which is the send path's accounting, not what this checks.

    python bench/soak.py --duration 600 [--json out.json]      # 10 minutes
    pytest tests/e2e/test_soak.py -m soak                       # the 60 s version
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from testbed.ffmpeg import FfmpegProcess
from testbed.media import source_clip
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import free_port
from testbed.relay_proc import RelayProcess, write_config
from testbed.throttle import ThrottleProxy

CYCLE = 20.0  # seconds; the scenario repeats this cycle
SAMPLE_EVERY = 2.0
RSS_TOLERANCE = 0.10
FDS_TOLERANCE = 0.10
FDS_SLACK = 3
CATCH_UP = 5.0  # seconds of show after the slow target's uplink recovers, before the end
COUNTER_SLACK = 1024  # bytes: the @setDataFrame wrappers (16 bytes a script tag)
KEYS = {name: f"soak-{name}-KEY-{n:02d}c7e1a9d3" for n, name in enumerate(
    ("steady", "dropper", "flaky", "t-steady", "t-slow", "t-dropper", "t-flaky", "t-stable", "t-extra"))}
FFMPEG = ("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Publisher:
    """One live stream's ffmpeg, which the scenario starts, kills and stops."""

    url: str
    clip: Path
    proc: FfmpegProcess | None = None
    starts: int = 0

    def start(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            self.proc = FfmpegProcess([*FFMPEG, "-re", "-stream_loop", "-1", "-i", str(self.clip), "-c", "copy",
                                       "-f", "flv", self.url])
            self.starts += 1

    def kill(self) -> None:
        """Drop without unpublishing (a crashed encoder, a dead uplink)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.proc.kill()
            self.proc.proc.wait()

    def stop(self) -> None:
        """Stop cleanly (SIGTERM: ffmpeg sends FCUnpublish)."""
        if self.proc is not None:
            self.proc.stop()


@dataclass
class Soak:
    """One soak run; `run()` returns its figures and problems."""

    duration: float
    workdir: Path
    slow_rate: int = 50_000
    log: Callable[[str], None] = print
    problems: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)

    def run(self) -> dict[str, Any]:
        clip = source_clip()
        nginx_a = NginxRtmp(self.workdir / "nginx-a", [RtmpApp(a, record=True) for a in
                                                       ("steady", "slow", "dropper", "stable", "extra")],
                            server_directives="chunk_size 4096;")
        nginx_b = NginxRtmp(self.workdir / "nginx-b", [RtmpApp("flaky", record=True)])
        nginx_a.start()
        nginx_b.start()
        throttle = ThrottleProxy(nginx_a.port, rate=self.slow_rate)
        throttle.start()
        config = self._config(nginx_a, nginx_b, throttle)
        config_path = write_config(self.workdir / "relay.yaml", config)
        daemon = RelayProcess(config_path)
        publishers: dict[str, Publisher] = {}
        try:
            port = daemon.port
            publishers = {name: Publisher(f"rtmp://127.0.0.1:{port}/live/{KEYS[name]}", clip)
                          for name in ("steady", "dropper", "flaky")}
            return self._scenario(daemon, config, config_path, publishers, nginx_a, nginx_b, throttle)
        finally:
            for publisher in publishers.values():
                publisher.stop()
            daemon.kill()
            throttle.stop()
            nginx_a.stop()
            nginx_b.stop()
            (self.workdir / "relay.log").write_text(daemon.output)

    # -- the config ------------------------------------------------------------------

    def _config(self, a: NginxRtmp, b: NginxRtmp, throttle: ThrottleProxy) -> dict[str, Any]:
        def target(label: str, url: str, **extra: Any) -> dict[str, Any]:
            return {"url": url, "stream_key": KEYS[f"t-{label}"], "passthrough": label, **extra}

        fast_retry = {"reconnect": {"initial_delay": 0.5, "max_delay": 2.0}}
        return {
            "server": {"listen": f"127.0.0.1:{free_port()}", "app": "live"},
            "http": {"listen": None},
            "live_streams": [
                {"name": "steady", "stream_key": KEYS["steady"], "reconnect_window": 10, "simulcast_targets": [
                    target("steady", a.url("steady")), target("slow", throttle.url("slow"))]},
                {"name": "dropper", "stream_key": KEYS["dropper"], "reconnect_window": 3, "simulcast_targets": [
                    target("dropper", a.url("dropper"))]},
                {"name": "flaky", "stream_key": KEYS["flaky"], "reconnect_window": 10, "simulcast_targets": [
                    target("flaky", b.url("flaky"), **fast_retry), target("stable", a.url("stable"))]},
            ],
        }

    def _reload(self, daemon: RelayProcess, path: Path, config: dict[str, Any], cycle: int, invalid: bool) -> None:
        if invalid:
            path.write_text(path.read_text().replace("live_streams:", "live_streams: [", 1))
            daemon.proc.send_signal(signal.SIGHUP)
            self._count("reloads_invalid")
            daemon.wait_for("config_reload_failed", count=self.events["reloads_invalid"], timeout=20)
            write_config(path, config)  # back to the good file, untouched by the failed reload
            return
        flaky = config["live_streams"][2]
        targets = flaky["simulcast_targets"]
        if cycle % 2:
            targets[1]["write_interval"] = 0.0 if targets[1].get("write_interval") else 0.05
        elif len(targets) == 2:
            targets.append({"url": targets[1]["url"].replace("/stable", "/extra"), "stream_key": KEYS["t-extra"],
                            "passthrough": "extra"})
        else:
            targets.pop()
        write_config(path, config)
        daemon.proc.send_signal(signal.SIGHUP)
        self._count("reloads")
        daemon.wait_for("config_reloaded", count=self.events["reloads"], timeout=20)

    # -- the scenario ------------------------------------------------------------------

    def _scenario(self, daemon: RelayProcess, config: dict[str, Any], path: Path, publishers: dict[str, Publisher],
                  nginx_a: NginxRtmp, nginx_b: NginxRtmp, throttle: ThrottleProxy) -> dict[str, Any]:
        pid = daemon.proc.pid
        for publisher in publishers.values():
            publisher.start()
        daemon.wait_for("target_status", target="steady", to="broadcasting", timeout=30)
        started = time.monotonic()
        cycles = max(1, round(self.duration / CYCLE))
        invalid_cycle = cycles // 2
        # (offset in the cycle, action); the publishers of steady and flaky never stop.
        dropper, plan = publishers["dropper"], [
            (3.0, "kill dropper (rejoins inside its 3 s window)"), (4.5, "start dropper"),
            (5.0, "stop nginx B"), (9.0, "start nginx B"),
            (10.0, "kill dropper (rejoins after its window)"), (14.5, "start dropper"),
            (12.0, "reload"), (17.0, "stop dropper cleanly"), (18.0, "start dropper"),
        ]
        plan.sort()
        next_sample = started
        warm: dict[str, Any] | None = None
        for cycle in range(cycles):
            for offset, action in plan:
                due = started + cycle * CYCLE + offset
                while (now := time.monotonic()) < due:
                    if now >= next_sample:
                        self.samples.append({"t": round(now - started, 1), "rss_kb": rss_kb(pid), "fds": open_fds(pid)})
                        next_sample += SAMPLE_EVERY
                    time.sleep(min(0.2, due - now))  # the scenario's own clock: pacing, not waiting
                if action.startswith("kill dropper"):
                    dropper.kill()
                elif action == "start dropper":
                    dropper.start()
                elif action == "stop dropper cleanly":
                    dropper.stop()
                elif action == "stop nginx B":
                    nginx_b.stop()
                elif action == "start nginx B":
                    nginx_b.start()
                elif action == "reload":
                    self._reload(daemon, path, config, cycle, invalid=cycle == invalid_cycle)
                self._count(action.split(" (")[0])
                if daemon.proc.poll() is not None:
                    self.problems.append(f"the daemon exited ({daemon.proc.returncode}) during '{action}'")
                    return self._figures(daemon, warm)
            if warm is None:
                warm = {"rss_kb": rss_kb(pid), "fds": open_fds(pid), "t": round(time.monotonic() - started, 1)}
        end = {"rss_kb": rss_kb(pid), "fds": open_fds(pid), "t": round(time.monotonic() - started, 1)}
        self.samples.append(end)
        return self._finish(daemon, publishers, nginx_a, nginx_b, throttle, warm, end)

    def _finish(self, daemon: RelayProcess, publishers: dict[str, Publisher], nginx_a: NginxRtmp,
                nginx_b: NginxRtmp, throttle: ThrottleProxy, warm: dict[str, Any] | None,
                end: dict[str, Any]) -> dict[str, Any]:
        up = [e["target"] for e in _last_status(daemon).values() if e["to"] == "broadcasting"]
        # The slow uplink recovers before the show ends, and the slow target catches up: a
        # target stopped while its socket is full closes with what it still holds neither
        # sent nor counted as dropped (the send path's accounting), which would blur the sum.
        throttle.set_rate(None)
        time.sleep(CATCH_UP)  # the scenario's clock: seconds of show at full speed
        for publisher in publishers.values():
            publisher.stop()
        # Every target flushes what it holds (the slow one at its rate), unpublishes and goes idle.
        daemon.wait_until(lambda _: all(_current(daemon, label) == "idle" for label in up), timeout=90)
        daemon.proc.send_signal(signal.SIGUSR1)
        status = daemon.wait_for("relay_status", timeout=20)
        exit_code = daemon.terminate(timeout=10)
        figures = self._figures(daemon, warm, end, status, up, exit_code)
        self._check_decodes(up, nginx_a, nginx_b, figures)
        return figures

    def _figures(self, daemon: RelayProcess, warm: dict[str, Any] | None, end: dict[str, Any] | None = None,
                 status: dict[str, Any] | None = None, up: list[str] | None = None,
                 exit_code: int | None = None) -> dict[str, Any]:
        output = daemon.output
        if "Traceback" in output:
            self.problems.append("a traceback in the daemon's output")
        for name in ("unhandled_error", "<unparsed>"):
            if any(e.get("event") == name for e in daemon.events):
                self.problems.append(f"the daemon logged {name}")
        leaked = [name for name, key in KEYS.items() if key in output]
        if leaked:
            self.problems.append(f"stream keys in the daemon's output: {leaked}")
        if exit_code not in (0, None):
            self.problems.append(f"the daemon exited {exit_code} on SIGTERM")
        figures: dict[str, Any] = {"duration_s": self.duration, "cycles": max(1, round(self.duration / CYCLE)),
                                   "events": dict(self.events), "warm": warm, "end": end,
                                   "samples": self.samples, "targets_up_at_end": up or []}
        if warm is not None and end is not None:
            rss_change = end["rss_kb"] / warm["rss_kb"] - 1
            figures["rss_change"] = round(rss_change, 4)
            figures["rss_max_after_warm_kb"] = max(s["rss_kb"] for s in self.samples if s["t"] >= warm["t"])
            if abs(rss_change) > RSS_TOLERANCE:
                self.problems.append(f"RSS {warm['rss_kb']} kB warm, {end['rss_kb']} kB at the end")
            if abs(end["fds"] - warm["fds"]) > max(FDS_SLACK, FDS_TOLERANCE * warm["fds"]):
                self.problems.append(f"{warm['fds']} fds warm, {end['fds']} at the end")
        if status is not None:
            figures["counters"] = self._check_counters(status)
        figures["log_events"] = _event_counts(daemon)
        figures["problems"] = self.problems
        return figures

    def _check_counters(self, status: dict[str, Any]) -> dict[str, Any]:
        """bytes in = bytes out + reported drops, for each target of the steady live stream."""
        counters: dict[str, Any] = {}
        for live in status.get("live_streams", []):
            if live.get("name") != "steady":
                continue
            # Lifetime totals: the soak may span publish sessions (the per-session counters start over).
            received = live.get("bytes_received_total", live.get("bytes_received"))
            if received is None:  # a snapshot without ingest counters (before issue #10)
                self.problems.append("the relay_status snapshot has no bytes_received")
                return counters
            for target in live.get("simulcast_targets", []):
                sent = target.get("bytes_sent_total", target.get("bytes_sent", target.get("sent_bytes", 0)))
                dropped = target.get("dropped_bytes_total", target.get("dropped_bytes", 0))
                gap = received - (sent + dropped)
                counters[target["passthrough"]] = {"bytes_received": received, "bytes_sent": sent,
                                                   "dropped_bytes": dropped,
                                                   "dropped_frames": target.get("dropped_frames", 0),
                                                   "unaccounted_bytes": gap,
                                                   "unaccounted_share": round(gap / received, 5) if received else None}
                if abs(gap) > COUNTER_SLACK:
                    self.problems.append(f"target {target['passthrough']}: {received} bytes in, {sent} out, "
                                         f"{dropped} dropped: {gap} unaccounted")
        return counters

    def _check_decodes(self, up: list[str], nginx_a: NginxRtmp, nginx_b: NginxRtmp, figures: dict[str, Any]) -> None:
        decoded = {}
        for label in up:
            nginx = nginx_b if label == "flaky" else nginx_a
            # nginx closes a recording when its publisher leaves: the relay's target going idle is
            # not enough (the last session, the dropper's for one, may still be being written).
            nginx.wait_unpublished(KEYS[f"t-{label}"], timeout=30)
            path = nginx.recorded_flv(KEYS[f"t-{label}"], label)
            result = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                                     "-show_entries", "stream=codec_name,nb_read_frames", "-of", "json", str(path)],
                                    capture_output=True, text=True, timeout=120, check=False)
            streams = json.loads(result.stdout or "{}").get("streams", [])
            frames = int(streams[0].get("nb_read_frames", 0)) if streams else 0
            decoded[label] = {"frames": frames, "errors": result.stderr.strip()[:300]}
            if result.returncode != 0 or frames == 0 or result.stderr.strip():
                # Any complaint of the decoder is a problem, not only a file that does not open.
                self.problems.append(f"target {label}: its recording does not decode cleanly "
                                     f"({frames} frames; {result.stderr.strip()[:200]})")
        figures["decoded"] = decoded

    def _count(self, name: str) -> None:
        self.events[name] = self.events.get(name, 0) + 1


def _last_status(daemon: RelayProcess) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for event in daemon.events:
        if event.get("event") == "target_status":
            last[event["target"]] = event
    return last


def _current(daemon: RelayProcess, label: str) -> str | None:
    event = _last_status(daemon).get(label)
    return None if event is None else str(event["to"])


def _event_counts(daemon: RelayProcess) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in daemon.events:
        name = str(event.get("event"))
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600: 10 minutes)")
    parser.add_argument("--slow-rate", type=int, default=50_000, help="the slow target's bytes a second")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, recordings)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="soak-", dir=REPO_ROOT / ".cache")) if args.keep else None
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        soak = Soak(args.duration, workdir or Path(tmp), slow_rate=args.slow_rate)
        figures = soak.run()
    summary = {k: v for k, v in figures.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if workdir is not None:
        print(f"work directory kept: {workdir}", file=sys.stderr)
    return 1 if figures["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
