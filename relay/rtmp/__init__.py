"""The RTMP core, sans I/O: bytes in, events out; calls in, bytes out (modelled on h11).

Theory of operation
-------------------
A connection object owns no socket and reads no clock. Its owner (relay/ingest for a
publisher, relay/targets for a platform) feeds what it read with `receive_data()`, pulls
`next_event()` until it returns None, answers the events that need a decision
(accept_connect, accept_publish, ...) and writes out `data_to_send()` / `take_output()`.
Time and randomness come in as arguments, nothing here logs, and every malformed byte
surfaces as one ProtocolError, after which the connection stays in its ERROR state.

Bytes climb three layers: the handshake, whose leftover goes to the chunk reader, which
reassembles messages, which the connection decodes into protocol control (answered by
itself), commands (moving the state table) and media (events). A published message is one
object from the chunk reader on: the reader makes the published stream's audio and video
straight into the server's media event, an EncodedMessage (encoded.py), which is also the
FLV tag the fan-out keeps and the message every target sends, its body encoded once for
all of them; each target adds a 12-byte header. Commands and control messages are framed
one by one (chunkwriter.py).

Modules, each with one job, importing only those listed before it (no circle, checked by
import-linter):

- errors.py      the one error family: ProtocolError, Remote/LocalProtocolError, AMF0Error...
- limits.py      what one hostile peer may make the core hold or do, each with its reason
- amf0.py        AMF0 encoding and decoding (commands, script data), hostile input in mind
- messages.py    message type ids and the protocol-control and command messages, to and from bytes
- events.py      what happened on the wire, as frozen slotted events (keys kept out of reprs)
- handshake.py   the handshake of both roles, both dialects (plain and digest)
- chunkwriter.py framing what we send, and the wire constants (chunk stream ids, chunk sizes)
- chunkreader.py reassembling messages from the chunks a peer sends, within its limits (the
                 published stream's audio and video made into their events as they complete)
- encoded.py     a published tag as an RTMP message (a Tag, and the server's media event),
                 encoded once and shared by every target, and queue_encoded: a connection's
                 header and shared body per message (the hot loop)
- accel.py       which implementation of the per-tag loops runs: the compiled twins in
                 _speedups.pyx (ChunkReader, queue_encoded; built by setup.py when a C compiler is
                 at hand) or the pure-Python reference; RELAY_PURE_PYTHON=1 forces the reference
- states.py      the connection states and each role's transition table, which raises on a
                 missing entry
- base.py        what both roles share: receive_data / next_event / data_to_send, protocol
                 control, acknowledgements, the sticky error state
- server.py      ServerConnection: a publisher connects and publishes to us
- client.py      ClientConnection: we connect and publish to a target, through send_encoded
"""
