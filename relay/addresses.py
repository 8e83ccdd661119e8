"""Peer addresses as the limits count them (ingest admission, the HTTP guard).

An IPv4 address counts alone; an IPv6 address counts by its /64, the block one
subscriber gets (so a host cannot dodge a per-address cap by walking its own /64); an
IPv4-mapped IPv6 address counts as the IPv4 address it is.
"""

from __future__ import annotations

import functools
import ipaddress


@functools.lru_cache(maxsize=4096)  # the same few addresses, again and again, under a flood
def address_key(host: str) -> str:
    """The unit limits count by: the IPv4 address, or the /64 of an IPv6 address."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
