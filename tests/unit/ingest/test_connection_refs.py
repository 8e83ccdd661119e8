"""An ingest connection is freed as soon as it is closed, without the cyclic GC.

The relay runs the cyclic collector seldom (relay/runtime/gcpolicy.py), so a connection
caught in a reference cycle (with its session or its intake holding it back) would hold
its memory long after a flood of strangers is gone.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from relay.config import IngestLimits
from relay.ingest.admission import Admission, PeerLogBudget
from relay.ingest.publisher import IngestProtocol, IngestSettings


class Transport(asyncio.Transport):
    """Enough of a transport for the connection; closing it tells the protocol at once."""

    def __init__(self, protocol: IngestProtocol) -> None:
        super().__init__()
        self.protocol: IngestProtocol | None = protocol
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.7", 50000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def writelines(self, list_of_data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.closed = True
        protocol, self.protocol = self.protocol, None  # as asyncio's transports let go of theirs
        if protocol is not None:
            protocol.connection_lost(None)

    close = abort

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("data", [
    b"",  # connected, then closed
    b"garbage" * 1000,  # a protocol error: aborted
    b"\x03" + bytes(1536) + bytes(3000),  # a handshake and more, fed in slices
], ids=["silent", "garbage", "handshake"])
async def test_a_closed_connection_is_freed_by_reference_counting(no_cyclic_gc: None, data: bytes) -> None:
    limits = IngestLimits()
    settings = IngestSettings(app="live", limits=limits, find=lambda key: None, admission=Admission(limits),
                              log_budget=PeerLogBudget())
    protocol = IngestProtocol(settings)
    transport = Transport(protocol)
    protocol.connection_made(transport)
    if data:
        protocol.data_received(data)
    await asyncio.sleep(0)  # a stranger's slices fed in a later iteration run now
    if not transport.closed:
        transport.abort()
    ref = weakref.ref(protocol)
    del protocol, transport
    await asyncio.sleep(0)
    assert ref() is None
