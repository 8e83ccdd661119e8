"""What a wakeup costs: the RTMP ingest core fed one tag at a time, back to back and after pauses.

The sans-I/O core only (no sockets, no event loop): a ClientConnection publishes the bench
clip to a ServerConnection in memory, and the server's per-tag CPU time is measured three
ways: every tag fed at once after the previous one (caches warm), and each tag fed after a
sleep of 0.2 ms and of 2 ms (the CPU idles or runs something else, as it does between two
reads of a publisher that sends each tag as it is encoded). The sleeps' own CPU is
measured apart and taken off.

The gap between the rows is the price of waking up for one tag; it is why the relay reads
each publisher once per write interval (relay/ingest/readbatch.py) rather than per tag.

    python bench/wakeups.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.media import load_clip
from relay.rtmp.client import ClientConnection
from relay.rtmp.encoded import EncodedMessage
from relay.rtmp.events import ConnectRequest, PublishRequest
from relay.rtmp.server import ServerConnection


def connected_pair() -> tuple[ClientConnection, ServerConnection]:
    """A publisher and the ingest, publishing, talking to each other in memory."""
    client = ClientConnection("live", "rtmp://bench/live", "bench-key")
    server = ServerConnection()
    for _ in range(20):
        moved = False
        if data := client.data_to_send():
            server.receive_data(data)
            moved = True
        while (event := server.next_event()) is not None:
            if isinstance(event, ConnectRequest):
                server.accept_connect()
            elif isinstance(event, PublishRequest):
                server.accept_publish()
        if data := server.data_to_send():
            client.receive_data(data)
            moved = True
        while client.next_event() is not None:
            pass
        if not moved:
            break
    return client, server


def per_tag_us(server: ServerConnection, wire: list[bytes], gap: float) -> float:
    """Server CPU µs per tag, each tag fed `gap` seconds after the previous one (0: back to back)."""
    events = 0
    started = time.process_time()
    for data in wire:
        server.receive_data(data)
        while server.next_event() is not None:
            events += 1
        if gap:
            time.sleep(gap)
    spent = time.process_time() - started
    if gap:
        started = time.process_time()
        for _ in wire:
            time.sleep(gap)
        spent -= time.process_time() - started
    return 1e6 * spent / max(events, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tags", type=int, default=600, help="tags per row")
    args = ap.parse_args()
    clip = load_clip()
    client, server = connected_pair()
    tags = [*clip.preamble[1:], *clip.media]
    wire = []
    for i in range(args.tags):
        tag = tags[i % len(tags)]
        client.send_message(EncodedMessage(tag.kind, tag.timestamp, tag.payload), tag.timestamp)
        wire.append(client.data_to_send())
    per_tag_us(server, wire, 0)  # warm up
    print(f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}\n")
    print("| tags fed | CPU µs per tag (ServerConnection) |")
    print("|---|---:|")
    for label, gap in (("back to back", 0.0), ("each after 0.2 ms idle", 0.0002), ("each after 2 ms idle", 0.002)):
        print(f"| {label} | {per_tag_us(server, wire, gap):.1f} |", flush=True)


if __name__ == "__main__":
    main()
