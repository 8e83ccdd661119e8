"""An Enhanced RTMP reconnect request: a second link opens while the first publishes, and takes over at a keyframe.

A platform about to restart a server asks its publisher to reconnect (Enhanced RTMP's
NetConnection.Connect.ReconnectRequest, with an optional tcUrl). Dropping the connection
and opening a new one would leave a gap and make the platform wait for a keyframe, so the
switch is made without one: the second link is opened beside the first (`request`), the
writer queues again (so that nothing is written between two keyframes), and at the first
video keyframe written (`send`, which the writer calls in place of its own send while a
link is waiting) what comes before the keyframe goes on the old link, which then
unpublishes and closes, and the new one gets the sequence headers in force, then the
keyframe. The target's session is told (`changed`), so that it waits on the new link.

Its own job, apart from the supervisor (supervisor.py, which owns the status table and
the session) and the writer (writer.py, the write path), because it spans both: it is
driven from the link's callback and finishes inside a write. It asks its target through
a small protocol (SwitchOwner), so that this module never imports the supervisor.
Where the request may lead is link.py's `reconnect_endpoint` (a tcUrl to a host that is
not the target's own, nor in its `reconnect_hosts`, is not followed: the key would go there).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from relay.config import TargetConfig
from relay.rtmp.encoded import EncodedMessage
from relay.flv import VIDEO
from relay.targets.link import Endpoint, LinkOwner, TargetFailure, TargetLink, open_link, reconnect_endpoint
from relay.targets.writer import TargetWriter


class SwitchOwner(Protocol):
    """What the switch asks of its target (supervisor.py)."""

    config: TargetConfig
    log: Any

    def enhanced(self) -> bool:
        """Announce Enhanced RTMP in a connect made now?"""

    def switch_ready(self) -> None:
        """The second link is up and waits for a keyframe (the status table counts a connection)."""


class LinkSwitch:
    """One target's reconnect request, from the request to the new link taking over."""

    __slots__ = ("changed", "_owner", "_link_owner", "_writer", "_task", "_closing")

    def __init__(self, owner: SwitchOwner, link_owner: LinkOwner, writer: TargetWriter) -> None:
        self.changed = asyncio.Event()  # set when a new link took over: the session waits on it
        self._owner = owner
        self._link_owner = link_owner  # the new link's callbacks go there
        self._writer = writer
        self._task: asyncio.Task[None] | None = None  # opening the second link, until it took over
        self._closing: set[asyncio.Task[bool]] = set()  # old links of a switch, unpublishing
        writer.switching = self.send

    def request(self, link: TargetLink, tc_url: str | None) -> None:
        """The platform asked `link` to reconnect: open a second link (unless one is on its way)."""
        if link is not self._writer.link or self._task is not None:
            return
        owner = self._owner
        endpoint, refused = reconnect_endpoint(owner.config, tc_url)
        # Where it pointed, host and port only: the tcUrl's path may hold a key.
        owner.log.info("target_reconnect_requested", host=refused or endpoint.host,
                       port=endpoint.port if refused is None else None)
        if refused is not None:
            owner.log.warning("target_reconnect_refused", host=refused, reconnecting_to=endpoint.host,
                              reason="the host is neither the target's own nor in its reconnect_hosts")
        self._task = asyncio.create_task(self._prepare(endpoint))

    async def _prepare(self, endpoint: Endpoint) -> None:
        owner, writer = self._owner, self._writer
        try:
            link = await open_link(owner.config, endpoint, self._link_owner, enhanced=owner.enhanced())
        except TargetFailure as failure:
            owner.log.warning("target_reconnect_failed", reason=str(failure))
            self._task = None
            return
        if writer.link is None:
            link.fail(TargetFailure("the session ended before the switch"))
            return
        writer.next_link = link
        writer.buffer.hold()  # queue again, so that the switch happens in write() at a keyframe
        owner.switch_ready()

    def cancel(self) -> None:
        """The session is over: a second link still opening is not wanted."""
        if self._task is not None:
            self._task.cancel()
        self._task = None

    def send(self, old: TargetLink, messages: list[EncodedMessage]) -> TargetLink:
        """The writer's send while a link waits: up to the first video keyframe on the old link, the rest on
        the new one. Returns the link written last."""
        writer = self._writer
        at = next((i for i, m in enumerate(messages) if m.kind == VIDEO and m.is_keyframe), None)
        if at is None:
            writer.send(old, messages)
            return old
        if at:
            writer.send(old, messages[:at])
        new = writer.next_link
        assert new is not None
        self._take_over(old, new)
        writer.send(new, messages[at:])
        return new

    def _take_over(self, old: TargetLink, new: TargetLink) -> None:
        """Move to the new link: the old one unpublished and closed, the new one primed with headers."""
        writer = self._writer
        closing = asyncio.create_task(old.close_cleanly())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        writer.link, writer.next_link, self._task = new, None, None
        writer.send(new, writer.hub.headers())
        self.changed.set()
        self._owner.log.info("target_switched", reason="reconnect request honoured at a keyframe")
