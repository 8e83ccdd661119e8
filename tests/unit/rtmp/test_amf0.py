"""AMF0 byte tables, round trips and hostile-input checks for relay.rtmp.amf0."""

from __future__ import annotations

import copy
import math
import pickle
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.errors import RelayError
from relay.rtmp.amf0 import (
    MAX_DEPTH,
    UNDEFINED,
    AMFDate,
    ECMAArray,
    decode,
    decode_one,
    encode,
)
from relay.rtmp.errors import AMF0Error, LocalProtocolError, RemoteProtocolError

Z6 = b"\x00" * 6
Z8 = b"\x00" * 8
END = b"\x00\x00\x09"

# (value, hand-written AMF0 bytes); each entry both encodes to and decodes from the bytes.
BYTE_TABLE: list[tuple[Any, bytes]] = [
    (1.0, b"\x00\x3f\xf0" + Z6),
    (0.0, b"\x00" + Z8),
    (-2.5, b"\x00\xc0\x04" + Z6),
    (True, b"\x01\x01"),
    (False, b"\x01\x00"),
    ("connect", b"\x02\x00\x07connect"),
    ("", b"\x02\x00\x00"),
    ("é", b"\x02\x00\x02\xc3\xa9"),
    ("\U0001f600", b"\x02\x00\x04\xf0\x9f\x98\x80"),
    (None, b"\x05"),
    (UNDEFINED, b"\x06"),
    ({}, b"\x03" + END),
    ({"app": "live"}, b"\x03\x00\x03app\x02\x00\x04live" + END),
    ({"": None}, b"\x03\x00\x00\x05" + END),
    (ECMAArray(), b"\x08\x00\x00\x00\x00" + END),
    (ECMAArray(duration=0.0), b"\x08\x00\x00\x00\x01\x00\x08duration\x00" + Z8 + END),
    ([], b"\x0a\x00\x00\x00\x00"),
    ([1.0, "a"], b"\x0a\x00\x00\x00\x02\x00\x3f\xf0" + Z6 + b"\x02\x00\x01a"),
    ([[None]], b"\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x05"),
    (AMFDate(0.0), b"\x0b" + Z8 + b"\x00\x00"),
    (AMFDate(1.0, -60), b"\x0b\x3f\xf0" + Z6 + b"\xff\xc4"),
]


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also compares types, so True never passes for 1.0 nor a dict for an ECMAArray."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


@pytest.mark.parametrize(("value", "expected"), BYTE_TABLE)
def test_encode_byte_table(value: Any, expected: bytes) -> None:
    assert encode(value) == expected


@pytest.mark.parametrize(("value", "expected"), BYTE_TABLE)
def test_decode_byte_table(value: Any, expected: bytes) -> None:
    assert strict_equal(decode(expected), [value])
    assert strict_equal(decode_one(expected), (value, len(expected)))


def test_connect_command() -> None:
    data = encode("connect", 1, {"app": "live", "tcUrl": "rtmp://h/live"})
    assert data == (
        b"\x02\x00\x07connect"
        b"\x00\x3f\xf0" + Z6 + b"\x03"
        b"\x00\x03app\x02\x00\x04live"
        b"\x00\x05tcUrl\x02\x00\x0drtmp://h/live" + END
    )
    assert decode(data) == ["connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live"}]


def test_encode_mapping_variants() -> None:
    # int -> number, tuple -> strict array, bool stays boolean even though it is an int.
    assert encode(3) == b"\x00" + struct.pack(">d", 3.0)
    assert encode((True,)) == b"\x0a\x00\x00\x00\x01\x01\x01"
    assert encode() == b""
    assert decode(b"") == []


def test_decode_types() -> None:
    (number,) = decode(encode(7))
    assert type(number) is float
    assert decode(b"\x01\x02") == [True]
    assert decode(b"\x01\xff") == [True]
    # A long string marker with a short length is still a string.
    assert decode(b"\x0c\x00\x00\x00\x02hi") == ["hi"]
    # A typed object decodes as a plain dict; the class name is dropped.
    assert decode(b"\x10\x00\x03Foo\x00\x01x\x05" + END) == [{"x": None}]
    nan = decode(encode(math.nan))[0]
    assert math.isnan(nan)
    assert decode(encode(-0.0))[0] == 0.0 and math.copysign(1.0, decode(encode(-0.0))[0]) < 0


