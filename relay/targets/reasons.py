"""Connection failures, in words an operator understands (the target's `errored` reason).

A reason says what went wrong and, where there is one, what to do about it; it never
carries a Python exception's class name or OpenSSL's `[SSL: CODE] ... (_ssl.c:NNN)`
wrapping, which mean nothing to whoever reads the status page.
"""

from __future__ import annotations

import re
import socket
import ssl

# OpenSSL's X509_V_ERR_* codes whose own message does not say what to do.
_UNKNOWN_ISSUER = {2, 19, 20, 21}  # issuer not found / self-signed in chain / local issuer / leaf only
_SELF_SIGNED = 18
_EXPIRED = 10
_NOT_YET_VALID = 9
_HOSTNAME_MISMATCH = 62
_IP_MISMATCH = 64

# OpenSSL reasons that mean the peer is not a TLS server at all: its first bytes are not a
# TLS record. A plain rtmp:// server (or an HTTP one) on an rtmps:// url gives these.
_NOT_TLS = {"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG",
            "RECORD_LAYER_FAILURE", "UNEXPECTED_RECORD", "BAD_RECORD_TYPE"}
_EOF = {"UNEXPECTED_EOF_WHILE_READING", "EOF_IN_VIOLATION_OF_PROTOCOL"}
_NO_COMMON_VERSION = {"TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE",
                      "WRONG_SSL_VERSION", "VERSION_TOO_LOW"}
_CLIENT_CERT = {"TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE"}
_HANDSHAKE_REFUSED = {"SSLV3_ALERT_HANDSHAKE_FAILURE", "NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE",
                      "TLSV1_ALERT_INSUFFICIENT_SECURITY"}
_HANDSHAKE_TIMEOUT = re.compile(r"SSL handshake is taking longer than ([0-9.]+) seconds")
_NOT_TLS_HINT = "is it an rtmps:// server? A plain rtmp:// server does not answer TLS"


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_connection_error(exc: BaseException, host: str, port: int) -> str:
    """A reason a person understands, for connection-level failures."""
    where = _address(host, port)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return describe_certificate_error(exc, host)
    if isinstance(exc, ssl.SSLError):
        return describe_tls_error(exc, where)
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, ConnectionResetError) and not exc.args:
        # asyncio and uvloop raise a bare ConnectionResetError for an EOF in the middle
        # of the TLS handshake; a reset from the kernel always has its errno.
        return f"{where} closed the connection during the TLS handshake; {_NOT_TLS_HINT}"
    if isinstance(exc, ConnectionAbortedError) and (match := _HANDSHAKE_TIMEOUT.search(str(exc))):
        return (f"no TLS handshake with {where} within {float(match.group(1)):g} s; {_NOT_TLS_HINT}")
    if isinstance(exc, TimeoutError):
        return f"timed out talking to {where}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror or 'unknown host'}"
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"network error with {where}: {detail or 'the connection failed'}"


def describe_certificate_error(exc: ssl.SSLCertVerificationError, host: str) -> str:
    """Why the server's certificate was turned down, and what would make it acceptable."""
    code = exc.verify_code
    message = exc.verify_message or "verification failed"
    prefix = f"TLS certificate of {host} not accepted"
    if code in _UNKNOWN_ISSUER or code == _SELF_SIGNED:
        return (f"{prefix}: {message}; it does not verify against the trusted CAs. If the platform "
                "uses a private CA, set tls_ca_file to that CA's PEM file")
    if code == _EXPIRED:
        return f"{prefix}: it has expired (or this machine's clock is wrong)"
    if code == _NOT_YET_VALID:
        return f"{prefix}: it is not valid yet (or this machine's clock is wrong)"
    if code in (_HOSTNAME_MISMATCH, _IP_MISMATCH):
        return f"{prefix}: it is not valid for {host}; check the host in the url"
    return f"{prefix}: {message}"


def describe_tls_error(exc: ssl.SSLError, where: str) -> str:
    """A failed TLS handshake (other than the certificate check), in words."""
    reason = exc.reason or ""
    if isinstance(exc, ssl.SSLEOFError) or reason in _EOF:
        return f"{where} closed the connection during the TLS handshake; {_NOT_TLS_HINT}"
    if reason in _NOT_TLS:
        return f"{where} does not speak TLS; {_NOT_TLS_HINT}"
    if reason in _NO_COMMON_VERSION:
        return f"TLS handshake with {where} failed: no TLS version in common (the relay needs TLS 1.2 or later)"
    if reason in _CLIENT_CERT:
        return f"TLS handshake with {where} failed: the server wants a client certificate, which the relay lacks"
    if reason in _HANDSHAKE_REFUSED:
        return f"TLS handshake with {where} failed: the server turned it down (no cipher or TLS setting in common)"
    if "_ALERT_" in reason:  # e.g. TLSV1_ALERT_INTERNAL_ERROR: the server's alert, by name
        alert = reason.rsplit("_ALERT_", 1)[-1].replace("_", " ").lower()
        return f"TLS handshake with {where} failed: the server sent the alert '{alert}'"
    detail = reason.replace("_", " ").lower() if reason else "the connection failed"
    return f"TLS handshake with {where} failed: {detail}"
