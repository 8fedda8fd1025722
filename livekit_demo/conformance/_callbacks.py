"""Checks of the CDN's push callback (SPEC 13): signed events take a room live and back, refusals are clean.

The checker signs as the CDN does, so these run only when the server's callback host and key are
known (`keys=` settings or a config with live_stream.push_url / push_auth_key or callback_*).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from urllib.parse import urlencode

from ._base import Answer, CheckSkipped, Probe, check, now

__all__: list[str] = []

CALLBACK = "handlePushStreamEventCallback"
_NO_KEYS = (
    "no callback keys given: pass the server's config (--keys config.json with live_stream.push_url and "
    "push_auth_key, or callback_host and callback_auth_key) to sign push callbacks"
)


def _signed(p: Probe, *, skew: int = 0, key: str | None = None) -> dict[str, str]:
    keys = p.keys
    if keys is None or not keys.callback_known:
        raise CheckSkipped(_NO_KEYS)
    assert keys.callback_host is not None and keys.callback_auth_key is not None
    ts = now() + skew
    secret = keys.callback_auth_key if key is None else key
    signature = hashlib.md5(f"{keys.callback_host}|{ts}|{secret}".encode()).hexdigest()
    return {"ALI-LIVE-TIMESTAMP": str(ts), "ALI-LIVE-SIGNATURE": signature}


def _event(action: str, stream: str) -> dict[str, Any]:
    return {"action": action, "id": stream, "app": "conformance.example", "appname": "live", "ip": "192.0.2.10", "time": now()}


def _push(p: Probe, action: str, stream: str, *, how: str = "json", headers: dict[str, str] | None = None) -> Answer:
    """One callback, as the CDN sends it: GET with a query, POST with a form or a JSON body."""
    sent = _signed(p) if headers is None else headers
    params = _event(action, stream)
    if how == "query":
        query = urlencode({k: str(v) for k, v in params.items()})
        return p.call(f"{CALLBACK}?{query}", method="GET", as_user=None, headers=sent)
    if how == "form":
        form = urlencode({k: str(v) for k, v in params.items()}).encode()
        return p.call(CALLBACK, content=form, as_user=None, headers={**sent, "Content-Type": "application/x-www-form-urlencoded"})
    return p.call(CALLBACK, params, as_user=None, headers=sent)


def _expect_accepted(p: Probe, answer: Answer, what: str) -> None:
    p.expect(answer.status == 200 and answer.data == {"code": 200}, f"{what}: HTTP 200 with exactly {{\"code\": 200}}", answer.show)


def _status(p: Probe, room_id: str) -> Any:
    return p.ok("get", {"id": room_id, "user_id": p.username}, what="get").get("status")


@check("callback.publish_and_done", "a signed publish takes a room 0 -> 1, publish_done 1 -> 0; query, form and JSON alike, repeats change nothing")
def _publish_and_done(p: Probe) -> None:
    _signed(p)  # skip before making a room when no keys are known
    room_id = p.room()["id"]
    _expect_accepted(p, _push(p, "publish", room_id, how="query"), "GET publish")
    p.expect(_status(p, room_id) == 1, "status 1 after publish", lambda: f"status {_status(p, room_id)!r}")
    _expect_accepted(p, _push(p, "publish", room_id), "a repeated publish (JSON)")
    p.expect(_status(p, room_id) == 1, "status still 1 after a repeated publish", lambda: f"status {_status(p, room_id)!r}")
    _expect_accepted(p, _push(p, "publish_done", room_id, how="form"), "POST form publish_done")
    p.expect(_status(p, room_id) == 0, "status 0 after publish_done", lambda: f"status {_status(p, room_id)!r}")
    _expect_accepted(p, _push(p, "publish_done", room_id), "a repeated publish_done (JSON)")
    p.expect(_status(p, room_id) == 0, "status still 0 after a repeated publish_done", lambda: f"status {_status(p, room_id)!r}")


@check("callback.wrong_signature_401", "a push callback with a wrong ALI-LIVE-SIGNATURE is 401 and changes nothing")
def _wrong_signature(p: Probe) -> None:
    headers = _signed(p, key="not-" + secrets.token_hex(4))
    room_id = p.room()["id"]
    for how in ("json", "query"):
        p.expect_error(_push(p, "publish", room_id, how=how, headers=headers), 401, why="the signature is not the server's")
    p.expect(_status(p, room_id) == 0, "the room still at status 0", lambda: f"status {_status(p, room_id)!r}")


@check(
    "callback.stale_timestamp_401",
    "a push callback signed at a time more than 300 s away (a replay) is 401 and changes nothing",
    stricter="the reference never checked ALI-LIVE-TIMESTAMP, so a captured callback could be replayed forever",
)
def _stale_timestamp(p: Probe) -> None:
    room_id = p.room()["id"]
    for skew in (-3600, 3600):
        p.expect_error(_push(p, "publish", room_id, headers=_signed(p, skew=skew)), 401, why=f"signed {skew:+d} s from now")
    p.expect(_status(p, room_id) == 0, "the room still at status 0", lambda: f"status {_status(p, room_id)!r}")


@check("callback.missing_headers_400", "a push callback without ALI-LIVE-TIMESTAMP or ALI-LIVE-SIGNATURE is 400")
def _missing_headers(p: Probe) -> None:
    good = _signed(p)
    room_id = p.room()["id"]
    for name in ("ALI-LIVE-TIMESTAMP", "ALI-LIVE-SIGNATURE"):
        kept = {k: v for k, v in good.items() if k != name}
        p.expect_error(_push(p, "publish", room_id, headers=kept), 400, why=f"no {name} header")
    p.expect_error(_push(p, "publish", room_id, how="query", headers={}), 400, why="no signature headers")
    p.expect(_status(p, room_id) == 0, "the room still at status 0", lambda: f"status {_status(p, room_id)!r}")


@check("callback.unknown_stream_200", "a signed callback for a stream naming no room is 200 (so the CDN stops retrying)")
def _unknown_stream(p: Probe) -> None:
    stream = f"conformance-no-room-{secrets.token_hex(6)}"
    _expect_accepted(p, _push(p, "publish", stream), "publish of an unknown stream")
    _expect_accepted(p, _push(p, "publish_done", stream, how="query"), "publish_done of an unknown stream")


@check(
    "callback.ended_room_stays_ended",
    "a publish for an ended room (status 2) leaves it ended: only the anchor's start re-opens it",
    stricter="the reference re-opened an ended room when a pusher was still retrying",
)
def _ended_stays_ended(p: Probe) -> None:
    _signed(p)
    room_id = p.room_in(2)["id"]
    _expect_accepted(p, _push(p, "publish", room_id), "publish for an ended room")
    p.expect(_status(p, room_id) == 2, "status still 2 (ended) after publish", lambda: f"status {_status(p, room_id)!r}")
