"""A simulcast target: one outbound RTMP/RTMPS connection per target, kept publishing.

Theory of operation. The supervisor (supervisor.py) runs one task per publish session
of its live stream. The decisions are pure tables it carries out: its status and retry
policy (statustable.py: idle / starting / broadcasting / errored, backoff, refusals),
what to send and when (relay/fanout/sendbuffer.py), what each connection must be sent
first (relay/fanout/primer.py). Each attempt opens a link (link.py: TCP, TLS, handshake,
connect, publish, then the platform's messages); flow control (flowcontrol.py) pauses
a target whose platform reads slowly without slowing anybody else, and fails it when
it stops reading. What a platform sends back is untrusted: it is fed to the connection
in slices within a share of each loop iteration, and not at all while the platform does
not read (intake.py), and the lines it can make us log are rate-limited (platformlog.py).
Failures are told in an operator's words (reasons.py).

Modules:
- supervisor.py: the session loop, the write path, connection switches;
- statustable.py: the status/retry transition table, pure, the clock passed in;
- link.py: one client connection (and the Enhanced RTMP reconnect request's endpoint);
- flowcontrol.py: paused or writable, drain, the write deadline;
- intake.py: the platform's input, fed in slices within the loop's budget for platforms;
- platformlog.py: at most log_lines_per_second lines a second about what a platform says;
- reasons.py: connection errors in words.
"""
