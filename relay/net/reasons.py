"""Connection failures, in words an operator understands (the target's `errored` reason)."""

from __future__ import annotations

import socket
import ssl


def describe_connection_error(exc: BaseException, host: str, port: int) -> str:
    """A reason a person understands, for connection-level failures."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {host} not accepted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {host}:{port} failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {host}:{port}"
    if isinstance(exc, TimeoutError):
        return f"timed out talking to {host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror}"
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"network error with {host}:{port}: {detail}"
