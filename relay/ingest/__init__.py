"""The ingest: the RTMP server side, where OBS or ffmpeg connects and publishes on a stream key.

Theory of operation. A listener (listeners.py) accepts a TCP connection; for RTMPS the TLS
gate (tlsgate.py) admits it and bounds its handshake first. Admission (admission.py)
decides who may hold a connection at all: caps per source address and in total, and the
blocking of key guessers. The publisher connection (publisher.py) feeds the bytes to the
sans-I/O ServerConnection (relay/rtmp/), answers connect and publish, and once a key
claims a live stream (relay/live/) hands every tag to its hub. What a stranger without
a key may cost is bounded: its input is fed in slices against a share of each loop
iteration (relay/runtime/workbudget.py), and its replies cannot pile up (replyflow.py). A publisher's
socket is read once per write interval, and its targets are written right after
(readbatch.py), so one wakeup carries a batch of tags through the whole relay.

Modules:
- listeners.py: the RTMP and RTMPS listeners and the connections they hold;
- tlsgate.py: the RTMPS front door, TLS handshake deadline before the RTMP one;
- admission.py: connection limits per address and in total, key-guess blocking;
- publisher.py: one ingest connection: the protocol glue, its deadlines, claim and release;
- readbatch.py: batched reads of a publisher's socket, in step with its targets' writes;
- replyflow.py: backpressure of replies to one peer.
"""
