"""A stand-in for systemd's notify socket: a real AF_UNIX datagram socket that records messages.

Give `address` to the relay as NOTIFY_SOCKET (a path, or "@name" for an abstract socket,
as systemd may pass either); `wait_for` reads datagrams until a predicate over all
messages so far holds, with a deadline (no sleeps). Each message is a list of
(variable, value) pairs in the order they were sent.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

Message = list[tuple[str, str]]


def parse(datagram: bytes) -> Message:
    """`READY=1\\nSTATUS=...` -> [("READY", "1"), ("STATUS", "...")]."""
    pairs = []
    for line in datagram.decode().split("\n"):
        if line:
            name, _, value = line.partition("=")
            pairs.append((name, value))
    return pairs


class NotifySocket:
    """Bound on construction; `close()` (or leave the `with` block) to remove it."""

    def __init__(self, path: Path | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.messages: list[Message] = []
        self._path = path
        if path is None:
            # Linux's abstract namespace: no file, a name unique to this test run.
            name = f"simulcast-relay-test-{os.getpid()}-{id(self):x}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.sock.bind(str(path))
            self.address = str(path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket and remove its file."""
        self.sock.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    def receive(self, timeout: float) -> bool:
        """Read one datagram within `timeout` seconds; False if none came."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        self.messages.append(parse(data))
        return True

    def wait_for(self, predicate: Callable[[list[Message]], bool], timeout: float = 15.0,
                 what: str = "a notification") -> list[Message]:
        """Receive until `predicate(messages)` holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {timeout:g} s; received: {self.messages}")
            self.receive(remaining)
        return self.messages

    def index(self, name: str, value: str | None = None, after: int = -1) -> int | None:
        """The index of the first message after `after` carrying `name` (with this value), or None."""
        for i in range(after + 1, len(self.messages)):
            for key, got in self.messages[i]:
                if key == name and (value is None or got == value):
                    return i
        return None

    def wait_index(self, name: str, value: str | None = None, after: int = -1, timeout: float = 15.0) -> int:
        """Wait for a message carrying `name` (=value) after index `after`; its index."""
        self.wait_for(lambda _: self.index(name, value, after) is not None, timeout,
                      f"{name}={value if value is not None else '*'} after message {after}")
        found = self.index(name, value, after)
        assert found is not None
        return found

    def values(self, name: str) -> list[str]:
        """Every value sent for `name`, in order."""
        return [value for message in self.messages for key, value in message if key == name]
