"""What the relay says once it listens: what to put in OBS, which live streams take a key, the status page.

A first run should explain itself: the person who just started the relay wants the
Server URL to paste into the encoder, not a socket address. So each listening socket
becomes the URL an encoder uses (scheme, host, port, app). A socket bound to every
interface (0.0.0.0, ::) has no address an encoder could use, so the machine's own name
and addresses, found by the caller, stand in for it, with a note that the right one is
whichever the encoder can reach. Live streams are named, never their keys (not even a
fingerprint: the person knows which key they gave each name).

Pure: the bound addresses and the machine's names come in as arguments.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from relay.config.model import RelayConfig
from relay.config.values import is_loopback

__all__ = ["Bound", "Guide", "publish_guide"]

# What a URL says when the machine's name and addresses are unknown (as README says it).
SOME_HOST = "YOUR-HOST"


@dataclass(frozen=True, slots=True)
class Bound:
    """A socket the relay listens on: ``rtmp``, ``rtmps`` or ``http``, and its address."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Guide:
    """How to publish to the relay and where to watch it, as log fields and as lines to read."""

    obs_server: tuple[str, ...]
    live_streams: tuple[str, ...]
    status_page: tuple[str, ...]
    notes: tuple[str, ...]

    def fields(self) -> dict[str, Any]:
        """The structured log line's fields."""
        return {"obs_server": list(self.obs_server), "live_streams": list(self.live_streams),
                "status_page": list(self.status_page), "notes": list(self.notes)}

    def text(self) -> str:
        """The same, for a person at a terminal."""
        lines = ['To publish from OBS: Settings > Stream > Service "Custom"']
        for i, url in enumerate(self.obs_server):
            lines.append(f"  {'Server' if i == 0 else 'or':<11} {url}")
        if self.live_streams:
            which = (f"live stream {self.live_streams[0]}" if len(self.live_streams) == 1
                     else f"one of the live streams {', '.join(self.live_streams)}")
            lines.append(f"  Stream Key  the stream_key of {which} (from the config; not shown)")
        else:
            lines.append("  Stream Key  none yet: the config has no live stream")
        lines.extend(f"  Note: {note}" for note in self.notes)
        if self.status_page:
            lines.append(f"Status page: {' or '.join(self.status_page)}")
        else:
            lines.append("Status page: off (set http.listen to turn it on)")
        return "\n".join(lines)


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def _hosts(host: str, machine: Sequence[str]) -> list[str]:
    """The hosts an encoder may put in a URL for a socket bound to ``host``."""
    if not _is_wildcard(host):
        return [host]
    # 0.0.0.0 takes IPv4 only; :: (dual-stack on Linux) takes both.
    usable = [name for name in machine if host == "::" or not _is_ipv6(name)]
    return usable or [SOME_HOST]


def _url(scheme: str, host: str, port: int, path: str) -> str:
    shown = f"[{host}]" if _is_ipv6(host) else host
    return f"{scheme}://{shown}:{port}/{path}"


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def publish_guide(config: RelayConfig, bound: Sequence[Bound], machine: Sequence[str]) -> Guide:
    """The guide for ``config`` listening on ``bound``; ``machine``: this machine's name and addresses."""
    app = config.server.app
    ingest = [b for b in bound if b.scheme in ("rtmp", "rtmps")]
    http = [b for b in bound if b.scheme == "http"]
    notes = []
    if any(_is_wildcard(b.host) for b in ingest):
        notes.append("the relay listens on every interface: use the address of this machine that the "
                     "encoder can reach" + ("; the ones above are this machine's name and main address"
                                            if machine else ""))
    if ingest and all(is_loopback(b.host) for b in ingest):
        notes.append("the relay listens on this machine only (server.listen is a loopback address): an "
                     "encoder elsewhere cannot reach it")
    if any(b.scheme == "rtmps" for b in ingest):
        notes.append("rtmps:// is the TLS ingest; the encoder must trust the certificate of server.tls_cert_file")
    if http and config.http.token is not None:
        notes.append("the status page asks for the http token (http.token) once")
    servers = _unique(_url(b.scheme, host, b.port, app) for b in ingest for host in _hosts(b.host, machine))
    pages = _unique(_url("http", host, b.port, "") for b in http for host in _hosts(b.host, machine))
    names = tuple(stream.name for stream in config.live_streams)
    return Guide(servers, names, pages, tuple(notes))
