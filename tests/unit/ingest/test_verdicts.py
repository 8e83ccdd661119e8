"""The answers to a peer's connect and publish (relay/ingest/verdicts.py), as tables."""

from __future__ import annotations

import pytest

from relay.ingest.verdicts import (
    ACCEPT,
    BAD_NAME,
    CONNECT_REJECTED,
    Reject,
    Verdict,
    connect_verdict,
    host_of,
    publish_verdict,
    stream_key,
)
from relay.secret import Secret

KEY = "live_123456789_AbCdEfGhIjKlMnOp"
UNKNOWN_APP = "Unknown application; publish to /live."


def connect_rejected(app: str, host: str | None) -> Reject:
    return Reject(CONNECT_REJECTED, UNKNOWN_APP, event="connect_rejected",
                  peer_fields=(("app", app), ("tc_url_host", host)), fields=(("reason", "unknown application"),))


CONNECT = [
    # app (as sent), tcUrl -> verdict (the configured application is "live")
    pytest.param("live", "rtmp://relay.example:1935/live", ACCEPT, id="the configured application"),
    pytest.param("/live/", None, ACCEPT, id="slashes around it"),
    pytest.param("other", "rtmp://relay.example/other", connect_rejected("other", "relay.example"),
                 id="another application"),
    pytest.param(f"live/{KEY}", f"rtmp://relay.example/live/{KEY}", connect_rejected("live", "relay.example"),
                 id="the key in the server URL: only the first segment and the host are logged"),
    pytest.param("", None, connect_rejected("", None), id="no application, no tcUrl"),
    pytest.param("x", "rtmp://[bad/x", connect_rejected("x", None), id="a tcUrl that does not parse"),
]


@pytest.mark.parametrize(("app", "tc_url", "verdict"), CONNECT)
def test_connect_verdict(app: str, tc_url: str | None, verdict: Verdict) -> None:
    assert connect_verdict(app, tc_url, "live") == verdict
    assert KEY not in repr(verdict)


def unknown_key(fingerprint: str) -> Reject:
    return Reject(BAD_NAME, "Unknown stream key.", event="publish_rejected",
                  fields=(("reason", "unknown stream key"), ("key_sha256", fingerprint)), key_failed=True)


PUBLISH = [
    # blocked, key, live stream found, claimed -> verdict
    pytest.param(True, KEY, None, False, Reject(BAD_NAME, "Too many attempts with a wrong stream key."),
                 id="a blocked address: no line, not counted"),
    pytest.param(False, KEY, None, False, unknown_key(Secret(KEY).fingerprint),
                 id="an unknown key: counted, its fingerprint logged"),
    pytest.param(False, "", None, False, unknown_key("empty"), id="no key"),
    pytest.param(False, KEY, "studio", False,
                 Reject(BAD_NAME, "This live stream already has a publisher.", event="publish_rejected",
                        fields=(("live_stream", "studio"), ("reason", "already publishing"))),
                 id="the live stream already has a publisher"),
    pytest.param(False, KEY, "studio", True, ACCEPT, id="claimed"),
]


@pytest.mark.parametrize(("blocked", "key", "live_stream", "claimed", "verdict"), PUBLISH)
def test_publish_verdict(blocked: bool, key: str, live_stream: str | None, claimed: bool, verdict: Verdict) -> None:
    assert publish_verdict(blocked=blocked, key=key, live_stream=live_stream, claimed=claimed) == verdict
    assert KEY not in repr(verdict)  # a stream key is never in a verdict, only its fingerprint


@pytest.mark.parametrize(("stream_name", "key"), [
    (KEY, KEY),
    (f"{KEY}?bandwidth=6000", KEY),
    ("a?b?c", "a"),
    ("", ""),
])
def test_stream_key_drops_query_parameters(stream_name: str, key: str) -> None:
    assert stream_key(stream_name) == key


@pytest.mark.parametrize(("tc_url", "host"), [
    ("rtmp://Relay.Example:1935/live", "relay.example"),
    ("rtmps://[::1]:1936/live", "::1"),
    (None, None),
    ("", None),
    ("live", None),
    ("rtmp://[bad/live", None),
])
def test_host_of(tc_url: str | None, host: str | None) -> None:
    assert host_of(tc_url) == host
