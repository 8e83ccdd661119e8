"""The RTMP handshake, sans I/O, for both roles (RTMP 1.0 section 5.2).

Theory of operation
-------------------
Each side sends three things: a version byte (C0/S0, always 3), a 1536-byte challenge (C1/S1: 4-byte time,
4 bytes that the spec says are zero, 1528 random bytes) and a 1536-byte response (C2/S2) to the peer's
challenge. The spec's response is an echo of the peer's challenge (section 5.2.4); that is the "plain"
dialect, which librtmp (and so OBS) and GStreamer speak.

Flash Player 9 added the "digest" dialect, which ffmpeg always speaks: the version field is nonzero and the
challenge carries an HMAC-SHA256 digest of itself (minus the 32 digest bytes). Its position is found in one
of two 764-byte blocks, which start at byte 8 (scheme 0) or byte 772 (scheme 1): the block's first 4 bytes,
summed, give the digest's offset in the rest of the block. A client keys its digest with the first 30
bytes of the Flash Player key, a server with the first 36 of the Flash Media Server key. The response to a
digest challenge is 1504 random bytes followed by HMAC-SHA256(key=HMAC-SHA256(full key of the responder's
role, the peer's digest), those 1504 bytes). ffmpeg checks a server's S1 and S2 this way when it plays.

Both classes take bytes with `receive_data` (split anywhere), queue output for `data_to_send`, and never
buffer more than one 1536-byte packet. Once the peer's last packet is in, `complete` turns true and every
byte that came with it is handed, once, to the chunk layer as `leftover`. Time and randomness are injected.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from typing import Literal

from relay.rtmp.errors import HandshakeError, LocalProtocolError

__all__ = ["HANDSHAKE_SIZE", "RTMP_VERSION", "ClientHandshake", "Dialect", "ServerHandshake"]

Dialect = Literal["plain", "digest"]
RandomBytes = Callable[[int], bytes]

RTMP_VERSION = 3  # C0/S0, section 5.2.2
HANDSHAKE_SIZE = 1536  # C1/S1 (5.2.3) and C2/S2 (5.2.4)
_RANDOM_SIZE = HANDSHAKE_SIZE - 8  # after the time and version fields
_DIGEST_SIZE = 32  # SHA-256
_RESPONSE_RANDOM_SIZE = HANDSHAKE_SIZE - _DIGEST_SIZE
_RTMPE_VERSIONS = (6, 8)  # encrypted RTMP (RTMPE and its XTEA/Blowfish variant)

# The 32 bytes both Flash keys end with; the key's text part alone signs a challenge, the full key a response.
_KEY_TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
_PLAYER_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL  # 62 bytes
_SERVER_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL  # 68 bytes
_PLAYER_CHALLENGE_KEY = _PLAYER_KEY[:30]
_SERVER_CHALLENGE_KEY = _SERVER_KEY[:36]

# Where the 764-byte block that carries the digest starts: scheme 0, then scheme 1.
_DIGEST_BLOCKS = (8, 772)
_DIGEST_SPAN = 764 - 4 - _DIGEST_SIZE  # 728 possible offsets after the block's 4 offset bytes

_CLIENT_VERSION = bytes((9, 0, 124, 2))  # what ffmpeg claims; any nonzero value selects the digest dialect
_SERVER_VERSION = bytes((4, 5, 0, 1))  # nonzero; ffmpeg looks for the digest only if the first byte is >= 3

# The three packets each side receives, in order: version byte, challenge, response.
_INBOUND_SIZES = (1, HANDSHAKE_SIZE, HANDSHAKE_SIZE)


def _hmac_sha256(key: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def _digest_offset(packet: bytes, block: int) -> int:
    return block + 4 + sum(packet[block : block + 4]) % _DIGEST_SPAN


def _find_digest(packet: bytes, key: bytes) -> tuple[int, bytes] | None:
    """Return (block, digest) of the first scheme under which `packet` carries a valid digest, else None."""
    if packet[4:8] == bytes(4):  # a zero version field means the plain dialect, whatever the bytes say
        return None
    for block in _DIGEST_BLOCKS:
        at = _digest_offset(packet, block)
        digest = packet[at : at + _DIGEST_SIZE]
        expected = _hmac_sha256(key, packet[:at], packet[at + _DIGEST_SIZE :])
        if hmac.compare_digest(digest, expected):
            return block, digest
    return None


def _digest_challenge(time: int, version: bytes, random: bytes, block: int, key: bytes) -> tuple[bytes, bytes]:
    """Build a digest-dialect C1/S1; return it and its digest."""
    packet = struct.pack(">I", time) + version + random
    at = _digest_offset(packet, block)
    before, after = packet[:at], packet[at + _DIGEST_SIZE :]
    digest = _hmac_sha256(key, before, after)
    return before + digest + after, digest


def _digest_response(peer_digest: bytes, full_key: bytes, random: bytes) -> bytes:
    """Build a digest-dialect C2/S2 answering a challenge whose digest is `peer_digest`."""
    return random + _hmac_sha256(_hmac_sha256(full_key, peer_digest), random)


class _Handshake:
    """What both roles share: inbound framing, the output queue, leftover and the sticky error state."""

    def __init__(self, random_bytes: RandomBytes, epoch: int) -> None:
        if not 0 <= epoch <= 0xFFFFFFFF:
            raise LocalProtocolError("handshake epoch must fit in 32 bits")
        self._random_bytes = random_bytes
        self._epoch = epoch
        self._stage = 0  # index into _INBOUND_SIZES; len(_INBOUND_SIZES) once complete
        self._buffer = bytearray()
        self._outgoing = bytearray()
        self._leftover: bytes | None = None
        self._dialect: Dialect | None = None
        self._failed = False

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes from the peer, split anywhere; raise HandshakeError if they are not a handshake."""
        if self._failed:
            raise LocalProtocolError("handshake already failed")
        if self._leftover is not None:
            raise LocalProtocolError("handshake complete: give further bytes to the chunk layer")
        view = memoryview(data).cast("B")
        while view:
            need = _INBOUND_SIZES[self._stage] - len(self._buffer)
            self._buffer += view[:need]
            view = view[need:]
            if len(self._buffer) < _INBOUND_SIZES[self._stage]:
                return
            packet = bytes(self._buffer)
            self._buffer.clear()
            stage, self._stage = self._stage, self._stage + 1
            try:
                (self._on_version, self._on_challenge, self._on_response)[stage](packet)
            except HandshakeError:
                self._failed = True
                raise
            if self._stage == len(_INBOUND_SIZES):
                self._leftover = bytes(view)
                return

    def data_to_send(self) -> bytes:
        """Return the bytes queued for the peer, and forget them."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    @property
    def bytes_held(self) -> int:
        """Bytes buffered towards the peer's next packet, or queued for it."""
        return len(self._buffer) + len(self._outgoing)

    @property
    def complete(self) -> bool:
        """True once the peer's last handshake packet is in and our last one is queued."""
        return self._leftover is not None

    @property
    def leftover(self) -> bytes:
        """Bytes that arrived after the handshake: the start of the chunk stream."""
        if self._leftover is None:
            raise LocalProtocolError("leftover is known only once the handshake is complete")
        return self._leftover

    @property
    def peer_dialect(self) -> Dialect:
        """Which kind of challenge (C1 or S1) the peer sent: "plain" or "digest"."""
        if self._dialect is None:
            raise LocalProtocolError("the peer's dialect is known only once its challenge is in")
        return self._dialect

    def _random(self, size: int) -> bytes:
        data = self._random_bytes(size)
        if len(data) != size:
            raise LocalProtocolError(f"random_bytes({size}) returned {len(data)} bytes")
        return data

    def _on_version(self, packet: bytes) -> None:
        version = packet[0]
        if version in _RTMPE_VERSIONS:
            raise HandshakeError(
                f"peer asked for encrypted RTMP (RTMPE, version byte {version}): not supported"
            )
        if version != RTMP_VERSION:
            raise HandshakeError(f"unsupported RTMP version byte {version} (expected {RTMP_VERSION})")

    def _on_challenge(self, packet: bytes) -> None:
        raise NotImplementedError

    def _on_response(self, packet: bytes) -> None:
        raise NotImplementedError


