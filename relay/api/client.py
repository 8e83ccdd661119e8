"""`relay status` and `relay reload`: talk to a running relay over its HTTP API.

Both find the daemon from its config file (http.listen, and the token from http.token,
token_file or token_env), the same file the daemon runs with, unless --url and
--token-file say otherwise. Only the `http` section is read: the stream keys the rest
of the file points to (often in systemd's credentials directory) are not needed here.
Plain stdlib HTTP: these commands must work wherever the relay is installed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from relay.config import HttpConfig
from relay.config.context import LoadContext
from relay.config.errors import ConfigError
from relay.config.yamlsource import read_yaml
from relay.text import printable

DEFAULT_CONFIG = "/etc/simulcast-relay/relay.yaml"
TIMEOUT = 10.0
EXIT_OK = 0
EXIT_ERRORED = 1  # status: a target of an active stream is errored; reload: the file was refused
EXIT_CONFIG = 2
EXIT_UNREACHABLE = 3


class ClientError(Exception):
    """A problem talking to the relay; the message is for the operator; `code` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def endpoint(config_path: str | None, url: str | None, token_file: str | None) -> tuple[str, str | None]:
    """The relay's base URL and token, from the options or the config file's http section."""
    token = Path(token_file).read_text().strip() if token_file else None
    if url is not None:
        return url.rstrip("/"), token
    path = config_path or DEFAULT_CONFIG
    http = _http_section(path)
    if http.listen_host is None or http.listen_port is None:
        raise ClientError(f"{path}: http.listen is null, so the relay serves no API; turn it on, or pass --url",
                          EXIT_CONFIG)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(http.listen_host, http.listen_host)
    if ":" in host:
        host = f"[{host}]"
    if token is None and http.token is not None:
        token = http.token.reveal()
    return f"http://{host}:{http.listen_port}", token


def _http_section(path: str) -> HttpConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ClientError(f"{path}: cannot read the config file: {reason} (give --config or --url)",
                          EXIT_CONFIG) from None
    try:
        doc = read_yaml(text, path)
    except ConfigError as exc:
        raise ClientError("\n".join(exc.problems), EXIT_CONFIG) from None
    data = doc.data.get("http", {}) if isinstance(doc.data, dict) else {}
    context = LoadContext(dict(os.environ), Path(path).absolute().parent, path)
    try:
        return HttpConfig.model_validate(data if data is not None else {}, context=context)
    except ValidationError:
        raise ClientError(f"{path}: the http section is invalid; `relay check-config {path}` says why",
                          EXIT_CONFIG) from None


