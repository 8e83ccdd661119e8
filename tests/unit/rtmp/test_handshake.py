"""The RTMP handshake, both roles: a client-server pair, hand-made peers, every split, and real captures."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import struct
from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.rtmp.errors import HandshakeError, LocalProtocolError
from relay.rtmp.handshake import ClientHandshake, ServerHandshake
from testbed.captures import read_capture

SIZE = 1536
# Roughly the first chunk of a connect command: what follows C2 on the wire.
CHUNK_BYTES = bytes.fromhex("030000000000b3140000000002000763") + bytes(range(256))

# An oracle for the digest dialect, written independently of the module under test.
TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
FP_KEY = b"Genuine Adobe Flash Player 001" + TAIL
FMS_KEY = b"Genuine Adobe Flash Media Server 001" + TAIL
FP_PARTIAL, FMS_PARTIAL = FP_KEY[:30], FMS_KEY[:36]


def digest_at(packet: bytes, block: int) -> int:
    return block + 4 + (packet[block] + packet[block + 1] + packet[block + 2] + packet[block + 3]) % 728


def oracle_digest(packet: bytes, key: bytes) -> tuple[int, bytes] | None:
    """(block, digest) of the first scheme under which `packet` is validly digested, else None."""
    for block in (8, 772):
        at = digest_at(packet, block)
        mac = hmac.new(key, packet[:at] + packet[at + 32 :], hashlib.sha256).digest()
        if mac == packet[at : at + 32]:
            return block, mac
    return None


def oracle_response_ok(response: bytes, peer_digest: bytes, full_key: bytes) -> bool:
    key = hmac.new(full_key, peer_digest, hashlib.sha256).digest()
    return hmac.new(key, response[:1504], hashlib.sha256).digest() == response[1504:]


def hand_made_challenge(
    rng: random.Random, version: bytes, block: int | None, key: bytes = FP_PARTIAL
) -> bytes:
    """A C1/S1 with the given version field; digested under `block`'s scheme unless block is None."""
    packet = bytearray(struct.pack(">I", 1234) + version + rng.randbytes(SIZE - 8))
    if block is not None:
        at = digest_at(bytes(packet), block)
        packet[at : at + 32] = hmac.new(key, packet[:at] + packet[at + 32 :], hashlib.sha256).digest()
    return bytes(packet)


