"""Checks of the contract's envelope: login and tokens, error statuses, input rules, identity.

Each check names the rule of SPEC.md it tests; `stricter=` says what the original Go server did
where we deliberately differ, so that a report on the original reads fairly.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from ._base import (
    API,
    API_V2,
    Probe,
    check,
    jwt_parts,
    now,
    unsigned_jwt,
)
from ._shapes import is_rfc3339

__all__: list[str] = []

ORIGINAL_NO_IDENTITY = "the original checked no identity or ownership (any token could act as anyone)"
ORIGINAL_NO_LIMITS = "the input limits are SPEC's; the original did not validate them"


def _unknown_id() -> str:
    return secrets.token_hex(16)


# -- login and tokens -------------------------------------------------------------------------------


def _expect_login_answer(p: Probe, data: Any, username: str, where: str) -> None:
    p.expect_keys(data, {"code", "expire", "token"}, where)
    p.expect(type(data["code"]) is int and data["code"] == 200, f"{where}: numeric code 200 (the web client tests code === 200)", repr(data["code"]))
    p.expect(is_rfc3339(data["expire"]), f"{where}: expire an RFC 3339 time with an offset", repr(data["expire"]))
    parts = jwt_parts(data["token"])
    p.expect(parts is not None, f"{where}: token a JWT (header.claims.signature)", repr(data["token"])[:60])
    assert parts is not None
    p.expect(parts[1].get("id") == username, f"{where}: the JWT's claim id is the username {username!r}", f"claims {sorted(parts[1])}, id {parts[1].get('id')!r}")


for _id, _path in (("login.shape", "/login"), ("login.shape_v1", f"{API}/login"), ("login.shape_v2", f"{API_V2}/login")):

    def _login(p: Probe, path: str = _path) -> None:
        data = p.ok(path, {"username": p.username, "password": p.password}, as_user=None)
        _expect_login_answer(p, data, p.username, f"POST {path}")

    check(_id, f"POST {_path} answers {{code: 200, expire: RFC 3339, token: JWT with id}}")(_login)


@check("login.ignores_authorization_header", "/login ignores an Authorization header (iOS sends 'Bearer live' before it has a token)")
def _login_ignores_header(p: Probe) -> None:
    data = p.ok("/login", {"username": p.username, "password": p.password}, as_user=None, headers={"Authorization": "Bearer live"})
    _expect_login_answer(p, data, p.username, "POST /login with Authorization: Bearer live")


@check("login.bad_password_401", "a wrong password is 401 with a Status body")
def _bad_password(p: Probe) -> None:
    answer = p.call("/login", {"username": p.username, "password": p.password + "-not"}, as_user=None)
    p.expect_error(answer, 401)


@check("login.missing_password_400", "login without a password is 400 naming the field")
def _login_missing(p: Probe) -> None:
    p.expect_error(p.call("/login", {"username": p.username}, as_user=None), 400, field="password")


@check("auth.refresh_post", "POST /api/v1/live/refresh_token trades a valid token for a new one, in the login shape")
def _refresh_post(p: Probe) -> None:
    _expect_login_answer(p, p.ok("refresh_token", None, content=b""), p.username, "POST refresh_token")


@check("auth.refresh_get", "GET /auth/refresh_token trades a valid token for a new one, in the login shape")
def _refresh_get(p: Probe) -> None:
    _expect_login_answer(p, p.ok("/auth/refresh_token", method="GET"), p.username, "GET /auth/refresh_token")


@check("auth.refresh_without_token_401", "refresh without a token is 401")
def _refresh_no_token(p: Probe) -> None:
    p.expect_error(p.call("refresh_token", None, as_user=None, content=b""), 401)


def _room_call_with_token(p: Probe, token: str | None, **kwargs: Any) -> Any:
    room = p.shared_room(0)
    return p.call("get", {"id": room["id"], "user_id": p.username}, as_user=None, token=token, **kwargs)


@check("auth.no_token_401", "an API call without a token is 401")
def _no_token(p: Probe) -> None:
    p.expect_error(_room_call_with_token(p, None), 401)


@check("auth.garbage_token_401", "a token that is not a JWT is 401")
def _garbage(p: Probe) -> None:
    p.expect_error(_room_call_with_token(p, "not-a-jwt"), 401)


@check("auth.tampered_token_401", "a JWT whose claims were changed (signature no longer matches) is 401")
def _tampered(p: Probe) -> None:
    header, claims, signature = p.token("main").split(".")
    payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    payload["id"] = payload["sub"] = p.peer_name
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    p.expect_error(_room_call_with_token(p, f"{header}.{forged}.{signature}"), 401, why="the claims no longer match the signature")


@check("auth.alg_none_401", "a JWT with alg 'none' and no signature is 401", stricter="the original's JWT library setup did not pin the algorithm list")
def _alg_none(p: Probe) -> None:
    t = now()
    token = unsigned_jwt({"id": p.username, "sub": p.username, "iat": t, "exp": t + 3600, "orig_iat": t})
    p.expect_error(_room_call_with_token(p, token), 401, why="alg none must be refused")


@check("auth.token_in_query", "the token is also accepted as the query parameter ?token=")
def _token_query(p: Probe) -> None:
    room = p.shared_room(0)
    p.ok(f"{API}/get?token={p.token('main')}", {"id": room["id"], "user_id": p.username}, as_user=None)


@check("auth.token_in_cookie", "the token is also accepted as the cookie jwt")
def _token_cookie(p: Probe) -> None:
    room = p.shared_room(0)
    p.ok("get", {"id": room["id"], "user_id": p.username}, as_user=None, headers={"Cookie": f"jwt={p.token('main')}"})


@check("auth.non_bearer_header_passed_over", "an Authorization header that is not 'Bearer ...' is passed over (the query token is used)")
def _non_bearer(p: Probe) -> None:
    room = p.shared_room(0)
    p.ok(f"{API}/get?token={p.token('main')}", {"id": room["id"], "user_id": p.username}, as_user=None, headers={"Authorization": "Basic Zm9vOmJhcg=="})


# -- errors: statuses and the Status body ----------------------------------------------------------


@check("errors.http_status_not_200", "a bad request is answered with an HTTP error status, never 200 (clients only look at the status)")
def _not_200(p: Probe) -> None:
    answer = p.call("get", {"user_id": p.username})
    p.expect(answer.status >= 400, "an HTTP status >= 400 for a request missing its room id (clients never read the body's code)", answer.show)
    p.expect_error(answer, 400, field="id")


_UNKNOWN_ROOM = "the original answered 500 ('record not found') for an unknown room"


@check("errors.unknown_room_404", "get of an unknown room id is 404", stricter=_UNKNOWN_ROOM)
def _unknown_room(p: Probe) -> None:
    p.expect_error(p.call("get", {"id": _unknown_id(), "user_id": p.username}), 404)


@check("errors.unknown_room_404_on_mutations", "update, start, pause, stop, delete of an unknown room are 404", stricter=_UNKNOWN_ROOM)
def _unknown_room_mutations(p: Probe) -> None:
    p.expect_error(p.call("update", {"id": _unknown_id(), "title": "x"}), 404)
    for action in ("start", "pause", "stop", "delete"):
        p.expect_error(p.call(action, {"id": _unknown_id(), "user_id": p.username}), 404)


@check("errors.unknown_room_404_on_meetings", "getMeetingInfo and updateMeetingInfo of an unknown room are 404", stricter=_UNKNOWN_ROOM)
def _unknown_room_meetings(p: Probe) -> None:
    p.expect_error(p.call("getMeetingInfo", {"id": _unknown_id()}), 404)
    p.expect_error(p.call("updateMeetingInfo", {"id": _unknown_id(), "members": []}), 404)


@check("errors.wrong_content_type_415", "a body sent as text/plain is 415", stricter="the original accepted any Content-Type silently")
def _wrong_type(p: Probe) -> None:
    room = p.shared_room(0)
    body = json.dumps({"id": room["id"], "user_id": p.username}).encode()
    p.expect_error(p.call("get", content=body, headers={"Content-Type": "text/plain"}), 415)


@check("errors.json_charset_accepted", "Content-Type 'application/json; charset=utf-8' is accepted (also on /pause)",
       stricter="the original failed /pause when the content type carried '; charset=utf-8'")  # fmt: skip
def _charset(p: Probe) -> None:
    room = p.room_in(1)
    body = json.dumps({"id": room["id"], "user_id": p.username}).encode()
    p.ok("pause", content=body, headers={"Content-Type": "application/json; charset=utf-8"})


@check("errors.no_content_type_read_as_json", "a body without any Content-Type is read as JSON")
def _no_type(p: Probe) -> None:
    room = p.shared_room(0)
    p.ok("get", content=json.dumps({"id": room["id"], "user_id": p.username}).encode())


@check("errors.empty_body_400", "an empty body is 400")
def _empty(p: Probe) -> None:
    p.expect_error(p.call("get", content=b"", headers={"Content-Type": "application/json"}), 400)


@check("errors.invalid_json_400", "a body that is not valid JSON is 400")
def _bad_json(p: Probe) -> None:
    p.expect_error(p.call("get", content=b'{"id": ', headers={"Content-Type": "application/json"}), 400)


@check("errors.body_not_object_400", "a JSON body that is not an object is 400")
def _not_object(p: Probe) -> None:
    p.expect_error(p.call("get", [p.username]), 400)


@check("errors.body_too_large_413", "a body over the size limit (default 1 MiB) is 413", stricter="the original set no body limit")
def _too_large(p: Probe) -> None:
    limit = p.keys.max_body if p.keys else 1048576
    padding = "x" * (limit + 1)
    body = json.dumps({"id": _unknown_id(), "user_id": p.username, "padding": padding}).encode()
    answer = p.call("get", content=body, headers={"Content-Type": "application/json"})
    p.expect_error(answer, 413, why=f"{len(body)} bytes > {limit}")


@check("errors.unknown_path_404", "an unknown path is 404 with a Status body", stricter="a Status body on unknown paths is SPEC's; a stock router answers plain text")
def _unknown_path(p: Probe) -> None:
    p.expect_error(p.call("no_such_call", {"id": "x"}), 404)


@check("errors.wrong_method_405", "GET on a POST-only path is 405 with a Status body", stricter="405 with a Status body is SPEC's; a stock router may answer 404 in plain text")
def _wrong_method(p: Probe) -> None:
    p.expect_error(p.call("create", method="GET"), 405)


@check("errors.order_415_before_401", "a wrong Content-Type without a token is 415, not 401 (413 > 415 > 401 > 400 > 403 > 404)",
       stricter="the original accepted any Content-Type")  # fmt: skip
def _order_415(p: Probe) -> None:
    p.expect_error(p.call("get", as_user=None, content=b"id=1", headers={"Content-Type": "text/plain"}), 415)


@check("errors.order_401_before_400", "a bad body without a token is 401, not 400")
def _order_401(p: Probe) -> None:
    p.expect_error(p.call("get", {}, as_user=None), 401)


@check("errors.order_400_before_403", "a bad body that also names another user is 400, not 403", stricter=ORIGINAL_NO_IDENTITY)
def _order_400(p: Probe) -> None:
    p.expect_error(p.call("get", {"user_id": p.peer_name}), 400, field="id")


@check("errors.order_404_before_anchor_403", "a non-anchor acting on an unknown room gets 404, not 403", stricter=_UNKNOWN_ROOM)
def _order_404(p: Probe) -> None:
    p.expect_error(p.call("start", {"id": _unknown_id(), "user_id": p.peer_name}, as_user="peer"), 404)


# -- input rules: 400 with details naming the field ------------------------------------------------

_ROOM = "<room>"  # replaced by the shared room's id
_VALIDATION: list[tuple[str, str, str, dict[str, Any], str, str]] = [
    # id, description, call, body, field, stricter
    ("create_title_missing", "create without a title", "create", {"anchor": "<me>"}, "title", ""),
    ("create_anchor_missing", "create without an anchor", "create", {"title": "t"}, "anchor", ""),
    ("get_id_missing", "get without an id", "get", {"user_id": "<me>"}, "id", ""),
    ("get_id_empty", "get with id '' (empty counts as missing)", "get", {"id": "", "user_id": "<me>"}, "id", ""),
    ("get_id_null", "get with id null (null counts as absent)", "get", {"id": None, "user_id": "<me>"}, "id", ""),
    ("list_page_num_missing", "list without page_num", "list", {"user_id": "<me>", "page_size": 10}, "page_num", ""),
    ("update_id_missing", "update without an id", "update", {"title": "t"}, "id", ""),
    ("start_user_id_missing", "start without user_id", "start", {"id": _ROOM}, "user_id", ""),
    ("delete_id_missing", "delete without an id", "delete", {"user_id": "<me>"}, "id", ""),
    ("token_device_id_missing", "v1 token without device_id", "token", {"user_id": "<me>", "device_type": "web"}, "device_id", ""),
    ("meeting_members_missing", "updateMeetingInfo without members", "updateMeetingInfo", {"id": _ROOM}, "members", ""),
    ("title_not_string", "a number for the string field title", "create", {"title": 123, "anchor": "<me>"}, "title", ""),
    ("extends_not_string", "an object for extends (it is a JSON-encoded string)", "create", {"title": "t", "anchor": "<me>", "extends": {"a": 1}}, "extends", ""),
    ("page_num_string", "page_num given as \"1\"", "list", {"user_id": "<me>", "page_num": "1", "page_size": 10}, "page_num", ""),
    ("page_num_boolean", "page_num given as true", "list", {"user_id": "<me>", "page_num": True, "page_size": 10}, "page_num", ""),
    ("page_num_float", "page_num given as 1.0", "list", {"user_id": "<me>", "page_num": 1.0, "page_size": 10}, "page_num", ""),
    ("page_num_zero", "page_num 0 (pages start at 1)", "list", {"user_id": "<me>", "page_num": 0, "page_size": 10}, "page_num", ORIGINAL_NO_LIMITS),
    ("page_size_over_100", "page_size 101", "list", {"user_id": "<me>", "page_num": 1, "page_size": 101}, "page_size", ORIGINAL_NO_LIMITS),
    ("status_out_of_range", "list status 7", "list", {"user_id": "<me>", "page_num": 1, "page_size": 10, "status": 7}, "status", ORIGINAL_NO_LIMITS),
    ("mode_pk_unsupported", "create with mode 2 (PK, not supported)", "create", {"title": "t", "anchor": "<me>", "mode": 2}, "mode", ORIGINAL_NO_LIMITS),
    ("mode_out_of_range", "create with mode 5", "create", {"title": "t", "anchor": "<me>", "mode": 5}, "mode", ORIGINAL_NO_LIMITS),
    ("device_type_unknown", "v1 token with device_type 'toaster'", "token", {"user_id": "<me>", "device_id": "d", "device_type": "toaster"}, "device_type", ORIGINAL_NO_LIMITS),
    ("title_too_long", "a title of 257 characters (varchar 256)", "create", {"title": "t" * 257, "anchor": "<me>"}, "title", ORIGINAL_NO_LIMITS),
    ("user_id_bad_characters", "an anchor containing '/'", "create", {"title": "t", "anchor": "a/b"}, "anchor", ORIGINAL_NO_LIMITS),
    ("im_server_not_array", "v2 token with im_server a string", f"{API_V2}/token", {"user_id": "<me>", "im_server": "aliyun_old"}, "im_server", ""),
]


def _fill(p: Probe, body: dict[str, Any]) -> dict[str, Any]:
    swap = {"<me>": p.username}
    if _ROOM in body.values():
        swap[_ROOM] = p.shared_room(0)["id"]
    return {k: swap.get(v, v) if isinstance(v, str) else v for k, v in body.items()}


for _id, _what, _call, _body, _field, _stricter in _VALIDATION:

    def _validation(p: Probe, call: str = _call, body: dict[str, Any] = _body, field: str = _field) -> None:
        p.expect_error(p.call(call, _fill(p, body)), 400, field=field)

    check(f"validation.{_id}", f"{_what} is 400 with details naming {_field}", stricter=_stricter)(_validation)


@check("validation.unknown_fields_ignored", "fields a call does not declare are ignored (im_server on create, anchor and user_id on update)")
def _unknown_fields(p: Probe) -> None:
    room = p.room(0, im_server=["aliyun_new"], id="")
    p.ok("update", {"id": room["id"], "title": "renamed", "anchor": p.peer_name, "user_id": p.peer_name})


# -- identity: acting as someone else, and the anchor's rooms -------------------------------------


@check("identity.create_as_other_403", "create naming another user as anchor is 403", stricter=ORIGINAL_NO_IDENTITY)
def _create_as_other(p: Probe) -> None:
    p.expect_error(p.call("create", {"title": "t", "anchor": p.peer_name}), 403)


@check("identity.get_as_other_403", "get naming another user_id is 403", stricter=ORIGINAL_NO_IDENTITY)
def _get_as_other(p: Probe) -> None:
    p.expect_error(p.call("get", {"id": p.shared_room(0)["id"], "user_id": p.peer_name}), 403)


@check("identity.list_as_other_403", "list naming another user_id is 403", stricter=ORIGINAL_NO_IDENTITY)
def _list_as_other(p: Probe) -> None:
    p.expect_error(p.call("list", {"user_id": p.peer_name, "page_num": 1, "page_size": 10}), 403)


@check("identity.token_as_other_403", "v1 and v2 IM tokens naming another user_id are 403", stricter=ORIGINAL_NO_IDENTITY)
def _token_as_other(p: Probe) -> None:
    p.expect_error(p.call("token", {"user_id": p.peer_name, "device_id": "d", "device_type": "web"}), 403)
    p.expect_error(p.call(f"{API_V2}/token", {"user_id": p.peer_name}), 403)


for _action in ("start", "pause", "stop", "delete"):

    def _as_other(p: Probe, action: str = _action) -> None:
        room = p.room_in(1 if action == "pause" else 0)
        p.expect_error(p.call(action, {"id": room["id"], "user_id": p.peer_name}), 403)

    check(f"identity.{_action}_as_other_403", f"{_action} naming another user_id is 403", stricter=ORIGINAL_NO_IDENTITY)(_as_other)


_OWNED: list[tuple[str, dict[str, Any], int]] = [
    ("update", {"title": "taken over"}, 0),
    ("start", {"user_id": "<peer>"}, 0),
    ("pause", {"user_id": "<peer>"}, 1),
    ("stop", {"user_id": "<peer>"}, 0),
    ("delete", {"user_id": "<peer>"}, 0),
    ("updateMeetingInfo", {"members": []}, 0),
]
for _action, _extra, _status in _OWNED:

    def _not_anchor(p: Probe, action: str = _action, extra: dict[str, Any] = _extra, status: int = _status) -> None:
        p.token("peer")  # skip early, with the reason, when there is no second user
        room = p.room_in(status, mode=1 if action == "updateMeetingInfo" else 0)
        body = {"id": room["id"], **{k: p.peer_name if v == "<peer>" else v for k, v in extra.items()}}
        p.expect_error(p.call(action, body, as_user="peer"), 403, why="the second user is not the room's anchor")

    check(f"ownership.{_action}_by_non_anchor_403", f"{_action} of a room by a user who is not its anchor is 403", stricter=ORIGINAL_NO_IDENTITY)(_not_anchor)


@check("ownership.reads_open_to_everyone", "any authenticated user may get, list and getMeetingInfo another user's room")
def _reads_open(p: Probe) -> None:
    room = p.shared_room(1)
    p.ok("get", {"id": room["id"], "user_id": p.peer_name}, as_user="peer")
    p.ok("list", {"user_id": p.peer_name, "page_num": 1, "page_size": 10}, as_user="peer")
    p.ok("getMeetingInfo", {"id": room["id"]}, as_user="peer")


# -- the rest of the surface ------------------------------------------------------------------------


@check("misc.root_plain_text", "GET / answers one line of plain text naming the base URL", stricter="GET / is SPEC's help line; the original served nothing there")
def _root(p: Probe) -> None:
    answer = p.call("/", method="GET", as_user=None)
    p.expect(answer.status == 200 and answer.headers.get("content-type", "").startswith("text/plain"), "HTTP 200 text/plain", answer.show)
    # An in-process server (a browser tab's) names its inprocess://<name> URL: the one its clients use.
    named = "http" in answer.text or "inprocess://" in answer.text
    p.expect(named, "the text names a base URL (http... or inprocess://...)", repr(answer.text[:120]))


@check("misc.openapi_document", "GET /openapi.json serves every path, v1 and v2", stricter="the generated OpenAPI document is SPEC's; the original served swagger pages")
def _openapi(p: Probe) -> None:
    data = p.ok("/openapi.json", method="GET", as_user=None)
    paths = data.get("paths") if isinstance(data, dict) else None
    wanted = [f"{prefix}/{name}" for prefix in (API, API_V2) for name in ("create", "get", "list", "token", "updateMeetingInfo")] + ["/login"]
    missing = [w for w in wanted if not isinstance(paths, dict) or w not in paths]
    p.expect(not missing, "paths naming every served call", f"missing {missing}")


@check("misc.cors_preflight", "a CORS preflight allows any origin, POST and the headers clients send (x-live-env included)")
def _cors(p: Probe) -> None:
    headers = {"Origin": "https://client.example", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization,content-type,x-live-env"}  # fmt: skip
    answer = p.call("create", method="OPTIONS", as_user=None, headers=headers)
    allowed = answer.headers.get("access-control-allow-headers", "").lower()
    p.expect(200 <= answer.status < 300, "a 2xx answer to the preflight", answer.show)
    p.expect(answer.headers.get("access-control-allow-origin") == "*", "Access-Control-Allow-Origin: *", repr(answer.headers.get("access-control-allow-origin")))
    p.expect("x-live-env" in allowed and "authorization" in allowed, "Access-Control-Allow-Headers naming authorization and x-live-env", repr(allowed))


@check("misc.x_live_env_accepted", "the x-live-env header clients send is accepted and ignored")
def _live_env(p: Probe) -> None:
    p.ok("get", {"id": p.shared_room(0)["id"], "user_id": p.username}, headers={"x-live-env": "pre"})
