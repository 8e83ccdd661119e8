"""The lever behind `write_interval`: what one loopback write costs against the bytes it carries.

One process writes 6.7 KB "tags" to S x T loopback TCP sockets (TCP_NODELAY, as the relay's
targets) at R tags a second per stream, gathering K tags into each write (one `sendmsg` of K
buffers, which is what uvloop's `writelines` makes: a `writev`); a second process reads and
discards. The writer's CPU (utime + stime from /proc/self/stat) over the window, divided by
S x seconds, is its CPU per stream-second: comparable with bench/fanout.py's figure for the
same 8 streams x 6 targets.

    python bench/lever.py                      # S=8, T=6, R=77, K = 1 2 4 8, 10 s each
    python bench/lever.py --per-write 1 4 --seconds 20
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import selectors
import socket
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> tuple[int, int]:
    """(utime, stime) of this process, in clock ticks."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def reader(listener: socket.socket, count: int, done: multiprocessing.synchronize.Event) -> None:
    """Accept `count` connections and read everything until told to stop."""
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(count):
        conn, _ = listener.accept()
        conn.setblocking(False)
        sel.register(conn, selectors.EVENT_READ)
        conns.append(conn)
    buf = bytearray(1 << 20)
    while not done.is_set():
        for key, _ in sel.select(0.2):
            try:
                if not key.fileobj.recv_into(buf):  # type: ignore[union-attr]
                    sel.unregister(key.fileobj)
            except BlockingIOError:
                pass


def measure(streams: int, targets: int, rate: float, tag_size: int, per_write: int, seconds: float) -> dict[str, float]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=streams * targets)
    done = multiprocessing.Event()
    proc = multiprocessing.Process(target=reader, args=(listener, streams * targets, done), daemon=True)
    proc.start()
    socks = []
    for _ in range(streams * targets):
        s = socket.create_connection(listener.getsockname())
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    tag = os.urandom(tag_size)
    pending = [[] for _ in socks]  # type: list[list[bytes]]
    period = 1.0 / rate
    t0 = time.monotonic()
    next_tick = t0
    u0, s0 = cpu_ticks()
    writes = 0
    tags = 0
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        if next_tick > now:
            time.sleep(next_tick - now)
        next_tick += period
        # One tag per stream per tick, copied to each of its targets.
        for i, sock in enumerate(socks):
            queued = pending[i]
            queued.append(tag)
            tags += 1
            if len(queued) >= per_write:
                sock.sendmsg(queued)
                queued.clear()
                writes += 1
    u1, s1 = cpu_ticks()
    elapsed = time.monotonic() - t0
    done.set()
    for s in socks:
        s.close()
    proc.join(5)
    listener.close()
    ms = 1000 / CLK_TCK
    return {
        "per_write": per_write,
        "cpu_ms_per_stream_s": (u1 - u0 + s1 - s0) * ms / (streams * elapsed),
        "user_ms_per_stream_s": (u1 - u0) * ms / (streams * elapsed),
        "kernel_ms_per_stream_s": (s1 - s0) * ms / (streams * elapsed),
        "writes_per_s": writes / elapsed,
        "tags_per_s": tags / elapsed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--targets", type=int, default=6)
    ap.add_argument("--rate", type=float, default=77.0, help="tags a second per stream")
    ap.add_argument("--tag-size", type=int, default=6700)
    ap.add_argument("--per-write", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    print(f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"{args.streams} streams x {args.targets} targets, {args.rate:g} tags/s per stream, "
          f"{args.tag_size} B tags, {args.seconds:g} s each\n")
    print("| tags per write | writes/s | CPU ms per stream-second | user | kernel |")
    print("|---:|---:|---:|---:|---:|")
    for k in args.per_write:
        r = measure(args.streams, args.targets, args.rate, args.tag_size, k, args.seconds)
        print(f"| {k} | {r['writes_per_s']:.0f} | {r['cpu_ms_per_stream_s']:.2f} | "
              f"{r['user_ms_per_stream_s']:.2f} | {r['kernel_ms_per_stream_s']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