def seeded(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def two_piece_splits(data: bytes) -> Iterator[list[bytes]]:
    for cut in range(len(data) + 1):
        yield [data[:cut], data[cut:]]


def feed(handshake: ServerHandshake | ClientHandshake, pieces: Sequence[bytes]) -> tuple[bytes, bytes]:
    """Feed pieces as the glue would: return what the handshake queued, and what goes to the chunk layer."""
    out = b""
    for index, piece in enumerate(pieces):
        handshake.receive_data(piece)
        out += handshake.data_to_send()
        if handshake.complete:
            return out, handshake.leftover + b"".join(pieces[index + 1 :])
    return out, b""


def run_pair(
    client_seed: int = 1, server_seed: int = 2
) -> tuple[ClientHandshake, ServerHandshake, bytes, bytes]:
    """Handshake a client with a server; return both and what each sent (C0C1C2, S0S1S2)."""
    client = ClientHandshake(random_bytes=seeded(client_seed), epoch=77)
    server = ServerHandshake(random_bytes=seeded(server_seed), epoch=99)
    c0c1 = client.data_to_send()
    server.receive_data(c0c1)
    s0s1s2 = server.data_to_send()
    client.receive_data(s0s1s2)
    c2 = client.data_to_send()
    server.receive_data(c2)
    return client, server, c0c1 + c2, s0s1s2


# --- a client talking to a server ---------------------------------------------------------------------------


def test_client_and_server_agree_on_the_digest_dialect() -> None:
    client, server, c2s, s2c = run_pair()
    assert client.complete and server.complete
    assert server.peer_dialect == "digest" and client.peer_dialect == "digest"
    assert client.leftover == b"" and server.leftover == b""
    assert len(c2s) == 1 + 2 * SIZE and len(s2c) == 1 + 2 * SIZE
    assert c2s[0] == 3 and s2c[0] == 3
    assert client.data_to_send() == b"" and server.data_to_send() == b""


def test_server_answer_validates_under_the_digest_rules() -> None:
    _, _, c2s, s2c = run_pair()
    c1, s1, s2 = c2s[1 : 1 + SIZE], s2c[1 : 1 + SIZE], s2c[1 + SIZE :]
    assert c1[4:8] == bytes((9, 0, 124, 2))
    client_found = oracle_digest(c1, FP_PARTIAL)
    server_found = oracle_digest(s1, FMS_PARTIAL)
    assert client_found is not None and server_found is not None
    assert server_found[0] == client_found[0]  # the client's scheme
    assert s1[:4] == struct.pack(">I", 99) and s1[4:8] != bytes(4)
    assert oracle_response_ok(s2, client_found[1], FMS_KEY)


def test_client_c2_validates_under_the_digest_rules() -> None:
    _, _, c2s, s2c = run_pair()
    server_found = oracle_digest(s2c[1 : 1 + SIZE], FMS_PARTIAL)
    assert server_found is not None
    assert oracle_response_ok(c2s[1 + SIZE :], server_found[1], FP_KEY)


def test_same_random_source_gives_the_same_bytes() -> None:
    assert run_pair(1, 2)[2:] == run_pair(1, 2)[2:]
    assert run_pair(1, 2)[2] != run_pair(3, 2)[2]
    assert run_pair(1, 2)[3] != run_pair(1, 4)[3]


@pytest.mark.parametrize("block", [8, 772])
def test_server_answers_a_digest_c1_in_the_client_scheme(block: int) -> None:
    c1 = hand_made_challenge(random.Random(block), bytes((10, 0, 32, 18)), block)
    server = ServerHandshake(random_bytes=seeded(5))
    server.receive_data(b"\x03" + c1)
    out = server.data_to_send()
    s1, s2 = out[1 : 1 + SIZE], out[1 + SIZE :]
    assert server.peer_dialect == "digest"
    found = oracle_digest(s1, FMS_PARTIAL)
    assert found is not None and found[0] == block
    c1_found = oracle_digest(c1, FP_PARTIAL)
    assert c1_found is not None and oracle_response_ok(s2, c1_found[1], FMS_KEY)


@pytest.mark.parametrize(
    "c1",
    [
        pytest.param(hand_made_challenge(random.Random(1), bytes(4), None), id="plain"),
        pytest.param(
            hand_made_challenge(random.Random(2), bytes((9, 0, 124, 2)), None), id="version-bad-digest"
        ),
        pytest.param(hand_made_challenge(random.Random(3), bytes(4), 8), id="digest-zero-version"),
    ],
)
def test_server_answers_anything_else_plainly(c1: bytes) -> None:
    server = ServerHandshake(random_bytes=seeded(6), epoch=0x01020304)
    server.receive_data(b"\x03" + c1)
    out = server.data_to_send()
    assert server.peer_dialect == "plain"
    assert out[0] == 3
    assert out[1:9] == bytes((1, 2, 3, 4, 0, 0, 0, 0))  # section 5.2.3: time, then zero
    assert out[1 + SIZE :] == c1  # section 5.2.4: S2 echoes C1
    server.receive_data(b"\x55" * SIZE)  # C2 content is never checked
    assert server.complete and server.leftover == b""


def test_client_answers_a_plain_server_with_an_echo() -> None:
    rng = random.Random(7)
    s1, s2 = hand_made_challenge(rng, bytes(4), None), rng.randbytes(SIZE)
    client = ClientHandshake(random_bytes=seeded(8))
    client.data_to_send()
    client.receive_data(b"\x03" + s1 + s2 + CHUNK_BYTES)
    assert client.complete and client.peer_dialect == "plain"
    assert client.data_to_send() == s1
    assert client.leftover == CHUNK_BYTES


# --- every split of the input -------------------------------------------------------------------------------


def plain_transcript() -> tuple[bytes, bytes]:
    """What a plain client sends (C0 C1 C2) and what a fresh ServerHandshake(seeded(2), epoch=99) answers."""
    c1 = hand_made_challenge(random.Random(9), bytes(4), None)
    server = ServerHandshake(random_bytes=seeded(2), epoch=99)
    server.receive_data(b"\x03" + c1)
    s0s1s2 = server.data_to_send()
    return b"\x03" + c1 + s0s1s2[1 : 1 + SIZE], s0s1s2


@pytest.mark.parametrize("dialect", ["digest", "plain"])
def test_server_handles_every_split(dialect: str) -> None:
    c2s, s2c = run_pair()[2:] if dialect == "digest" else plain_transcript()
    stream = c2s + CHUNK_BYTES
    for pieces in [*two_piece_splits(stream), [bytes((b,)) for b in stream]]:
        server = ServerHandshake(random_bytes=seeded(2), epoch=99)
        assert feed(server, pieces) == (s2c, CHUNK_BYTES)
        assert server.complete and server.peer_dialect == dialect


def test_client_handles_every_split() -> None:
    c2s, s2c = run_pair()[2:]
    stream = s2c + CHUNK_BYTES
    for pieces in [*two_piece_splits(stream), [bytes((b,)) for b in stream]]:
        client = ClientHandshake(random_bytes=seeded(1), epoch=77)
        c0c1 = client.data_to_send()
        c2, rest = feed(client, pieces)
        assert (c0c1 + c2, rest) == (c2s, CHUNK_BYTES)
        assert client.complete and client.peer_dialect == "digest"


def test_server_output_appears_once_c1_is_in() -> None:
    c2s, s2c = run_pair()[2:]
    server = ServerHandshake(random_bytes=seeded(2), epoch=99)
    server.receive_data(c2s[: 1 + SIZE - 1])
    assert server.data_to_send() == b"" and not server.complete
    server.receive_data(memoryview(c2s)[SIZE : 1 + SIZE])
    assert server.data_to_send() == s2c
    server.receive_data(bytearray(c2s[1 + SIZE : -1]))
    assert not server.complete
    server.receive_data(c2s[-1:])
    assert server.complete and server.leftover == b""


def test_leftover_when_c2_and_the_first_chunk_share_a_read() -> None:
    c2s, _ = run_pair()[2:]
    server = ServerHandshake(random_bytes=seeded(2))
    server.receive_data(c2s[: 1 + SIZE])
    server.data_to_send()
    server.receive_data(c2s[1 + SIZE :] + CHUNK_BYTES)
    assert server.complete and server.leftover == CHUNK_BYTES
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"more chunk bytes belong to the chunk layer")


