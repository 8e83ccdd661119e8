"""Fan-out benchmark: the relay and nginx-rtmp `push`, side by side on the same workload, in ONE run.

For each N in --streams, on fresh processes and one system at a time:
  sink      bench/sink.py, standing in for the platforms (apps t1..t6, any stream name)
  system    (a) the relay: N live streams x --targets simulcast targets, all to the sink
            (b) nginx-rtmp: one `application live { live on; push rtmp://SINK/tK; ... }`,
                `worker_processes 1;` (one core, like the relay's one event loop)
            [(c) with --baseline: nothing; the loadgen publishes straight to the sink]
  loadgen   bench/loadgen.py, N streams of the workload clip at real-time pace

Once every target is publishing on the sink, --warmup seconds pass, then the --window is
measured: CPU (utime+stime from /proc/PID/stat) of the system, loadgen and sink, peak RSS
(VmHWM) of the system, delivered bytes and latency per target. See bench/README.md.

    python bench/fanout.py --streams 1 8 --targets 6 --warmup 5 --window 20 [--json out.json]

--scenario slow-target: the same, except that each stream's last target goes through a
throttling TCP proxy (testbed/throttle.py) that reads at --slow-rate bytes a second,
for both systems. The table then splits the targets into the normal ones and the slow one,
and adds the relay's drop counters (from the `relay_status` snapshot it logs on SIGUSR1 at
the end of the window) and nginx's (`<dropped>` per push in its rtmp_stat page).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.media import load_clip
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import accepts_connections, free_port, wait_until
from testbed.relay_proc import RelayProcess, write_config
from testbed.throttle import ThrottleProxy

BENCH_DIR = Path(__file__).resolve().parent
RUNS_DIR = REPO_ROOT / ".cache" / "bench" / "runs"
CLK_TCK = os.sysconf("SC_CLK_TCK")
KEY_PREFIX = "bench-stream-key-"
INGEST_APP = "live"
READY_TIMEOUT = 30.0
DRAIN_S = 1.5  # after the window, for the last tags sent in it to arrive
SNAPSHOT_MARGIN_S = 1.0  # the relay's status snapshot is taken this long before the window


# --- /proc ------------------------------------------------------------------------------

def cpu_ticks(pid: int) -> tuple[int, int]:
    """(utime, stime) of one process, in clock ticks ((0, 0) if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0, 0
    return int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), counted after "pid (comm)"


def cpu_of(pids: list[int]) -> tuple[int, int]:
    """(utime, stime) summed over processes."""
    times = [cpu_ticks(p) for p in pids]
    return sum(t[0] for t in times), sum(t[1] for t in times)


def children(pid: int) -> list[int]:
    """Direct children of a process (nginx's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def vm_hwm_kb(pid: int) -> int:
    """Peak resident set size (VmHWM) in kB (0 if gone)."""
    try:
        match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(match.group(1)) if match else 0


def vm_rss_kb(pid: int) -> int:
    """Current resident set size (VmRSS) in kB (0 if gone)."""
    try:
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(match.group(1)) if match else 0


def machine_ticks() -> dict[str, int]:
    """Machine-wide CPU ticks from /proc/stat's `cpu` line (all cores): busy, softirq, total."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return {"busy": user + nice + system + irq + softirq + steal, "softirq": softirq,
            "total": sum(fields)}


