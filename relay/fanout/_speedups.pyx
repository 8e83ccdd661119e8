# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The fan-out's per-tag loops, compiled: the twins of timeline.Timeline and hub.Hub.

timeline.py and hub.py are the reference; these classes take the same steps, Timeline on
C integers (timestamps and the unwrapped elapsed time as 64-bit integers: an unwrapped
timeline would need 292 million years to overflow one), Hub with typed attributes and no
bytecode between them. tests/unit/fanout/test_differential_timeline.py and
test_differential_hub.py check both give the same results for the same calls; accel.py
chooses between them.
"""

from relay.fanout.feed import Feed
from relay.fanout.hub import TRIM_AT
from relay.fanout.streamstate import StreamState
from relay.flv import SCRIPT

cdef long long _WRAP = 1 << 32
cdef long long _HALF = 1 << 31
cdef int _SCRIPT = SCRIPT


cdef inline long long _step(long long timestamp, long long source):
    """timestamp - source, modulo 2^32, as a signed difference (earlier frames are negative)."""
    cdef long long diff = (timestamp - source) % _WRAP
    if diff < 0:
        diff += _WRAP  # C's % keeps the dividend's sign; Python's the divisor's
    if diff >= _HALF:
        diff -= _WRAP
    return diff


cdef class Timeline:
    """Maps source timestamps onto one target connection's timeline (timeline.Timeline, compiled)."""

    cdef public object origin
    cdef public dict last
    cdef public long long offset
    cdef long long _source
    cdef long long _elapsed
    cdef object _jump

    def __init__(self, offset=0):
        self.origin = None
        self.offset = offset
        self.last = {}
        self._source = 0
        self._elapsed = 0
        self._jump = None

    def discontinuity(self, gap_ms):
        """The source restarts its clock: its next frame is sent `gap_ms` after the latest timestamp sent."""
        if self.origin is not None:
            self._jump = max(0, gap_ms)

    def map(self, tag):
        """The timestamp to send a tag with."""
        kind = tag.kind
        cdef bint frame = not (tag.is_header or kind == _SCRIPT)
        cdef long long timestamp
        if self.origin is None:
            if not frame:
                return self.offset
            self.origin = tag.timestamp
            self._source = self.origin
        if self._jump is not None:
            latest = max(self.last.values(), default=self.offset)
            if not frame:
                return latest
            self._source = tag.timestamp
            self._elapsed = latest - self.offset + self._jump
            self._jump = None
        timestamp = tag.timestamp
        cdef long long elapsed = self._elapsed + _step(timestamp, self._source)
        if frame:
            self._source = timestamp
            self._elapsed = elapsed
        cdef long long ts = self.offset + elapsed
        cdef long long previous = self.last.get(kind, self.offset)
        if ts < previous:
            ts = previous
        self.last[kind] = ts
        return ts

    def map_all(self, tags):
        """map() of each tag in turn, in one call."""
        if self.origin is None or self._jump is not None:
            return [self.map(tag) for tag in tags]
        cdef long long source = self._source
        cdef long long elapsed = self._elapsed
        cdef long long offset = self.offset
        cdef dict last = self.last
        cdef list out = []
        cdef long long timestamp, moved, ts, previous
        cdef object kind, stored
        for tag in tags:
            kind = tag.kind
            timestamp = tag.timestamp
            moved = elapsed + _step(timestamp, source)
            if not (tag.is_header or kind == _SCRIPT):
                source = timestamp
                elapsed = moved
            ts = offset + moved
            stored = last.get(kind)
            previous = offset if stored is None else stored
            if ts < previous:
                ts = previous
            last[kind] = ts
            out.append(ts)
        self._source = source
        self._elapsed = elapsed
        return out


cdef Py_ssize_t _TRIM_AT = TRIM_AT


cdef class Hub:
    """Fan-out of one live stream's tags, with the state a late joiner needs (hub.Hub, compiled)."""

    cdef public object name
    cdef public object state
    cdef public object feed
    cdef tuple _subscribers
    cdef tuple _senders
    cdef tuple _offered
    cdef tuple _followers

    def __init__(self, name, state=None):
        self.name = name
        self.state = state if state is not None else StreamState()
        self.feed = Feed()
        self._subscribers = ()
        self._senders = ()
        self._offered = ()
        self._followers = ()

    def join(self, subscriber):
        """Subscribe, returning the init burst the subscriber must send first."""
        if subscriber not in self._subscribers:
            self._subscribers = (*self._subscribers, subscriber)
        return self.state.init_burst()

    def join_sender(self, sender):
        """Subscribe a sender (offered every message until it follows), returning the init burst."""
        if sender not in self._senders:
            self._senders = (*self._senders, sender)
            self._offered = (*self._offered, sender)
        return self.state.init_burst()

    def follow(self, follower):
        """A joined sender that keeps up reads the feed from now on; the position to read from."""
        if follower not in self._followers:
            self._followers = (*self._followers, follower)
            self._offered = tuple([s for s in self._offered if s is not follower])
        return self.feed.end

    def unfollow(self, follower):
        """Stop following (and be offered every message again, if still joined); what it had not read."""
        if follower not in self._followers:
            return []
        unread = self.feed.since(follower.position)
        follower.position = self.feed.end
        self._followers = tuple([f for f in self._followers if f is not follower])
        if follower in self._senders and follower not in self._offered:
            self._offered = (*self._offered, follower)
        if not self._followers:
            self.feed.clear()
        return unread

    def read(self, follower):
        """What a follower has not read yet; it has read it now."""
        feed = self.feed
        messages = feed.messages
        unread = messages[follower.position - feed.base:]
        follower.position = feed.base + len(messages)
        return unread

    def headers(self):
        """Metadata and sequence headers: what a new connection needs before a keyframe."""
        state = self.state
        return [t for t in (state.metadata, state.video_header, state.audio_header) if t is not None]

    def leave(self, subscriber):
        """Unsubscribe; unknown subscribers are ignored. A follower stops following (unread messages lost)."""
        gone = subscriber
        self._subscribers = tuple([s for s in self._subscribers if s is not gone])
        self._senders = tuple([s for s in self._senders if s is not gone])
        self._offered = tuple([s for s in self._offered if s is not gone])
        if any([f is gone for f in self._followers]):
            self._followers = tuple([f for f in self._followers if f is not gone])
            if not self._followers:
                self.feed.clear()

    @classmethod
    def __class_getitem__(cls, item):
        return cls  # Hub[EncodedMessage], as the reference's Generic allows

    @property
    def subscribers(self):
        return self._subscribers

    @property
    def senders(self):
        return self._senders

    @property
    def followers(self):
        return self._followers

    def publish(self, message):
        """Record the tag in the join state; offer it to every subscriber, feed it or offer it to every sender."""
        self.state.update(message)
        for subscriber in self._subscribers:
            subscriber.offer(message)
        if not self._senders:
            return
        cdef tuple followers = self._followers
        cdef list feed
        cdef Py_ssize_t lowest, position
        if followers:
            feed = self.feed.messages
            feed.append(message)
            if message.is_header or message.kind == _SCRIPT:
                for follower in followers:
                    follower.urgent()
            if len(feed) > _TRIM_AT:
                lowest = followers[0].position
                for follower in followers:
                    position = follower.position
                    if position < lowest:
                        lowest = position
                self.feed.trim(lowest)
        for sender in self._offered:
            sender.offer_message(message)
