"""relay_ready: one structured line always; the same in words only when the log is for a person."""

from __future__ import annotations

import io
import ipaddress
import json
from collections.abc import Iterator

import pytest
import structlog

from relay.runtime import logs
from relay.config import Bound
from relay.runtime.announce import announce_ready, machine_addresses
from tests.unit.config.support import assert_no_keys, base, parse

BOUND = [Bound("rtmp", "127.0.0.1", 1935), Bound("http", "127.0.0.1", 8935)]


@pytest.fixture(autouse=True)
def _json_again() -> Iterator[None]:
    yield
    logs.configure("info", json=True, stream=io.StringIO())  # no console stream left behind
    structlog.reset_defaults()


def test_json_logs_get_one_relay_ready_line_and_no_prose() -> None:
    out = io.StringIO()
    logs.configure("info", json=True, stream=out)
    config = parse(base())

    announce_ready(config, BOUND)

    (line,) = out.getvalue().splitlines()
    event = json.loads(line)
    assert event["event"] == "relay_ready" and event["level"] == "info"
    assert event["obs_server"] == ["rtmp://127.0.0.1:1935/live"]
    assert event["live_streams"] == ["studio-a"]
    assert event["status_page"] == ["http://127.0.0.1:8935/"]
    assert_no_keys(line)


def test_a_console_log_also_gets_the_guide_in_words() -> None:
    out = io.StringIO()
    logs.configure("info", json=False, stream=out)

    announce_ready(parse(base()), BOUND)

    text = out.getvalue()
    assert "relay_ready" in text
    assert "  Server      rtmp://127.0.0.1:1935/live\n" in text
    assert "Status page: http://127.0.0.1:8935/\n" in text
    assert_no_keys(text)


def test_machine_addresses_are_names_or_addresses_beyond_loopback() -> None:
    found = machine_addresses()

    assert len(set(found)) == len(found)
    for name in found:
        try:
            assert not ipaddress.ip_address(name).is_loopback
        except ValueError:
            assert name and name != "localhost"  # the host name
