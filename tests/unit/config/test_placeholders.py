"""The example cannot go live by accident: a placeholder ingest key or HTTP token is a config error
(anyone could publish, or read, with a published key), a placeholder target key a warning."""

from __future__ import annotations

import pytest

from relay.config import ConfigError, load_config
from relay.config.values import is_placeholder
from tests.unit.config.support import EXAMPLE, base, edit, located, parse, problems

SOURCE = "relay.yaml"


@pytest.mark.parametrize("key", [
    "REPLACE-ME-with-a-long-random-ingest-key", "live_000000000_REPLACEME", "FB-0000000000000000-0-REPLACEME",
    "xxxx-xxxx-xxxx-xxxx-xxxx", "changeme", "your-stream-key", "secret", "Password", "0000-0000-0000",
])
def test_known_placeholders(key: str) -> None:
    assert is_placeholder(key)


@pytest.mark.parametrize("key", ["3f9a1c2e7b5d4e8fa0b1c2d3e4f5a6b7", "studio-a-7Hq2Lx9Vz", "live_8472615390_aBcDeFgH"])
def test_real_keys_are_not_placeholders(key: str) -> None:
    assert not is_placeholder(key)


def test_the_examples_ingest_key_is_a_config_error() -> None:
    data = edit(base(), "live_streams[0].stream_key", "REPLACE-ME-with-a-long-random-ingest-key")
    (problem,) = problems(data)
    assert problem.startswith(f"{SOURCE}: live_streams[0].stream_key: is a placeholder")
    assert "openssl rand -hex 24" in problem


def test_a_placeholder_http_token_is_a_config_error() -> None:
    data = base()
    data["http"] = {"listen": "127.0.0.1:8935", "token": "REPLACE-ME-with-a-long-random-token"}
    (problem,) = problems(data)
    assert problem.startswith(f"{SOURCE}: http.token: is a placeholder")


def test_a_placeholder_target_key_warns() -> None:
    data = edit(base(), "live_streams[0].simulcast_targets[1].stream_key", "live_000000000_REPLACEME")
    warnings = [located(w)[2] for w in parse(data).warnings]
    assert ("live_streams[0].simulcast_targets[1].stream_key: is a placeholder, not the platform's stream key: "
            "the platform will refuse this target") in warnings


def test_the_example_as_shipped_does_not_validate() -> None:
    # config/example.yaml is a template: it must be given a real ingest key before it runs
    # (scripts/run-example and scripts/install-service put a random one in their copies).
    with pytest.raises(ConfigError, match=r"live_streams\[0\]\.stream_key: is a placeholder"):
        load_config(EXAMPLE, environ={})
