# The compiled twin (_speedups.pyx) has the reference's interface: type-checked as the reference.
from relay.fanout.timeline import Timeline as Timeline
