"""A simulcast target: one outbound RTMP/RTMPS connection per target, kept publishing.

Theory of operation. The supervisor (supervisor.py) runs one task per publish session
of its live stream. The decisions are pure tables it carries out: its status and retry
policy (statustable.py: idle / starting / broadcasting / errored, backoff, refusals),
what to send and when (relay/fanout/sendbuffer.py), what each connection must be sent
first (relay/fanout/primer.py). Each attempt opens a link (link.py: TCP, TLS, handshake,
connect, publish, then the platform's messages); flow control (flowcontrol.py) pauses
a target whose platform reads slowly without slowing anybody else, and fails it when
it stops reading. Failures are told in an operator's words (reasons.py).

Modules:
- supervisor.py: the session loop, the write path, connection switches;
- statustable.py: the status/retry transition table, pure, the clock passed in;
- link.py: one client connection (and the Enhanced RTMP reconnect request's endpoint);
- flowcontrol.py: paused or writable, drain, the write deadline;
- reasons.py: connection errors in words.
"""
