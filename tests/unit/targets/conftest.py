"""Fixtures of the asyncio target tests: captured logs and started targets (the fake network: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from relay.fanout.accel import Hub
from relay.rtmp.encoded import EncodedMessage
from relay.targets.supervisor import Target
from tests.support.fakenetwork import FakeNetwork, FakeTransport, target_config
from tests.unit.targets.support import HEADERS, Started


@pytest.fixture
def logs() -> AsyncIterator[list[dict[str, Any]]]:
    with capture_logs() as captured:
        yield captured


@pytest.fixture
async def started(network: FakeNetwork, logs: list[dict[str, Any]]) -> AsyncIterator[Started]:
    """Factory: a hub with headers published, and a target on it, broadcasting with its init burst written."""
    targets: list[Target] = []

    async def start(hub: Hub[EncodedMessage] | None = None, **config: Any) -> tuple[Target, Hub[EncodedMessage],
                                                                                     FakeTransport]:
        if hub is None:
            hub = Hub("studio")
            for tag in HEADERS:
                hub.publish(tag)
        target = Target("studio", target_config(**config), hub)
        targets.append(target)
        target.start()
        transport = await network.wait_opened(len(network.transports) + 1)
        await transport.wait_until(lambda: len(transport.media) >= 3 and target.buffer.live)
        return target, hub, transport

    yield start
    for target in targets:
        target.request_stop()
        await target.wait_stopped(5)