class ServerHandshake(_Handshake):
    """The server side: read C0+C1, answer S0+S1+S2 at once, then wait for C2."""

    def __init__(self, random_bytes: RandomBytes = os.urandom, epoch: int = 0) -> None:
        super().__init__(random_bytes, epoch)

    def _on_challenge(self, c1: bytes) -> None:
        found = _find_digest(c1, _PLAYER_CHALLENGE_KEY)
        if found is None:
            # Section 5.2.3: time, four zero bytes, random; 5.2.4: S2 echoes C1.
            self._dialect = "plain"
            s1 = struct.pack(">I", self._epoch) + bytes(4) + self._random(_RANDOM_SIZE)
            s2 = c1
        else:
            # Answer in kind, in the client's scheme: ffmpeg (when playing) rejects anything else.
            self._dialect = "digest"
            block, c1_digest = found
            s1, _ = _digest_challenge(
                self._epoch, _SERVER_VERSION, self._random(_RANDOM_SIZE), block, _SERVER_CHALLENGE_KEY
            )
            s2 = _digest_response(c1_digest, _SERVER_KEY, self._random(_RESPONSE_RANDOM_SIZE))
        self._outgoing += bytes((RTMP_VERSION,)) + s1 + s2

    def _on_response(self, c2: bytes) -> None:
        # C2 is not checked: GStreamer's does not echo S1, and nothing rests on it.
        pass


class ClientHandshake(_Handshake):
    """The client side: queue C0+C1 at once (digest dialect), read S0+S1+S2, then queue C2."""

    def __init__(self, random_bytes: RandomBytes = os.urandom, epoch: int = 0) -> None:
        super().__init__(random_bytes, epoch)
        # Scheme 0, as ffmpeg does; a plain server ignores the digest and echoes C1 as S2.
        c1, _ = _digest_challenge(
            self._epoch, _CLIENT_VERSION, self._random(_RANDOM_SIZE), _DIGEST_BLOCKS[0], _PLAYER_CHALLENGE_KEY
        )
        self._outgoing += bytes((RTMP_VERSION,)) + c1
        self._s1 = b""
        self._s1_digest: bytes | None = None

    def _on_challenge(self, s1: bytes) -> None:
        found = _find_digest(s1, _SERVER_CHALLENGE_KEY)
        self._dialect = "plain" if found is None else "digest"
        self._s1 = s1
        self._s1_digest = None if found is None else found[1]

    def _on_response(self, s2: bytes) -> None:
        # S2 is not checked: servers differ, and a wrong S2 harms nothing the chunk stream relies on.
        if self._s1_digest is None:
            c2 = self._s1  # section 5.2.4: C2 echoes S1
        else:
            c2 = _digest_response(self._s1_digest, _PLAYER_KEY, self._random(_RESPONSE_RANDOM_SIZE))
        self._s1 = b""
        self._outgoing += c2
