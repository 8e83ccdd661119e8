"""Pure fan-out: one publisher's tags to many targets, each at its own pace.

Theory of operation. The hub (hub.py) takes each tag once, keeps what a joiner needs
(streamstate.py: onMetaData, sequence headers, the current GOP) and hands that same
object to every subscriber and target (in the relay, a tag that carries its own chunk
bytes, encoded once for all targets: relay/rtmp/encoded.py). A target that keeps up
follows the hub's feed (feed.py) and takes a slice of it per write interval; one that
falls behind queues under a bound and drops whole GOPs (queue.py). The send buffer
(sendbuffer.py) switches a target between the two. Per connection, the primer
(primer.py) makes sure the headers in force go before any frame; the timeline
(timeline.py) maps timestamps so each connection starts near 0 and never goes
backwards. Backoff (backoff.py) and the Enhanced RTMP decision (enhanced.py) are small
policies the targets use. The timeline's map_all runs per write of every target:
_speedups.pyx is its compiled twin, which accel.py picks when it was built (setup.py)
and RELAY_PURE_PYTHON is not set; timeline.py stays the reference.

Nothing here does I/O, logs or reads a clock: the callers pass time in.
"""
