"""Does reading a publisher only every 100 ms hold it back? Loopback TCP, as the relay reads (relay/ingest/readbatch.py).

A sender thread writes 6.7 KB at a fixed bitrate (TCP_NODELAY), paced by the clock; the
receiver reads only every PAUSE seconds, everything there is (reads of 256 KiB until one
comes back short of 64 KiB, as the relay does). If the receive buffer could not hold a
pause's worth, the sender's writes would block and it would fall behind its clock.
Reported per bitrate: how late the sender finished, its longest blocked write, the
largest batch read, and the receive buffer Linux grew to (autotuning).

    python bench/readpause.py --mbits 4 20 50 --pause 0.1
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

TAG = 6700
READ = 262144
READ_LARGE = 65536


def measure(mbits: float, pause: float, seconds: float) -> dict[str, float]:
    rate = mbits * 1e6 / 8
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    result: dict[str, float] = {}

    def send() -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chunk = b"x" * TAG
        started = time.monotonic()
        sent = 0
        longest = 0.0
        while time.monotonic() - started < seconds:
            wait = started + sent / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            before = time.monotonic()
            sock.sendall(chunk)
            longest = max(longest, time.monotonic() - before)
            sent += len(chunk)
        result["late_s"] = time.monotonic() - started - seconds
        result["longest_write_ms"] = longest * 1000
        sock.close()

    sender = threading.Thread(target=send)
    sender.start()
    conn, _ = listener.accept()
    conn.setblocking(False)
    largest = 0
    while True:
        time.sleep(pause)  # the pause between two slots: what the relay's batching adds
        batch = 0
        while True:
            try:
                data = conn.recv(READ)
            except BlockingIOError:
                break
            if not data:
                break
            batch += len(data)
            if len(data) < READ_LARGE:
                break
        largest = max(largest, batch)
        if not sender.is_alive() and batch == 0:
            break
    sender.join()
    result["largest_batch_kb"] = largest / 1024
    result["rcvbuf_kb"] = conn.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) / 1024
    conn.close()
    listener.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mbits", type=float, nargs="+", default=[4, 20, 50])
    ap.add_argument("--pause", type=float, default=0.1)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    print(f"| Mbit/s | sender late at the end (s) | longest write (ms) | largest batch (KiB) | SO_RCVBUF grown to (KiB) |")
    print("|---:|---:|---:|---:|---:|")
    for mbits in args.mbits:
        r = measure(mbits, args.pause, args.seconds)
        print(f"| {mbits:g} | {r['late_s']:.3f} | {r['longest_write_ms']:.1f} | {r['largest_batch_kb']:.0f} "
              f"| {r['rcvbuf_kb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