def request(base: str, path: str, token: str | None, method: str = "GET") -> tuple[int, Any]:
    """(HTTP status, decoded JSON) of one API call."""
    req = urllib.request.Request(base + path, method=method, data=b"" if method == "POST" else None)
    req.add_header("Accept", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        if exc.code == 401:
            raise ClientError(f"{base}: the relay refused the token (check http.token, or --token-file)",
                              EXIT_UNREACHABLE) from None
        try:
            return exc.code, json.loads(body)
        except ValueError:
            raise ClientError(f"{base}{path}: HTTP {exc.code}", EXIT_UNREACHABLE) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClientError(f"no relay answering at {base} ({reason}); is it running with http.listen set?",
                          EXIT_UNREACHABLE) from None


def status(base: str, token: str | None, as_json: bool, out: TextIO = sys.stdout) -> int:
    """Print the live streams and targets; EXIT_ERRORED when a target of an active stream is errored."""
    _, body = request(base, "/api/v1/live-streams", token)
    streams = body["data"]
    if as_json:
        json.dump(body, out, indent=2)
        out.write("\n")
    else:
        out.write(render_table(streams, time.time()))
    errored = any(t["status"] == "errored" for s in streams if s["status"] == "active"
                  for t in s["simulcast_targets"])
    return EXIT_ERRORED if errored else EXIT_OK


def reload(base: str, token: str | None, as_json: bool, out: TextIO = sys.stdout,
           err: TextIO = sys.stderr) -> int:
    """Ask the relay to reload its config file; print the outcome."""
    _, body = request(base, "/api/v1/reload", token, method="POST")
    result = body["data"]
    if as_json:
        json.dump(body, out, indent=2)
        out.write("\n")
    elif result["ok"]:
        out.write("reloaded\n" + result["summary"].rstrip("\n") + "\n")
    else:
        err.write("reload refused; the relay keeps its last good config:\n")
        err.writelines(f"  {printable(problem)}\n" for problem in result["problems"])
    return EXIT_OK if result["ok"] else EXIT_ERRORED


def render_table(streams: list[dict[str, Any]], now: float) -> str:
    """Live streams and their targets as aligned text columns.

    A target's SENT, DROPPED and RECONNECTS are the current (or last) publish session's; a target
    that is failing shows its attempts since it last connected, and when that was.
    """
    rows: list[list[str]] = [["LIVE STREAM / TARGET", "STATUS", "HEALTH / RATE", "UPTIME", "SENT", "DROPPED",
                              "RECONNECTS", "DETAIL"]]
    for stream in streams:
        ingest = stream.get("ingest")
        detail = ""
        rate = "-"
        if ingest:
            size = f"{ingest['width']}x{ingest['height']}" if ingest.get("width") else ""
            fps = f"{ingest['frame_rate']:g}fps" if ingest.get("frame_rate") else ""
            detail = " ".join(p for p in (ingest.get("video_codec"), size, fps, ingest.get("audio_codec"),
                                          f"from {ingest['publisher_address']}") if p)
            rate = f"{ingest['bitrate_kbps']:.0f} kbit/s"
        health = stream["health"]
        if health["reasons"]:
            detail = "; ".join(r["message"] for r in health["reasons"])
        status = stream["status"] + (" (waiting for publisher)" if stream.get("awaiting_publisher") else "")
        status += " (slate on air)" if stream.get("slate") == "playing" else ""
        rows.append([stream["name"], status,
                     f"{health['status']} {rate}" if stream["status"] == "active" else "-",
                     _age(stream.get("active_since"), now), "", "", "", detail])
        recording = stream.get("recording")
        if recording and recording["status"] != "idle":
            # The file being written and its size, or why the recording stopped.
            note = recording.get("last_error") if recording["status"] == "errored" else recording.get("path")
            rows.append(["  (recording)", recording["status"], "", _age(recording.get("started_at"), now),
                         _bytes(recording["bytes"]), "", "", note or ""])
        for target in stream["simulcast_targets"]:
            state = target["status"]
            if state == "errored" and target.get("error_severity") == "fatal":
                state = "errored (fatal)"
            info = target["url"] if target["status"] == "broadcasting" else _failing(target, now)
            rows.append([f"  {target['passthrough']}", state, "",
                         _age(target.get("connected_since"), now), _bytes(target["bytes_sent"]),
                         str(target["dropped_frames"]), str(target["reconnects"]), info])
    # Names are the operator's; errors, urls and addresses may be a peer's words: no terminal controls.
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip()
             for row in rows]
    return "\n".join(lines) + "\n"


def _failing(target: dict[str, Any], now: float) -> str:
    """What a target that is not broadcasting has been through: attempts, last success, last error."""
    error = target.get("last_error") or ""
    if target["status"] not in ("errored", "starting"):
        return error
    last = target.get("last_connected_at")
    attempts = target.get("attempts") or 0
    history = ", ".join(p for p in (
        f"{attempts} attempt{'s' if attempts != 1 else ''}" if attempts else "",
        f"last connected {_age(last, now)} ago" if last else "never connected" if "last_connected_at" in target
        else "") if p)
    return f"{history}: {error}" if error else history


def _age(since: float | None, now: float) -> str:
    if not since:
        return "-"
    seconds = max(0, int(now - since))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
