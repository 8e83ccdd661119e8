"""What happened on the wire, as the connection reports it to the code that drives it.

Fields that can hold a stream key (a publish name, a connect request's properties, a
status description a platform might echo) are left out of every repr, and so is media's
payload.

A message of the published stream is not an event class of its own here: the server
emits the `EncodedMessage` it becomes (encoded.py: a Tag, its chunk bytes, and an Event;
the chunk reader makes it for audio and video), which the ingest hands on as it is: a
message is one object all the way to the targets. The events of this module are the
rare ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Event:
    """Base class of every event."""

    __slots__ = ()


# --- server side (a publisher talking to us) --------------------------------------------

@dataclass(frozen=True, slots=True)
class ConnectRequest(Event):
    """The peer sent `connect`; answer with accept_connect() or reject_connect()."""

    app: str
    tc_url: str | None = field(default=None, repr=False)
    properties: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class PublishRequest(Event):
    """The peer sent `publish`; answer with accept_publish() or reject_publish()."""

    stream_id: int
    stream_name: str = field(repr=False)
    publish_type: str = "live"


@dataclass(frozen=True, slots=True)
class PublishEnded(Event):
    """The publisher stopped cleanly (FCUnpublish, deleteStream or closeStream)."""

    command: str


@dataclass(frozen=True, slots=True)
class DataDropped(Event):
    """A script-data message of the published stream was not passed on (too long to forward intact)."""

    timestamp: int
    size: int
    reason: str


# --- client side (we publish to a target) ----------------------------------------------

@dataclass(frozen=True, slots=True)
class Connected(Event):
    """The target accepted `connect`; releaseStream, FCPublish and createStream are on their way."""

    properties: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class PublishStarted(Event):
    """The target answered NetStream.Publish.Start: media may flow."""

    description: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Refused(Event):
    """The target refused a step (connect, createStream or publish); the connection is over."""

    stage: str
    code: str
    description: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class StatusReceived(Event):
    """An onStatus the state machine did not consume (informational, or an error mid-stream)."""

    level: str
    code: str
    description: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class ReconnectRequested(Event):
    """Enhanced RTMP: the server asks us to reconnect, optionally to a new tcUrl."""

    tc_url: str | None = field(default=None, repr=False)
    description: str = field(default="", repr=False)
