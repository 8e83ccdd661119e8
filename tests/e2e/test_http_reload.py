"""A running daemon's HTTP token follows a reload, and its reload answer shows no webhook path.

A token is rotated because it leaked: once the reload is done, the old one is refused
and the new one works, without a restart. A webhook's url path is often a secret of its
own (chat services' hooks): answers and logs show scheme://host[:port] only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from testbed.ports import distinct_ports, free_port
from testbed.relay_proc import RelayProcess, write_config

pytestmark = pytest.mark.e2e

OLD_TOKEN = "old-http-TOKEN-6d2f9a1c40be"
NEW_TOKEN = "new-http-TOKEN-b83e07d5f19a"
HOOK_PATH = "/hooks/T0PSECRET-path-3a9c1e"


def call(port: int, path: str, token: str, method: str = "GET") -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=b"" if method == "POST" else None,
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_rotated_token_is_in_force_right_after_the_reload(tmp_path: Path) -> None:
    token_file = tmp_path / "http-token"
    token_file.write_text(OLD_TOKEN + "\n")
    token_file.chmod(0o600)
    hook = f"http://127.0.0.1:{free_port()}{HOOK_PATH}?sig=QUERYSECRET"  # nobody listens: deliveries fail
    rtmp_port, http_port = distinct_ports()
    config = {
        "server": {"listen": f"127.0.0.1:{rtmp_port}"},
        "http": {"listen": f"127.0.0.1:{http_port}", "token_file": str(token_file)},
        "webhooks": [{"url": hook, "secret": "webhook-signing-KEY-77ab01"}],
        "live_streams": [{"name": "studio", "stream_key": "reload-ingest-KEY-5e0c2b",
                          "simulcast_targets": [{"url": "rtmp://127.0.0.1:1/app",
                                                 "stream_key": "reload-target-KEY-9d13f0"}]}],
    }
    daemon = RelayProcess(write_config(tmp_path / "relay.yaml", config))
    try:
        port = daemon.http_port
        assert call(port, "/api/v1/live-streams", OLD_TOKEN)[0] == 200

        token_file.write_text(NEW_TOKEN + "\n")
        status, body = call(port, "/api/v1/reload", OLD_TOKEN, method="POST")
        assert status == 200 and body["data"]["ok"], body
        summary = body["data"]["summary"]
        origin = hook.split("/hooks", 1)[0]
        assert f"webhook: {origin}/…" in summary
        assert "T0PSECRET" not in json.dumps(body) and "QUERYSECRET" not in json.dumps(body)

        assert call(port, "/api/v1/live-streams", OLD_TOKEN)[0] == 401
        assert call(port, "/api/v1/live-streams", NEW_TOKEN)[0] == 200
        daemon.wait_for("http_token_changed")
    finally:
        daemon.terminate()
        daemon.kill()
    output = daemon.output
    assert "T0PSECRET" not in output and "QUERYSECRET" not in output
    assert OLD_TOKEN not in output and NEW_TOKEN not in output


def test_a_reload_that_drops_the_token_keeps_guarding_a_public_listener(tmp_path: Path) -> None:
    rtmp_port, http_port = distinct_ports()
    config = {
        "server": {"listen": f"127.0.0.1:{rtmp_port}"},
        "http": {"listen": f"0.0.0.0:{http_port}", "token": OLD_TOKEN},
        "live_streams": [{"name": "studio", "stream_key": "reload-ingest-KEY-5e0c2b",
                          "simulcast_targets": [{"url": "rtmp://127.0.0.1:1/app",
                                                 "stream_key": "reload-target-KEY-9d13f0"}]}],
    }
    path = write_config(tmp_path / "relay.yaml", config)
    daemon = RelayProcess(path)
    try:
        port = daemon.http_port
        # The new file listens on loopback without a token: valid, but http.listen waits for a restart.
        config["http"] = {"listen": f"127.0.0.1:{free_port()}"}
        write_config(path, config)
        status, body = call(port, "/api/v1/reload", OLD_TOKEN, method="POST")
        assert status == 200 and body["data"]["ok"], body

        assert call(port, "/api/v1/live-streams", "wrong")[0] == 401
        assert call(port, "/api/v1/live-streams", OLD_TOKEN)[0] == 200
        daemon.wait_for("config_unchanged_until_restart",
                        reason="http: the token stays until restart, as http still listens beyond this machine")
    finally:
        daemon.terminate()
        daemon.kill()
