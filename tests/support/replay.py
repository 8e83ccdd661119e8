"""Replay a captured publisher session (`NAME.c2s` from tests/fixtures/captures) to a live RTMP server.

The capture is a real client's bytes: C0+C1, then (after the server's S0+S1+S2) C2 and the
whole chunk stream. Servers that do not check C2 against their S1, such as nginx-rtmp,
accept it as a new session, so the capture republishes its source FLV exactly as the
original publisher sent it (useful where ffmpeg 5.1 cannot: Enhanced RTMP HEVC).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

_C0_C1 = 1 + 1536
_S0_S1_S2 = 1 + 1536 + 1536


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"server closed after {len(data)} of {size} handshake bytes")
        data += chunk
    return bytes(data)


def replay_publish(c2s: bytes, port: int, host: str = "127.0.0.1", *, timeout: float = 30.0,
                   pause_at: int | None = None, on_pause: Callable[[], None] | None = None) -> bytes:
    """Send a captured publisher's bytes to host:port, close, and return everything the server sent back.

    With `pause_at`, the bytes up to that offset go first, then `on_pause()` runs (to wait
    for something the server does), then the rest.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(c2s[:_C0_C1])
        received = _recv_exactly(sock, _S0_S1_S2)
        if pause_at is not None:
            sock.sendall(c2s[_C0_C1:pause_at])
            if on_pause is not None:
                on_pause()
            sock.sendall(c2s[pause_at:])
        else:
            sock.sendall(c2s[_C0_C1:])
        # Half-close: the server sees the publisher leave (as on a real disconnect) and closes its side.
        sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(65536):
            received += chunk
            sock.settimeout(max(0.1, deadline - time.monotonic()))
        return received
