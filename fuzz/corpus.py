"""The fuzzer's seed corpus, cut from the real publish sessions (testbed/captures.py).

Every seed starts with two bytes the harness reads as its set-up (fuzz_server.py): which
role and prefix, and how the rest is split into reads. Seeds are:
- the start of each session (handshake, then connect ... publish), fed raw;
- the chunk stream of each session after its handshake, in slices, as the publisher sent it;
- windows of consecutive messages from the middle of each session, re-encoded with type-0
  headers so that they stand on their own after the harness's publish prefix;
- what the server sent back (S0 S1 S2, then its answers), for the client role.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from relay.rtmp import amf0  # noqa: E402
from relay.rtmp import messages as m  # noqa: E402
from relay.rtmp.chunkreader import ChunkReader, RawMessage  # noqa: E402
from relay.rtmp.chunkwriter import encode_message  # noqa: E402

SESSIONS = ["ffmpeg-h264", "librtmp-h264", "gst-rtmp2sink-h264", "librtmp-extts", "librtmp-hevc-ertmp"]
HANDSHAKE = 1 + 1536 + 1536
SLICE = 8192  # bytes of chunk stream per seed: a few messages, small enough to mutate fast

# Set-up byte 0 (mode) values, as fuzz_server.py reads them.
SERVER_AFTER_HANDSHAKE, SERVER_RAW, CLIENT_AFTER_HANDSHAKE, SERVER_PUBLISHING = range(4)
# Set-up byte 1: the read size, an index into fuzz_server.READ_SIZES; 7 feeds the rest as one read.
READS_OF_3, READS_OF_7, WHOLE = 2, 3, 7


def _messages(stream: bytes) -> list[RawMessage]:
    reader = ChunkReader()
    reader.feed(stream)
    out = []
    while (msg := reader.next_message()) is not None:
        out.append(msg)
        if msg.type_id == m.SET_CHUNK_SIZE:
            reader.set_chunk_size(m.SetChunkSize.from_payload(msg.payload).size)
    return out


def seeds(read_capture: object) -> list[bytes]:
    """Every seed; `read_capture(name)` is testbed.captures.read_capture."""
    read = read_capture  # type: ignore[assignment]
    out: list[bytes] = []
    for name in SESSIONS:
        c2s: bytes = read(f"{name}.c2s")  # type: ignore[operator]
        s2c: bytes = read(f"{name}.s2c")  # type: ignore[operator]
        stream = c2s[HANDSHAKE:]
        out.append(bytes((SERVER_RAW, WHOLE)) + c2s[: HANDSHAKE + 2 * SLICE])
        out.append(bytes((SERVER_RAW, READS_OF_7)) + c2s[: HANDSHAKE + SLICE])
        for start in (0, len(stream) // 3, 2 * len(stream) // 3):
            out.append(bytes((SERVER_AFTER_HANDSHAKE, WHOLE)) + stream[start : start + SLICE])
        out.append(bytes((CLIENT_AFTER_HANDSHAKE, WHOLE)) + s2c[HANDSHAKE:])
        out.append(bytes((CLIENT_AFTER_HANDSHAKE, READS_OF_3)) + s2c[HANDSHAKE:])
        messages = _messages(stream)
        for start in [*range(10, len(messages), max(1, len(messages) // 8)), len(messages) - 12]:  # and the end
            window = b""
            for msg in messages[start:]:
                window += encode_message(msg.csid, msg.timestamp, msg.type_id, msg.stream_id, msg.payload, 4096)
                if len(window) >= SLICE:
                    break
            out.append(bytes((SERVER_PUBLISHING, WHOLE)) + window[: 4 * SLICE])
    # Hand-made seeds for paths real sessions never take: aggregates, aborts, pings, windows.
    def sub(kind: int, ts: int, payload: bytes) -> bytes:
        return bytes((kind,)) + len(payload).to_bytes(3, "big") + ts.to_bytes(3, "big") + bytes(4) + payload \
            + (11 + len(payload)).to_bytes(4, "big")

    aggregate = sub(9, 0, b"\x17\x01" + bytes(30)) + sub(8, 20, b"\xaf\x01" + bytes(10)) + sub(18, 20, b"\x02\x00\x01a")
    control = (encode_message(2, 0, m.USER_CONTROL, 0, m.UserControl(m.PING_REQUEST, 5).to_payload(), 4096)
               + encode_message(2, 0, m.WINDOW_ACK_SIZE, 0, m.WindowAckSize(1).to_payload(), 4096)
               + encode_message(2, 0, m.SET_PEER_BANDWIDTH, 0, m.SetPeerBandwidth(7, 2).to_payload(), 4096)
               + encode_message(6, 0, m.VIDEO, 1, bytes(5000), 4096)[:4096 + 12]
               + encode_message(2, 0, m.ABORT, 0, m.Abort(6).to_payload(), 4096))
    out.append(bytes((SERVER_PUBLISHING, WHOLE)) + encode_message(4, 0, m.AGGREGATE, 1, aggregate, 4096) + control)
    # Many chunk streams, many small messages, many calls: the limits' edges.
    acks = b"".join(encode_message(csid, 0, m.ACKNOWLEDGEMENT, 0, bytes(4), 128) for csid in range(2, 70))
    out.append(bytes((SERVER_AFTER_HANDSHAKE, WHOLE)) + acks)
    repeated = encode_message(2, 0, m.ACKNOWLEDGEMENT, 0, bytes(4), 128) + b"\xc2\x00\x00\x00\x01" * 1100
    out.append(bytes((SERVER_AFTER_HANDSHAKE, WHOLE)) + repeated)
    calls = b"".join(encode_message(3, 0, m.COMMAND_AMF0, 0, amf0.encode(name, float(i), None), 4096)
                     for i, name in enumerate(["createStream"] * 18 + ["FCUnpublish", "deleteStream", "play"]))
    out.append(bytes((SERVER_PUBLISHING, WHOLE)) + calls)
    return out


def write(directory: Path, read_capture: object) -> int:
    """Write the seeds into directory (named by content, as libFuzzer does); return how many."""
    directory.mkdir(parents=True, exist_ok=True)
    found = seeds(read_capture)
    for seed in found:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    return len(found)