def test_decode_accepts_buffers_and_offsets() -> None:
    data = encode("a", 2.0)
    assert decode(bytearray(data)) == ["a", 2.0]
    assert decode(memoryview(data)) == ["a", 2.0]
    assert decode(memoryview(b"xx" + data)[2:]) == ["a", 2.0]
    assert decode_one(data, 4) == (2.0, 13)
    with pytest.raises(AMF0Error):
        decode_one(data, len(data))
    with pytest.raises(LocalProtocolError):
        decode_one(data, -1)


def test_undefined_is_a_singleton() -> None:
    assert repr(UNDEFINED) == "UNDEFINED"
    assert copy.deepcopy(UNDEFINED) is UNDEFINED
    assert pickle.loads(pickle.dumps(UNDEFINED)) is UNDEFINED


def test_utf8_lengths_are_bytes() -> None:
    assert encode("é" * 3)[1:3] == b"\x00\x06"
    assert encode("\U0001f600" * 2)[1:3] == b"\x00\x08"
    assert encode({"é": 1})[1:3] == b"\x00\x02"


@pytest.mark.parametrize(
    ("text", "marker", "header"),
    [
        ("a" * 65535, b"\x02", b"\xff\xff"),
        ("a" * 65536, b"\x0c", b"\x00\x01\x00\x00"),
        ("é" * 32767 + "a", b"\x02", b"\xff\xff"),  # 65535 bytes
        ("é" * 32768, b"\x0c", b"\x00\x01\x00\x00"),  # 32768 characters, 65536 bytes
    ],
)
def test_long_string_boundary(text: str, marker: bytes, header: bytes) -> None:
    data = encode(text)
    assert data[:1] == marker
    assert data[1 : 1 + len(header)] == header
    assert len(data) == 1 + len(header) + len(text.encode())
    assert decode(data) == [text]


@pytest.mark.parametrize("count", [0, 1, 99, 0xFFFFFFFF])
def test_ecma_array_count_is_only_a_hint(count: int) -> None:
    body = b"\x00\x01a\x00" + Z8 + b"\x00\x01b\x05" + END
    (value,) = decode(b"\x08" + struct.pack(">I", count) + body)
    assert strict_equal(value, ECMAArray(a=0.0, b=None))


COMPOSITES: list[Any] = [
    {"app": "live", "flashVer": "FMLE/3.0", "n": 1.0, "ok": True},
    ECMAArray(duration=0.0, width=1920.0, encoder="obs"),
    ["a", 1.0, None, UNDEFINED, [False], {"k": AMFDate(5.0)}],
    "x" * 70000,
]


@pytest.mark.parametrize("value", COMPOSITES)
def test_truncation_at_every_boundary(value: Any) -> None:
    data = encode(value)
    # The 70000-byte long string is checked at a sample of cuts to stay quick.
    cuts = range(1, len(data)) if len(data) < 1000 else [1, 2, 3, 4, 5, 6, len(data) - 1]
    for cut in cuts:
        with pytest.raises(AMF0Error):
            decode(data[:cut])


def test_truncated_typed_object() -> None:
    typed = b"\x10\x00\x03Foo\x00\x01x\x0b" + Z8 + b"\x00\x00" + END
    for cut in range(1, len(typed)):
        with pytest.raises(AMF0Error):
            decode(typed[:cut])


def test_depth_limit() -> None:
    ok = b"\x0a\x00\x00\x00\x01" * MAX_DEPTH + b"\x05"
    value = decode(ok)[0]
    for _ in range(MAX_DEPTH):
        value = value[0]
    assert value is None
    with pytest.raises(AMF0Error, match="nesting"):
        decode(b"\x0a\x00\x00\x00\x01" * (MAX_DEPTH + 1) + b"\x05")
    # A million nested objects must not overflow the Python stack.
    with pytest.raises(AMF0Error, match="nesting"):
        decode(b"\x03\x00\x01k" * 1_000_000)


def test_strict_array_count_bomb() -> None:
    with pytest.raises(AMF0Error, match="count"):
        decode(b"\x0a\xff\xff\xff\xff\x05\x05")


