"""The log's last line of defence: known stream keys are scrubbed from every value, and only from values.

Long keys (16+ characters) go wherever they appear, as they are or percent-encoded, in
strings, bytes, nested dict keys and values; short keys only where they stand as a whole
token. Event names and field names are never touched. Keys stay known for the life of
the process. Peer-supplied strings are cut, with their length.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from relay.runtime import logs
from relay.secret import Secret

KEY = "logs-test-KEY-93be0c71"
SHORT = "ta"
ODD = "odd key/with+chars&é=x-0123456789"  # 16+ characters, with some that URLs encode


def label(key: str) -> str:
    return f"<redacted:{Secret(key).fingerprint}>"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logs.configure("info", json=True, stream=out)
    try:
        yield out
    finally:
        logs.reset_known_secrets()
        structlog.reset_defaults()


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_logs_scrub_known_keys_everywhere(log_lines: io.StringIO) -> None:
    logs.add_known_secrets([Secret(KEY)])
    logs.get_logger(target="t").info(
        "something_happened", reason=f"refused {KEY}", problems=[f"a {KEY}"], nested={"deep": [KEY]},
    )
    try:
        raise RuntimeError(f"boom {KEY}")
    except RuntimeError:
        logs.get_logger().exception("crashed")

    text = log_lines.getvalue()
    assert KEY not in text
    first = lines(log_lines)[0]
    assert first["reason"] == f"refused {label(KEY)}"
    assert first["nested"] == {"deep": [label(KEY)]}
    assert "boom <redacted:" in text


@pytest.mark.parametrize("form", [
    ODD,
    "odd%20key%2Fwith%2Bchars%26%C3%A9%3Dx-0123456789",  # quote(safe="")
    "odd+key%2fwith%2bchars%26%c3%a9%3dx-0123456789",  # quote_plus, lower-case hex
    "odd%20key/with+chars%26%C3%A9=x-0123456789",  # a URL path that encodes only some
])
def test_a_long_key_is_found_as_it_is_or_percent_encoded(log_lines: io.StringIO, form: str) -> None:
    logs.add_known_secrets([Secret(ODD)])
    logs.get_logger().info("target_error", url=f"rtmp://host/live/{form}?x=1", data=f"<{form}>".encode())

    event = lines(log_lines)[0]
    assert event["url"] == f"rtmp://host/live/{label(ODD)}?x=1"
    assert form not in log_lines.getvalue()
    assert label(ODD) in event["data"]


def test_keys_in_nested_dict_keys_and_bytes_are_scrubbed(log_lines: io.StringIO) -> None:
    logs.add_known_secrets([Secret(KEY)])
    logs.get_logger().info("reload_problems", problems={f"targets.{KEY}": "unknown field"},
                           raw=KEY.encode() + b"\x00\xff", buffer=bytearray(b"x" + KEY.encode()))

    text = log_lines.getvalue()
    assert KEY not in text
    assert f"targets.{label(KEY)}" in lines(log_lines)[0]["problems"]


def test_objects_are_scrubbed_as_the_renderer_shows_them(log_lines: io.StringIO) -> None:
    logs.add_known_secrets([Secret(KEY)])
    logs.get_logger().info("target_error", error=ValueError(f"bad {KEY}"))

    assert KEY not in log_lines.getvalue()
    assert "ValueError" in lines(log_lines)[0]["error"]


def test_a_short_key_is_scrubbed_only_as_a_whole_token(log_lines: io.StringIO) -> None:
    logs.add_known_secrets([Secret(SHORT)])
    log = logs.get_logger(target=SHORT)
    log.info("target_status", **{"from": "idle", "to": "starting"}, reason="metadata tags status")
    log.info("target_error", url=f"rtmp://host/live/{SHORT}", query=f"key={SHORT}&x=1", spaced=f"key {SHORT}",
             colon=f"{SHORT}:1935", path=f"/{SHORT}?a")

    first, second = lines(log_lines)
    # The event name, the field names and the words that hold "ta" are untouched.
    assert first["event"] == "target_status"
    assert first["to"] == "starting" and first["reason"] == "metadata tags status"
    assert first["target"] == label(SHORT)  # the value that is the key, whole
    assert second["url"] == f"rtmp://host/live/{label(SHORT)}"
    assert second["query"] == f"key={label(SHORT)}&x=1"
    assert second["spaced"] == f"key {label(SHORT)}"
    assert second["colon"] == f"{label(SHORT)}:1935"
    assert second["path"] == f"/{label(SHORT)}?a"


def test_a_long_key_is_scrubbed_inside_words_too(log_lines: io.StringIO) -> None:
    logs.add_known_secrets([Secret(KEY)])
    logs.get_logger().info("x", glued=f"abc{KEY}def")

    assert lines(log_lines)[0]["glued"] == f"abc{label(KEY)}def"


def test_field_names_are_never_scrubbed(log_lines: io.StringIO) -> None:
    logs.add_known_secrets([Secret(KEY)])
    logs.get_logger().info("x", **{KEY: "value"})

    event = lines(log_lines)[0]
    assert event[KEY] == "value"  # a field name is code, not data: the scrubber leaves it alone


def test_every_key_ever_loaded_stays_scrubbed(log_lines: io.StringIO) -> None:
    generations = [[Secret(f"{KEY}-gen{n}")] for n in range(4)]
    for secrets in generations:  # a reload that rotates every key, four times
        logs.add_known_secrets(secrets)
    logs.get_logger().info("old_session_error", reason=" ".join(s.reveal() for g in generations for s in g))

    for secrets in generations:
        assert secrets[0].reveal() not in log_lines.getvalue()


def test_a_key_that_contains_another_is_replaced_whole(log_lines: io.StringIO) -> None:
    inner = "inner-key-0123456789ab"
    outer = f"{inner}-and-more"
    logs.add_known_secrets([Secret(inner), Secret(outer)])
    logs.get_logger().info("x", value=outer)

    assert lines(log_lines)[0]["value"] == label(outer)


def test_peer_text_cuts_long_strings_and_gives_their_length() -> None:
    assert logs.peer_text("app", "live") == {"app": "live"}
    assert logs.peer_text("app", None) == {"app": None}
    cut = logs.peer_text("app", "live" * 1_000_000)
    assert cut["app_len"] == 4_000_000
    assert cut["app"].startswith("live") and cut["app"].endswith("…")
    assert len(cut["app"]) == logs.PEER_TEXT_LIMIT + 1


def test_peer_text_scrubs_a_key_across_the_cut(log_lines: io.StringIO) -> None:
    logs.add_known_secrets([Secret(KEY)])
    text = "x" * (logs.PEER_TEXT_LIMIT - 5) + KEY

    shown = logs.peer_text("tc_url", text)["tc_url"]

    assert KEY[:5] not in shown[-10:]
    assert shown.startswith("x" * (logs.PEER_TEXT_LIMIT - 5) + "<reda")


def test_console_format_is_key_value() -> None:
    out = io.StringIO()
    logs.configure("info", json=False, stream=out)
    try:
        logs.get_logger(live_stream="studio").info("publish_started")
    finally:
        structlog.reset_defaults()

    line = out.getvalue()
    assert "publish_started" in line and "live_stream=studio" in line


def test_console_tracebacks_keep_their_lines_and_lose_terminal_controls() -> None:
    out = io.StringIO()
    logs.configure("info", json=False, stream=out)
    try:
        try:
            raise ValueError("the peer said \x1b[2J")
        except ValueError:
            logs.get_logger().exception("http_handler_failed")
    finally:
        structlog.reset_defaults()

    text = out.getvalue()
    assert "Traceback (most recent call last):\n" in text and "\\x1b[2J" in text and "\x1b[2J" not in text
