# The compiled twins (_speedups.pyx) have the reference's interface: type-checked as the reference.
from relay.rtmp.chunkreader import ChunkReader as ChunkReader
from relay.rtmp.encoded import queue_encoded as queue_encoded
