# The compiled twins (_speedups.pyx) have the reference's interface: type-checked as the reference.
from relay.fanout.hub import Hub as Hub
from relay.fanout.timeline import Timeline as Timeline
