r"""JSON out: the exact bytes Starlette's `JSONResponse` writes, by orjson where it can.

One encoder for every answer, so an answer built in pieces (the rooms layer keeps each room's
JSON and appends what changes per call) is byte for byte the answer built whole:

    >>> dumps({"title": "直播", "n": 1, "ok": True})
    b'{"title":"\xe7\x9b\xb4\xe6\x92\xad","n":1,"ok":true}'
    >>> dumps(Encoded(b'[1,2]'))
    b'[1,2]'
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # a browser tab (Pyodide) has no orjson wheel: json writes the same bytes, slower
    orjson = None  # type: ignore[assignment]

__all__ = ["Encoded", "dumps"]


class Encoded:
    """A value already written as JSON (by `dumps`, or put together from its pieces): `dumps` answers
    its `body` as it is. (Not a bytes subclass: orjson and sockets take exact bytes.)"""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __repr__(self) -> str:
        return f"Encoded({self.body[:60]!r}{'...' if len(self.body) > 60 else ''})"


def dumps(value: Any) -> bytes:
    """UTF-8, no ASCII escapes, compact: what `JSONResponse` renders, by orjson when it can.

    orjson writes the same bytes for every string, integer, bool, null, list and dict (answers
    hold no floats: every field is typed and unknown ones are dropped). What it cannot write (a key
    that is not a string, an integer beyond 64 bits, a datetime, a lone surrogate, deep nesting)
    goes to `json`, which writes it or fails exactly as before. `Encoded` bytes pass through.
    """
    if type(value) is Encoded:
        return value.body
    if orjson is not None:
        try:
            return orjson.dumps(value, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)
        except TypeError:
            pass
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")