@given(cuts=st.lists(st.integers(min_value=0, max_value=1 + 2 * SIZE + len(CHUNK_BYTES)), max_size=12))
def test_server_handles_any_chunking(cuts: list[int]) -> None:
    c2s, s2c = run_pair()[2:]
    stream = c2s + CHUNK_BYTES
    bounds = [0, *sorted(cuts), len(stream)]
    server = ServerHandshake(random_bytes=seeded(2), epoch=99)
    assert feed(server, [stream[a:b] for a, b in itertools.pairwise(bounds)]) == (s2c, CHUNK_BYTES)


# --- bad peers and misuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "words"), [(6, "RTMPE"), (8, "RTMPE"), (0x47, "version byte 71"), (0, "version")]
)
def test_server_rejects_a_c0_other_than_3(version: int, words: str) -> None:
    server = ServerHandshake()
    with pytest.raises(HandshakeError, match=words):
        server.receive_data(bytes((version,)) + bytes(SIZE))
    assert server.data_to_send() == b""
    with pytest.raises(LocalProtocolError):  # the error is sticky
        server.receive_data(b"\x03")


def test_client_rejects_an_s0_other_than_3() -> None:
    client = ClientHandshake()
    with pytest.raises(HandshakeError, match="RTMPE"):
        client.receive_data(b"\x06")


