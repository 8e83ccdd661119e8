"""What ``relay check-config`` prints for a valid config: keys only as fingerprints."""

from __future__ import annotations

from relay.config.model import RelayConfig
from relay.config.scrub import scrub, scrub_part
from relay.config.values import url_origin

__all__ = ["summarize"]


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def summarize(config: RelayConfig) -> str:
    """One line per listener, live stream and target; a key appears only as sha256:FINGERPRINT."""
    server = config.server
    lines = [f"config {config.source}: OK",
             f"ingest: rtmp://{_address(server.listen_host, server.listen_port)}/{server.app}"]
    if server.tls_listen_host is not None and server.tls_listen_port is not None:
        lines.append(f"ingest: rtmps://{_address(server.tls_listen_host, server.tls_listen_port)}"
                     f"/{server.app} (cert {server.tls_cert_file}, key {server.tls_key_file})")
    http = config.http
    if http.listen_host is not None and http.listen_port is not None:
        token = f"token sha256:{http.token.fingerprint}" if http.token else "no token"
        lines.append(f"http: http://{_address(http.listen_host, http.listen_port)}/ ({token})")
    else:
        lines.append("http: off")
    for stream in config.live_streams:
        count = len(stream.simulcast_targets)
        window = f"{stream.reconnect_window:g}s" if stream.reconnect_window else "off"
        lines.append(f"live stream {stream.name}: stream key sha256:{stream.stream_key.fingerprint}, "
                     f"reconnect window {window}, {count} simulcast target{'s' * (count != 1)}")
        if stream.recording.enabled:
            lines.append(f"  recording: {stream.recording.format} in {stream.recording.dir}")
        for target in stream.simulcast_targets:
            tls = ""
            if target.scheme == "rtmps" and not target.tls_verify:
                tls = " (TLS, certificate NOT checked)"
            elif target.scheme == "rtmps":
                tls = f" (TLS, certificate checked against {target.tls_ca_file or 'the system CAs'})"
            label = scrub_part(target.passthrough, config.all_secrets())
            lines.append(f"  - {label}: {scrub_part(target.url.rstrip('/'), config.all_secrets())}"
                         f"/<key sha256:{target.stream_key.fingerprint}>{tls}")
    for webhook in config.webhooks:
        # The origin only: a webhook's path is often a secret of its own (chat services' hooks).
        lines.append(f"webhook: {url_origin(webhook.url)}/… (signing key sha256:{webhook.secret.fingerprint})")
    # Belt and braces: nothing above should hold a key, and this proves it.
    return scrub("\n".join(lines), config.all_secrets())
