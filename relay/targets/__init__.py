"""A simulcast target: one outbound RTMP/RTMPS connection per target, kept publishing.

Theory of operation. A target is two objects of one job each, because they run on
different clocks. Its supervisor (supervisor.py: Target) acts a few times per connection:
it runs one task per publish session of its live stream, opens each attempt's link,
waits, retries and stops, carrying out pure tables: its status and retry policy
(statustable.py: idle / starting / broadcasting / errored, backoff, refusals) and when
its changes are logged (logpolicy.py). Its writer (writer.py: TargetWriter) runs at every
write, on the publisher's read path: it owns what to send and when (the send buffer,
relay/fanout/sendbuffer.py), the current link, the timeline and the counters, and passes
everything through the link's primer (relay/fanout/primer.py: what each connection must
be sent first). An Enhanced RTMP reconnect request (switch.py) opens a second link beside
the first and hands it to the writer at a keyframe.

Each attempt opens a link (link.py: TCP, TLS, handshake, connect, publish, then the
platform's messages); flow control (flowcontrol.py) pauses a target whose platform reads
slowly without slowing anybody else, and fails it when it stops reading. What a platform
sends back is untrusted: it is fed to the connection in slices within a share of each loop
iteration, and not at all while the platform does not read (intake.py), and the lines it can
make us log are rate-limited (a LineBudget per target, relay/runtime/linebudget.py). Failures are told in an operator's words
(reasons.py).

Imports point one way: supervisor.py -> switch.py -> writer.py -> link.py; the switch
asks the supervisor through a small protocol (SwitchOwner), the writer tells nobody.

Modules:
- supervisor.py: the session loop, status and snapshot, what the link tells;
- writer.py: the write path: send buffer's owner, primer guard, drop log, counters, drain;
- switch.py: the Enhanced RTMP reconnect request, from request to takeover at a keyframe;
- statustable.py: the status/retry transition table, pure, the clock passed in;
- logpolicy.py: which status changes are logged, at which level;
- link.py: one client connection (and the Enhanced RTMP reconnect request's endpoint);
- flowcontrol.py: paused or writable, drain, the write deadline;
- intake.py: the platform's input, fed in slices within the loop's budget for platforms;
- reasons.py: connection errors in words.
"""
