"""What the ingest answers to a peer's `connect` and `publish`: accept, or reject and why.

The connection (publisher.py) gathers the facts (the configured application, whether the
address is blocked, which live stream the key finds and whether it could claim it), asks
here, and carries the verdict out: it counts a wrong key against the address, writes the
log line, answers, and closes. Every decision is here, in order:

connect
  application is the configured one           -> accept
  any other                                   -> reject; `connect_rejected`, with the
                                                 first segment of the application and the
                                                 host of the tcUrl (their paths may hold a
                                                 key: "rtmp://host/live/KEY" as a server)
publish
  the address is blocked (it guessed keys)    -> reject BadName, no log line, not counted
  the key finds no live stream                -> reject BadName; a failed guess counted;
                                                 `publish_rejected` with the key's fingerprint
  the live stream already has a publisher     -> reject BadName; `publish_rejected`
  otherwise                                   -> accept (the claim was made)

A stream key is never in a verdict, only its SHA-256 fingerprint. Strings the peer sent
are in `peer_fields`, for the connection to log through `peer_text` (cut, scrubbed).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from relay.secret import Secret

CONNECT_REJECTED = "NetConnection.Connect.Rejected"
BAD_NAME = "NetStream.Publish.BadName"


@dataclass(frozen=True, slots=True)
class Accept:
    """Accept the connect or the publish."""


ACCEPT = Accept()


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse: answer `code` with `description`, then close (after writing the answer)."""

    code: str  # CONNECT_REJECTED (the answer to connect) or a NetStream.Publish status
    description: str
    event: str | None = None  # the warning logged, None: no line
    peer_fields: tuple[tuple[str, str | None], ...] = ()  # strings the peer sent, logged first
    fields: tuple[tuple[str, object], ...] = ()
    key_failed: bool = False  # a wrong key: count it against the address (admission.py)


Verdict = Accept | Reject


def connect_verdict(app: str, tc_url: str | None, expected_app: str) -> Verdict:
    """The answer to `connect` to `app` (as sent, slashes and all) with `tc_url`."""
    name = app.strip("/")
    if name == expected_app:
        return ACCEPT
    return Reject(CONNECT_REJECTED, f"Unknown application; publish to /{expected_app}.",
                  event="connect_rejected",
                  peer_fields=(("app", name.split("/")[0]), ("tc_url_host", host_of(tc_url))),
                  fields=(("reason", "unknown application"),))


def stream_key(stream_name: str) -> str:
    """The key in a publish's stream name (OBS and ffmpeg may append query parameters)."""
    return stream_name.split("?", 1)[0]


def publish_verdict(*, blocked: bool, key: str, live_stream: str | None, claimed: bool) -> Verdict:
    """The answer to `publish` with `key`: `live_stream` is the name of the one it found
    (None: none, or not looked up as the address is blocked); `claimed`, whether the
    connection could claim it."""
    if blocked:
        # Opened before the address was blocked: no more guesses on it either.
        return Reject(BAD_NAME, "Too many attempts with a wrong stream key.")
    if live_stream is None:
        fingerprint = Secret(key).fingerprint if key else "empty"
        return Reject(BAD_NAME, "Unknown stream key.", event="publish_rejected",
                      fields=(("reason", "unknown stream key"), ("key_sha256", fingerprint)), key_failed=True)
    if not claimed:
        return Reject(BAD_NAME, "This live stream already has a publisher.", event="publish_rejected",
                      fields=(("live_stream", live_stream), ("reason", "already publishing")))
    return ACCEPT


def host_of(tc_url: str | None) -> str | None:
    """The host of a tcUrl (its path may hold a key)."""
    if not tc_url:
        return None
    try:
        return urlsplit(tc_url[:1024]).hostname
    except ValueError:
        return None
