"""The states of an RTMP connection and the two tables that move between them.

A connection's state changes only through `next_state(table, state, trigger)`: a plain
dict of (state, trigger) -> next state, where a missing pair is a protocol error, blamed
on the peer when a peer's command was the trigger (RemoteProtocolError) and on the owner
when one of its calls was (LocalProtocolError). Nothing else decides what may happen when:
the connections (server.py, client.py) look up their table and act on the new state.

Triggers are the peer's commands (connect, publish, ...), its answers (connect_result,
refused, ...) and the owner's calls (accept_connect, unpublish, ...). ERROR is never in a
table: any protocol error puts a connection there for good (base.py).
"""

from __future__ import annotations

from relay.rtmp.errors import LocalProtocolError, RemoteProtocolError

HANDSHAKE = "HANDSHAKE"
AWAIT_CONNECT = "AWAIT_CONNECT"
CONNECT_PENDING = "CONNECT_PENDING"
CONNECT_SENT = "CONNECT_SENT"
CONNECTED = "CONNECTED"
PUBLISH_PENDING = "PUBLISH_PENDING"
PUBLISH_SENT = "PUBLISH_SENT"
PUBLISHING = "PUBLISHING"
CLOSED = "CLOSED"
ERROR = "ERROR"

Table = dict[tuple[str, str], str]

# A publisher talks to us (ServerConnection).
SERVER_TABLE: Table = {
    (HANDSHAKE, "handshake_done"): AWAIT_CONNECT,
    (AWAIT_CONNECT, "connect"): CONNECT_PENDING,
    (CONNECT_PENDING, "accept_connect"): CONNECTED,
    (CONNECT_PENDING, "reject_connect"): CLOSED,
    (CONNECTED, "publish"): PUBLISH_PENDING,
    (PUBLISH_PENDING, "accept_publish"): PUBLISHING,
    (PUBLISH_PENDING, "reject_publish"): CLOSED,
    (PUBLISHING, "unpublish"): CONNECTED,
}

# We publish to a target (ClientConnection).
CLIENT_TABLE: Table = {
    (HANDSHAKE, "handshake_done"): CONNECT_SENT,
    (CONNECT_SENT, "connect_result"): CONNECTED,
    (CONNECT_SENT, "refused"): CLOSED,
    (CONNECTED, "create_stream_result"): PUBLISH_SENT,
    (CONNECTED, "refused"): CLOSED,
    (PUBLISH_SENT, "publish_start"): PUBLISHING,
    (PUBLISH_SENT, "refused"): CLOSED,
    (PUBLISHING, "unpublish"): CLOSED,
    (CONNECTED, "unpublish"): CLOSED,
    (PUBLISH_SENT, "unpublish"): CLOSED,
}

# The peer's commands that are triggers of the server's table: refused by name alone in a
# state that has no such transition, before their body is decoded.
TRIGGER_OF_COMMAND = {"connect": "connect", "publish": "publish"}


def next_state(table: Table, state: str, trigger: str, *, remote: bool) -> str:
    """The state `trigger` leads to from `state`; a ProtocolError when the table has no such move."""
    try:
        return table[(state, trigger)]
    except KeyError:
        cls = RemoteProtocolError if remote else LocalProtocolError
        raise cls(f"{trigger!r} not allowed in state {state}") from None