def code_under_test(root: Path = REPO_ROOT) -> dict[str, Any]:
    """Which relay code was measured: the commit, and a digest of relay/ as it is on disk (others edit it)."""
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True, check=False).stdout.strip()
    digest = hashlib.sha256()
    for path in sorted([*(root / "relay").rglob("*.py"), *(root / "relay").rglob("*.pyx")]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "relay_dirty_files": len(git("status", "--short", "relay").splitlines()),
            "relay_tree_sha256": digest.hexdigest()[:16]}


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    mhz = re.search(r"^cpu MHz\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    nginx_v = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False).stderr.strip()
    try:
        from importlib.metadata import version
        uv: str | None = version("uvloop")
    except ImportError:
        uv = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else "?",
        "cpu_mhz": mhz.group(1).strip() if mhz else "?",
        "python": platform.python_version(),
        "uvloop": uv,
        "kernel": platform.release(),
        "nginx": nginx_v.replace("nginx version: ", ""),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


# --- child processes speaking JSON lines ----------------------------------------------------

class JsonLinesProc:
    """A bench child (loadgen, sink) with commands on stdin and JSON events on stdout."""

    def __init__(self, name: str, cmd: list[str], log_path: Path) -> None:
        self.name = name
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.log.write(line)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no {name!r} event within {timeout:g} s (exit {self.proc.poll()})")
            try:
                event = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and self.events.empty():
                    raise RuntimeError(f"{self.name} exited {self.proc.returncode} before {name!r}") from None
                continue
            if event.get("event") == name:
                return event

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._thread.join(2)
        self.log.close()


# --- the systems under test --------------------------------------------------------------

class System:
    """A relay under test: start it, the pids to account, stop it, its log."""

    name = "?"
    expected_per_stream = 0

    def start(self, sink_port: int, n: int, targets: int, slow_port: int | None = None) -> int:
        """Start; the ingest port. With slow_port, each stream's last target goes there instead."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        return []

    def stop(self) -> None:
        pass

    def log_summary(self) -> dict[str, Any]:
        return {}


class RelaySystem(System):
    """The relay; `write_interval` None leaves the config's default (the schema's), else sets target_defaults."""

    def __init__(self, workdir: Path, name: str = "relay", write_interval: float | None = None,
                 pure: bool = False, tree: Path | None = None) -> None:
        self.workdir = workdir
        self.name = name
        self.write_interval = write_interval
        self.pure = pure  # RELAY_PURE_PYTHON=1: the pure-Python per-tag path, not the compiled twins
        self.tree = tree  # another checkout's relay (relay-base), else this one
        self.daemon: RelayProcess | None = None

    def start(self, sink_port: int, n: int, targets: int, slow_port: int | None = None) -> int:
        self.expected_per_stream = targets

        def target_port(k: int) -> int:
            return slow_port if slow_port is not None and k == targets else sink_port

        port = free_port()
        config: dict[str, Any] = {
            # Every publisher comes from loadgen on 127.0.0.1: lift the per-address cap (16 by default).
            "server": {"listen": f"127.0.0.1:{port}", "app": INGEST_APP,
                       "limits": {"max_connections_per_address": max(16, n + 8)}},
            "live_streams": [
                {
                    "name": f"bench-{i:03d}",
                    "stream_key": f"{KEY_PREFIX}{i:03d}",
                    "simulcast_targets": [
                        {"url": f"rtmp://127.0.0.1:{target_port(k)}/t{k}", "stream_key": f"{KEY_PREFIX}{i:03d}",
                         "passthrough": f"t{k}"}
                        for k in range(1, targets + 1)
                    ],
                }
                for i in range(n)
            ],
        }
        if self.write_interval is not None:
            config["target_defaults"] = {"write_interval": self.write_interval}
        path = write_config(self.workdir / "relay.yaml", config)
        self.daemon = RelayProcess(path, env={"RELAY_PURE_PYTHON": "1"} if self.pure else None,
                                   **({"tree": self.tree} if self.tree is not None else {}))
        self.daemon.wait_for("relay_listening", timeout=15)
        wait_until(lambda: accepts_connections(port), 10, f"the relay on port {port}")
        return port

    def pids(self) -> list[int]:
        return [self.daemon.proc.pid] if self.daemon else []

    def status_snapshot(self, timeout: float = 10.0) -> dict[str, Any]:
        """SIGUSR1, then the `relay_status` event the relay logs: every live stream and target."""
        assert self.daemon is not None
        count = sum(e.get("event") == "relay_status" for e in self.daemon.events)
        self.daemon.proc.send_signal(signal.SIGUSR1)
        event = self.daemon.wait_for("relay_status", timeout=timeout, count=count + 1)
        return {"live_streams": event.get("live_streams", [])}

    def stop(self) -> None:
        if self.daemon is not None:
            try:
                self.daemon.terminate(10)
            finally:
                self.daemon.kill()
            (self.workdir / "relay.log").write_text(self.daemon.output)

    def log_summary(self) -> dict[str, Any]:
        if self.daemon is None:
            return {}
        events = self.daemon.events
        levels: dict[str, int] = {}
        notable: dict[str, int] = {}
        for e in events:
            level = str(e.get("level", "?"))
            levels[level] = levels.get(level, 0) + 1
            if level in ("warning", "error", "critical") or e.get("to_status") == "errored":
                notable[str(e.get("event"))] = notable.get(str(e.get("event")), 0) + 1
        samples = [e for e in events if e.get("level") in ("warning", "error", "critical")][:5]
        # The last target_dropping line of each target, and each target's errored transitions.
        dropping: dict[str, dict[str, Any]] = {}
        errored: dict[str, list[str]] = {}
        for e in events:
            where = f"{e.get('live_stream')}/{e.get('target')}"
            if e.get("event") == "target_dropping":
                lines = dropping.get(where, {}).get("lines", 0) + 1
                dropping[where] = {k: e.get(k) for k in ("dropped_frames", "dropped_bytes", "new_drops")}
                dropping[where]["lines"] = lines
            elif e.get("event") == "target_status" and e.get("to") == "errored":
                errored.setdefault(where, []).append(str(e.get("reason")))
        return {"levels": levels, "notable": notable, "samples": samples, "target_dropping": dropping,
                "target_errored": errored, "exit": self.daemon.proc.returncode}


class NginxSystem(System):
    name = "nginx"

    def __init__(self, workdir: Path, stat: bool = False) -> None:
        self.prefix = workdir / "nginx"
        self.nginx: NginxRtmp | None = None
        self.stat_port = free_port() if stat else None  # an http server with rtmp_stat (per-push drops)

    def start(self, sink_port: int, n: int, targets: int, slow_port: int | None = None) -> int:
        self.expected_per_stream = targets

        def target_port(k: int) -> int:
            return slow_port if slow_port is not None and k == targets else sink_port

        pushes = "\n".join(f"push rtmp://127.0.0.1:{target_port(k)}/t{k};" for k in range(1, targets + 1))
        stat = ("http {\n    access_log off;\n"
                f"    server {{ listen 127.0.0.1:{self.stat_port}; location /stat {{ rtmp_stat all; }} }}\n}}\n"
                if self.stat_port else "")
        # One worker, as nginx-rtmp's live fan-out needs; 4096 connections for N=96 x 7.
        self.nginx = NginxRtmp(self.prefix, [RtmpApp(INGEST_APP, "live on;\n" + pushes)],
                               worker_connections=4096, main_directives=stat)
        self.nginx.start()
        return self.nginx.port

    def pids(self) -> list[int]:
        if self.nginx is None or self.nginx.proc is None:
            return []
        return [self.nginx.proc.pid, *children(self.nginx.proc.pid)]

    def stat(self, slow_port: int | None) -> dict[str, Any]:
        """Per push session (client of the live stream), from rtmp_stat: its address and `<dropped>` count."""
        if self.stat_port is None:
            return {}
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stat_port}/stat", timeout=10) as resp:
            xml = resp.read().decode(errors="replace")
        (self.prefix / "stat.xml").write_text(xml)
        pushes = []
        for client in re.findall(r"<client>(.*?)</client>", xml, re.DOTALL):
            if "<publishing/>" in client:
                continue  # the loadgen's publish
            address = re.search(r"<address>(.*?)</address>", client)
            dropped = re.search(r"<dropped>(\d+)</dropped>", client)
            addr = address.group(1) if address else ""
            pushes.append({"address": addr, "dropped": int(dropped.group(1)) if dropped else None,
                           # A push's address is HOST:PORT/APP of where it pushes to.
                           "slow": slow_port is not None and f":{slow_port}/" in addr + "/"})
        return {"pushes": pushes}

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()

    def log_summary(self) -> dict[str, Any]:
        path = self.prefix / "error.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        levels: dict[str, int] = {}
        for level in re.findall(r"^\S+ \S+ \[(\w+)\]", text, re.MULTILINE):
            levels[level] = levels.get(level, 0) + 1
        bad = [line for line in text.splitlines() if re.search(r"\[(error|crit|alert|emerg)\]", line)]
        return {"levels": levels, "samples": bad[:5]}


class DirectSystem(System):
    """No relay at all: the loadgen publishes to the sink (the floor of the latency figures)."""

    name = "direct"
    expected_per_stream = 1

    def __init__(self, sink_port: int) -> None:
        self.sink_port = sink_port

    def start(self, sink_port: int, n: int, targets: int, slow_port: int | None = None) -> int:
        return sink_port


# --- one measurement -------------------------------------------------------------------------

def run_one(system_name: str, n: int, args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    """Sink, system, loadgen; warm-up; window; reports. Everything torn down before returning."""
    workdir = run_dir / f"n{n}-{system_name}"
    workdir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    sends_path = workdir / "sends.json"
    slow = args.scenario == "slow-target"
    slow_app = f"t{args.targets}"
    sink = JsonLinesProc("sink", [py, str(BENCH_DIR / "sink.py"), "--control", "--duration", "900",
                                  *(["--slow-apps", slow_app] if slow else [])],
                         workdir / "sink.stderr")
    system: System | None = None
    loadgen: JsonLinesProc | None = None
    profiler: subprocess.Popen[bytes] | None = None
    proxy: ThrottleProxy | None = None
    try:
        sink_port = int(sink.wait_event("listening", 20)["port"])
        if slow:
            # One proxy (a thread of this process) for all N slow targets; each connection gets its own rate.
            proxy = ThrottleProxy(sink_port, args.slow_rate).start()
        if system_name == "relay":
            system = RelaySystem(workdir, "relay", args.relay_write_interval)
        elif system_name == "relay-wi0":
            system = RelaySystem(workdir, "relay-wi0", 0.0)
        elif system_name == "relay-pure":
            system = RelaySystem(workdir, "relay-pure", args.relay_write_interval, pure=True)
        elif system_name == "relay-base":
            system = RelaySystem(workdir, "relay-base", args.relay_write_interval, tree=args.base_tree.resolve())
        elif system_name == "nginx":
            system = NginxSystem(workdir, stat=slow)
        else:
            system = DirectSystem(sink_port)
        port = system.start(sink_port, n, args.targets, proxy.port if proxy else None)
        app = "direct" if system_name == "direct" else INGEST_APP
        loadgen = JsonLinesProc(
            "loadgen",
            [py, str(BENCH_DIR / "loadgen.py"), "--url", f"rtmp://127.0.0.1:{port}/{app}", "--streams", str(n),
             "--key-prefix", KEY_PREFIX, "--control", "--sends-out", str(sends_path),
             "--duration", str(args.warmup + args.window + 120)],
            workdir / "loadgen.stderr",
        )
        published = loadgen.wait_event("published", READY_TIMEOUT)
        if published["streams"] != n:
            raise RuntimeError(f"only {published['streams']}/{n} streams published: {published['failed']}")
        expected = n * system.expected_per_stream
        deadline = time.monotonic() + READY_TIMEOUT
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            sink.send("status")
            status = sink.wait_event("status", 5)
            if status["publishing"] >= expected:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{system_name}: only {status.get('publishing')}/{expected} targets publishing "
                               f"on the sink after {READY_TIMEOUT:g} s; logs: {system.log_summary()}")
        ready_at = time.monotonic_ns()
        ws = ready_at + int(args.warmup * 1e9)
        we = ws + int(args.window * 1e9)
        for proc in (loadgen, sink):
            proc.send(f"window {ws} {we}")
        pids = {"system": system.pids(), "loadgen": [loadgen.proc.pid], "sink": [sink.proc.pid]}
        # The systems' own counters, SNAPSHOT_MARGIN_S before the window and after the drain: never
        # inside the window, because the relay writes its snapshot (one JSON line of every target) on
        # its event loop, which stalls every target for a few ms at N=1 and ~25 ms at N=32.
        extra: dict[str, Any] = {}
        _sleep_until(ws - int(SNAPSHOT_MARGIN_S * 1e9))
        if isinstance(system, RelaySystem):
            extra["relay_status_start"] = system.status_snapshot()
        elif isinstance(system, NginxSystem) and slow:
            extra["nginx_stat_start"] = system.stat(proxy.port if proxy else None)
        _sleep_until(ws)
        if system_name == "nginx":
            pids["system"] = system.pids()  # the worker, for sure started by now
        before = {role: cpu_of(ps) for role, ps in pids.items()}
        machine_before = machine_ticks()
        t_before = time.monotonic_ns()
        if args.profile and isinstance(system, RelaySystem):
            profiler = _start_profiler(pids["system"][0], args.window, workdir, args.profile)
        rss_samples = _sample_rss_until(we, pids["system"])
        after = {role: cpu_of(ps) for role, ps in pids.items()}
        machine_after = machine_ticks()
        t_after = time.monotonic_ns()
        rss_kb = sum(vm_hwm_kb(p) for p in pids["system"])
        rss_end_kb = sum(vm_rss_kb(p) for p in pids["system"])
        sink.send("status")
        status_end = sink.wait_event("status", 5)
        _sleep_until(we + int(DRAIN_S * 1e9))
        if isinstance(system, RelaySystem):
            extra["relay_status"] = system.status_snapshot()
        elif isinstance(system, NginxSystem) and slow:
            extra["nginx_stat"] = system.stat(proxy.port if proxy else None)
        if proxy is not None:
            extra["proxy"] = {"rate": args.slow_rate, "connections": proxy.connections,
                              "forwarded_bytes": proxy.forwarded}
        loadgen.send("stop")
        lg = loadgen.wait_event("report", 30)
        sink.send(f"report {sends_path}")
        sk = sink.wait_event("report", 60)
        measured_s = (t_after - t_before) / 1e9
        cpu_ms = {role: (sum(after[role]) - sum(before[role])) * 1000 / CLK_TCK for role in pids}
        cpu_user_ms = (after["system"][0] - before["system"][0]) * 1000 / CLK_TCK
        cpu_sys_ms = (after["system"][1] - before["system"][1]) * 1000 / CLK_TCK
        result = {
            "system": system_name,
            "streams": n,
            "targets": system.expected_per_stream,
            "window_s": measured_s,
            "pids": pids,
            "cpu_ms": cpu_ms,
            "system_cpu_split_ms": {"user": cpu_user_ms, "kernel": cpu_sys_ms},
            "rss_kb": rss_kb,
            "rss_end_kb": rss_end_kb,
            # Whole machine, all cores. With tick-based accounting (no IRQ_TIME_ACCOUNTING) softirq ticks,
            # i.e. loopback TCP receive work, are also charged to the stime of whichever process was running.
            "machine_cpu": {k: machine_after[k] - machine_before[k] for k in machine_before},
            "rss_samples_kb": rss_samples,
            "scenario": args.scenario,
            "slow_app": slow_app if slow else None,
            **extra,
            "loadgen": lg,
            "sink": sk,
            "publishing_at_window_end": status_end["publishing"],
            "expected_publishing": expected,
        }
        if profiler is not None:
            result["profile"] = _finish_profiler(profiler, workdir)
        return result
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        if loadgen is not None:
            loadgen.stop()
        logs: dict[str, Any] = {}
        if system is not None:
            system.stop()
            logs = system.log_summary()
        sink.stop()
        if proxy is not None:
            proxy.stop()
        (workdir / "system-log-summary.json").write_text(json.dumps(logs, indent=1, default=str))


def _sample_rss_until(t_ns: int, pids: list[int]) -> list[int]:
    """Sleep until t_ns, reading the summed VmRSS of `pids` about once a second (kB, first at once)."""
    samples = [sum(vm_rss_kb(p) for p in pids)]
    while (left := t_ns - time.monotonic_ns()) > 0:
        time.sleep(min(left / 1e9, 1.0))
        if t_ns - time.monotonic_ns() > 0:
            samples.append(sum(vm_rss_kb(p) for p in pids))
    return samples


def _sleep_until(t_ns: int) -> None:
    while (left := t_ns - time.monotonic_ns()) > 0:
        time.sleep(min(left / 1e9, 1.0))


def _start_profiler(pid: int, seconds: float, workdir: Path, mode: str) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("py-spy not found: pip install py-spy into the venv", file=sys.stderr)
        return None
    how = ["--native"] if mode == "native" else ["--nonblocking"]
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200", *how,
         "--format", "raw", "--output", str(workdir / "relay-profile.txt")],
        stdout=subprocess.DEVNULL, stderr=(workdir / "py-spy.stderr").open("w"),
    )


def _finish_profiler(proc: subprocess.Popen[bytes], workdir: Path) -> dict[str, Any]:
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    return top_functions(workdir / "relay-profile.txt")


def top_functions(path: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample counts per function from py-spy's raw (collapsed) output."""
    if not path.exists():
        return {}
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for f in set(frames):
            incl_counts[f] = incl_counts.get(f, 0) + count
    return {
        "samples": total,
        "self": sorted(self_counts.items(), key=lambda kv: -kv[1])[:top],
        "inclusive": sorted(incl_counts.items(), key=lambda kv: -kv[1])[:top],
    }


