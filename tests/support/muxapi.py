"""A raw HTTP client of the relay's /video/v1 API (HTTP Basic access tokens), and the config that turns it on.

The SDK tests (tests/e2e/test_mux_sdk.py) use Mux's own client; this one lets the tests send
what no SDK would (malformed JSON, unknown fields, oversized bodies, wrong credentials).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.ports import free_port

WRITE_ID, WRITE_SECRET = "app", "mux-api-WRITE-secret-7f3e91c0d2"
READ_ID, READ_SECRET = "viewer", "mux-api-READ-secret-0b8d4a6e55"
SECRETS = (WRITE_SECRET, READ_SECRET)


def api_config(state_dir: Path, **http: Any) -> dict[str, Any]:
    """Config sections (`http`, `state_dir`) for a relay with the API and both tokens."""
    return {
        "http": {"listen": f"127.0.0.1:{free_port()}", "access_tokens": [
            {"id": WRITE_ID, "secret": WRITE_SECRET, "permissions": ["read", "write"]},
            {"id": READ_ID, "secret": READ_SECRET, "permissions": ["read"]},
        ], **http},
        "state_dir": str(state_dir),
    }


@dataclass
class Answer:
    status: int
    raw: bytes
    headers: Any

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def data(self) -> Any:
        assert self.status < 300, (self.status, self.raw[:500])
        return self.json["data"]

    @property
    def messages(self) -> list[str]:
        body = self.json
        assert set(body) == {"error"} and set(body["error"]) == {"type", "messages"}, body
        return list(body["error"]["messages"])


@dataclass
class MuxApi:
    port: int
    user: str | None = WRITE_ID
    password: str | None = WRITE_SECRET

    def as_reader(self) -> MuxApi:
        return MuxApi(self.port, READ_ID, READ_SECRET)

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> Answer:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/video/v1{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.user is not None:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return Answer(response.status, response.read(), response.headers)
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read(), exc.headers)
