"""AMF0 encoding and decoding, sans-I/O.

Implements the part of Adobe's "Action Message Format -- AMF 0" (December 2007)
that RTMP commands and FLV script data carry; section numbers below refer to it.
Decoding treats its input as hostile: every length is checked against the bytes
that remain, nesting is bounded, and errors name a marker and an offset but never
decoded content, because strings here can be stream keys.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from relay.rtmp.errors import AMF0Error, LocalProtocolError

__all__ = ["MAX_DEPTH", "UNDEFINED", "AMFDate", "ECMAArray", "decode", "decode_one", "encode"]

# Type markers, section 2.1.
_NUMBER: Final = 0x00
_BOOLEAN: Final = 0x01
_STRING: Final = 0x02
_OBJECT: Final = 0x03
_NULL: Final = 0x05
_UNDEFINED: Final = 0x06
_ECMA_ARRAY: Final = 0x08
_OBJECT_END: Final = 0x09
_STRICT_ARRAY: Final = 0x0A
_DATE: Final = 0x0B
_LONG_STRING: Final = 0x0C
_TYPED_OBJECT: Final = 0x10

# Markers the spec defines but RTMP peers have no business sending us: references
# need an object table we do not keep, and the rest carry no data we could use.
_REJECTED: Final[Mapping[int, str]] = {
    0x04: "movieclip",
    0x07: "reference",
    _OBJECT_END: "object end outside an object",
    0x0D: "unsupported",
    0x0E: "recordset",
    0x0F: "XML document",
    0x11: "AVM+ object",
}

#: Containers may nest this deep; deeper input is an error rather than a stack overflow.
MAX_DEPTH: Final = 32

_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_DOUBLE: Final = struct.Struct(">d")
_MARKER_U16: Final = struct.Struct(">BH")
_MARKER_U32: Final = struct.Struct(">BI")
_MARKER_DOUBLE: Final = struct.Struct(">Bd")
_DATE_BODY: Final = struct.Struct(">dh")  # section 2.13: ms since epoch, then a reserved s16
_END_OF_OBJECT: Final = b"\x00\x00\x09"  # an empty name followed by the object-end marker


class _Undefined(enum.Enum):
    # An enum member stays a singleton through copy and pickle, unlike a bare object().
    UNDEFINED = "undefined"

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = _Undefined.UNDEFINED


class ECMAArray(dict[str, Any]):
    """An AMF0 ECMA array (section 2.10): a dict that encodes as marker 0x08, not as an object."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ECMAArray({dict.__repr__(self)})"


@dataclass(frozen=True, slots=True)
class AMFDate:
    """An AMF0 date (section 2.13): milliseconds since the Unix epoch, UTC."""

    milliseconds: float
    timezone: int = 0  # reserved by the spec and meant to be 0; kept so a date round-trips


# --- encoding -------------------------------------------------------------------


def encode(*values: Any) -> bytes:
    """Encode each value as AMF0 and concatenate the results."""
    out: list[bytes] = []
    for value in values:
        _encode_value(value, out, 0)
    return b"".join(out)


