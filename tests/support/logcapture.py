"""The relay's structured log captured in memory, with an event to wait on for the next line."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import pytest
import structlog

from relay.runtime import logs


class LogStream(io.StringIO):
    """A log stream that tells when a line was written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


@pytest.fixture
def log_out() -> Iterator[LogStream]:
    """JSON log lines into a LogStream for the test; structlog's defaults again after it."""
    out = LogStream()
    logs.configure("info", json=True, stream=out)
    yield out
    structlog.reset_defaults()
