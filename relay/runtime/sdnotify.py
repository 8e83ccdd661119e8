"""systemd's notify protocol (sd_notify(3)): the only place the relay speaks it.

Under `Type=notify` systemd hands the service an AF_UNIX datagram socket in NOTIFY_SOCKET
(a path, or an abstract name written "@name"); each datagram is newline-separated
VAR=value assignments. The relay sends:

- READY=1 once its listeners are bound (systemd holds `systemctl start` until then);
- STATUS=<one line> ("2 live streams, 1 active, 5/6 targets broadcasting"), shown by
  `systemctl status`, kept current from the relay's snapshot;
- WATCHDOG=1 every WatchdogSec/2 when systemd asked for it (WATCHDOG_USEC, and
  WATCHDOG_PID naming us or absent). The pings come from a task on the relay's own
  event loop: a loop that stalls stops pinging and systemd restarts the relay, which is
  the point;
- RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC in µs> when a reload starts, READY=1
  when it is done (systemd 253's Type=notify-reload reads the timestamp; older ones keep
  the unit "reloading" until READY=1 all the same);
- STOPPING=1 when shutdown begins.

Without NOTIFY_SOCKET every call does nothing. A send that fails (systemd gone, its
queue full) is dropped: notifications are advisory and must never stall the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping

from relay.runtime.logs import get_logger
from relay.status import RelaySnapshot

STATUS_INTERVAL = 2.0  # seconds between two looks at the snapshot for a changed STATUS= line


def _address(value: str) -> str | None:
    """The socket address of NOTIFY_SOCKET: a path, or "@name" for Linux's abstract namespace."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # vsock: and other schemes of newer systemd versions: not for a relay on Debian 12


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between two WATCHDOG=1 pings (half of WatchdogSec), or None if systemd asked for none."""
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return None  # meant for another process (we were started by the service's main process)
    return int(usec) / 1e6 / 2


def summary_line(snapshot: RelaySnapshot) -> str:
    """One line for `systemctl status`: "2 live streams, 1 active, 5/6 targets broadcasting"."""
    streams = snapshot.live_streams
    targets = [t for live in streams for t in live.simulcast_targets]
    active = sum(live.status == "active" for live in streams)
    broadcasting = sum(t.status == "broadcasting" for t in targets)
    noun = "live stream" if len(streams) == 1 else "live streams"
    target_noun = "target" if len(targets) == 1 else "targets"
    return (f"{len(streams)} {noun}, {active} active, "
            f"{broadcasting}/{len(targets)} {target_noun} broadcasting")


class Notifier:
    """Sends notifications to systemd; does nothing when the relay is not under Type=notify."""

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval = watchdog_interval(env, os.getpid() if pid is None else pid)
        self._sock: socket.socket | None = None
        self._status: str | None = None

    @property
    def enabled(self) -> bool:
        """True when systemd is listening."""
        return self._address is not None

    def send(self, *assignments: str) -> None:
        """Send VAR=value assignments in one datagram."""
        if self._address is None:
            return
        message = "\n".join(assignments).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # never wait for systemd from the event loop
            self._sock.sendto(message, self._address)
        except OSError:
            pass

    def ready(self, status: str | None = None) -> None:
        """READY=1 (startup done, or a reload finished), with the current STATUS= line."""
        if status is not None:
            self._status = status
            self.send("READY=1", f"STATUS={status}")
        else:
            self.send("READY=1")

    def status(self, text: str) -> None:
        """STATUS=<text>, sent only when it changed."""
        if text != self._status:
            self._status = text
            self.send(f"STATUS={text}")

    def stopping(self) -> None:
        """STOPPING=1: shutdown has begun."""
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        """WATCHDOG=1: the event loop is alive."""
        self.send("WATCHDOG=1")

    @contextlib.contextmanager
    def reloading(self, status: Callable[[], str] | None = None) -> Iterator[None]:
        """RELOADING=1 and MONOTONIC_USEC before the block, READY=1 after it, even if it failed."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")
        try:
            yield
        finally:
            self.ready(status() if status is not None else None)

    async def keep_alive(self, status: Callable[[], str]) -> None:
        """Ping the watchdog and keep STATUS= current, until cancelled (runs on the relay's loop)."""
        if not self.enabled:
            return
        interval = STATUS_INTERVAL
        if self.watchdog_interval is not None:
            interval = min(interval, self.watchdog_interval)
        loop = asyncio.get_running_loop()
        next_status = loop.time() + STATUS_INTERVAL
        while True:
            if self.watchdog_interval is not None:
                self.watchdog()
            if loop.time() >= next_status:
                next_status = loop.time() + STATUS_INTERVAL
                try:
                    self.status(status())
                except Exception:  # a bug in the summary must not stop the watchdog pings
                    get_logger().exception("sd_notify_status_failed")
            await asyncio.sleep(interval)

    def close(self) -> None:
        """Close the socket (at exit)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
