"""The CDN's push callback (SPEC 13): its parameters, its signature and its replay window.

The CDN (or our local edge, which behaves like one) tells the AppServer that a stream was published
or ended. The parameters come as a query string, a form or JSON: strings in the first two, strings
or numbers in JSON. The call carries no JWT: it is signed with two headers,

    ALI-LIVE-TIMESTAMP: <unix seconds>
    ALI-LIVE-SIGNATURE: md5_hex(f"{callback_host}|{timestamp}|{callback_auth_key}")

    >>> from livekit_demo.signing import callback_signature
    >>> check_signature("1700000000", callback_signature("push.example.com", 1700000000, "k"),
    ...                 host="push.example.com", key="k", now=1700000100)
    >>> parse_push_event({"action": "publish", "id": "room1", "time": "1700000000"}).stream
    'room1'

Nothing here knows HTTP: the api layer hands in the header values and the parameters it read.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import BadRequest, FieldProblem, Unauthorized
from .signing import callback_signature
from .types import JSONDict

__all__ = [
    "CALLBACK_NAME",
    "PUSH_ACTIONS",
    "REPLAY_WINDOW",
    "TIMESTAMP_HEADER",
    "SIGNATURE_HEADER",
    "PushEvent",
    "parse_push_event",
    "check_signature",
    "PUSH_EVENT_FIELDS",
    "push_event_schema",
]

CALLBACK_NAME = "handlePushStreamEventCallback"
PUSH_ACTIONS = ("publish", "publish_done")
REPLAY_WINDOW = 300
"""Seconds an `ALI-LIVE-TIMESTAMP` may be away from our clock (either way) before the call is a replay."""
TIMESTAMP_HEADER = "ALI-LIVE-TIMESTAMP"
SIGNATURE_HEADER = "ALI-LIVE-SIGNATURE"

PUSH_EVENT_FIELDS: dict[str, tuple[str, str]] = {
    # name: (kind, description), for the parser below and the OpenAPI document
    "action": ("string", "publish (a stream started) or publish_done (it ended)"),
    "id": ("string", "the stream name: a room id, or a co-streaming mix {app_id}_{meeting_id}_{anchor}_camera|_audio"),
    "app": ("string", "the push domain"),
    "appname": ("string", "the app of the stream path, e.g. live"),
    "ip": ("string", "the pusher's address"),
    "time": ("integer", "when it happened, unix seconds"),
    "width": ("integer", "the picture's width, when known"),
    "height": ("integer", "the picture's height, when known"),
}
_MAX_TEXT = 1024


@dataclass(frozen=True)
class PushEvent:
    """One push callback's parameters, checked."""

    action: str
    stream: str
    app: str = ""
    appname: str = ""
    ip: str = ""
    time: int | None = None
    width: int | None = None
    height: int | None = None


def parse_push_event(params: Mapping[str, Any]) -> PushEvent:
    """The event in `params` (query or form strings, or JSON strings and numbers); a 400 naming every bad field.

    Unknown parameters (`usrargs`, `node`...) are ignored; `null` and "" count as absent.
    """
    problems: list[FieldProblem] = []
    values: dict[str, Any] = {}
    for name, (kind, _) in PUSH_EVENT_FIELDS.items():
        value = params.get(name)
        if value is None or value == "":
            continue
        if kind == "integer":
            number = _integer(value)
            if number is None:
                problems.append({"field": name, "problem": f"must be a whole number (a string of digits or a JSON integer), not {value!r}"[:200]})
            else:
                values[name] = number
        elif isinstance(value, str):
            if len(value) > _MAX_TEXT:
                problems.append({"field": name, "problem": f"is longer than {_MAX_TEXT} characters"})
            else:
                values[name] = value
        else:
            problems.append({"field": name, "problem": f"must be a string, not {type(value).__name__}"})
    for name in ("action", "id"):
        if name not in values and not any(p["field"] == name for p in problems):
            problems.append({"field": name, "problem": "is required"})
    action = values.get("action")
    if isinstance(action, str) and action not in PUSH_ACTIONS:
        problems.append({"field": "action", "problem": f"must be one of {', '.join(PUSH_ACTIONS)}, not {action!r}"[:200]})
    if problems:
        raise BadRequest.for_fields(problems)
    stream = values.pop("id")
    return PushEvent(stream=stream, **values)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().lstrip("-").isdigit() and len(value) <= 20:
        return int(value)
    return None


def check_signature(timestamp: str | None, signature: str | None, *, host: str, key: str, now: int) -> None:
    """Refuse an unsigned (400), wrongly signed (401) or replayed (401: more than 300 s from `now`) callback."""
    missing = [h for h, v in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)) if not v]
    if missing:
        raise BadRequest(
            f"the CDN callback needs the {' and '.join(missing)} header{'s' if len(missing) > 1 else ''}",
            details=[{"field": name, "problem": "header is missing"} for name in missing],
        )
    assert timestamp is not None and signature is not None
    expected = callback_signature(host, timestamp, key)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise Unauthorized(f"{SIGNATURE_HEADER} does not match: the callback is not signed with this server's callback host and key")
    sent = _integer(timestamp)
    if sent is None:
        raise Unauthorized(f"{TIMESTAMP_HEADER} {timestamp[:40]!r} is not unix seconds")
    if abs(now - sent) > REPLAY_WINDOW:
        raise Unauthorized(f"{TIMESTAMP_HEADER} is {abs(now - sent)} s from the server's clock (more than {REPLAY_WINDOW} s): refused as a replay")


def push_event_schema() -> JSONDict:
    """The parameters as a JSON Schema object (for the OpenAPI document)."""
    properties: dict[str, JSONDict] = {}
    for name, (kind, description) in PUSH_EVENT_FIELDS.items():
        one: JSONDict = {"type": "string", "description": description}
        if kind == "integer":
            one = {"type": ["integer", "string"], "description": f"{description} (a JSON integer or a string of digits)"}
        if name == "action":
            one["enum"] = list(PUSH_ACTIONS)
        properties[name] = one
    return {"type": "object", "required": ["action", "id"], "properties": properties, "additionalProperties": True}
