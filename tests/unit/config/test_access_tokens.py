"""http.access_tokens (the /video/v1 API's credentials) and state_dir: what is refused, with its path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relay.config import ConfigError, parse_config
from tests.unit.config.support import base, parse, problems

SECRET = "api-SECRET-9c1e7a3b5d0f"


def with_tokens(*tokens: dict[str, Any]) -> dict[str, Any]:
    data = base()
    data["http"] = {"access_tokens": list(tokens)}
    return data


def test_tokens_with_their_permissions_and_secrets_are_known() -> None:
    config = parse(with_tokens({"id": "app", "secret": SECRET, "permissions": ["read", "write"]},
                               {"id": "viewer", "secret_env": "VIEWER_SECRET"}),
                   environ={"VIEWER_SECRET": "viewer-SECRET-0011223344"})
    app, viewer = config.http.access_tokens
    assert app.can_write and not viewer.can_write and viewer.permissions == ("read",)
    assert app.secret in config.all_secrets() and viewer.secret in config.all_secrets()


def test_bad_tokens_are_refused_with_their_path() -> None:
    found = problems(with_tokens({"id": "a:b", "secret": SECRET}, {"id": "x", "secret": SECRET, "permissions": []},
                                 {"id": "x", "secret": SECRET, "permissions": ["admin"]},
                                 {"id": "y"}, {"id": "z", "secret": "REPLACE-ME-please"}))
    text = "\n".join(found)
    assert "http.access_tokens[0].id: must be 1 to 128 printable characters without a colon or a space" in text
    assert "http.access_tokens[1].permissions:" in text
    assert "http.access_tokens[2].permissions[0]: must be read or write" in text
    assert "http.access_tokens[3]: needs exactly one of secret, secret_file, secret_env" in text
    assert "http.access_tokens[4].secret: is a placeholder" in text


def test_duplicate_ids_are_refused() -> None:
    found = problems(with_tokens({"id": "app", "secret": SECRET}, {"id": "app", "secret": SECRET + "x"}))
    assert any("http.access_tokens[1].id: duplicate id (also access_tokens[0])" in p for p in found)


def test_state_dir_defaults_to_systemds_state_directory_else_the_files_folder(tmp_path: Path) -> None:
    assert parse(base(), environ={"STATE_DIRECTORY": "/var/lib/simulcast-relay"}).state_dir == \
        "/var/lib/simulcast-relay"
    assert parse(base(), base_dir=tmp_path).state_dir == str(tmp_path)
    data = base()
    data["state_dir"] = "state"
    assert parse(data, base_dir=tmp_path).state_dir == str(tmp_path / "state")


def test_no_live_stream_is_a_config_for_an_app_with_a_write_token_only() -> None:
    tokens = [{"id": "app", "secret": "an-app-WRITE-secret-0123456789", "permissions": ["read", "write"]}]
    config = parse_config(json.dumps({"live_streams": [], "http": {"access_tokens": tokens}}), "relay.yaml")
    assert config.live_streams == ()
    readers = [{**tokens[0], "permissions": ["read"]}]
    with pytest.raises(ConfigError, match=r"live_streams: at least one live stream is required \(or an "
                                          r"http.access_tokens entry with write permission"):
        parse_config(json.dumps({"live_streams": [], "http": {"access_tokens": readers}}), "relay.yaml")


def test_a_reload_that_drops_the_token_still_revokes_an_access_token() -> None:
    """http listening beyond this machine keeps its token until restart, but not a revoked access token."""
    from relay.reload import http_for

    old = with_tokens({"id": "app", "secret": SECRET, "permissions": ["read", "write"]},
                      {"id": "leaked", "secret": "leaked-SECRET-5566778899"})
    old["http"].update(listen="0.0.0.0:8935", token="http-TOKEN-0a1b2c3d4e5f")
    new = with_tokens({"id": "app", "secret": SECRET, "permissions": ["read", "write"]})
    new["http"].update(listen="127.0.0.1:8935")  # valid without a token; the listener moves only on restart
    running, notes = http_for(parse(old).http, parse(new).http)
    assert running.token is not None and running.token.reveal() == "http-TOKEN-0a1b2c3d4e5f"
    assert [t.id for t in running.access_tokens] == ["app"]
    assert any("the token stays until restart" in note for note in notes)
