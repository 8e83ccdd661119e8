"""What one peer may make the RTMP core hold or do (issue #8: hostile input).

The first five are the config's `server.limits` fields of the same names, with the same
defaults: the connections take them as constructor arguments. The rest are fixed, each
with the reason for its value. Every limit is checked at the earliest point where its
quantity is known, and a peer that passes one gets a RemoteProtocolError.
"""

from __future__ import annotations

from typing import Final

#: The 24-bit message length field (RTMP 1.0 section 5.3.1.2.1).
MAX_MESSAGE_LENGTH: Final = 0xFFFFFF

# --- config (server.limits) -----------------------------------------------------

#: Largest Set Chunk Size a peer may ask for.
DEFAULT_MAX_CHUNK_SIZE: Final = 1_048_576
#: Largest message (a media frame) a publishing peer may send.
DEFAULT_MAX_MESSAGE_SIZE: Final = MAX_MESSAGE_LENGTH
#: Largest message of any kind before the peer publishes (commands, script data).
DEFAULT_MAX_COMMAND_SIZE: Final = 65_536
#: Memory held for a peer that does not publish yet: partial messages, unread input, output.
DEFAULT_MAX_UNAUTHENTICATED_MEMORY: Final = 262_144
#: Replies queued for a peer that does not read them.
DEFAULT_MAX_OUTPUT_BYTES: Final = 1_048_576

# --- fixed ------------------------------------------------------------------------

#: The smallest chunk size a peer may set. Section 5.4.1 says "at least 128"; with 1-byte
#: chunks every byte of a message would cost a header parse and a Python object.
MIN_CHUNK_SIZE: Final = 128

#: Chunk streams one peer may use. Publishers use a handful (2 to 8); each one remembers
#: a header, so the 65,599 the id space allows would be memory for nothing.
MAX_CHUNK_STREAMS: Final = 64

#: What one remembered chunk stream costs in memory (its state object and dict entry).
STREAM_OVERHEAD: Final = 200

#: Zero-length messages cost a whole parse for one byte on the wire. A peer may send this
#: many, then one per BYTES_PER_EMPTY_MESSAGE received: no more work per byte than media
#: in 4 KiB chunks. No real encoder sends them at all.
EMPTY_MESSAGE_ALLOWANCE: Final = 64
BYTES_PER_EMPTY_MESSAGE: Final = 4096

#: Messages before the peer publishes. A publisher sends about ten (Set Chunk Size,
#: connect, releaseStream, FCPublish, createStream, publish, a window, a ping).
MAX_MESSAGES_BEFORE_PUBLISH: Final = 1000

#: Partial messages a publishing peer may hold over all its chunk streams (audio, video
#: and script data interleaved): two of the largest messages.
MAX_PENDING_BYTES: Final = 2 * (MAX_MESSAGE_LENGTH + 1)

#: A peer's Window Acknowledgement Size under this is read as this. An acknowledgement
#: (16 bytes, one encode) per 1000 bytes received costs less than the 8 chunk headers those
#: bytes carry at the smallest chunk size, so a peer asking for a window of 1 cannot make us
#: answer every byte; real peers ask for megabytes (2.5 MB, 5 MB) and see no change.
MIN_ACK_WINDOW: Final = 1000

#: AMF0 values (object keys included) one command may hold. Connect from an Enhanced RTMP
#: encoder holds about fifty. Decoded values cost far more memory than their bytes (an
#: empty object is 4 bytes of AMF0 and about 70 of Python), so they are counted.
MAX_COMMAND_VALUES: Final = 1024

#: Message streams (createStream) one peer may create: a publisher needs one.
MAX_STREAMS: Final = 16