@pytest.mark.parametrize("marker", [0x04, 0x07, 0x09, 0x0D, 0x0E, 0x0F, 0x11, 0x12, 0xFF])
def test_rejected_and_unknown_markers(marker: int) -> None:
    with pytest.raises(AMF0Error, match=f"0x{marker:02x}"):
        decode(bytes([marker]) + b"\x00\x00")


def test_object_end_closes_only_after_empty_name() -> None:
    # An empty name followed by a value is a key ""; an empty name then 0x09 ends the object.
    assert decode(b"\x03\x00\x00\x01\x01" + END) == [{"": True}]
    with pytest.raises(AMF0Error):
        decode(b"\x03\x00\x01k\x09")  # object end where a value belongs


def test_invalid_utf8() -> None:
    with pytest.raises(AMF0Error, match="UTF-8"):
        decode(b"\x02\x00\x02\xc3\x28")
    with pytest.raises(AMF0Error, match="UTF-8"):
        decode(b"\x03\x00\x01\xff\x05" + END)


def test_error_messages_never_leak_strings() -> None:
    secret = "live_sk_0123456789abcdef"
    raw = secret.encode()
    hostile = [
        b"\x02" + struct.pack(">H", len(raw) + 1) + raw + b"\xff",  # invalid UTF-8
        b"\x03\x00\x03key\x02" + struct.pack(">H", len(raw)) + raw + b"\x07\x00\x00",
        encode({"key": secret})[:-1],  # truncated just before the end marker
        encode([secret, secret])[:-3],
    ]
    for data in hostile:
        with pytest.raises(AMF0Error) as info:
            decode(data)
        assert secret not in str(info.value) and secret[:8] not in repr(info.value)
        # A chained UnicodeDecodeError would quote the bytes in a logged traceback.
        assert info.value.__cause__ is None
        assert info.value.__context__ is None or info.value.__suppress_context__
    with pytest.raises(LocalProtocolError) as local:
        encode({1: secret})
    assert secret not in str(local.value)


def test_errors_are_in_the_project_family() -> None:
    assert issubclass(AMF0Error, RemoteProtocolError)
    assert issubclass(LocalProtocolError, RelayError)


@pytest.mark.parametrize(
    "value",
    [
        b"bytes",
        {1, 2},
        object(),
        {1: "non-str key"},
        10**400,
        "\ud800",
        {"\ud800": 1},
        {"k" * 65536: 1},
        AMFDate(0.0, 40000),
    ],
    ids=lambda v: type(v).__name__,
)
def test_unencodable_values(value: Any) -> None:
    with pytest.raises(LocalProtocolError):
        encode(value)


def test_encode_depth_limit_and_cycles() -> None:
    nested: Any = None
    for _ in range(MAX_DEPTH):
        nested = [nested]
    assert decode(encode(nested)) == [nested]
    with pytest.raises(LocalProtocolError):
        encode([nested])
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(LocalProtocolError):
        encode(cycle)


def test_ecma_array_repr_and_equality() -> None:
    assert repr(ECMAArray(a=1.0)) == "ECMAArray({'a': 1.0})"
    assert ECMAArray(a=1.0) == {"a": 1.0}


# --- properties -------------------------------------------------------------------

scalars = (
    st.none()
    | st.just(UNDEFINED)
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text()
    | st.builds(AMFDate, st.floats(allow_nan=False), st.integers(-0x8000, 0x7FFF))
)
amf_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5).map(ECMAArray),
    max_leaves=20,
)


@given(st.lists(amf_values, max_size=4))
def test_round_trip_property(values: list[Any]) -> None:
    data = encode(*values)
    assert strict_equal(decode(data), values)
    # decode_one walks the same values one offset at a time.
    offset, decoded = 0, []
    while offset < len(data):
        value, offset = decode_one(data, offset)
        decoded.append(value)
    assert strict_equal(decoded, values)


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_amf0error(data: bytes) -> None:
    try:
        decode(data)
    except AMF0Error:
        pass


@given(amf_values, st.data())
def test_truncated_round_trip_raises_amf0error(value: Any, data: st.DataObject) -> None:
    encoded = encode(value)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    if cut == 0:
        assert decode(encoded[:0]) == []
    else:
        with pytest.raises(AMF0Error):
            decode(encoded[:cut])