# --- summary and tables --------------------------------------------------------------------------

def summarize(r: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run, flattened for the table."""
    n, window = r["streams"], r["window_s"]
    sink = r["sink"]
    targets = [t for key, t in sink["targets"].items() if key.split("/", 1)[1].startswith(KEY_PREFIX)]
    ratios = [t["delivery_ratio"] for t in targets if t.get("delivery_ratio") is not None]
    rates = [t.get("bitrate_mbps", 0.0) for t in targets]
    expected = r["expected_publishing"]
    published = sum(p["bytes"] for p in r["loadgen"]["published"].values())
    return {
        "cpu_ms_per_stream_s": r["cpu_ms"]["system"] / (n * window),
        "cpu_user_per_stream_s": r["system_cpu_split_ms"]["user"] / (n * window),
        "cpu_kernel_per_stream_s": r["system_cpu_split_ms"]["kernel"] / (n * window),
        "cpu_pct": r["cpu_ms"]["system"] / (window * 10),
        "rss_mb": r["rss_kb"] / 1024,
        "published_mbps_per_stream": published * 8 / window / 1e6 / n,
        "targets_seen": f"{len(targets)}/{expected}",
        "bitrate_mean": sum(rates) / len(rates) if rates else 0.0,
        "bitrate_min": min(rates) if rates else 0.0,
        "delivery_min": min(ratios) if ratios else 0.0,
        "delivery_mean": sum(ratios) / len(ratios) if ratios else 0.0,
        "lost_video": sum(max(0, t.get("lost_video", 0)) for t in targets),
        "duplicates": sum(t.get("duplicates", 0) for t in targets),
        "mismatches": sink["mismatches"],
        "lat_p50": sink["latency_ms"]["p50"],
        "lat_p99": sink["latency_ms"]["p99"],
        "lat_max": sink["latency_ms"]["max"],
        "lat_count": sink["latency_ms"]["count"],
        "loadgen_cpu_pct": r["cpu_ms"]["loadgen"] / (window * 10),
        "sink_cpu_pct": r["cpu_ms"]["sink"] / (window * 10),
        "lateness_p99": r["loadgen"]["lateness_ms"]["p99"],
        "loadgen_errors": len(r["loadgen"]["errors"]),
        "log_problems": sum(count for level, count in r.get("system_log", {}).get("levels", {}).items()
                            if level.lower() in ("warning", "warn", "error", "crit", "critical", "alert", "emerg")),
        "rss_end_mb": r.get("rss_end_kb", 0) / 1024,
        **({"machine_busy_pct": 100 * r["machine_cpu"]["busy"] / max(1, r["machine_cpu"]["total"]),
            "machine_softirq_pct": 100 * r["machine_cpu"]["softirq"] / max(1, r["machine_cpu"]["total"])}
           if "machine_cpu" in r else {}),
        "rss_start_mb": (r.get("rss_samples_kb") or [0])[0] / 1024,
        **(summarize_slow(r) if r.get("scenario") == "slow-target" else {}),
    }


def summarize_slow(r: dict[str, Any]) -> dict[str, Any]:
    """The slow-target scenario's figures: normal targets vs the slow one, and the drop counters."""
    window = r["window_s"]
    slow_app = r["slow_app"]
    all_targets = {key: t for key, t in r["sink"]["targets"].items() if key.split("/", 1)[1].startswith(KEY_PREFIX)}
    normal = [t for key, t in all_targets.items() if key.split("/", 1)[0] != slow_app]
    slow = [t for key, t in all_targets.items() if key.split("/", 1)[0] == slow_app]

    def ratios(ts: list[dict[str, Any]]) -> list[float]:
        return [t["delivery_ratio"] for t in ts if t.get("delivery_ratio") is not None]

    nr, sr = ratios(normal), ratios(slow)
    lat = r["sink"].get("latency_ms_normal", {})
    out: dict[str, Any] = {
        "normal_seen": len(normal),
        "slow_seen": len(slow),
        "normal_delivery_min": min(nr) if nr else 0.0,
        "normal_delivery_mean": sum(nr) / len(nr) if nr else 0.0,
        "normal_lost_video": sum(max(0, t.get("lost_video", 0)) for t in normal),
        "normal_mismatches": sum(t.get("mismatches", 0) for t in normal),
        "slow_mismatches": sum(t.get("mismatches", 0) for t in slow),
        "normal_lat_p50": lat.get("p50", 0.0),
        "normal_lat_p99": lat.get("p99", 0.0),
        "normal_lat_max": lat.get("max", 0.0),
        "slow_delivery_mean": sum(sr) / len(sr) if sr else 0.0,
        "slow_delivery_min": min(sr) if sr else 0.0,
        "slow_delivery_max": max(sr) if sr else 0.0,
        "slow_mbps": (sum(t.get("bitrate_mbps", 0.0) for t in slow) / len(slow)) if slow else 0.0,
        "slow_publishes": sum(t.get("publishes", 0) for t in slow),
    }
    slow_lat = [t["latency_ms"] for t in slow if t.get("latency_ms", {}).get("count")]
    out.update({
        "slow_lat_p50": sum(x["p50"] for x in slow_lat) / len(slow_lat) if slow_lat else 0.0,
        "slow_lat_max": max((x["max"] for x in slow_lat), default=0.0),
    })
    status, status0 = r.get("relay_status"), r.get("relay_status_start")
    if status and status0:
        def per_target(snap: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
            return {(ls["name"], t["passthrough"]): t for ls in snap["live_streams"] for t in ls["simulcast_targets"]}

        end, start = per_target(status), per_target(status0)

        def delta(field: str, is_slow: bool) -> int:
            return sum(t[field] - start.get(key, {}).get(field, 0) for key, t in end.items()
                       if (key[1] == slow_app) == is_slow)

        log = r.get("system_log", {})
        n_slow = sum(1 for key in end if key[1] == slow_app)
        out.update({
            "slow_dropped_frames": delta("dropped_frames", True),
            "slow_dropped_mb": delta("dropped_bytes", True) / 1e6,
            "slow_sent_mb": delta("bytes_sent", True) / 1e6 / max(1, n_slow),
            "slow_connections": sum(t["connections"] for key, t in end.items() if key[1] == slow_app),
            "slow_status": ",".join(sorted({t["status"] for key, t in end.items() if key[1] == slow_app})),
            "normal_dropped_frames": delta("dropped_frames", False),
            "dropping_lines": sum(v.get("lines", 0) for v in log.get("target_dropping", {}).values()),
            "errored_transitions": sum(len(v) for v in log.get("target_errored", {}).values()),
        })
    stat, stat0 = r.get("nginx_stat"), r.get("nginx_stat_start")
    if stat and stat0:
        pushes, pushes0 = stat.get("pushes", []), stat0.get("pushes", [])

        def dropped(ps: list[dict[str, Any]], is_slow: bool) -> int:
            return sum(p["dropped"] or 0 for p in ps if p["slow"] == is_slow)

        out.update({
            "slow_dropped_frames": dropped(pushes, True) - dropped(pushes0, True),
            "normal_dropped_frames": dropped(pushes, False) - dropped(pushes0, False),
            "nginx_pushes_in_stat": len(pushes),
            "nginx_slow_pushes_in_stat": sum(p["slow"] for p in pushes),
        })
    out["slow_window_s"] = window
    return out


ROWS: list[tuple[str, str, str, bool]] = [
    # key, label, format, ratio?
    ("cpu_ms_per_stream_s", "CPU ms per stream-second", "{:.1f}", True),
    ("cpu_user_per_stream_s", "  of which user (utime)", "{:.1f}", True),
    ("cpu_kernel_per_stream_s", "  of which kernel (stime)", "{:.1f}", True),
    ("cpu_pct", "CPU % of one core", "{:.1f}", True),
    ("rss_mb", "peak RSS (VmHWM) MB", "{:.1f}", True),
    ("published_mbps_per_stream", "published Mbit/s per stream", "{:.2f}", False),
    ("targets_seen", "targets seen on sink", "{}", False),
    ("bitrate_mean", "delivered Mbit/s per target (mean)", "{:.2f}", True),
    ("bitrate_min", "delivered Mbit/s per target (min)", "{:.2f}", True),
    ("delivery_mean", "delivery ratio (mean)", "{:.4f}", True),
    ("delivery_min", "delivery ratio (min)", "{:.4f}", True),
    ("lost_video", "video tags lost (all targets)", "{}", False),
    ("duplicates", "duplicate tags", "{}", False),
    ("mismatches", "hash mismatches", "{}", False),
    ("lat_p50", "latency p50 ms", "{:.2f}", True),
    ("lat_p99", "latency p99 ms", "{:.2f}", True),
    ("lat_max", "latency max ms", "{:.2f}", True),
    ("lat_count", "latency samples (video tags)", "{}", False),
    ("log_problems", "warning/error lines in its log", "{}", False),
    ("loadgen_cpu_pct", "loadgen CPU % of one core", "{:.1f}", False),
    ("sink_cpu_pct", "sink CPU % of one core", "{:.1f}", False),
    ("lateness_p99", "loadgen send lateness p99 ms", "{:.2f}", False),
    ("machine_busy_pct", "machine busy % (all cores)", "{:.0f}", False),
    ("machine_softirq_pct", "  of which softirq %", "{:.1f}", False),
]


SLOW_ROWS: list[tuple[str, str, str, bool]] = [
    ("cpu_ms_per_stream_s", "CPU ms per stream-second", "{:.1f}", True),
    ("cpu_pct", "CPU % of one core", "{:.1f}", True),
    ("rss_mb", "peak RSS (VmHWM) MB", "{:.1f}", True),
    ("rss_start_mb", "RSS at window start MB", "{:.1f}", True),
    ("rss_end_mb", "RSS at window end MB", "{:.1f}", True),
    ("published_mbps_per_stream", "published Mbit/s per stream", "{:.2f}", False),
    ("targets_seen", "targets seen on sink", "{}", False),
    ("normal_delivery_mean", "5 normal targets: delivery ratio (mean)", "{:.4f}", True),
    ("normal_delivery_min", "5 normal targets: delivery ratio (min)", "{:.4f}", True),
    ("normal_lost_video", "5 normal targets: video tags lost", "{}", False),
    ("normal_lat_p50", "5 normal targets: latency p50 ms", "{:.2f}", True),
    ("normal_lat_p99", "5 normal targets: latency p99 ms", "{:.2f}", True),
    ("normal_lat_max", "5 normal targets: latency max ms", "{:.2f}", True),
    ("normal_dropped_frames", "5 normal targets: frames dropped (system's counter, window +-)", "{}", False),
    ("mismatches", "hash mismatches (all targets)", "{}", False),
    ("slow_mbps", "slow target: delivered Mbit/s (mean)", "{:.3f}", True),
    ("slow_delivery_mean", "slow target: delivery ratio (mean)", "{:.4f}", True),
    ("slow_delivery_min", "slow target: delivery ratio (min)", "{:.4f}", True),
    ("slow_delivery_max", "slow target: delivery ratio (max)", "{:.4f}", True),
    ("slow_lat_p50", "slow target: latency p50 ms (mean over targets)", "{:.0f}", True),
    ("slow_lat_max", "slow target: latency max ms", "{:.0f}", True),
    ("slow_dropped_frames", "slow targets: frames dropped (system's counter, window +-, sum)", "{}", False),
    ("slow_dropped_mb", "slow targets: MB dropped (relay's counter, window +-, sum)", "{:.1f}", False),
    ("slow_sent_mb", "slow target: MB sent (relay's counter, window +-, mean)", "{:.2f}", False),
    ("slow_connections", "slow targets: connections since start (sum)", "{}", False),
    ("slow_publishes", "slow targets: publishes seen on sink (sum)", "{}", False),
    ("dropping_lines", "target_dropping lines in the relay's log (whole run)", "{}", False),
    ("errored_transitions", "slow targets: transitions to errored", "{}", False),
    ("log_problems", "warning/error lines in its log", "{}", False),
    ("loadgen_cpu_pct", "loadgen CPU % of one core", "{:.1f}", False),
    ("sink_cpu_pct", "sink CPU % of one core", "{:.1f}", False),
    ("lateness_p99", "loadgen send lateness p99 ms", "{:.2f}", False),
]


SYSTEM_ONLY = {"cpu_ms_per_stream_s", "cpu_user_per_stream_s", "cpu_kernel_per_stream_s", "cpu_pct", "rss_mb",
               "log_problems"}


def table(n: int, targets: int, summaries: dict[str, dict[str, Any]], window: float, warmup: float,
          scenario: str = "standard", slow_rate: int = 0) -> str:
    systems = list(summaries)
    head = ["metric", *systems]
    relays = [s for s in systems if s.startswith("relay")] if "nginx" in summaries else []
    head += [f"{r}/nginx" for r in relays]
    title = (f"N = {n} live streams x {targets} targets = {n * targets} outgoing streams "
             f"(window {window:g} s after {warmup:g} s warm-up)")
    rows = ROWS
    if scenario == "slow-target":
        title += f"; slow-target: t{targets} of each stream read at {slow_rate / 1000:g} kB/s"
        rows = SLOW_ROWS
    lines = [title, ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for key, label, fmt, ratio in rows:
        cells = [label, *("-" if (s == "direct" and key in SYSTEM_ONLY) or key not in summaries[s]
                          else fmt.format(summaries[s][key]) for s in systems)]
        for relay in relays:
            a, b = summaries[relay].get(key), summaries["nginx"].get(key)
            cells.append(f"{a / b:.2f}" if ratio and isinstance(a, (int, float)) and b else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--targets", type=int, default=6, choices=range(1, 7))
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--systems", nargs="+", default=["nginx", "relay", "relay-wi0"],
                    choices=["relay", "relay-wi0", "relay-pure", "relay-base", "nginx", "direct"],
                    help="relay: the config's default write_interval (or --relay-write-interval); "
                         "relay-wi0: write_interval 0 (a write per tag, as before issue #9); "
                         "relay-pure: as relay, on the pure-Python per-tag path (RELAY_PURE_PYTHON=1); "
                         "relay-base: as relay, from the checkout --base-tree (before and after in one run)")
    ap.add_argument("--base-tree", type=Path, metavar="DIR",
                    help="relay-base's checkout (e.g. `git worktree add DIR <commit>`; its compiled twins built "
                         "with `python setup.py build_ext --inplace` there)")
    ap.add_argument("--relay-write-interval", type=float, default=None, metavar="SECONDS",
                    help="the 'relay' system's write_interval (default: the schema's default)")
    ap.add_argument("--baseline", action="store_true", help="also measure 'direct' (loadgen -> sink, no relay)")
    ap.add_argument("--profile", nargs="?", const="python", choices=["python", "native"],
                    help="py-spy the relay during its window (perturbs the figures; 'native' also samples C frames "
                         "and stops the process at each sample)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--scenario", choices=["standard", "slow-target"], default="standard",
                    help="slow-target: each stream's last target reads at --slow-rate through a throttling proxy")
    ap.add_argument("--slow-rate", type=int, default=50_000, help="bytes a second the slow target reads (slow-target)")
    ap.add_argument("--tables", type=Path, metavar="RESULTS_JSON",
                    help="measure nothing: print the tables of an earlier run's results.json (with --out: "
                         "write its summary again)")
    ap.add_argument("--out", type=Path, metavar="PREFIX",
                    help="write PREFIX.md (tables), PREFIX.json (summary figures) and PREFIX.svg (CPU chart)")
    args = ap.parse_args(argv)
    if args.tables:
        earlier = json.loads(args.tables.read_text())
        print_tables(earlier)
        if args.out:
            _write_outputs(args.out, earlier)
        return 0
    if ("relay-base" in args.systems) != (args.base_tree is not None):
        ap.error("relay-base and --base-tree go together")
    if args.base_tree is not None and not list(args.base_tree.glob("relay/*/_speedups*.so")):
        ap.error(f"{args.base_tree} has no compiled twins (relay/*/_speedups*.so): build or copy them there, "
                 "or relay-base would run the pure-Python path")
    if args.baseline and "direct" not in args.systems:
        args.systems.append("direct")
    if args.scenario == "slow-target" and "direct" in args.systems:
        ap.error("--scenario slow-target compares relay and nginx; drop direct/--baseline")
    clip = load_clip()  # generate the clip before anything is timed
    info = machine()
    code = code_under_test()
    if args.base_tree is not None:
        code["relay-base"] = code_under_test(args.base_tree.resolve())
    run_dir = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=_mkdir(RUNS_DIR)))
    print(f"machine: {info}")
    print(f"code: {code}")
    print(f"clip: {clip.path.name}, {clip.bitrate_bps / 1e6:.2f} Mbit/s payload, loop {clip.loop_ms} ms")
    print(f"run dir: {run_dir}", flush=True)
    out: dict[str, Any] = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": info, "code": code,
                           "clip": {"path": clip.path.name, "bitrate_bps": clip.bitrate_bps},
                           "args": {k: str(v) for k, v in vars(args).items()}, "runs": []}
    status = 0
    for n in args.streams:
        summaries: dict[str, dict[str, Any]] = {}
        for system_name in args.systems:
            t0 = time.monotonic()
            print(f"-- N={n} {system_name} ...", flush=True)
            try:
                result = run_one(system_name, n, args, run_dir)
            except (RuntimeError, TimeoutError, OSError, AssertionError) as exc:  # AssertionError: RelayProcess waits
                print(f"   FAILED: {exc}", flush=True)
                traceback.print_exc()
                out["runs"].append({"system": system_name, "streams": n, "error": str(exc)})
                status = 1
                continue
            logs_path = run_dir / f"n{n}-{system_name}" / "system-log-summary.json"
            result["system_log"] = json.loads(logs_path.read_text()) if logs_path.exists() else {}
            result["summary"] = summaries[system_name] = summarize(result)
            out["runs"].append(result)
            print(f"   done in {time.monotonic() - t0:.0f} s", flush=True)
            if "profile" in result:
                print(format_profile(result["profile"]))
        if summaries:
            print()
            print(table(n, args.targets, summaries, args.window, args.warmup, args.scenario, args.slow_rate))
            print(flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    (run_dir / "results.json").write_text(json.dumps(out, indent=1, default=str))
    if args.out:
        _write_outputs(args.out, out)
    return status


def _write_outputs(prefix: Path, out: dict[str, Any]) -> None:
    from bench.report import write_report

    a = out["args"]
    by_n = _summaries_by_n(out)
    tables = [table(n, int(a["targets"]), row, float(a["window"]), float(a["warmup"]),
                    a.get("scenario", "standard"), int(a.get("slow_rate", 0))) for n, row in by_n.items()]
    for path in write_report(prefix, out, by_n, tables):
        print(f"wrote {path}")


def _summaries_by_n(out: dict[str, Any]) -> dict[int, dict[str, dict[str, Any]]]:
    by_n: dict[int, dict[str, dict[str, Any]]] = {}
    for r in out["runs"]:
        if "error" not in r:
            by_n.setdefault(r["streams"], {})[r["system"]] = summarize(r)
    return by_n


def print_tables(out: dict[str, Any]) -> None:
    """The tables of a results file, as the run printed them (with this version's rows)."""
    a = out["args"]
    print(f"command: {out['command']}\nmachine: {out['machine']}\ncode: {out['code']}\n")
    for n, summaries in _summaries_by_n(out).items():
        print(table(n, int(a["targets"]), summaries, float(a["window"]), float(a["warmup"]),
                    a.get("scenario", "standard"), int(a.get("slow_rate", 0))))
        print()


def format_profile(profile: dict[str, Any]) -> str:
    if not profile:
        return "(no profile)"
    total = profile["samples"] or 1
    lines = [f"relay profile: {profile['samples']} samples; top functions by self time:"]
    for name, count in profile["self"]:
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    lines.append("by inclusive time:")
    for name, count in profile["inclusive"]:
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
