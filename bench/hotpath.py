"""The relay's Python work per tag, stage by stage, with caches warm: the floor under bench/fanout.py.

No sockets and no event loop: the bench clip, as a publisher sends it, is fed to the
relay's own objects one tag after the other, and the CPU time per tag is measured as each
stage is added:

1. the RTMP core (ServerConnection: chunks in, events out; the chunk reader makes each
   audio and video message into the event the hub publishes, an EncodedMessage: a Tag
   with its classification, one object per tag);
2. + Hub.publish: join state and GOP, the ingest meter, the feed that 6 following
   targets read;
3. + each of the 6 targets taking a write's worth of messages (8, as at write_interval
   0.1 s), mapping their timestamps and building the chunk headers and bodies
   (ClientConnection.send_encoded), as TargetWriter.write does before its writelines.

Compare the last row with bench/fanout.py's user time per stream-second divided by the
tags per stream-second (76.7): the difference is what the event loop's wakeups, the
syscalls' user side and caches gone cold cost (bench/wakeups.py).

    python bench/hotpath.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.media import load_clip
from bench.wakeups import connected_pair
from relay.fanout.accel import Hub, Timeline
from relay.fanout.streamstate import StreamState
from relay.flv import Tag
from relay.live.meter import IngestMeter
from relay.rtmp.chunkwriter import DEFAULT_OUT_CHUNK_SIZE
from relay.rtmp.client import ClientConnection
from relay.rtmp.encoded import EncodedMessage, held_bytes
from relay.rtmp.states import PUBLISHING

TARGETS = 6
PER_WRITE = 8


class MeterSubscriber:
    """The ingest meter as the hub's subscriber (relay/live/metertap.py without the event loop)."""

    def __init__(self) -> None:
        self.meter = IngestMeter(time.monotonic())

    def offer(self, tag: Tag) -> None:
        self.meter.observe(tag, time.monotonic())


class Follower:
    """A target that follows the feed; its writes are made by the loop below."""

    position = 0

    def offer_message(self, message: EncodedMessage) -> None:
        pass

    def urgent(self) -> None:
        pass


def target_connection() -> ClientConnection:
    """A target's ClientConnection, publishing (what send_encoded needs), with no platform behind it."""
    conn = ClientConnection("app", "rtmp://platform/app", "key")
    conn.state = PUBLISHING
    conn.out_chunk_size = DEFAULT_OUT_CHUNK_SIZE  # what it announces once connected
    conn.take_output()
    return conn


def main() -> None:
    clip = load_clip()
    client, server = connected_pair()
    wire = []
    for tag in (*clip.preamble[1:], *clip.media):
        client.send_message(EncodedMessage(tag.kind, tag.timestamp, tag.payload), tag.timestamp)
        wire.append(client.data_to_send())
    hub: Hub[EncodedMessage] = Hub("bench", StreamState(weigh=held_bytes))  # as relay/live/stream.py makes it
    hub.join(MeterSubscriber())
    for _ in range(TARGETS):
        follower = Follower()
        hub.join_sender(follower)
        hub.follow(follower)
    timelines = [Timeline() for _ in range(TARGETS)]
    targets = [target_connection() for _ in range(TARGETS)]

    def per_tag_us(stage: int, loops: int) -> float:
        tags = 0
        started = time.process_time()
        for _ in range(loops):
            for data in wire:
                server.receive_data(data)
                while (event := server.next_event()) is not None:
                    tags += 1
                    if stage >= 2 and isinstance(event, EncodedMessage):
                        hub.publish(event)
                feed = hub.feed
                if stage >= 2 and len(feed.messages) >= PER_WRITE:
                    messages = feed.messages[:]
                    feed.clear()
                    if stage >= 3:
                        for timeline, conn in zip(timelines, targets, strict=True):
                            conn.send_encoded(messages, timeline.map_all(messages))
                            conn.take_output()
        return 1e6 * (time.process_time() - started) / max(tags, 1)

    print(f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}\n")
    print("| stage | CPU µs per tag, caches warm |")
    print("|---|---:|")
    names = ["RTMP core (chunks to events: the messages)", "+ Hub.publish (state, meter, feed)",
             f"+ {TARGETS} targets: timestamps, headers and bodies, {PER_WRITE} tags per write"]
    for stage, name in enumerate(names, start=1):
        per_tag_us(stage, 1)  # warm up
        print(f"| {name} | {per_tag_us(stage, 5):.1f} |", flush=True)


if __name__ == "__main__":
    main()
