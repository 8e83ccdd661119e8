"""The relay's HTTP side: status API, metrics, webhooks, the status page, and the CLI's client.

Theory of operation. One aiohttp server (server.py) on the relay's own loop serves the
status API (/api/v1, Mux's vocabulary), /metrics, /healthz, reload, and the static
status page (web/). Every answer is built from status snapshots (relay/status.py),
never from live objects, so nothing a request does can touch the show. Every status
change also goes out as a signed webhook (webhooks.py). The sampler (sampler.py) runs
every 2 s: stream-health checks and the bitrate history (history.py) the page draws.

Modules:
- server.py: the HTTP server, its middlewares (token, Host/Origin) and routes;
- guard.py: connection caps per address and in total, the request deadline, the Host and
  Origin checks, wrong-token counting; bounded log lines;
- redaction.py: the last scrub of answers, metrics and webhook bodies, on values only;
- metrics.py: the Prometheus collector, one snapshot per scrape;
- webhooks.py: Mux-style signed webhooks, in order per live stream, retried, bounded;
- sampler.py: the 2 s tick: health checks, rate samples, a loop heartbeat;
- history.py: bounded rings of rate samples, pure;
- client.py: `relay status` and `relay reload` talking to a running relay;
- web/: index.html, app.js, style.css and openapi.yaml.
"""
