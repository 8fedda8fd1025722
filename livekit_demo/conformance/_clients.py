"""Checks of what the real clients need beyond rooms: base URLs, the audience calls (SPEC 11), hand-offs (SPEC 12).

The iOS, web and uni-app clients build ``base + "/api/..."`` (so a base URL ending in "/" makes every
call ``//api/...``); the mobile clients send likes and read statistics and the chat's mute flag; the
PC pusher app trades a hand-off token for a login. The original Go server served none of SPEC 11 and
12, so those checks read as the calls a complete AppServer serves, not as differences in behaviour.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._base import API, API_V2, Answer, CheckSkipped, Probe, check, jwt_parts, now

__all__: list[str] = []

_SLACK = 600  # seconds of clock difference tolerated between checker and server
_COUNTERS = {"pv", "uv", "like_count", "online_count"}
_JUMP = "auipusher://page/live-room"
_NOT_SERVED = "the original Go server did not serve this call (the mobile clients got 404s)"


def _base(p: Probe) -> str:
    return str(p.client.base_url).rstrip("/")


def _int(value: Any) -> bool:
    return type(value) is int


# -- base URLs ----------------------------------------------------------------------------------------


@check("baseurl.root_without_trailing_slash", "GET / names the base URL without a trailing slash (clients append /api/...)",
       stricter="GET / is SPEC's help line; the original served nothing there")  # fmt: skip
def _root_url(p: Probe) -> None:
    answer = p.call("/", method="GET", as_user=None)
    urls = re.findall(r"[a-z][a-z0-9+.-]*://\S+", answer.text)  # http(s), or inprocess:// for a server in this process
    p.expect(answer.status == 200 and bool(urls), "HTTP 200 naming a base URL", answer.show)
    ending = [u for u in urls if u.rstrip(".,;").endswith("/")]
    p.expect(not ending, "every base URL named without a trailing slash", f"{ending}")


@check("baseurl.repeated_slashes", "a path with repeated slashes (//api/v1/live/login) is answered as the single-slash path",
       stricter="SPEC's forgiveness for a base URL pasted with its '/'; a router that does not clean paths answers 404")  # fmt: skip
def _double_slash(p: Probe) -> None:
    for path in ("//login", f"/{API}/login"):
        # An absolute URL: "//login" alone would read as a URL naming the host "login".
        answer = p.call(f"{_base(p)}{path}", {"username": p.username, "password": p.password}, as_user=None)
        p.expect(answer.status == 200 and isinstance(answer.data, dict) and answer.data.get("code") == 200,
                 f"POST {path}: HTTP 200 with the login answer", answer.show)  # fmt: skip
    room = p.shared_room(0)
    answer = p.call(f"{_base(p)}/{API}//get", {"id": room["id"], "user_id": p.username})
    p.expect(answer.status == 200 and isinstance(answer.data, dict) and answer.data.get("id") == room["id"],
             f"POST /{API}//get: HTTP 200 with the room", answer.show)  # fmt: skip


# -- SPEC 11: the audience calls ---------------------------------------------------------------------


def _chat(p: Probe, info: dict[str, Any]) -> str:
    chat = info.get("chat_id")
    if not isinstance(chat, str) or not chat:
        raise CheckSkipped(f"the room has no chat_id to address the audience calls to ({chat!r})")
    return chat


def _stats(p: Probe, chat: str, path: str = "getStatistics") -> dict[str, Any]:
    data = p.ok(path, {"chatroom_id": chat})
    p.expect_keys(data, _COUNTERS, path)
    p.expect(all(_int(data[k]) for k in _COUNTERS), f"{path}: integers", repr(data))
    return dict(data)


@check("audience.statistics", "getStatistics answers {pv, uv, like_count, online_count}, the room's metrics, and counts no visit", stricter=_NOT_SERVED)
def _statistics(p: Probe) -> None:
    info = p.room(0)
    chat = _chat(p, info)
    first = _stats(p, chat)
    second = _stats(p, chat)
    p.expect(second["pv"] == first["pv"], "getStatistics counts no visit (pv unchanged by a second call)", f"{first} then {second}")
    metrics = p.ok("get", {"id": info["id"], "user_id": p.username}).get("metrics") or {}
    after = _stats(p, chat)
    same = {k: after.get(k) for k in ("pv", "uv", "like_count")} == {k: metrics.get(k) for k in ("pv", "uv", "like_count")}
    p.expect(same and after["pv"] == first["pv"] + 1, "after one get: the same pv, uv, like_count as get's metrics", f"metrics {metrics}, statistics {after}")
    p.expect_error(p.call("getStatistics", {"chatroom_id": secrets.token_hex(16)}), 404, why="unknown chatroom_id")


@check("audience.likes_add_up", "sendLikeMessage answers {code: 200, count: the room's total}; metrics.like_count follows", stricter=_NOT_SERVED)
def _likes(p: Probe) -> None:
    info = p.room(0)
    chat = _chat(p, info)
    totals = []
    for count in (3, 2):
        data = p.ok("sendLikeMessage", {"chatroom_id": chat, "user_id": p.username, "like_count": count})
        p.expect_keys(data, {"code", "count"}, "sendLikeMessage")
        totals.append(data.get("count"))
    p.expect(totals == [3, 5], "counts 3 then 5 (the room's total after each call)", repr(totals))
    metrics = p.ok("get", {"id": info["id"], "user_id": p.username}).get("metrics") or {}
    p.expect(metrics.get("like_count") == 5, "get's metrics.like_count 5", repr(metrics))
    p.expect(_stats(p, chat)["like_count"] == 5, "getStatistics like_count 5", "see the answer")
    data = p.ok(f"{API_V2}/sendLikeMessage", {"chatroom_id": chat, "user_id": p.username, "like_count": 1})
    p.expect(isinstance(data, dict) and data.get("count") == 6, "served under /api/v2/live too: count 6", repr(data))


@check("audience.like_rules", "like_count outside 1..1000 is 400; likes for someone else 403; an unknown room 404", stricter=_NOT_SERVED)
def _like_rules(p: Probe) -> None:
    chat = _chat(p, p.room(0))
    for count in (0, 1001):
        answer = p.call("sendLikeMessage", {"chatroom_id": chat, "user_id": p.username, "like_count": count})
        p.expect_error(answer, 400, field="like_count", why=f"like_count {count}")
    p.expect_error(p.call("sendLikeMessage", {"chatroom_id": chat, "user_id": p.peer_name, "like_count": 1}), 403, why="user_id is not the caller")
    p.expect_error(p.call("sendLikeMessage", {"chatroom_id": secrets.token_hex(16), "user_id": p.username, "like_count": 1}), 404, why="unknown room")
    p.expect(_stats(p, chat)["like_count"] == 0, "nothing refused was counted", "see the answer")


def _user_status(p: Probe, room_id: str, who: str) -> Any:
    return p.ok("get", {"id": room_id, "user_id": p.user(who)}, as_user=who).get("user_status")


@check("audience.mute_follows_user_status", "muteChatroom / cancelMuteChatroom / isMuteChatroom; while muted every user but the anchor gets user_status {mute: true, mute_source: [group]}",
       stricter=_NOT_SERVED)  # fmt: skip
def _mute(p: Probe) -> None:
    info = p.room(0)
    chat = _chat(p, info)
    p.token("peer")
    muted, unmuted = {"mute": True, "mute_source": ["group"]}, {"mute": False, "mute_source": []}
    p.expect(p.ok("isMuteChatroom", {"chatroom_id": chat}, as_user="peer") == {"code": 200, "mute": False}, "isMuteChatroom of a new room: mute false", "see the answer")
    p.expect(p.ok("muteChatroom", {"chatroom_id": chat}) == {"code": 200, "mute": True}, 'muteChatroom answers {"code": 200, "mute": true}', "see the answer")
    p.expect(p.ok("isMuteChatroom", {"chatroom_id": chat}, as_user="peer") == {"code": 200, "mute": True}, "isMuteChatroom after muting: mute true", "see the answer")
    seen = _user_status(p, info["id"], "peer")
    p.expect(seen == muted, f"another user's user_status {muted}", repr(seen))
    seen = _user_status(p, info["id"], "main")
    p.expect(seen == unmuted, f"the anchor's user_status {unmuted} (the anchor still speaks)", repr(seen))
    p.expect(p.ok("cancelMuteChatroom", {"chatroom_id": chat}) == {"code": 200, "mute": False}, 'cancelMuteChatroom answers {"code": 200, "mute": false}', "see the answer")
    seen = _user_status(p, info["id"], "peer")
    p.expect(seen == unmuted, f"after unmuting, another user's user_status {unmuted}", repr(seen))


@check("audience.mute_only_by_the_anchor", "muteChatroom by someone who is not the room's anchor is 403, and mutes nothing", stricter=_NOT_SERVED)
def _mute_owner(p: Probe) -> None:
    chat = _chat(p, p.room(0))
    p.token("peer")
    p.expect_error(p.call("muteChatroom", {"chatroom_id": chat}, as_user="peer"), 403, why="not the room's anchor")
    p.expect(p.ok("isMuteChatroom", {"chatroom_id": chat}) == {"code": 200, "mute": False}, "the chat is still open", "see the answer")
    p.expect_error(p.call("isMuteChatroom", {"chatroom_id": secrets.token_hex(16)}), 404, why="unknown room")


# -- SPEC 12: hand-offs --------------------------------------------------------------------------------


@check("handoff.rtc_auth_token", "getRtcAuthToken answers {auth_token: sha256 hex, timestamp: now + 86400}; another user_id is 403", stricter=_NOT_SERVED)
def _rtc_auth(p: Probe) -> None:
    data = p.ok("getRtcAuthToken", {"room_id": "conformance_channel"})
    p.expect_keys(data, {"auth_token", "timestamp"}, "getRtcAuthToken")
    token, ts = data["auth_token"], data["timestamp"]
    p.expect(isinstance(token, str) and bool(re.fullmatch(r"[0-9a-f]{64}", token)), "auth_token 64 hex digits (sha256)", repr(token))
    p.expect(_int(ts) and abs(ts - (now() + 86400)) <= _SLACK, "timestamp an integer, now + 86400", repr(ts))
    keys = p.keys
    if keys is not None and keys.rtc_app_id is not None and keys.rtc_app_key is not None:
        wanted = hashlib.sha256(f"{keys.rtc_app_id}{keys.rtc_app_key}conformance_channel{p.username}{ts}".encode()).hexdigest()
        p.expect(token == wanted, "auth_token = sha256(app_id + app_key + room_id + user_id + timestamp)", repr(token))
    p.expect_error(p.call("getRtcAuthToken", {"room_id": "conformance_channel", "user_id": p.peer_name}), 403, why="user_id is not the caller")


def _jump(p: Probe, room_id: str, **extra: str) -> dict[str, str]:
    data = p.ok("getLiveJumpUrl", {"user_id": p.username, "live_id": room_id, **extra})
    p.expect_keys(data, {"live_jump_url"}, "getLiveJumpUrl")
    url = data["live_jump_url"]
    p.expect(isinstance(url, str) and url.startswith(_JUMP + "?"), f"live_jump_url starts with {_JUMP}?", repr(url)[:120])
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


@check("handoff.jump_url", "getLiveJumpUrl answers an auipusher:// link with app_server (the base URL), user_id, live_id and a hand-off JWT (exp, jti)",
       stricter=_NOT_SERVED)  # fmt: skip
def _jump_url(p: Probe) -> None:
    room = p.room(0)
    query = _jump(p, room["id"], user_name="Conformance Anchor")
    for key, value in (("app_server", _base(p)), ("user_id", p.username), ("live_id", room["id"]), ("user_name", "Conformance Anchor")):
        p.expect(query.get(key) == value, f"{key}={value!r} in the link (percent-encoded)", repr(query.get(key)))
    parts = jwt_parts(query.get("token"))
    p.expect(parts is not None, "token a JWT", repr(query.get("token"))[:60])
    assert parts is not None
    claims = parts[1]
    p.expect(claims.get("live_id") == room["id"] and claims.get("user_id") == p.username, "claims naming the room and the user", repr(claims))
    p.expect(isinstance(claims.get("jti"), str) and len(claims["jti"]) >= 16, "a random jti", repr(claims.get("jti")))
    p.expect(_int(claims.get("exp")) and abs(claims["exp"] - (now() + 3600)) <= _SLACK, "exp now + 3600", repr(claims.get("exp")))


@check("handoff.jump_url_rules", "getLiveJumpUrl for a room of someone else is 403, for an unknown room 404", stricter=_NOT_SERVED)
def _jump_rules(p: Probe) -> None:
    room = p.room(0)
    p.token("peer")
    p.expect_error(p.call("getLiveJumpUrl", {"user_id": p.peer_name, "live_id": room["id"]}, as_user="peer"), 403, why="not the room's anchor")
    p.expect_error(p.call("getLiveJumpUrl", {"user_id": p.username, "live_id": secrets.token_hex(16)}), 404, why="unknown room")


def _verify(p: Probe, room_id: str, query: dict[str, str], **changes: str) -> Answer:
    body = {"user_id": p.username, "live_id": room_id, "app_server": query.get("app_server", ""), "token": query.get("token", ""), **changes}
    return p.call("verifyAuthToken", body, as_user=None)  # no Authorization: the PC pusher app has none


@check("handoff.not_a_login_token", "a hand-off token sent as Authorization: Bearer is 401", stricter=_NOT_SERVED)
def _not_login(p: Probe) -> None:
    room = p.room(0)
    query = _jump(p, room["id"])
    answer = p.call("get", {"id": room["id"], "user_id": p.username}, token=query.get("token", ""))
    p.expect_error(answer, 401, why="a hand-off token is not a login token")


@check("handoff.verify_trades_once", "verifyAuthToken (no Authorization) trades a hand-off token for a working login token, once; a second trade is 401",
       stricter="the reference answered a failed verify with 200 and null, and let a token be traded again")  # fmt: skip
def _trade(p: Probe) -> None:
    room = p.room(0)
    query = _jump(p, room["id"])
    answer = _verify(p, room["id"], query)
    p.expect(answer.status == 200 and isinstance(answer.data, dict) and set(answer.data) == {"login_token"}, 'HTTP 200 {"login_token"}', answer.show)
    data = answer.data
    got = p.call("get", {"id": room["id"], "user_id": p.username}, token=data["login_token"])
    p.expect(got.status == 200, "the login token works as Authorization: Bearer", got.show)
    p.expect_error(_verify(p, room["id"], query), 401, why="the hand-off token was traded already")


@check("handoff.refused_verify_keeps_the_token", "a verify whose claims do not match is 401 and does not use the token up",
       stricter="the reference answered a failed verify with 200 and null")  # fmt: skip
def _refused(p: Probe) -> None:
    room = p.room(0)
    query = _jump(p, room["id"])
    p.expect_error(_verify(p, room["id"], query, live_id=secrets.token_hex(16)), 401, why="live_id does not match")
    p.expect_error(_verify(p, room["id"], query, user_id=p.peer_name), 401, why="user_id does not match")
    answer = _verify(p, room["id"], query)
    p.expect(answer.status == 200, "the matching verify afterwards still trades the token", answer.show)
