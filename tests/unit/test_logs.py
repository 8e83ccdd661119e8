"""The log's last line of defence: known stream keys are scrubbed from every value, nested ones too."""

from __future__ import annotations

import io
import json

import structlog

from relay import logs
from relay.secret import Secret

KEY = "logs-test-KEY-93be0c71"


def test_json_logs_scrub_known_keys_everywhere() -> None:
    out = io.StringIO()
    logs.configure("info", json=True, stream=out)
    logs.set_known_secrets([Secret(KEY)])
    try:
        logs.get_logger(target="t").info(
            "something_happened", reason=f"refused {KEY}", problems=[f"a {KEY}"], nested={"deep": [KEY]},
        )
        try:
            raise RuntimeError(f"boom {KEY}")
        except RuntimeError:
            logs.get_logger().exception("crashed")
    finally:
        logs.set_known_secrets([])
        structlog.reset_defaults()

    text = out.getvalue()
    assert KEY not in text
    first = json.loads(text.splitlines()[0])
    fingerprint = Secret(KEY).fingerprint
    assert first["reason"] == f"refused <redacted:{fingerprint}>"
    assert first["nested"] == {"deep": [f"<redacted:{fingerprint}>"]}
    assert "boom <redacted:" in text


def test_console_format_is_key_value() -> None:
    out = io.StringIO()
    logs.configure("info", json=False, stream=out)
    try:
        logs.get_logger(live_stream="studio").info("publish_started")
    finally:
        structlog.reset_defaults()

    line = out.getvalue()
    assert "publish_started" in line and "live_stream=studio" in line
