"""The relay daemon as a real process, for end-to-end tests.

It runs `python -m relay run` with JSON logs on stderr; a reader thread parses every line,
so tests wait on log events (with a timeout) instead of sleeping, and can search all the
output the daemon ever wrote for stream keys. It logs at debug by default, so that tests
can wait on every status change (a target's `starting` and its retries are debug lines);
each event carries its `level`, for tests of what an operator sees at info.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


class _NoAliases(yaml.SafeDumper):
    """The relay refuses YAML anchors and aliases; PyYAML writes them for an object used twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write a config dict as YAML, readable by the owner only (no permission warning)."""
    path.write_text(yaml.dump(config, Dumper=_NoAliases, sort_keys=False))
    path.chmod(0o600)
    return path


class RelayProcess:
    """A running relay daemon whose log events can be awaited."""

    def __init__(self, config_path: Path, *, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = (), wrapper: tuple[str, ...] = (), log_level: str = "debug",
                 tree: Path = REPO) -> None:
        self.config_path = config_path
        self.events: list[dict[str, Any]] = []
        self.raw_lines: list[str] = []
        self._cond = threading.Condition()
        full_env = {**os.environ, **(env or {})}
        full_env.pop("JOURNAL_STREAM", None)
        if tree != REPO:  # another checkout's relay (bench/fanout.py's relay-base), first on the path
            full_env["PYTHONPATH"] = str(tree)
        self.proc = subprocess.Popen(
            # `wrapper` runs the daemon inside another command that execs it (e.g. unshare).
            [*wrapper, sys.executable, "-m", "relay", "run", "--config", str(config_path), "--log-format", "json",
             "--log-level", log_level, *args],
            cwd=tree, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.raw_lines.append(line)
                try:
                    event = json.loads(line)
                except ValueError:
                    event = {"event": "<unparsed>", "line": line}
                if isinstance(event, dict):
                    self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        """Everything the daemon wrote so far."""
        with self._cond:
            return "".join(self.raw_lines)

    def wait_for(self, event: str, timeout: float = 15.0, count: int = 1, **fields: Any) -> dict[str, Any]:
        """Wait until `count` log events named `event` with these fields were written; return the last."""
        def matching() -> list[dict[str, Any]]:
            return [e for e in self.events
                    if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]

        with self._cond:
            done = self._cond.wait_for(lambda: len(matching()) >= count or self.proc.poll() is not None, timeout)
            found = matching()
            if len(found) >= count:
                return found[count - 1]
        state = "exited" if self.proc.poll() is not None else "still running"
        raise AssertionError(f"relay ({state}) logged no {count}x {event} {fields} within {timeout} s "
                             f"(wait returned {done}); its output:\n{self.output[-4000:]}")

    def wait_until(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 15.0) -> None:
        """Wait until a predicate over all events so far holds."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.events), timeout):
                raise AssertionError(f"condition not met within {timeout} s; output:\n{self.output[-4000:]}")

    @property
    def port(self) -> int:
        """The plain RTMP port the relay is listening on."""
        return int(self.wait_for("relay_listening", scheme="rtmp")["port"])

    @property
    def http_port(self) -> int:
        """The port of the HTTP API (status, metrics, page)."""
        return int(self.wait_for("relay_listening", scheme="http")["port"])

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(timeout)

    def kill(self) -> None:
        """Make sure the process is gone (teardown)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
