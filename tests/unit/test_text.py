"""A peer's words on a terminal: control characters are shown, never obeyed."""

from __future__ import annotations

import io

import pytest

from relay.text import printable

HOSTILE = [
    ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),  # clear screen, colour
    ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),  # set the terminal title
    ("ok\rFAKE", "ok\\x0dFAKE"),  # overwrite the line
    ("a\nb", "a\\x0ab"),
    ("\u202eevil", "\\u202eevil"),  # right-to-left override
    ("\x9b31m", "\\x9b31m"),  # C1 CSI
    ("Live: caf\u00e9 \u2014 ok", "Live: caf\u00e9 \u2014 ok"),  # ordinary text is untouched
]


@pytest.mark.parametrize(("text", "shown"), HOSTILE)
def test_control_characters_become_visible_escapes(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_relay_status_shows_a_platforms_escape_sequence_as_text() -> None:
    from relay.api.client import render_table
    stream = {"name": "studio", "status": "active", "awaiting_publisher": False, "active_since": None,
              "ingest": None, "health": {"status": "healthy", "reasons": []}, "recording": None,
              "simulcast_targets": [{"passthrough": "yt", "status": "errored", "error_severity": "normal",
                                     "url": "rtmp://x/app", "connected_since": None, "bytes_sent": 0,
                                     "dropped_frames": 0, "reconnects": 0, "attempts": 2,
                                     "last_error": "the platform said \x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J"}]}
    table = render_table([stream], 0.0)
    assert "\x1b" not in table and "\x07" not in table and "\\x1b]52" in table


def test_console_logs_show_a_strangers_app_name_as_text() -> None:
    from relay.runtime import logs
    out = io.StringIO()
    out.isatty = lambda: True  # type: ignore[method-assign]
    logs.configure(level="info", json=False, stream=out)
    try:
        logs.get_logger(peer="192.0.2.1:5000").warning("connect_rejected", app="\x1b[31mlive\x1b[0m")
    finally:
        logs.configure(level="info", json=True, stream=io.StringIO())
    text = out.getvalue()
    assert "\\x1b[31mlive" in text
    assert "\x1b[31mlive" not in text  # the renderer's own colours remain, the peer's do not