def _encode_value(value: Any, out: list[bytes], depth: int) -> None:
    # bool before int: bool is an int subclass, and True must not become 1.0.
    if value is None:
        out.append(b"\x05")
    elif value is UNDEFINED:
        out.append(b"\x06")
    elif isinstance(value, bool):
        out.append(b"\x01\x01" if value else b"\x01\x00")
    elif isinstance(value, (int, float)):
        # Section 2.2: always an IEEE 754 double, so ints past 2**53 lose precision.
        try:
            out.append(_MARKER_DOUBLE.pack(_NUMBER, float(value)))
        except OverflowError:
            raise LocalProtocolError("integer too large for an AMF0 number") from None
    elif isinstance(value, str):
        raw = _utf8(value)
        if len(raw) <= 0xFFFF:
            out.append(_MARKER_U16.pack(_STRING, len(raw)))
        elif len(raw) <= 0xFFFFFFFF:
            out.append(_MARKER_U32.pack(_LONG_STRING, len(raw)))
        else:
            raise LocalProtocolError("string too long for an AMF0 long string")
        out.append(raw)
    elif isinstance(value, AMFDate):
        if not -0x8000 <= value.timezone <= 0x7FFF:
            raise LocalProtocolError("AMF0 date timezone does not fit in 16 bits")
        try:
            out.append(bytes((_DATE,)) + _DATE_BODY.pack(value.milliseconds, value.timezone))
        except (struct.error, TypeError, OverflowError):
            raise LocalProtocolError("AMF0 date milliseconds must be a number") from None
    elif isinstance(value, ECMAArray):
        _check_encode_depth(depth)
        out.append(_MARKER_U32.pack(_ECMA_ARRAY, _count(len(value))))
        _encode_pairs(value, out, depth + 1)
    elif isinstance(value, Mapping):
        _check_encode_depth(depth)
        out.append(bytes((_OBJECT,)))
        _encode_pairs(value, out, depth + 1)
    elif isinstance(value, (list, tuple)):
        _check_encode_depth(depth)
        out.append(_MARKER_U32.pack(_STRICT_ARRAY, _count(len(value))))
        for item in value:
            _encode_value(item, out, depth + 1)
    else:
        raise LocalProtocolError(f"cannot encode a {type(value).__name__} as AMF0")


def _encode_pairs(mapping: Mapping[Any, Any], out: list[bytes], depth: int) -> None:
    # Section 2.5: UTF-8 names without a marker, each followed by a value.
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise LocalProtocolError(f"AMF0 object keys must be str, not {type(key).__name__}")
        raw = _utf8(key)
        if len(raw) > 0xFFFF:
            raise LocalProtocolError("AMF0 object key longer than 65535 bytes")
        out.append(_U16.pack(len(raw)))
        out.append(raw)
        _encode_value(item, out, depth)
    out.append(_END_OF_OBJECT)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates; "from None" keeps the text out of any chained traceback.
        raise LocalProtocolError("string is not encodable as UTF-8") from None


def _count(n: int) -> int:
    if n > 0xFFFFFFFF:
        raise LocalProtocolError("too many AMF0 array entries")
    return n


def _check_encode_depth(depth: int) -> None:
    # Same bound as decoding, so whatever we send we could read back; also stops cycles.
    if depth >= MAX_DEPTH:
        raise LocalProtocolError(f"AMF0 nesting deeper than {MAX_DEPTH} (or a cycle)")


# --- decoding -------------------------------------------------------------------
# Every reader takes a memoryview and an offset and returns (value, next offset):
# no slicing copies in loops, so decoding stays linear in the input size. A budget
# counts the values (and object keys) made: a few bytes of AMF0 can become far more
# memory in Python objects (an empty object is 4 bytes of input), so a caller facing
# hostile input bounds how many it will build.


class _Budget:
    __slots__ = ("left", "limit")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.left = limit if limit is not None else -1  # negative: unlimited

    def take(self, offset: int) -> None:
        if self.left == 0:
            raise AMF0Error(f"more than {self.limit} AMF0 values (at offset {offset})")
        self.left -= 1


def decode(data: bytes | bytearray | memoryview, max_values: int | None = None) -> list[Any]:
    """Decode every AMF0 value in data, which must end exactly after the last one.

    max_values bounds the values built, object keys and nested values included.
    """
    view = _as_view(data)
    budget = _Budget(max_values)
    values: list[Any] = []
    pos = 0
    while pos < len(view):
        value, pos = _read_value(view, pos, 0, budget)
        values.append(value)
    return values


def decode_one(data: bytes | bytearray | memoryview, offset: int = 0,
               max_values: int | None = None) -> tuple[Any, int]:
    """Decode the value at offset; return it and the offset just past it."""
    if offset < 0:
        raise LocalProtocolError("AMF0 offset must not be negative")
    return _read_value(_as_view(data), offset, 0, _Budget(max_values))


