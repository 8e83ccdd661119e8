"""A publisher with the right key sends one 16 MB onMetaData: does the relay's loop stall, and what
does it hold? (issue #18: it was a 3.3 s stall and +290 MB when the meter decoded it on the loop).

    .venv/bin/python bench/bigmetadata.py

Starts `relay run` with one live stream and no targets, publishes with the relay's own RTMP
client, sends the tag, waits 6 s, and prints the daemon's RSS before and after and every
`loop_stall` line it logged (stall_ms, cpu_ms).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay.flv import SCRIPT  # noqa: E402
from relay.rtmp import amf0  # noqa: E402
from relay.rtmp.client import ClientConnection  # noqa: E402
from relay.rtmp.encoded import EncodedMessage  # noqa: E402
from relay.rtmp.states import PUBLISHING  # noqa: E402
from testbed.ports import free_port  # noqa: E402
from testbed.relay_proc import RelayProcess, write_config  # noqa: E402

KEY = "bigmeta-ingest-KEY-1234567890ab"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def publish_big_metadata(port: int) -> int:
    conn = ClientConnection("live", f"rtmp://127.0.0.1:{port}/live", KEY)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(conn.data_to_send())
    while conn.state != PUBLISHING:
        conn.receive_data(await reader.read(65536))
        while conn.next_event() is not None:
            pass
        out = conn.data_to_send()
        if out:
            writer.write(out)
    payload = amf0.encode("onMetaData") + amf0.encode({f"k{i}": "x" * 100 for i in range(150_000)})
    conn.send_encoded([EncodedMessage(SCRIPT, 0, payload)], [0])
    writer.writelines(conn.take_output())
    await writer.drain()
    await asyncio.sleep(6)  # a bench, not a test: the relay gets time to decode, log and settle
    writer.close()
    return len(payload)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = {"server": {"listen": f"127.0.0.1:{port}", "app": "live"}, "http": {"listen": None},
                  "live_streams": [{"name": "s", "stream_key": KEY, "simulcast_targets": []}]}
        relay = RelayProcess(write_config(Path(tmp) / "relay.yaml", config), log_level="info")
        try:
            relay.wait_for("relay_ready", timeout=30)
            before = rss_kb(relay.proc.pid)
            size = asyncio.run(publish_big_metadata(port))
            after = rss_kb(relay.proc.pid)
            stalls = [(e["stall_ms"], e["cpu_ms"]) for e in relay.events if e.get("event") == "loop_stall"]
        finally:
            relay.terminate(timeout=15)
    print(f"onMetaData of {size} bytes: RSS {before} -> {after} kB; loop_stall (stall_ms, cpu_ms): {stalls or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
