"""Shared by the target tests: the headers a hub publishes first, and what a test compares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.flv import Tag
from tests.support.tags import audio_header, metadata, video_header

HEADERS = (metadata(), video_header(), audio_header())
RECONNECT_REQUEST = "NetConnection.Connect.ReconnectRequest"

# The `started` fixture (conftest.py): (hub=None, **config) -> (target, hub, transport), once broadcasting.
Started = Callable[..., Any]


def payloads(tags: list[Tag]) -> list[bytes]:
    return [t.payload for t in tags]
