"""Free ports from the OS, and waiting for a listener without sleeping blindly."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS just handed out on `host` (bound to port 0, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def distinct_ports() -> tuple[int, int]:
    """Two free ports that differ (the OS may hand the same one out twice in a row)."""
    first = free_port()
    while (second := free_port()) == first:
        pass
    return first, second


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    interval: float = 0.02,
    abort: Callable[[], str | None] | None = None,
) -> None:
    """Poll `condition` every `interval` until true; raise TimeoutError after `timeout` seconds.

    `abort` is asked on every round; a non-None answer (for example "the process exited")
    ends the wait at once with that reason, instead of waiting out the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if abort is not None and (reason := abort()) is not None:
            raise RuntimeError(f"gave up waiting for {what}: {reason}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def accepts_connections(port: int, host: str = "127.0.0.1") -> bool:
    """True if a TCP connect to host:port succeeds (the connection is closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def is_listening(port: int) -> bool:
    """True if some socket on this host is in LISTEN state on `port` (IPv4 or IPv6).

    Reads /proc/net/tcp{,6} instead of connecting, for one-shot servers such as
    `ffmpeg -listen 1` that would take a probe connection for the real peer.
    """
    wanted = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _LISTEN and fields[1].rsplit(":", 1)[1] == wanted:
                return True
    return False

