"""The process around the event loop: timing, systemd, logs, limits and memory.

Theory of operation. One write ticker (writetick.py) paces every target's writes and
every publisher's batched reads, so a show costs a few wakeups per write interval, not
one per tag. The loop monitor (loopmonitor.py) notices a stalled loop and says how much
CPU it took. systemd hears of readiness, reloads, stopping and the watchdog through
sdnotify.py. At start the process raises its open-file limit (fdlimit.py), sets the
garbage collector for a long-running server (gcpolicy.py), and after bursts of
connections gives freed memory back (memtrim.py). Untrusted input (a stranger on the
ingest, any platform's server) is fed in slices against a share of each loop iteration
(workbudget.py), so no peer's flood holds the loop, and the lines a flood makes us log
are rate-limited and summed (linebudget.py). Logs are structlog, set up once (logs.py),
with every key scrubbed.

Modules: writetick.py, loopmonitor.py, sdnotify.py, logs.py, linebudget.py, fdlimit.py, gcpolicy.py,
memtrim.py, workbudget.py.
"""
