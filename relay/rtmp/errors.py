"""The RTMP core's only error family.

Any malformed input, in any layer of the core, surfaces as a ProtocolError; the
connection that raised it is then in a sticky error state (see base.py).
Messages never include payload bytes or stream names: a stream name is a key.
"""

from __future__ import annotations

from relay.errors import RelayError


class ProtocolError(RelayError):
    """The peer broke the RTMP protocol, or a call broke the state machine."""


class RemoteProtocolError(ProtocolError):
    """The bytes received from the peer are not valid RTMP."""


class LocalProtocolError(ProtocolError):
    """This side asked the connection to do something the protocol forbids now."""


class AMF0Error(RemoteProtocolError):
    """Malformed AMF0 data."""


class HandshakeError(RemoteProtocolError):
    """Malformed RTMP handshake."""
