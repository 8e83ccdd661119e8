"""The ingest meter as a hub subscriber: tags in, with the loop's clock and decoded onMetaData.

The measuring itself is pure code (relay/live/meter.py); this adapter only adds the
time each tag arrived and decodes onMetaData with the RTMP core's AMF0 decoder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from relay.live.meter import IngestMeter
from relay.flv import SCRIPT, Tag, is_metadata
from relay.rtmp import amf0
from relay.rtmp.errors import ProtocolError

# onMetaData larger than this is not decoded for the meter: encoders send a few hundred
# bytes, and decoding is on the publisher's read path (a 16 MB tag took 3.3 s and 290 MB).
# The tag itself still goes to every target and recording, byte for byte.
MAX_DECODED_METADATA = 64 * 1024
MAX_METADATA_VALUES = 4096


class IngestSubscriber:
    """Feeds a live stream's tags to its IngestMeter; never blocks, never raises on bad metadata."""

    __slots__ = ("meter", "paused", "_time", "_observe")

    def __init__(self, meter: IngestMeter) -> None:
        self.meter = meter  # set once: offer calls its observe bound here
        self.paused = False  # the reconnect slate is playing: its tags are not the publisher's
        self._time = asyncio.get_running_loop().time
        self._observe = meter.observe  # bound once: offer runs for every tag

    def offer(self, tag: Tag) -> None:
        """Hub subscriber protocol: one tag of the live stream."""
        if self.paused:
            return
        now = self._time()
        self._observe(tag, now)
        if tag.kind == SCRIPT:  # only then look at the payload (a few per session)
            self._script(tag.payload, now)

    def _script(self, payload: bytes, now: float) -> None:
        """A script tag: onMetaData's values to the meter, when small enough to decode on the read path."""
        if not is_metadata(payload) or len(payload) > MAX_DECODED_METADATA:
            return
        try:
            values = amf0.decode(payload, max_values=MAX_METADATA_VALUES)
        except ProtocolError:
            return  # metadata we cannot read is only missing detail, never a reason to stop
        if len(values) >= 2 and isinstance(values[1], Mapping):
            self.meter.metadata(values[1], now)