def _as_view(data: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _need(view: memoryview, pos: int, size: int, what: str) -> None:
    if len(view) - pos < size:
        raise AMF0Error(f"truncated AMF0 {what} at offset {pos}: need {size} bytes")


def _read_value(view: memoryview, pos: int, depth: int, budget: _Budget) -> tuple[Any, int]:
    _need(view, pos, 1, "type marker")
    if budget.left >= 0:
        budget.take(pos)
    start = pos
    marker = view[pos]
    pos += 1
    if marker == _NUMBER:
        _need(view, pos, 8, "number")
        return _DOUBLE.unpack_from(view, pos)[0], pos + 8
    if marker == _BOOLEAN:
        _need(view, pos, 1, "boolean")
        return view[pos] != 0, pos + 1
    if marker == _STRING:
        return _read_utf8(view, pos, _U16)
    if marker == _LONG_STRING:
        return _read_utf8(view, pos, _U32)
    if marker == _NULL:
        return None, pos
    if marker == _UNDEFINED:
        return UNDEFINED, pos
    if marker == _OBJECT:
        return _read_pairs(view, pos, _nest(depth, start), {}, budget)
    if marker == _TYPED_OBJECT:
        # Section 2.18: a class name, then an ordinary object body; the name is dropped.
        _, pos = _read_utf8(view, pos, _U16)
        return _read_pairs(view, pos, _nest(depth, start), {}, budget)
    if marker == _ECMA_ARRAY:
        # The count is only a hint: some encoders write a wrong one, and the
        # object-end marker is what really closes the array.
        _need(view, pos, 4, "ECMA array count")
        return _read_pairs(view, pos + 4, _nest(depth, start), ECMAArray(), budget)
    if marker == _STRICT_ARRAY:
        return _read_strict_array(view, pos, _nest(depth, start), budget)
    if marker == _DATE:
        _need(view, pos, _DATE_BODY.size, "date")
        milliseconds, timezone = _DATE_BODY.unpack_from(view, pos)
        return AMFDate(milliseconds, timezone), pos + _DATE_BODY.size
    name = _REJECTED.get(marker)
    if name is not None:
        raise AMF0Error(f"unsupported AMF0 type {name} (marker 0x{marker:02x}) at offset {start}")
    raise AMF0Error(f"unknown AMF0 marker 0x{marker:02x} at offset {start}")


def _nest(depth: int, offset: int) -> int:
    if depth >= MAX_DEPTH:
        raise AMF0Error(f"AMF0 nesting deeper than {MAX_DEPTH} at offset {offset}")
    return depth + 1


def _read_utf8(view: memoryview, pos: int, length: struct.Struct) -> tuple[str, int]:
    _need(view, pos, length.size, "string length")
    size: int = length.unpack_from(view, pos)[0]
    pos += length.size
    _need(view, pos, size, "string")
    try:
        text = str(view[pos : pos + size], "utf-8")
    except UnicodeDecodeError:
        # "from None": the chained UnicodeDecodeError would quote the offending bytes.
        raise AMF0Error(f"invalid UTF-8 in AMF0 string at offset {pos}") from None
    return text, pos + size


def _read_pairs(
    view: memoryview, pos: int, depth: int, into: dict[str, Any], budget: _Budget
) -> tuple[dict[str, Any], int]:
    # Section 2.5: name/value pairs until an empty name followed by the object-end
    # marker. An empty name followed by anything else is a real key "".
    while True:
        _need(view, pos, 2, "object key length")
        if view[pos] == 0 and view[pos + 1] == 0:
            _need(view, pos + 2, 1, "object value")
            if view[pos + 2] == _OBJECT_END:
                return into, pos + 3
        if budget.left >= 0:
            budget.take(pos)  # the key is an object of its own
        key, pos = _read_utf8(view, pos, _U16)
        value, pos = _read_value(view, pos, depth, budget)
        into[key] = value


def _read_strict_array(view: memoryview, pos: int, depth: int, budget: _Budget) -> tuple[list[Any], int]:
    _need(view, pos, 4, "strict array count")
    count: int = _U32.unpack_from(view, pos)[0]
    pos += 4
    # Every element takes at least its marker byte, so a count beyond the remaining
    # bytes is a lie; refuse it before looping billions of times.
    if count > len(view) - pos:
        raise AMF0Error(f"AMF0 strict array count exceeds the remaining data at offset {pos - 4}")
    items: list[Any] = []
    for _ in range(count):
        item, pos = _read_value(view, pos, depth, budget)
        items.append(item)
    return items, pos
