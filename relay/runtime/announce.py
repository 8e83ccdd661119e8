"""Once listening, say how to publish: the `relay_ready` log line, and the same in words on a terminal.

The words come from relay/config/guide.py; this module brings what only the running
process knows: the addresses actually bound (a port 0 in the config becomes a real one)
and this machine's name and main addresses, for a relay listening on every interface.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from relay.config import Bound, RelayConfig, publish_guide
from relay.runtime.logs import console_stream, get_logger, scrub_text

__all__ = ["announce_ready", "machine_addresses"]

# Documentation addresses (RFC 5737, RFC 3849): nothing is sent to them (see below).
_PROBES = ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1"))


def machine_addresses() -> tuple[str, ...]:
    """This machine's host name and main IPv4 and IPv6 addresses, as far as known without the network.

    The main address is the source address of the default route: connecting a UDP socket
    only asks the kernel for a route, it sends no packet. The name is not resolved (a DNS
    lookup could hang the start); an encoder on the same network often knows it anyway.
    """
    found: list[str] = []
    name = socket.gethostname()
    if name and name != "localhost":
        found.append(name)
    for family, probe in _PROBES:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 9))
                address = str(sock.getsockname()[0])
        except OSError:
            continue  # no route of that family (no network, or IPv6 off)
        if not ipaddress.ip_address(address).is_loopback:
            found.append(address)
    return tuple(found)


def announce_ready(config: RelayConfig, bound: Sequence[Bound]) -> None:
    """Log `relay_ready` (what to put in OBS, the live streams by name, the status page) once."""
    guide = publish_guide(config, bound, machine_addresses())
    get_logger().info("relay_ready", **guide.fields())
    out = console_stream()
    if out is not None:
        # The log line's fields in a shape a person reads at a glance. Nothing here can hold a
        # key (URLs of bound sockets, names), and the scrub makes sure of it.
        print(scrub_text(guide.text()), file=out, flush=True)
