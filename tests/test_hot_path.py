"""What the hot path remembers and skips changes no answer: the token cache, JSON in and out,
the direct calls that bypass Starlette's per-request machinery, and signed URLs reused within a second."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import jwt
import orjson
import pytest
from starlette.responses import JSONResponse
from starlette.testclient import TestClient

from livekit_demo import api, jsonbytes, signing
from livekit_demo import auth as auth_module
from livekit_demo import streams as streams_module
from livekit_demo.api import create_app
from livekit_demo.app_server import AppServer
from livekit_demo.auth import Authenticator, Identity
from livekit_demo.clock import FixedClock, format_time, to_second
from livekit_demo.exceptions import BadRequest, LifecycleConflict, RoomNotFound, Unauthorized
from livekit_demo.passwords import hash_password
from livekit_demo.settings import AuthSettings, LiveMicSettings, LiveStreamSettings, Settings
from livekit_demo.signing import explain_url
from livekit_demo.streams import StreamUrls

SECRET = "a-secret-of-at-least-thirty-two-bytes!"


def _authenticator(**settings: object) -> tuple[Authenticator, FixedClock]:
    clock = FixedClock("2026-11-28T10:15:00Z")
    return Authenticator(AuthSettings(**settings), SECRET, clock), clock  # type: ignore[arg-type]


def _count_decodes(monkeypatch: pytest.MonkeyPatch, auth: Authenticator) -> list[str]:
    seen: list[str] = []
    real = auth._decode

    def counting(token: str, secret: str | None = None) -> dict[str, object]:
        seen.append(token)
        return real(token, secret)

    monkeypatch.setattr(auth, "_decode", counting)
    return seen


def test_a_token_is_decoded_once_and_still_expires_by_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    auth, clock = _authenticator(token_ttl=60)
    decoded = _count_decodes(monkeypatch, auth)
    token, _ = auth.issue("ann")
    assert auth.verify(token).user_id == "ann"
    assert auth.verify(token).user_id == "ann"
    assert decoded == [token]  # the second call came from the cache
    clock.advance(59)
    assert auth.verify(token).user_id == "ann"
    clock.advance(1)  # exp itself is expired, cached or not
    with pytest.raises(Unauthorized, match="token expired at 2026-11-28T10:16:00Z"):
        auth.verify(token)
    assert decoded == [token]


def test_a_new_secret_forgets_every_verified_token() -> None:
    auth, _ = _authenticator()
    token, _ = auth.issue("ann")
    auth.verify(token)
    auth.secret = "another-secret-of-at-least-thirty-two-bytes"
    with pytest.raises(Unauthorized, match="signature does not match"):
        auth.verify(token)
    fresh, _ = auth.issue("ann")
    assert auth.verify(fresh).user_id == "ann"


def test_refused_tokens_are_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    auth, _ = _authenticator()
    decoded = _count_decodes(monkeypatch, auth)
    forged = jwt.encode({"id": "ann", "iat": 1, "exp": 2**40}, "not-our-secret-but-long-enough-for-hs256", algorithm="HS256")
    for _ in range(2):
        with pytest.raises(Unauthorized, match="signature does not match"):
            auth.verify(forged)
    assert decoded == [forged, forged]


def test_the_cache_is_bounded_and_forgets_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_module, "VERIFIED_TOKENS", 3)
    auth, _ = _authenticator()
    decoded = _count_decodes(monkeypatch, auth)
    tokens = [auth.issue(name)[0] for name in ("a", "b", "c", "d")]
    for token in tokens[:3]:
        auth.verify(token)
    auth.verify(tokens[0])  # "a" is now the most recently used: "b" goes first
    auth.verify(tokens[3])
    assert len(auth._verified) == 3
    decoded.clear()
    auth.verify(tokens[0])
    auth.verify(tokens[2])
    assert decoded == []
    auth.verify(tokens[1])
    assert decoded == [tokens[1]]


def test_admin_ness_is_read_from_settings_on_every_call() -> None:
    auth, _ = _authenticator(users={"ann": hash_password("ann's password")})
    token, _ = auth.issue("ann")
    assert auth.verify(token).is_admin is False
    auth.settings = dataclasses.replace(auth.settings, admins=["ann"])
    assert auth.verify(token).is_admin is True
    auth.settings = dataclasses.replace(auth.settings, admins=[])
    assert auth.verify(token).is_admin is False



def test_a_remembered_token_is_checked_again_when_the_settings_change(monkeypatch: pytest.MonkeyPatch) -> None:
    auth, _ = _authenticator(users={"ann": hash_password("ann's password")})
    decoded = _count_decodes(monkeypatch, auth)
    configured, _ = auth.issue("ann")
    demo, _ = auth.issue("bob")
    for _ in range(2):
        assert auth.verify(configured) == Identity("ann") and auth.verify(demo) == Identity("bob")
    assert decoded == [configured, demo]
    settings = auth.settings
    auth.settings = dataclasses.replace(settings, users={})  # ann is no longer configured
    with pytest.raises(Unauthorized, match="no longer configured"):
        auth.verify(configured)
    assert auth.verify(demo) == Identity("bob")
    auth.settings = dataclasses.replace(settings, demo_login=False)  # the demo rule is off
    with pytest.raises(Unauthorized, match="demo login for 'bob' is no longer allowed"):
        auth.verify(demo)
    auth.settings = dataclasses.replace(settings, reserved=["bob"])
    with pytest.raises(Unauthorized, match="no longer allowed"):
        auth.verify(demo)
    auth.settings = settings
    assert auth.verify(configured) == Identity("ann") and auth.verify(demo) == Identity("bob")
    assert decoded == [configured, demo]  # checked again each time, decoded once

# -- JSON in and out ------------------------------------------------------------------------------


def _starlette_json(value: object) -> bytes:
    return JSONResponse(value).body


@pytest.mark.parametrize(
    "value",
    [
        {"code": 200, "message": "ok"},
        {"title": "直播 🎥 é", "extends": '{"a": "\\u00e9\\n"}', "n": -(2**63), "big": 2**63, "flags": [True, False, None]},
        ["\x00\x01\x1f\x7f\u2028\u2029\ufeff", "quote\" back\\ slash/ tab\t"],
        {"nested": [[[{"a": []}]]], "": ""},
    ],
)
def test_answers_are_the_bytes_starlette_would_write(value: object) -> None:
    assert jsonbytes.dumps(value) == _starlette_json(value)


def test_every_character_is_written_as_starlette_writes_it() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert jsonbytes.dumps({"t": text}) == _starlette_json({"t": text})


@pytest.mark.parametrize("value", [{1: "int key"}, [2**64], {"deep": 2**70}])
def test_what_orjson_cannot_write_is_written_by_json(value: object) -> None:
    assert jsonbytes.dumps(value) == _starlette_json(value)


def test_what_json_refuses_to_write_is_still_refused() -> None:
    for value in ({"t": "\ud800"}, {"x": float("nan")}):
        with pytest.raises((ValueError, UnicodeEncodeError)):
            _starlette_json(value)
    with pytest.raises(UnicodeEncodeError):
        jsonbytes.dumps({"t": "\ud800"})
    with pytest.raises(TypeError):  # json cannot write a datetime: neither do we (orjson would)
        jsonbytes.dumps({"when": datetime(2026, 1, 1, tzinfo=timezone.utc)})


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}', b"123456789012345678901234", b'{"n": -12345678901234567890}', b"NaN", b'{"x": Infinity}',
        b"\xef\xbb\xbf{}", b'"\\ud800"', b'"\\ud83d\\ude00"', b"1e400", b"-0", b"[" * 5000 + b"]" * 5000, b"[" * 990 + b"]" * 990, b'"\xff"',
        b"{,}", b'{"a":1}x', b"\x00{", '{"é": "ü"}'.encode("utf-16"), b" \t\n{}\n",
    ],
    ids=lambda body: repr(body[:24]),
)  # fmt: skip
def test_bodies_read_as_json_reads_them(body: bytes) -> None:
    def outcome(read: Callable[[bytes], object]) -> object:
        try:
            value = read(body)
        except RecursionError:
            return "RecursionError"
        except ValueError as exc:
            return type(exc).__name__, str(exc) if not isinstance(exc, orjson.JSONDecodeError) else "orjson"
        try:
            return repr(value), type(value).__name__
        except RecursionError:
            return "nested deeper than repr goes", type(value).__name__

    assert outcome(api._loads) == outcome(lambda body: json.loads(body, parse_constant=api._refuse_constant))


# -- the direct path and the Starlette path answer alike ------------------------------------------


def _both_ways(calls: list[tuple[str, str, dict[str, str], bytes]]) -> list[list[tuple[int, list[tuple[str, str]], bytes]]]:
    """Each call's status, headers and body: once through the direct path, once through Starlette's routes."""
    answers = []
    for direct in (True, False):
        server = AppServer(Settings.build(env={}, storage="memory", auth={"jwt_secret": SECRET}), clock=FixedClock("2026-11-28T10:15:00Z"))
        app = create_app(server)
        if not direct:
            app.direct = {}  # type: ignore[attr-defined]  # every call through Starlette's routing and middleware
        with TestClient(app) as http:
            token = http.post("/login", json={"username": "ann", "password": "ann"}).json()["token"]
            room = http.post("/api/v1/live/create", json={"title": "t", "anchor": "ann"}, headers={"Authorization": f"Bearer {token}"}).json()
            seen = []
            for method, path, headers, body in calls:
                filled = {k: v.replace("TOKEN", token) for k, v in headers.items()}
                r = http.request(method, path.replace("ROOM", room["id"]).replace("TOKEN", token), headers=filled, content=body.replace(b"ROOM", room["id"].encode()))
                # The room id (and so every URL's hash) differs between the two servers; the rest may not.
                content = re.sub(rb"[0-9a-f]{32}", b"HEX", r.content.replace(token.encode(), b"TOKEN").replace(room["id"].encode(), b"ROOM"))
                seen.append((r.status_code, sorted(r.headers.items()), content))
        answers.append(seen)
    return answers


def test_the_direct_path_answers_every_row_as_starlette_would() -> None:
    auth = {"Authorization": "Bearer TOKEN", "Content-Type": "application/json"}
    calls = [
        ("POST", "/api/v1/live/get", auth, b'{"id": "ROOM", "user_id": "ann"}'),
        ("POST", "/api/v1/live/get", {**auth, "Origin": "https://web.example"}, b'{"id": "ROOM", "user_id": "ann"}'),
        ("POST", "/api/v2/live/list", auth, b'{"user_id": "ann", "page_num": 1, "page_size": 10}'),
        ("POST", "/api/v1/live/get", {"Content-Type": "application/json"}, b'{"id": "ROOM", "user_id": "ann"}'),  # 401
        ("POST", "/api/v1/live/get?token=TOKEN", {"Content-Type": "application/json"}, b'{"id": "ROOM", "user_id": "ann"}'),
        ("POST", "/api/v1/live/get", {"Cookie": "jwt=TOKEN", "Content-Type": "application/json"}, b'{"id": "ROOM", "user_id": "ann"}'),
        ("POST", "/api/v1/live/get", {**auth, "Content-Type": "text/plain"}, b"{}"),  # 415
        ("POST", "/api/v1/live/get", {**auth, "Content-Length": "99999999"}, b"{}"),  # 413
        ("POST", "/api/v1/live/get", auth, b'{"id": "nope", "user_id": "ann"}'),  # 404
        ("POST", "/api/v1/live/get", auth, b'{"id": "ROOM", "user_id": "bob"}'),  # 403
        ("POST", "/api/v1/live/get", auth, b'{"id": 1, "user_id": "ann", "x": 123456789012345678901234}'),  # 400
        ("POST", "/api/v1/live/get", auth, b"not json"),  # 400
        ("POST", "/api/v1/live/stop", auth, b'{"id": "ROOM", "user_id": "ann"}'),
        ("POST", "/login", {"Content-Type": "application/json"}, b'{"username": "ann", "password": "no"}'),  # 401
        ("GET", "/auth/refresh_token", {"Authorization": "Bearer TOKEN"}, b""),
        ("POST", "/api/v1/live/nothing", auth, b"{}"),  # 404 by Starlette either way
        ("GET", "/api/v1/live/get", auth, b""),  # 405 by Starlette either way
    ]
    direct, routed = _both_ways(calls)
    for call, one, other in zip(calls, direct, routed, strict=True):
        assert one == other, call  # tokens too: same secret, same fixed clock, same claims
    statuses = [answer[0] for answer in direct]
    assert statuses == [200, 200, 200, 401, 200, 200, 415, 413, 404, 403, 400, 400, 200, 401, 200, 404, 405]
    with_origin = dict(direct[1][1])
    assert with_origin["access-control-allow-origin"] == "*" and with_origin["vary"] == "Origin"
    assert "access-control-allow-origin" not in dict(direct[0][1])


def test_the_direct_path_is_what_answers_api_calls() -> None:
    app = create_app(storage="memory", env={})
    assert ("POST", "/api/v1/live/get") in app.direct and ("POST", "/login") in app.direct  # type: ignore[attr-defined]
    assert ("GET", "/auth/refresh_token") in app.direct  # type: ignore[attr-defined]
    calls: list[str] = []

    async def spy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app.direct["POST", "/api/v1/live/get"] = spy  # type: ignore[attr-defined]
    with TestClient(app) as http:
        assert http.post("/api/v1/live/get", json={}).status_code == 204
        assert http.post("/api/v1/live/list", json={}).status_code == 401  # not spied: the real one
    assert calls == ["/api/v1/live/get"]


# -- signing and URLs -----------------------------------------------------------------------------


def test_the_path_of_a_url_is_what_urlsplit_says() -> None:
    pieces = [*"ab:/?#[]@ .-+%\\\t\n\r\x00é1", "://", "//", "rtmp://", "http://h:1/", "srt://"]
    rng = random.Random(14)
    for _ in range(50000):
        url = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        try:
            expected = urlsplit(url).path
        except ValueError:
            with pytest.raises(ValueError):
                signing._path_of(url)
            continue
        assert signing._path_of(url) == expected, url
    assert signing._path_of("rtmp://push.example.com/live/room1") == "/live/room1"
    assert signing._path_of("/live/room1") == "/live/room1"


def test_urls_are_reused_within_their_second_and_made_anew_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FixedClock("2026-11-28T10:15:00.200Z")
    urls = StreamUrls(LiveStreamSettings(push_auth_key="pk", pull_auth_key="qk"), LiveMicSettings(), clock)
    hashed: list[str] = []

    def md5(text: bytes) -> Any:  # each Type A hash, by the path it signs ("{path}-{exp}-0-0-{key}")
        hashed.append(text.decode().rsplit("-", 4)[0])
        return hashlib.md5(text)

    monkeypatch.setattr(signing, "_md5", md5)
    first = urls.pull_info("room1")
    assert hashed == ["/live/room1", "/live/room1.flv", "/live/room1.m3u8"]  # RTMP and RTS play one path: one hash
    first["rtmp_url"] = "changed by the caller"
    clock.advance(0.7)  # 10:15:00.900, the same second
    again = urls.pull_info("room1")
    assert len(hashed) == 3 and again["rtmp_url"].startswith("rtmp://") and explain_url(again["rtmp_url"], "qk", now=clock.now()).verdict == "valid"
    clock.advance(0.1)  # the next second: a new expiry
    later = urls.pull_info("room1")
    assert len(hashed) == 6 and later["rtmp_url"] != again["rtmp_url"]
    expiry = int(clock.now().timestamp()) + urls.live_stream.auth_expires
    assert f"auth_key={expiry}-" in later["rtmp_url"]
    urls.live_stream = LiveStreamSettings(push_auth_key="pk", pull_auth_key="another")  # new settings: new URLs
    assert urls.pull_info("room1")["rtmp_url"] != later["rtmp_url"] and len(hashed) == 9
    assert urls.push_info("room1") == urls.push_info("room1") and hashed[9:] == ["/live/room1"]  # RTMP, RTS, SRT: one path


@pytest.mark.parametrize(
    "url",
    ["rtmp://push.example.com/live/r1", "artc://push.example.com/live/r1", "https://pull.example.com/live/r1.flv",
     "/live/r1", "http://[::1]:8080/live/r1.m3u8", "rtmp://h/live/r1?a=1&b=", "http://h/a%20b/r?x#frag", "rtmp://h"],
)
def test_a_shared_signer_signs_each_url_as_sign_url_alone_would(url: str) -> None:
    shared = signing.Signer("k", 1_796_000_000)
    for other in ("rtmp://push.example.com/live/r1", "/live/r1.flv", "http://h/a%20b/r"):
        shared(other)  # paths hashed before: reused only where the path is the same
    alone = sign_url_by_hand(url, "k", 1_796_000_000)
    assert shared(url) == alone == signing.sign_url(url, "k", 1_796_000_000)
    assert signing.Signer("", 1)(url) == url  # no key: unsigned


@pytest.mark.parametrize(
    ("origin", "path"),
    [("rtmp://push.example.com", "/live/r1"), ("http://[::1]:8080", "/live/r1.m3u8"), ("", "/live/r1"), ("artc://h", "/live/a b"),
     ("rtmp://h", "/live/r?1"), ("rtmp://h", "/live/r#1"), ("rtmp://h?x", "/live/r"), ("rtmp://h", "/live/直播"), ("rtmp://h", "live/r"),
     ("rtmp://h", "/live/r\t"), (" rtmp://h", "/live/r"), ("rtmp://h", "")],
)  # fmt: skip
def test_a_url_signed_from_its_parts_is_the_url_signed_whole(origin: str, path: str) -> None:
    assert signing.Signer("k", 1_796_000_000).at(origin, path) == signing.sign_url(origin + path, "k", 1_796_000_000)
    assert signing.Signer("", 1).at(origin, path) == origin + path


def test_the_md5_the_signer_uses_is_md5_with_or_without_cpythons_own_module(monkeypatch: pytest.MonkeyPatch) -> None:
    text = b"/live/room1-1700000000-0-0-mykey"
    assert signing._md5(text).hexdigest() == hashlib.md5(text).hexdigest()
    monkeypatch.setitem(sys.modules, "_md5", None)  # a build without it: hashlib's
    assert signing._builtin_md5() is hashlib.md5


def sign_url_by_hand(url: str, key: str, exp: int) -> str:
    """Type A signing as the document spells it: the md5 of path-exp-rand-uid-key, on the path urlsplit reads."""
    import hashlib

    digest = hashlib.md5(f"{urlsplit(url).path}-{exp}-0-0-{key}".encode()).hexdigest()
    base, _, query = url.partition("?")
    auth = f"auth_key={exp}-0-0-{digest}"
    return f"{base}?{query}&{auth}" if query else f"{base}?{auth}"


def test_times_are_formatted_as_strftime_formats_them() -> None:
    for when in (datetime(1, 2, 3, 4, 5, 6, tzinfo=timezone.utc), datetime(999, 1, 1, tzinfo=timezone.utc),
                 datetime(2026, 11, 28, 10, 15, 0, 999999, tzinfo=timezone.utc), datetime(2026, 11, 28, 18, 15, tzinfo=timezone(timedelta(hours=8)))):  # fmt: skip
        assert format_time(when) == to_second(when).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert format_time(when) == format_time(when)  # from the table the second time


def test_room_infos_built_from_kept_templates_are_the_room_infos_built_anew() -> None:
    """Whatever changes between two answers (a row, the second, the settings, the edge, the host,
    who looks, the counters), an answer from a kept template is the one built from nothing."""
    clock = FixedClock("2026-11-28T10:15:00.300Z")
    auth = {"jwt_secret": SECRET, "users": {"root": hash_password("root-password")}, "admins": ["root"]}
    server = AppServer(Settings.build(env={}, storage="memory", auth=auth), clock=clock)
    rooms = server.rooms
    ann, bob, root = (server.auth.identity(user) for user in ("ann", "bob", "root"))
    made = [rooms.create(ann, {"title": "plain", "anchor": "ann"}), rooms.create(ann, {"title": "link", "anchor": "ann", "mode": 1})]
    rng = random.Random(7)

    def built_anew(record: Any, viewer: str, actor: Any, host: str) -> dict[str, Any]:
        kept = dict(rooms._templates)
        rooms._templates.clear()
        try:
            return rooms._room_info(record, viewer, actor, host=host)
        finally:
            rooms._templates.clear()
            rooms._templates.update(kept)

    steps = [
        lambda room: None,
        lambda room: clock.advance(0.4),  # sometimes the same second, sometimes the next
        lambda room: rooms.update(ann, room["id"], {"title": f"title {rng.random()}"}),
        lambda room: _may_conflict(lambda: rooms.transition(rng.choice(["start", "pause", "stop"]), ann, room["id"], "ann")),
        lambda room: rooms.get(bob, room["id"], "bob"),  # a visit: the counters move
        lambda room: setattr(rooms.streams, "live_stream", dataclasses.replace(rooms.streams.live_stream, pull_auth_key=f"k{rng.random()}")),
        lambda room: setattr(rooms.streams, "edge", rng.choice([None, streams_module.EdgeAddress(1935, 8080)])),
    ]
    compared = 0
    for _ in range(300):
        room = rng.choice(made)
        rng.choice(steps)(room)
        record = rooms.store.get(room["id"])
        viewer, actor = rng.choice([("ann", ann), ("bob", bob), ("root", root), ("ann", root)])
        host = rng.choice(["", "127.0.0.1", "192.168.1.20", "phone.local"])
        answer = rooms._room_info(record, viewer, actor, host=host)
        assert answer == built_anew(record, viewer, actor, host)
        assert list(answer) == list(built_anew(record, viewer, actor, host))  # the same order of fields
        for part in ("pull_url_info", "push_url_info", "link_info"):
            if part in answer:  # a caller changing its answer changes no later one
                answer[part]["rtmp_url" if part != "link_info" else "rtc_push_url"] = "changed"
        if "link_info" in answer:
            answer["link_info"]["cdn_pull_info"]["rtmp_url"] = "changed"
        compared += 1
    assert compared == 300 and 0 < len(rooms._templates) <= 4096


def test_json_answers_are_the_bytes_of_the_room_infos() -> None:
    """`get_json`, `list_json` and `create_json` write, without the dicts, the bytes `dumps` writes of
    the RoomInfos, whatever happened before: rows, likes, mutes, visits, heartbeats, deletes, the
    second, the settings, the edge, the host, who looks and which page (a kept list page included)."""
    clock = FixedClock("2026-11-28T10:15:00.300Z")
    auth = {"jwt_secret": SECRET, "users": {"root": hash_password("root-password")}, "admins": ["root"]}
    server = AppServer(Settings.build(env={}, storage="memory", auth=auth), clock=clock)
    rooms = server.rooms
    ann, bob, root = (server.auth.identity(user) for user in ("ann", "bob", "root"))
    rng = random.Random(11)
    made: list[str] = []

    def create() -> None:
        actor, anchor = rng.choice([(ann, "ann"), (bob, "bob"), (root, "root")])
        fields = {"title": f"room {len(made)} 直播", "anchor": anchor, "mode": rng.choice([0, 1])}
        host = rng.choice(["", "127.0.0.1", "phone.local"])
        body = rooms.create_json(actor, dict(fields), host=host).body
        record = rooms.store.get(orjson.loads(body)["id"])
        assert body == jsonbytes.dumps(rooms._room_info(record, anchor, actor, with_push=True, host=host))
        made.append(record.id)

    def some_room() -> str:
        return rng.choice(made)

    steps = [
        create,
        lambda: clock.advance(0.4),
        lambda: rooms.update(root, some_room(), {"title": f"title {rng.random()}", "notice": "n"}),
        lambda: _may_conflict(lambda: rooms.transition(rng.choice(["start", "pause", "stop"]), root, some_room(), "root")),
        lambda: rooms.send_likes(bob, some_room(), "bob", rng.randint(1, 5)),
        lambda: rooms.set_muted(root, some_room(), rng.random() < 0.5),
        lambda: rooms.get(bob, some_room(), "bob"),
        lambda: rooms.heartbeat(bob, some_room(), "bob"),
        lambda: len(made) > 3 and rooms.delete(root, made.pop(rng.randrange(len(made))), "root"),
        lambda: setattr(rooms.streams, "live_stream", dataclasses.replace(rooms.streams.live_stream, pull_auth_key=f"k{rng.random()}")),
        lambda: setattr(rooms.streams, "edge", rng.choice([None, streams_module.EdgeAddress(1935, 8080)])),
    ]
    create()
    lists = 0
    for _ in range(400):
        rng.choice(steps)()
        viewer, actor = rng.choice([("ann", ann), ("bob", bob), ("root", root), ("ann", root)])
        host = rng.choice(["", "127.0.0.1", "phone.local"])
        page = (rng.choice([1, 1, 1, 2]), rng.choice([3, 10]), rng.choice([None, -1, 0, 1, 2, 3]))
        assert rooms.list_json(actor, viewer, *page, host=host).body == jsonbytes.dumps(rooms.list(actor, viewer, *page, host=host))
        lists += 1
        if made:
            room_id = some_room()
            body = rooms.get_json(actor, room_id, viewer, host=host).body  # counts a visit; the dict after it, without one
            assert body == jsonbytes.dumps(rooms._room_info(rooms.store.get(room_id), viewer, actor, host=host))
    assert lists == 400 and 0 < len(rooms._kept) <= 4096


def test_kept_answers_follow_every_change_of_their_rooms() -> None:
    clock = FixedClock("2026-11-28T10:15:00Z")
    server = AppServer(Settings.build(env={}, storage="memory", auth={"jwt_secret": SECRET}), clock=clock)
    rooms, ann = server.rooms, server.auth.identity("ann")

    def page() -> list[dict[str, Any]]:
        return orjson.loads(rooms.list_json(ann, "ann", 1, 10, None).body)

    room = rooms.create(ann, {"title": "first", "anchor": "ann"})
    assert [r["title"] for r in page()] == ["first"] and page() == page()  # the second from the kept page
    rooms.update(ann, room["id"], {"title": "renamed"})
    assert page()[0]["title"] == "renamed"
    rooms.transition("start", ann, room["id"], "ann")
    assert page()[0]["status"] == 1
    rooms.send_likes(ann, room["id"], "ann", 2)
    rooms.get(ann, room["id"], "ann")
    assert page()[0]["metrics"] == {"like_count": 2, "online_count": 0, "pv": 1, "uv": 1}
    rooms.create(ann, {"title": "second", "anchor": "ann"})
    assert [r["title"] for r in page()] == ["second", "renamed"]
    assert orjson.loads(rooms.get_json(ann, room["id"], "ann").body)["title"] == "renamed"  # kept from here on
    rooms.delete(ann, room["id"], "ann")
    assert [r["title"] for r in page()] == ["second"]
    with pytest.raises(RoomNotFound):
        rooms.get_json(ann, room["id"], "ann")


def _may_conflict(step: Callable[[], Any]) -> None:
    try:
        step()
    except LifecycleConflict:
        pass  # e.g. pausing an ended room: nothing changed


def test_a_row_with_an_unhashable_value_is_answered_without_a_template() -> None:
    server = AppServer(Settings.build(env={}, storage="memory", auth={"jwt_secret": SECRET}))
    ann = server.auth.identity("ann")
    room = server.rooms.create(ann, {"title": "t", "anchor": "ann"})
    record = server.rooms.store.get(room["id"])
    record.meeting_info = ["not", "text"]  # what a row written by another program might hold
    before = len(server.rooms._templates)
    answer = server.rooms._room_info(record, "ann", ann)
    assert answer["meeting_info"] == ["not", "text"] and len(server.rooms._templates) == before


def test_a_body_seen_before_is_not_read_again_and_each_call_gets_its_own_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit_demo.schemas import REQUESTS

    monkeypatch.setattr(api, "_VALIDATED", {})
    read: list[bytes] = []
    real = api._parse_json
    monkeypatch.setattr(api, "_parse_json", lambda body: read.append(body) or real(body))
    get = REQUESTS["get"]
    body = b'{"id":"r1","user_id":"ann","unknown":1}'
    first, second = api._validated(get, body), api._validated(get, body)
    assert first == second == get.validate(json.loads(body)) and first is not second and read == [body]
    first["id"] = "changed by a handler"
    assert api._validated(get, body)["id"] == "r1"
    with pytest.raises(BadRequest):  # per schema: the same bytes are checked against list's fields
        api._validated(REQUESTS["list"], body)
    assert len(read) == 2
    for _ in range(2):  # a refused body is read and refused every time
        with pytest.raises(BadRequest):
            api._validated(get, b'{"id":"r1"}')
    assert len(read) == 4
    members = b'{"id":"r1","members":[{"user_id":"bob"}]}'
    for _ in range(2):  # fields a handler could change in place (a list of members) are not kept
        api._validated(REQUESTS["updateMeetingInfo"], members)
    assert len(read) == 6
    big = json.dumps({"id": "r1", "user_id": "ann", "pad": "x" * 2000}).encode()
    api._validated(get, big), api._validated(get, big)
    assert len(read) == 8 and len(api._VALIDATED) == 1


def test_bodies_of_calls_without_a_token_are_never_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_VALIDATED", {})
    with TestClient(create_app(storage="memory")) as client:
        for _ in range(2):
            assert client.post("/login", json={"username": "ann", "password": "ann"}).status_code == 200
        token = client.post("/login", json={"username": "ann", "password": "ann"}).json()["token"]
        for _ in range(2):
            client.post("/api/v1/live/list", json={"user_id": "ann", "page_num": 1, "page_size": 10}, headers={"Authorization": f"Bearer {token}"})
    assert [schema for schema, _ in api._VALIDATED] == ["ListRequest"]  # the password never stays in memory


def test_remembered_bodies_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit_demo.schemas import REQUESTS

    monkeypatch.setattr(api, "_VALIDATED", {})
    for number in range(api._REMEMBERED_BODIES + 10):
        api._validated(REQUESTS["get"], json.dumps({"id": f"r{number}", "user_id": "ann"}).encode())
    assert 0 < len(api._VALIDATED) <= api._REMEMBERED_BODIES


def test_each_call_gets_the_context_of_its_own_client_host_and_token() -> None:
    """Contexts are kept by what they are made of: a different Host, client or token is a different context."""
    from urllib.parse import parse_qs

    with TestClient(create_app(storage="memory"), base_url="http://first.example:8000") as client:
        ann = client.post("/login", json={"username": "ann", "password": "ann"}).json()["token"]
        bob = client.post("/login", json={"username": "bob", "password": "bob"}).json()["token"]
        room = client.post("/api/v1/live/create", json={"title": "t", "anchor": "ann"}, headers={"Authorization": f"Bearer {ann}"}).json()

        def jump(token: str, host: str) -> str:
            body = {"user_id": "ann", "live_id": room["id"]}
            answer = client.post("/api/v1/live/getLiveJumpUrl", json=body, headers={"Authorization": f"Bearer {token}", "Host": host})
            return parse_qs(answer.json()["live_jump_url"].split("?", 1)[1])["app_server"][0]

        assert [jump(ann, host) for host in ("first.example:8000", "second.example", "first.example:8000")] == [
            "http://first.example:8000", "http://second.example", "http://first.example:8000",
        ]  # fmt: skip
        refreshed = [client.get("/auth/refresh_token", headers={"Authorization": f"Bearer {t}"}).json() for t in (ann, bob)]
        assert [jwt.decode(r["token"], options={"verify_signature": False})["id"] for r in refreshed] == ["ann", "bob"]
