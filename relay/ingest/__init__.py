"""The ingest: the RTMP server side, where OBS or ffmpeg connects and publishes on a stream key.

Theory of operation. A listener (listeners.py) accepts a TCP connection; for RTMPS the TLS
gate (tlsgate.py) admits it and bounds its handshake first. Admission (admission.py)
decides who may hold a connection at all: caps per source address and in total, and the
blocking of key guessers. The connection (publisher.py) is the transport's side: it
reads, writes, keeps the deadlines and closes; its session (session.py) is the peer's
side: bytes fed to the sans-I/O ServerConnection (relay/rtmp/), connect and publish
answered, and, once a key claims a live stream (relay/live/), every tag handed to its hub.

Policy is pure, with the clock passed in, and the connection only carries it out: which
deadline applies and what passing it means (deadlines.py: handshake, publish, idle,
stall), and the answer to connect and publish (verdicts.py: accept, or reject with the
reply, the log line and whether a wrong key counts against the address).

What a stranger without a key may cost is bounded: its input is fed in slices against a
share of each loop iteration (intake.py, relay/runtime/workbudget.py), and its replies cannot pile up
(replyflow.py). A publisher's socket is read once per write interval, and its targets are
written right after (readbatch.py), so one wakeup carries a batch of tags through the
whole relay. Nothing on a publisher's read path is asked per tag but the hub.

Modules:
- listeners.py: the RTMP and RTMPS listeners and the connections they hold;
- tlsgate.py: the RTMPS front door, TLS handshake deadline before the RTMP one;
- admission.py: connection limits per address and in total, key-guess blocking;
- publisher.py: one ingest connection, the transport's side: admission at accept, reads,
  replies, the deadline timer, closing;
- session.py: the peer's side of a connection: the RTMP core fed, its events handled,
  verdicts carried out, the publish session claimed, logged and released;
- deadlines.py (pure): which deadline applies to a connection now, and which has passed;
- verdicts.py (pure): the answers to connect and publish;
- intake.py: a connection's input to its core (a stranger's in slices), and why reading is paused;
- readbatch.py: batched reads of a publisher's socket, in step with its targets' writes;
- rcvhold.py: a batch held in the kernel (the socket's receive low-water mark), no wakeup for it;
- replyflow.py: the way out to one peer: backpressure of replies, closing with a grace.
"""
