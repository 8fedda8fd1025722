"""AMF0, the value encoding of RTMP commands and stream metadata (the public AMF0 specification).

Only what RTMP peers send: numbers, booleans, strings, objects, null/undefined, ECMA and strict
arrays, dates (read as a number of milliseconds) and long strings.

    >>> decode(encode("connect", 1.0, {"app": "live"}, None))
    ['connect', 1.0, {'app': 'live'}, None]
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["AMF0Error", "ECMAArray", "encode", "decode"]

NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING = 0x08, 0x09, 0x0A, 0x0B, 0x0C
_OBJECT_END = b"\x00\x00\x09"


class AMF0Error(ValueError):
    """Bytes that are not AMF0, or a value AMF0 cannot carry."""


class ECMAArray(dict):
    """A dict that encodes as an ECMA array (the form onMetaData uses) rather than an object."""


def encode(*values: Any) -> bytes:
    """The AMF0 encoding of each value, one after the other."""
    out = bytearray()
    for value in values:
        _encode(value, out)
    return bytes(out)


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(NULL)
    elif isinstance(value, bool):  # before int: bool is an int
        out += bytes((BOOLEAN, 1 if value else 0))
    elif isinstance(value, (int, float)):
        out.append(NUMBER)
        out += struct.pack(">d", float(value))
    elif isinstance(value, str):
        raw = value.encode()
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += struct.pack(">H", len(raw)) + raw
        else:
            out.append(LONG_STRING)
            out += struct.pack(">I", len(raw)) + raw
    elif isinstance(value, ECMAArray):
        out.append(ECMA_ARRAY)
        out += struct.pack(">I", len(value))
        _encode_properties(value, out)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _encode_properties(value, out)
    elif isinstance(value, (list, tuple)):
        out.append(STRICT_ARRAY)
        out += struct.pack(">I", len(value))
        for item in value:
            _encode(item, out)
    else:
        raise AMF0Error(f"AMF0 cannot carry {type(value).__name__}")


def _encode_properties(mapping: dict[str, Any], out: bytearray) -> None:
    for key, item in mapping.items():
        raw = str(key).encode()
        out += struct.pack(">H", len(raw)) + raw
        _encode(item, out)
    out += _OBJECT_END


def decode(data: bytes) -> list[Any]:
    """Every AMF0 value in `data`, in order."""
    values = []
    view = memoryview(data)
    offset = 0
    try:
        while offset < len(view):
            value, offset = _decode(view, offset)
            values.append(value)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise AMF0Error(f"truncated or malformed AMF0 at byte {offset}") from exc
    return values


def _decode(view: memoryview, offset: int) -> tuple[Any, int]:
    marker = view[offset]
    offset += 1
    if marker == NUMBER:
        return struct.unpack_from(">d", view, offset)[0], offset + 8
    if marker == BOOLEAN:
        return view[offset] != 0, offset + 1
    if marker == STRING:
        return _string(view, offset, 2)
    if marker == LONG_STRING:
        return _string(view, offset, 4)
    if marker in (NULL, UNDEFINED):
        return None, offset
    if marker == OBJECT:
        obj: dict[str, Any] = {}
        return obj, _properties(view, offset, obj)
    if marker == ECMA_ARRAY:
        array = ECMAArray()
        return array, _properties(view, offset + 4, array)  # the count is a hint; the end marker ends it
    if marker == STRICT_ARRAY:
        (count,) = struct.unpack_from(">I", view, offset)
        offset += 4
        items = []
        for _ in range(count):
            item, offset = _decode(view, offset)
            items.append(item)
        return items, offset
    if marker == DATE:
        (millis,) = struct.unpack_from(">d", view, offset)
        return millis, offset + 10  # 8 bytes of time, 2 of a time zone nobody sets
    raise AMF0Error(f"unsupported AMF0 type 0x{marker:02x} at byte {offset - 1}")


def _string(view: memoryview, offset: int, width: int) -> tuple[str, int]:
    (length,) = struct.unpack_from(">H" if width == 2 else ">I", view, offset)
    start = offset + width
    if start + length > len(view):
        raise IndexError(start + length)
    return bytes(view[start : start + length]).decode(), start + length


def _properties(view: memoryview, offset: int, into: dict[str, Any]) -> int:
    while True:
        if bytes(view[offset : offset + 3]) == _OBJECT_END:
            return offset + 3
        key, offset = _string(view, offset, 2)
        into[key], offset = _decode(view, offset)