def test_misuse_is_a_local_protocol_error() -> None:
    server = ServerHandshake()
    with pytest.raises(LocalProtocolError):
        _ = server.leftover
    with pytest.raises(LocalProtocolError):
        _ = server.peer_dialect
    with pytest.raises(LocalProtocolError):
        ServerHandshake(epoch=1 << 32)
    with pytest.raises(LocalProtocolError):
        ClientHandshake(random_bytes=lambda n: bytes(n - 1))


def test_client_queues_c0_c1_at_once_with_its_epoch() -> None:
    out = ClientHandshake(random_bytes=seeded(1), epoch=0xA0B0C0D0).data_to_send()
    assert len(out) == 1 + SIZE and out[0] == 3
    assert out[1:5] == bytes((0xA0, 0xB0, 0xC0, 0xD0)) and out[5:9] != bytes(4)
    assert oracle_digest(out[1:], FP_PARTIAL) is not None


# --- real sessions (tests/fixtures/captures) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("session", "dialect"),
    [("ffmpeg-h264", "digest"), ("librtmp-h264", "plain"), ("gst-rtmp2sink-h264", "plain")],
)
@pytest.mark.parametrize("one_byte_at_a_time", [False, True], ids=["whole", "bytewise"])
def test_server_reads_a_real_publisher(session: str, dialect: str, one_byte_at_a_time: bool) -> None:
    c2s = read_capture(f"{session}.c2s")
    head, after = c2s[: 1 + 2 * SIZE + 500], c2s[1 + 2 * SIZE : 1 + 2 * SIZE + 500]
    server = ServerHandshake()
    _, rest = feed(server, [bytes((b,)) for b in head] if one_byte_at_a_time else [head])
    assert server.peer_dialect == dialect
    assert server.complete and rest == after
    assert server.leftover == (b"" if one_byte_at_a_time else after)
    assert after[0] == 0x03  # a type-0 chunk header on chunk stream 3: the connect command starts


def test_server_s2_matches_nginx_byte_for_byte() -> None:
    """Given nginx's random bytes, our S2 to ffmpeg's real C1 is the S2 nginx-rtmp sent."""
    c2s, s2c = read_capture("ffmpeg-h264.c2s"), read_capture("ffmpeg-h264.s2c")
    nginx_s1, nginx_s2 = s2c[1 : 1 + SIZE], s2c[1 + SIZE : 1 + 2 * SIZE]
    c1_found = oracle_digest(c2s[1 : 1 + SIZE], FP_PARTIAL)
    nginx_found = oracle_digest(nginx_s1, FMS_PARTIAL)
    assert c1_found is not None and nginx_found is not None  # the oracle agrees with real peers
    assert oracle_response_ok(nginx_s2, c1_found[1], FMS_KEY)
    server = ServerHandshake(random_bytes=lambda n: nginx_s2[:n] if n == 1504 else bytes(n))
    server.receive_data(c2s[: 1 + SIZE])
    assert server.data_to_send()[1 + SIZE :] == nginx_s2


@pytest.mark.parametrize(("session", "dialect"), [("ffmpeg-h264", "digest"), ("librtmp-h264", "plain")])
def test_client_reads_a_real_nginx_answer(session: str, dialect: str) -> None:
    s2c = read_capture(f"{session}.s2c")
    client = ClientHandshake(random_bytes=seeded(1))
    client.data_to_send()
    client.receive_data(s2c)
    assert client.complete and client.peer_dialect == dialect
    assert client.leftover == s2c[1 + 2 * SIZE :]
    c2, s1 = client.data_to_send(), s2c[1 : 1 + SIZE]
    found = oracle_digest(s1, FMS_PARTIAL)
    if found is None:
        assert c2 == s1
    else:
        assert oracle_response_ok(c2, found[1], FP_KEY)
