"""The CDN's Type A check of an `auth_key`, as the edge applies it to pushes and pulls (SPEC 4)."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from ..signing import type_a_hash

__all__ = ["check_type_a", "split_query"]


def check_type_a(uri: str, auth_key: str | None, key: str, now: int, *, other_key: str = "") -> str | None:
    """None when `auth_key` signs `uri` with `key` and has not expired at `now`; else why not.

    An empty `key` accepts anything (SPEC 4: an empty key means unsigned URLs). `other_key` (the
    key of the other direction) only sharpens the reason: "signed with the pull key" says more
    than "wrong hash" to whoever pasted the wrong URL.
    """
    if not key:
        return None
    if not auth_key:
        return "missing auth_key"
    parts = auth_key.split("-")
    if len(parts) != 4 or not (parts[0].isascii() and parts[0].isdigit()):
        return "malformed auth_key (expected exp-rand-uid-hash)"
    exp, rand, uid, given = parts
    if not hmac.compare_digest(given.lower().encode(), type_a_hash(uri, key, exp, rand, uid).encode()):
        if other_key and other_key != key and hmac.compare_digest(given.lower().encode(), type_a_hash(uri, other_key, exp, rand, uid).encode()):
            return "signed with the key of the other direction (a pull key does not push, a push key does not play)"
        return "wrong hash (the path, expiry or key differs)"
    if now > int(exp):  # valid through the second `exp` itself, as the CDN
        return f"expired {now - int(exp)} s ago"
    return None


def split_query(name: str) -> tuple[str, dict[str, str]]:
    """`room1?auth_key=x` -> ("room1", {"auth_key": "x"}): RTMP carries the query inside the stream name."""
    base, _, query = name.partition("?")
    return base, dict(parse_qsl(query, keep_blank_values=True))
