"""The HTTP contract, in-process: every route, every row of SPEC 1's status table, every lifecycle cell."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote

import httpx
import jwt
import pytest
from starlette.testclient import TestClient

from livekit_demo.api import create_app
from livekit_demo.app_server import AppServer
from livekit_demo.clock import FixedClock
from livekit_demo.inprocess import InProcessTransport
from livekit_demo.passwords import hash_password
from livekit_demo.settings import Settings
from livekit_demo.signing import explain_url

from conftest import STORE_PARAMS, storage_setting

API = "/api/v1/live"
ZERO = "0001-01-01T00:00:00Z"
ROOMINFO_KEYS = {
    "id", "created_at", "updated_at", "started_at", "stopped_at", "title", "notice", "cover_url", "anchor_id",
    "anchor_nick", "extends", "status", "mode", "chat_id", "meeting_id", "vod_id", "meeting_info",
}  # fmt: skip
ADMIN_HASH = hash_password("s3cret-admin")


class Api:
    """A test client with a fixed clock, logged-in helpers and a view of what is stored.

    `way` is how requests reach the app: "http" is Starlette's TestClient (the ASGI app behind an
    event loop, as under uvicorn), "inprocess" the synchronous in-process transport a browser tab uses.
    """

    def __init__(self, way: str = "http", **settings: object) -> None:
        self.clock = FixedClock("2026-11-28T10:15:00Z")
        base = {"storage": "memory", "auth": {"users": {"boss": ADMIN_HASH}, "admins": ["boss"]}}
        self.server = AppServer(Settings.build(env={}, **(base | settings)), clock=self.clock)
        self.base_url = "http://testserver" if way == "http" else "inprocess://testserver"
        self.http: httpx.Client
        if way == "http":
            self.http = TestClient(create_app(self.server))
        else:
            self.http = httpx.Client(base_url=self.base_url, transport=InProcessTransport(create_app(self.server, inline=True)))
        self.tokens: dict[str, str] = {}

    def token(self, user: str, password: str | None = None) -> str:
        if user not in self.tokens:
            r = self.http.post("/login", json={"username": user, "password": password or user})
            assert r.status_code == 200, r.text
            self.tokens[user] = r.json()["token"]
        return self.tokens[user]

    def call(self, name: str, body: object, user: str | None = "ann", *, version: int = 1, **kwargs: object):
        headers = dict(kwargs.pop("headers", {}) or {})
        if user is not None:
            headers.setdefault("Authorization", f"Bearer {self.token(user)}")
        return self.http.post(f"/api/v{version}/live/{name}", json=body, headers=headers, **kwargs)

    def ok(self, name: str, body: object, user: str = "ann", **kwargs: object):
        r = self.call(name, body, user, **kwargs)
        assert r.status_code == 200, r.text
        return r.json()

    def create(self, user: str = "ann", **fields: object) -> dict:
        return self.ok("create", {"title": "room", "anchor": user} | fields, user)

    def stored(self) -> list[dict]:
        """Every stored row, to prove a bad request changed nothing."""
        return [r.to_row() for r in self.server.store.list(offset=0, limit=10**6)]


# Every engine over HTTP, and the in-process transport (a browser tab's way in) on the engines a tab has.
WAYS_AND_ENGINES = [pytest.param(("http", p.values[0]), marks=p.marks, id=str(p.values[0])) for p in STORE_PARAMS] + [
    pytest.param(("inprocess", engine), id=f"inprocess-{engine}") for engine in ("memory", "tinydb")
]


@pytest.fixture(params=WAYS_AND_ENGINES)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The contract on every storage engine and way in (tests that need special settings make their own `Api`)."""
    way, engine = request.param
    made = Api(way, storage=storage_setting(engine, tmp_path))
    try:
        yield made
    finally:
        made.server.close()


def assert_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    for word in words:
        assert word in body["message"], (word, body["message"])
    assert "Traceback" not in response.text
    return body


# -- login, tokens, identity ------------------------------------------------------------------


def test_login_answers_code_expire_and_a_jwt_with_the_contract_claims(api: Api) -> None:
    for path in ("/login", f"{API}/login", "/api/v2/live/login"):
        body = api.http.post(path, json={"username": "ann", "password": "ann"}).json()
        assert body["code"] == 200
        assert body["expire"] == "2026-11-29T10:15:00+00:00"
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        assert claims["id"] == claims["sub"] == "ann"
        assert claims["exp"] - claims["iat"] == 86400 and claims["orig_iat"] == claims["iat"]


def test_login_ignores_any_authorization_header(api: Api) -> None:
    r = api.http.post("/login", json={"username": "ann", "password": "ann"}, headers={"Authorization": "Bearer live"})
    assert r.status_code == 200


def test_wrong_password_and_configured_users(api: Api) -> None:
    assert_error(api.http.post("/login", json={"username": "ann", "password": "nope"}), 401, "wrong username or password")
    # A configured user only logs in with its password, so the demo rule never yields the admin.
    assert_error(api.http.post("/login", json={"username": "boss", "password": "boss"}), 401)
    assert api.http.post("/login", json={"username": "boss", "password": "s3cret-admin"}).status_code == 200


def test_demo_login_can_be_turned_off() -> None:
    api = Api(auth={"demo_login": False})
    assert_error(api.http.post("/login", json={"username": "ann", "password": "ann"}), 401)


def test_login_validates_its_fields(api: Api) -> None:
    body = assert_error(api.http.post("/login", json={"username": "a/b", "password": ""}), 400)
    assert {d["field"] for d in body["details"]} == {"username", "password"}


def test_token_is_found_in_header_then_query_then_cookie(api: Api) -> None:
    token = api.token("ann")
    room = {"user_id": "ann", "page_num": 1, "page_size": 10}
    assert api.http.post(f"{API}/list", json=room, params={"token": token}).status_code == 200
    api.http.cookies.set("jwt", token)
    assert api.http.post(f"{API}/list", json=room).status_code == 200
    # A non-Bearer Authorization header is passed over, so the cookie still counts.
    assert api.http.post(f"{API}/list", json=room, headers={"Authorization": "Basic xyz"}).status_code == 200
    api.http.cookies.clear()
    assert_error(api.http.post(f"{API}/list", json=room, headers={"Authorization": "Basic xyz"}), 401, "no token")


@pytest.mark.parametrize(
    ("make_token", "words"),
    [
        (lambda secret: "garbage", "malformed"),
        (lambda secret: jwt.encode({"id": "ann", "iat": 1, "exp": 2**40}, None, algorithm="none"), "'none'"),
        (lambda secret: jwt.encode({"id": "ann", "iat": 1, "exp": 2**40}, secret, algorithm="HS512"), "'HS512'"),
        (lambda secret: jwt.encode({"id": "ann", "iat": 1, "exp": 2**40}, "x" * 40, algorithm="HS256"), "signature"),
        (lambda secret: jwt.encode({"id": "ann", "iat": 1}, secret, algorithm="HS256"), "'exp'"),
        (lambda secret: jwt.encode({"id": "ann", "iat": 1, "exp": 1000}, secret, algorithm="HS256"), "expired"),
    ],
    ids=["malformed", "alg-none", "hs512", "other-secret", "no-exp", "expired"],
)
def test_bad_tokens_are_401_saying_which(api: Api, make_token, words: str) -> None:
    token = make_token(api.server.auth._secret)
    r = api.call("list", {"user_id": "ann", "page_num": 1, "page_size": 1}, None, headers={"Authorization": f"Bearer {token}"})
    assert_error(r, 401, words)


def test_tampered_payload_is_401(api: Api) -> None:
    header, _, signature = api.token("ann").split(".")
    forged = jwt.utils.base64url_encode(json.dumps({"id": "boss", "iat": 1, "exp": 2**40}).encode()).decode()
    r = api.call("list", {"user_id": "boss", "page_num": 1, "page_size": 1}, None, headers={"Authorization": f"Bearer {header}.{forged}.{signature}"})
    assert_error(r, 401, "signature")


def test_token_expires_and_refreshes_within_the_window() -> None:
    api = Api(auth={"token_ttl": 3600, "refresh_window": 86400})
    token = api.token("ann")
    api.clock.advance(86400 - 1)
    assert_error(api.call("list", {"user_id": "ann", "page_num": 1, "page_size": 1}), 401, "expired")
    for refresh in (
        lambda: api.http.post(f"{API}/refresh_token", headers={"Authorization": f"Bearer {token}"}),
        lambda: api.http.get("/auth/refresh_token", headers={"Authorization": f"Bearer {token}"}),
        lambda: api.http.post("/api/v2/live/refresh_token", headers={"Authorization": f"Bearer {token}"}),
    ):
        body = refresh().json()
        assert body["code"] == 200
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        assert claims["orig_iat"] == api.clock.timestamp()  # refreshed in time = logged in for another window
    api.clock.advance(1)
    assert_error(api.http.get("/auth/refresh_token", headers={"Authorization": f"Bearer {token}"}), 401, "refresh window")
    assert_error(api.http.post(f"{API}/refresh_token"), 401, "no token")


def test_im_token_v1_and_v2_shapes(api: Api) -> None:
    v1 = api.ok("token", {"user_id": "ann", "device_id": "d1", "device_type": "web"})
    assert set(v1) == {"access_token", "refresh_token"}
    v2 = api.ok("token", {"user_id": "ann", "role": "admin", "im_server": ["aliyun_new"]}, version=2)
    assert set(v2) == {"code", "aliyun_new_im"}
    new = v2["aliyun_new_im"]
    assert set(new) == {"app_id", "app_sign", "app_token", "auth"} and set(new["auth"]) == {"user_id", "nonce", "timestamp", "role"}
    assert new["auth"]["timestamp"] == api.clock.timestamp() + 2 * 86400 and new["auth"]["nonce"].startswith("AK-")
    both = api.ok("token", {"user_id": "ann", "im_server": ["aliyun_old", "aliyun_new"]}, version=2)
    assert set(both["aliyun_old_im"]) == {"access_token", "refresh_token"}
    assert_error(api.call("token", {"user_id": "ann", "device_id": "d", "device_type": "fax"}), 400, "device_type")
    assert_error(api.call("token", {"user_id": "bob", "device_id": "d", "device_type": "web"}), 403)
    # v2's device fields are optional; "" (what a client without one sends) is accepted, a wrong type is not.
    assert api.ok("token", {"user_id": "ann", "device_id": "", "device_type": ""}, version=2)["code"] == 200
    assert_error(api.call("token", {"user_id": "ann", "device_type": "fax"}, version=2), 400, "device_type")
    assert_error(api.call("token", {"user_id": "ann", "device_id": "d", "device_type": ""}), 400, "device_type")  # v1 requires it


def test_im_tokens_carry_what_the_client_sdks_read(api: Api) -> None:
    import base64
    import hashlib

    gateway = api.server.settings.gateway
    for device, endpoint in (("web", gateway.ws_addr), ("android", gateway.lwp_addr), ("ios", gateway.lwp_addr)):
        v1 = api.ok("token", {"user_id": "ann", "device_id": "d1", "device_type": device})
        inner = {}
        for use in ("access_token", "refresh_token"):
            outer = json.loads(base64.b64decode(v1[use], validate=True))  # standard base64 of a JSON object
            assert set(outer) == {"endpoints", "token"} and outer["endpoints"] == [endpoint]
            inner[use] = jwt.decode(outer["token"], options={"verify_signature": False})
            assert (inner[use]["sub"], inner[use]["device_id"], inner[use]["device_type"]) == ("ann", "d1", device)
        assert inner["refresh_token"]["exp"] > inner["access_token"]["exp"] > api.clock.timestamp()
    # v2: device fields are optional, role defaults to "", app_token is the IM service's sha256
    v2 = api.ok("token", {"user_id": "ann"}, version=2)["aliyun_new_im"]
    im = api.server.settings.live_im
    auth = v2["auth"]
    assert (v2["app_id"], v2["app_sign"], auth["user_id"], auth["role"]) == (im.app_id, im.app_sign, "ann", "")
    assert len(auth["nonce"]) == 3 + 32 and int(auth["nonce"][3:], 16) >= 0
    expected = hashlib.sha256(f"{im.app_id}{im.app_key}ann{auth['nonce']}{auth['timestamp']}".encode()).hexdigest()
    assert v2["app_token"] == expected
    with_role = api.ok("token", {"user_id": "ann", "role": "admin"}, version=2)["aliyun_new_im"]
    assert with_role["auth"]["role"] == "admin"
    assert with_role["app_token"] == hashlib.sha256(
        f"{im.app_id}{im.app_key}ann{with_role['auth']['nonce']}{with_role['auth']['timestamp']}admin".encode()
    ).hexdigest()


# -- rooms -------------------------------------------------------------------------------------


def test_create_answers_exactly_the_contract_fields(api: Api) -> None:
    room = api.create(title="Hello", notice="n", anchor_nick="Ann", cover_url="https://c/x.png", extends='{"a":1}')
    assert set(room) == ROOMINFO_KEYS | {"pull_url_info", "push_url_info", "metrics", "user_status"}
    assert len(room["id"]) == 32 and room["id"][12] == "7" and room["chat_id"] == room["id"]
    assert room["created_at"] == room["updated_at"] == "2026-11-28T10:15:00Z"
    assert room["started_at"] == room["stopped_at"] == ZERO
    assert (room["anchor_nick"], room["cover_url"], room["extends"]) == ("Ann", "https://c/x.png", '{"a":1}')
    assert room["metrics"] == {"like_count": 0, "online_count": 0, "pv": 0, "uv": 0}
    assert room["user_status"] == {"mute": False, "mute_source": []}
    assert room["meeting_id"] == "" and "link_info" not in room
    assert set(room["push_url_info"]) == {"rtmp_url", "rts_url", "srt_url"}
    assert set(room["pull_url_info"]) == {"rtmp_url", "rts_url", "flv_url", "hls_url"}
    verdict = explain_url(room["push_url_info"]["rtmp_url"], "demo-push-key", now=api.clock.now())
    assert verdict.signature_valid is True


def test_ids_sort_in_creation_order_within_one_second(api: Api) -> None:
    ids = [api.create(title=f"r{i}")["id"] for i in range(20)]
    assert ids == sorted(ids)
    listed = api.ok("list", {"user_id": "ann", "page_num": 1, "page_size": 100})
    assert [r["id"] for r in listed] == ids[::-1]


def test_get_counts_visits_and_shows_push_urls_only_to_the_anchor(api: Api) -> None:
    room = api.create()
    mine = api.ok("get", {"id": room["id"], "user_id": "ann"})
    theirs = api.ok("get", {"id": room["id"], "user_id": "bob"}, "bob")
    again = api.ok("get", {"id": room["id"], "user_id": "bob"}, "bob")
    assert "push_url_info" in mine and "push_url_info" not in theirs
    assert (mine["metrics"]["pv"], theirs["metrics"]["pv"], again["metrics"]["pv"]) == (1, 2, 3)
    assert again["metrics"]["uv"] == 2
    # list builds RoomInfo like get but counts no visit
    listed = api.ok("list", {"user_id": "bob", "page_num": 1, "page_size": 10}, "bob")
    assert listed[0]["metrics"]["pv"] == 3 and "push_url_info" not in listed[0]


def test_list_pages_filters_and_ends_with_an_empty_page(api: Api) -> None:
    ids = [api.create(title=f"r{i}")["id"] for i in range(5)]
    api.ok("start", {"id": ids[1], "user_id": "ann"})
    api.ok("start", {"id": ids[3], "user_id": "ann"})
    page = lambda n, size, **kw: [r["id"] for r in api.ok("list", {"user_id": "ann", "page_num": n, "page_size": size} | kw)]
    assert page(1, 2) == [ids[4], ids[3]] and page(3, 2) == [ids[0]] and page(4, 2) == []
    assert page(1, 10, status=1) == [ids[3], ids[1]]
    assert page(1, 10, status=0) == [ids[4], ids[2], ids[0]]
    assert page(1, 10, status=-1) == ids[::-1]
    assert page(1, 10, status=None) == ids[::-1]
    assert page(10**30, 100) == []  # far past the end is still just past the end


def test_update_overwrites_only_present_non_empty_fields(api: Api) -> None:
    room = api.create(notice="keep", extends='{"k":1}')
    api.clock.advance(5)
    updated = api.ok("update", {"id": room["id"], "title": "new", "extends": None, "notice": "", "anchor": "x", "cover_url": "https://c"})
    assert (updated["title"], updated["notice"], updated["extends"], updated["cover_url"]) == ("new", "keep", '{"k":1}', "https://c")
    assert updated["updated_at"] == "2026-11-28T10:15:05Z" and updated["created_at"] == room["created_at"]


LIFECYCLE_CELLS = [
    # (status before, call, status after or 409, started_at changes, stopped_at after)
    (0, "start", 1, True, ZERO),
    (0, "pause", 409, False, None),
    (0, "stop", 2, False, "set"),
    (1, "start", 1, False, ZERO),
    (1, "pause", 3, False, ZERO),
    (1, "stop", 2, False, "set"),
    (3, "start", 1, False, ZERO),
    (3, "pause", 3, False, ZERO),
    (3, "stop", 2, False, "set"),
    (2, "start", 1, True, ZERO),
    (2, "pause", 409, False, None),
    (2, "stop", 2, False, "kept"),
]
_REACH = {0: [], 1: ["start"], 3: ["start", "pause"], 2: ["start", "stop"]}


@pytest.mark.parametrize(("before", "call", "after", "restarts", "stopped"), LIFECYCLE_CELLS)
def test_every_cell_of_the_lifecycle_table(api: Api, before: int, call: str, after: int, restarts: bool, stopped: str | None) -> None:
    room = api.create()
    for step in _REACH[before]:
        state = api.ok(step, {"id": room["id"], "user_id": "ann"})
    state = api.ok("get", {"id": room["id"], "user_id": "ann"})
    assert state["status"] == before
    api.clock.advance(60)
    r = api.call(call, {"id": room["id"], "user_id": "ann"})
    if after == 409:
        assert_error(r, 409, call, str(before))
        assert api.ok("get", {"id": room["id"], "user_id": "ann"})["updated_at"] == state["updated_at"]
        return
    new = r.json()
    assert new["status"] == after
    assert (new["started_at"] != state["started_at"]) is restarts
    if stopped == "set":
        assert new["stopped_at"] == "2026-11-28T10:16:00Z"
    elif stopped == "kept":
        assert new["stopped_at"] == state["stopped_at"] != ZERO
    else:
        assert new["stopped_at"] == ZERO
    changed = after != before or restarts
    assert (new["updated_at"] != state["updated_at"]) is changed  # "stays" leaves updated_at alone
    assert ("vod_info" in new) is (after == 2)


def test_delete_answers_the_room_then_it_is_gone(api: Api) -> None:
    room = api.create()
    gone = api.ok("delete", {"id": room["id"], "user_id": "ann"})
    assert gone["id"] == room["id"]
    assert_error(api.call("get", {"id": room["id"], "user_id": "ann"}), 404, room["id"])


def test_every_name_is_served_under_v2_too(api: Api) -> None:
    room = api.ok("create", {"title": "v2", "anchor": "ann"}, version=2)
    for name in ("get", "start", "pause", "stop"):
        assert api.ok(name, {"id": room["id"], "user_id": "ann"}, version=2)["id"] == room["id"]
    assert api.ok("update", {"id": room["id"], "title": "t2"}, version=2)["title"] == "t2"
    assert api.ok("list", {"user_id": "ann", "page_num": 1, "page_size": 5}, version=2)[0]["id"] == room["id"]
    assert api.ok("getMeetingInfo", {"id": room["id"]}, version=2) == {"members": []}
    assert api.ok("delete", {"id": room["id"], "user_id": "ann"}, version=2)["id"] == room["id"]


# -- co-streaming ------------------------------------------------------------------------------


def test_meetings_replace_members_in_order_and_supply_play_urls(api: Api) -> None:
    room = api.create(mode=1)
    assert room["meeting_id"] and set(room["link_info"]) == {"cdn_pull_info", "rtc_push_url", "rtc_pull_url"}
    assert api.ok("getMeetingInfo", {"id": room["id"]}, "bob") == {"members": []}
    members = [
        {"user_id": "ann", "user_nick": "Ann", "mic_opened": True, "extra": "dropped"},
        {"user_id": "bob", "camera_opened": True, "rtc_pull_url": "artc://given"},
    ]
    answer = api.ok("updateMeetingInfo", {"id": room["id"], "members": members})
    assert [m["user_id"] for m in answer["members"]] == ["ann", "bob"]
    first, second = answer["members"]
    assert set(first) == {"user_id", "user_nick", "user_avatar", "camera_opened", "mic_opened", "rtc_pull_url"}
    assert (first["mic_opened"], first["camera_opened"], second["camera_opened"]) == (True, False, True)
    assert first["rtc_pull_url"].startswith("artc://live.aliyun.com/play/" + room["meeting_id"]) and "userId=ann" in first["rtc_pull_url"]
    assert second["rtc_pull_url"] == "artc://given"
    stored = json.loads(api.ok("get", {"id": room["id"], "user_id": "bob"}, "bob")["meeting_info"])
    assert stored["members"][0]["rtc_pull_url"] == ""  # regenerated on every read, never stored
    guest = api.ok("get", {"id": room["id"], "user_id": "bob"}, "bob")["link_info"]
    assert "userId=bob" in guest["rtc_push_url"]
    assert api.ok("updateMeetingInfo", {"id": room["id"], "members": []}) == {"members": []}


def test_a_guest_sees_a_co_streaming_room_with_its_own_link_info_and_fresh_member_urls(api: Api) -> None:
    room = api.create(mode=1)
    guest = api.ok("get", {"id": room["id"], "user_id": "bob"}, "bob")
    assert set(guest) == ROOMINFO_KEYS | {"pull_url_info", "link_info", "metrics", "user_status"}  # no push URLs, no vod_info
    assert guest["meeting_info"] == ""
    api.ok("updateMeetingInfo", {"id": room["id"], "members": [{"user_id": "ann"}]})
    first = api.ok("getMeetingInfo", {"id": room["id"]}, "bob")["members"][0]["rtc_pull_url"]
    api.clock.advance(3600)
    later = api.ok("getMeetingInfo", {"id": room["id"]}, "bob")["members"][0]["rtc_pull_url"]
    # supplied per read: an hour later the play URL expires an hour later, so it never expires in storage
    assert f"timestamp={api.clock.timestamp() + 86400}&" in later and later != first


def test_meeting_rules(api: Api) -> None:
    room = api.create(mode=1)
    before = api.stored()
    dup = [{"user_id": "ann"}, {"user_id": "ann"}]
    assert assert_error(api.call("updateMeetingInfo", {"id": room["id"], "members": dup}), 400)["details"][0]["field"] == "members[1].user_id"
    bad = assert_error(api.call("updateMeetingInfo", {"id": room["id"], "members": [{"user_id": "ann"}, {"user_id": "bad id!"}]}), 400, "A-Z")
    assert bad["details"][0]["field"] == "members[1].user_id"
    assert_error(api.call("updateMeetingInfo", {"id": room["id"], "members": [{"user_id": f"u{i}"} for i in range(17)]}), 400, "16")
    assert_error(api.call("updateMeetingInfo", {"id": room["id"]}), 400, "members")
    assert_error(api.call("updateMeetingInfo", {"id": room["id"], "members": []}, "bob"), 403, "anchor")
    plain = api.create()
    assert_error(api.call("updateMeetingInfo", {"id": plain["id"], "members": []}), 409, "unsupported live mode: 0")
    # Reading the members of a plain room is the empty list (the web client reads them for every room).
    assert api.ok("getMeetingInfo", {"id": plain["id"]}, "bob") == {"members": []}
    assert api.stored()[1:] == before  # only the new plain room was added
    assert_error(api.call("create", {"title": "t", "anchor": "ann", "mode": 2}), 400, "PK")


def test_a_co_streaming_anchor_must_follow_the_rtc_rule(api: Api) -> None:
    api.token("李雷", "李雷")
    assert api.create("李雷")["anchor_id"] == "李雷"  # letters of any script are fine for mode 0
    assert_error(api.call("create", {"title": "t", "anchor": "李雷", "mode": 1}, "李雷"), 400, "A-Z")
    # The rule is about the body, so it is a 400 even when the anchor is someone else (400 before 403).
    body = assert_error(api.call("create", {"title": "t", "anchor": "李雷", "mode": 1}, "bob"), 400, "A-Z")
    assert body["details"][0]["field"] == "anchor"


# -- SPEC 11: the audience calls --------------------------------------------------------------


def test_likes_add_up_in_metrics_and_statistics_without_counting_a_visit(api: Api) -> None:
    room = api.create()
    chat = {"chatroom_id": room["chat_id"]}
    assert room["chat_id"] == room["id"]
    assert api.ok("getStatistics", chat, "bob") == {"pv": 0, "uv": 0, "like_count": 0, "online_count": 0}
    assert api.ok("sendLikeMessage", chat | {"user_id": "bob", "like_count": 5}, "bob") == {"code": 200, "count": 5}
    assert api.ok("sendLikeMessage", chat | {"user_id": "carl", "like_count": 1000}, "carl", version=2) == {"code": 200, "count": 1005}
    assert api.ok("get", {"id": room["id"], "user_id": "bob"}, "bob")["metrics"] == {"like_count": 1005, "online_count": 0, "pv": 1, "uv": 1}
    assert api.ok("getStatistics", chat, version=2) == {"pv": 1, "uv": 1, "like_count": 1005, "online_count": 0}
    assert api.ok("list", {"user_id": "ann", "page_num": 1, "page_size": 5})[0]["metrics"]["like_count"] == 1005
    assert api.stored()[0] == api.server.store.get(room["id"]).to_row()  # type: ignore[union-attr]
    assert "1005" not in json.dumps(api.stored())  # likes live beside the room, never in its record


def test_like_rules(api: Api) -> None:
    room = api.create()
    chat = {"chatroom_id": room["id"]}
    for count in (0, 1001, "5", 1.0, True):
        body = assert_error(api.call("sendLikeMessage", chat | {"user_id": "bob", "like_count": count}, "bob"), 400)
        assert body["details"][0]["field"] == "like_count"
    assert_error(api.call("sendLikeMessage", {"user_id": "bob", "like_count": 1}, "bob"), 400, "chatroom_id")
    assert_error(api.call("sendLikeMessage", chat | {"user_id": "ann", "like_count": 1}, "bob"), 403, "not you")
    assert_error(api.call("sendLikeMessage", {"chatroom_id": "nope", "user_id": "bob", "like_count": 1}, "bob"), 404, "nope")
    assert_error(api.call("sendLikeMessage", chat | {"user_id": "bob", "like_count": 1}, None), 401)
    assert_error(api.call("getStatistics", {"chatroom_id": "nope"}), 404, "nope")
    assert api.ok("getStatistics", chat)["like_count"] == 0  # nothing refused was counted


def test_muting_the_chat_mutes_everyone_but_the_anchor(api: Api) -> None:
    room = api.create()
    other = api.create()
    chat = {"chatroom_id": room["id"]}
    unmuted = {"mute": False, "mute_source": []}
    assert api.ok("isMuteChatroom", chat, "bob") == {"code": 200, "mute": False}
    assert_error(api.call("muteChatroom", chat, "bob"), 403, "anchor")
    assert api.ok("muteChatroom", chat) == {"code": 200, "mute": True}
    assert api.ok("isMuteChatroom", chat, "bob", version=2) == {"code": 200, "mute": True}
    assert api.ok("get", {"id": room["id"], "user_id": "bob"}, "bob")["user_status"] == {"mute": True, "mute_source": ["group"]}
    assert api.ok("get", {"id": room["id"], "user_id": "ann"})["user_status"] == unmuted  # the anchor still speaks
    listed = {r["id"]: r["user_status"] for r in api.ok("list", {"user_id": "bob", "page_num": 1, "page_size": 5}, "bob")}
    assert listed == {room["id"]: {"mute": True, "mute_source": ["group"]}, other["id"]: unmuted}
    api.token("boss", "s3cret-admin")
    assert api.ok("cancelMuteChatroom", chat, "boss") == {"code": 200, "mute": False}  # an admin may
    assert api.ok("get", {"id": room["id"], "user_id": "bob"}, "bob")["user_status"] == unmuted
    assert_error(api.call("cancelMuteChatroom", {"chatroom_id": "nope"}), 404)
    assert_error(api.call("isMuteChatroom", {}), 400, "chatroom_id")


def test_likes_and_mute_survive_a_restart_and_go_with_the_room(tmp_path: Path) -> None:
    data = str(tmp_path / "rooms.json")
    first = Api(storage=data)
    room = first.create()
    first.ok("sendLikeMessage", {"chatroom_id": room["id"], "user_id": "bob", "like_count": 7}, "bob")
    first.ok("muteChatroom", {"chatroom_id": room["id"]})
    first.server.close()
    again = Api(storage=data)
    try:
        assert again.ok("getStatistics", {"chatroom_id": room["id"]})["like_count"] == 7
        assert again.ok("isMuteChatroom", {"chatroom_id": room["id"]})["mute"] is True
        again.ok("delete", {"id": room["id"], "user_id": "ann"})
        assert again.server.store.stats([room["id"]]) == {}
    finally:
        again.server.close()


# -- SPEC 12: hand-offs ------------------------------------------------------------------------


def test_rtc_auth_token_is_the_sha256_of_the_rtc_keys(api: Api) -> None:
    mic = api.server.settings.live_mic
    answer = api.ok("getRtcAuthToken", {"room_id": "channel_1"}, "bob")
    ts = api.clock.timestamp() + 86400
    expected = hashlib.sha256(f"{mic.app_id}{mic.app_key}channel_1bob{ts}".encode()).hexdigest()
    assert answer == {"auth_token": expected, "timestamp": ts}
    assert api.ok("getRtcAuthToken", {"room_id": "channel_1", "user_id": "bob"}, "bob", version=2) == answer
    assert_error(api.call("getRtcAuthToken", {"room_id": "channel_1", "user_id": "ann"}, "bob"), 403, "not you")
    assert_error(api.call("getRtcAuthToken", {"room_id": "bad channel!"}, "bob"), 400, "A-Z")
    assert_error(api.call("getRtcAuthToken", {}, "bob"), 400, "room_id")


def _jump(api: Api, room_id: str, **extra: str) -> dict[str, str]:
    url = api.ok("getLiveJumpUrl", {"user_id": "ann", "live_id": room_id} | extra)["live_jump_url"]
    scheme, rest = url.split("?", 1)
    assert scheme == "auipusher://page/live-room"
    return dict(parse_qsl(rest, keep_blank_values=True))


def test_a_live_jump_url_hands_the_room_to_the_pusher_app_once(api: Api) -> None:
    room = api.create()
    url = api.ok("getLiveJumpUrl", {"user_id": "ann", "live_id": room["id"], "user_name": "Ann Lee", "version": "1.2"})["live_jump_url"]
    assert "user_name=Ann%20Lee" in url and f"app_server={quote(api.base_url, safe='')}&" in url and url.endswith("&version=1.2")
    query = _jump(api, room["id"], user_name="Ann Lee")
    assert (query["app_server"], query["user_id"], query["live_id"], query["user_name"]) == (api.base_url, "ann", room["id"], "Ann Lee")
    claims = jwt.decode(query["token"], options={"verify_signature": False})
    assert {"user_id", "live_id", "user_name", "app_server", "exp", "jti"} <= set(claims)
    assert claims["exp"] == api.clock.timestamp() + 3600 and len(claims["jti"]) >= 16
    # Not a login token.
    assert_error(api.call("get", {"id": room["id"], "user_id": "ann"}, None, headers={"Authorization": f"Bearer {query['token']}"}), 401, "hand-off")
    trade = {"user_id": "ann", "live_id": room["id"], "app_server": api.base_url, "token": query["token"]}
    # Refused verifies (no Authorization needed) do not use the token up.
    assert_error(api.http.post(f"{API}/verifyAuthToken", json=trade | {"user_id": "bob"}), 401, "user_id")
    assert_error(api.http.post(f"{API}/verifyAuthToken", json=trade | {"live_id": "other"}), 401, "live_id")
    assert_error(api.http.post(f"{API}/verifyAuthToken", json=trade | {"user_name": "Someone"}), 401, "user_name")
    assert_error(api.http.post(f"{API}/verifyAuthToken", json=trade | {"token": query["token"][:-3] + "AAA"}), 401, "signature")
    assert_error(api.http.post(f"{API}/verifyAuthToken", json=trade | {"token": api.token("ann")}), 401, "hand-off")
    answer = api.http.post("/api/v2/live/verifyAuthToken", json=trade | {"user_name": "Ann Lee"})
    assert answer.status_code == 200 and set(answer.json()) == {"login_token"}
    login = answer.json()["login_token"]
    assert api.ok("get", {"id": room["id"], "user_id": "ann"}, None, headers={"Authorization": f"Bearer {login}"})["id"] == room["id"]
    assert_error(api.http.post(f"{API}/verifyAuthToken", json=trade), 401, "traded already")


def test_a_hand_off_token_expires_after_an_hour(api: Api) -> None:
    room = api.create()
    query = _jump(api, room["id"])
    api.clock.advance(3600)
    trade = {"user_id": "ann", "live_id": room["id"], "app_server": query["app_server"], "token": query["token"]}
    assert_error(api.http.post(f"{API}/verifyAuthToken", json=trade), 401, "expired")


def test_only_the_anchor_may_hand_a_room_over(api: Api) -> None:
    room = api.create()
    assert_error(api.call("getLiveJumpUrl", {"user_id": "bob", "live_id": room["id"]}, "bob"), 403, "anchor")
    assert_error(api.call("getLiveJumpUrl", {"user_id": "ann", "live_id": room["id"]}, "bob"), 403, "not you")
    assert_error(api.call("getLiveJumpUrl", {"user_id": "ann", "live_id": "nope"}), 404, "nope")
    assert_error(api.call("getLiveJumpUrl", {"live_id": room["id"]}), 400, "user_id")
    assert_error(api.http.post(f"{API}/verifyAuthToken", json={"user_id": "ann"}), 400, "live_id")
    api.token("boss", "s3cret-admin")
    assert "token=" in api.ok("getLiveJumpUrl", {"user_id": "ann", "live_id": room["id"]}, "boss")["live_jump_url"]


# -- the status table: each bad request gets its answer and changes nothing ----------------------


def test_status_table_rows_change_nothing(api: Api) -> None:
    room = api.create()
    api.create("bob")
    before = api.stored()
    cases = [
        (api.call("get", {"id": room["id"], "user_id": "ann"}, headers={"Content-Type": "text/plain"}), 415, "Content-Type"),
        (api.call("update", {"id": room["id"], "title": "x" * 2_000_000}), 413, "limit"),
        (api.call("start", {"id": room["id"], "user_id": "ann"}, None), 401, "no token"),
        (api.call("start", {"id": room["id"]}), 400, "user_id"),
        (api.call("start", {"id": room["id"], "user_id": "bob"}), 403, "not you"),
        (api.call("start", {"id": "nope", "user_id": "ann"}), 404, "nope"),
        (api.call("start", {"id": room["id"], "user_id": "bob"}, "bob"), 403, "anchor"),
        (api.call("pause", {"id": room["id"], "user_id": "ann"}), 409, "pause"),
        (api.call("update", {"id": room["id"], "title": "x"}, "bob"), 403, "anchor"),
        (api.call("delete", {"id": room["id"], "user_id": "bob"}, "bob"), 403, "anchor"),
        (api.call("create", {"title": "t", "anchor": "bob"}), 403, "not you"),
        (api.call("list", {"user_id": "ann", "page_num": 0, "page_size": 101, "status": 7}), 400, "page_num"),
    ]
    for response, status, word in cases:
        body = assert_error(response, status, word)
        assert body["details"] is None or status == 400
    assert api.stored() == before


def test_order_of_checks_is_fixed(api: Api) -> None:
    # Oversize beats content type, which beats the token, which beats the body.
    big = "{" + " " * 2_000_000 + "}"
    assert api.http.post(f"{API}/get", content=big, headers={"Content-Type": "text/plain"}).status_code == 413
    assert api.http.post(f"{API}/get", content="x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert api.http.post(f"{API}/get", content="not json").status_code == 401
    # 403 (someone else) beats 404 (room): ids are random, so this reveals nothing.
    assert api.call("get", {"id": "nope", "user_id": "bob"}).status_code == 403


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "body"),
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'"text"', "body"),
        (b"\xff\xfe", "body"),
        (b'{"title": "", "anchor": "ann"}', "title"),
        (b'{"title": null, "anchor": "ann"}', "title"),
        (b'{"title": 5, "anchor": "ann"}', "title"),
        (b'{"title": "t", "anchor": "ann", "mode": 1.0}', "mode"),
        (b'{"title": "t", "anchor": "ann", "mode": "1"}', "mode"),
        (b'{"title": "t", "anchor": "ann", "mode": true}', "mode"),
        (b'{"title": "t", "anchor": "ann", "mode": 3}', "mode"),
        (b'{"title": "t", "anchor": "an n"}', "anchor"),
        (b'{"title": "t", "anchor": "a?b"}', "anchor"),
        (b'{"title": "t", "anchor": "' + b"a" * 65 + b'"}', "anchor"),
        (b'{"title": "' + b"t" * 257 + b'", "anchor": "ann"}', "title"),
        (b'{"title": "t", "anchor": "ann", "extends": {"a": 1}}', "extends"),
        (b'{"title": "t", "anchor": "ann", "extends": "' + b"e" * 65537 + b'"}', "extends"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(api: Api, raw: bytes, field: str) -> None:
    r = api.http.post(f"{API}/create", content=raw, headers={"Authorization": f"Bearer {api.token('ann')}", "Content-Type": "application/json"})
    body = assert_error(r, 400)
    assert field in {d["field"] for d in body["details"]}, body
    assert api.stored() == []


def test_content_types_that_are_fine(api: Api) -> None:
    room = api.create()
    headers = {"Authorization": f"Bearer {api.token('ann')}"}
    body = json.dumps({"id": room["id"], "user_id": "ann"})
    assert api.http.post(f"{API}/start", content=body, headers=headers | {"Content-Type": "application/json; charset=utf-8"}).status_code == 200
    assert api.http.post(f"{API}/pause", content=body, headers=headers | {"Content-Type": "application/json; charset=utf-8"}).status_code == 200
    assert api.http.post(f"{API}/stop", content=body, headers=headers).status_code == 200  # no Content-Type: read as JSON


def test_unknown_fields_are_ignored_and_x_live_env_accepted(api: Api) -> None:
    room = api.ok("create", {"title": "t", "anchor": "ann", "im_server": 5, "id": "", "user_id": "someone-else"}, headers={"x-live-env": "pre"})
    assert room["title"] == "t"


def test_admin_acts_on_any_room_and_may_view_as_another_user(api: Api) -> None:
    room = api.create()
    api.token("boss", "s3cret-admin")
    as_admin = api.ok("get", {"id": room["id"], "user_id": "boss"}, "boss")
    assert "push_url_info" in as_admin
    as_bob = api.ok("get", {"id": room["id"], "user_id": "bob"}, "boss")
    assert "push_url_info" not in as_bob
    assert api.ok("start", {"id": room["id"], "user_id": "ann"}, "boss")["status"] == 1
    assert api.ok("update", {"id": room["id"], "title": "by boss"}, "boss")["title"] == "by boss"
    assert api.ok("create", {"title": "for carl", "anchor": "carl"}, "boss")["anchor_id"] == "carl"


def test_unknown_path_and_method_have_status_bodies(api: Api) -> None:
    assert_error(api.http.post("/api/v1/live/nothing", json={}), 404, "/api/v1/live/nothing")
    r = api.http.get(f"{API}/create")
    assert_error(r, 405, "GET")
    assert r.headers["allow"] == "POST"


def test_cors_allows_any_origin_with_the_clients_headers(api: Api) -> None:
    r = api.http.options(
        f"{API}/create",
        headers={"Origin": "https://web.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type,x-live-env"},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "x-live-env" in r.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in r.headers


def test_root_tells_the_base_url_without_a_trailing_slash(api: Api) -> None:
    r = api.http.get("/")
    assert r.status_code == 200 and r.text.endswith(f"Enter this base URL in a client: {api.base_url}\n")


def test_repeated_slashes_in_a_path_are_answered_as_single(api: Api) -> None:
    # A base URL pasted with its trailing slash: the iOS, web and uni-app clients send //api/...
    # (a full URL here: "//api/..." alone would read as a protocol-relative URL naming host "api")
    login = api.http.post(f"{api.base_url}//api/v1/live/login", json={"username": "ann", "password": "ann"})
    assert login.status_code == 200 and login.json()["code"] == 200
    room = api.create()
    headers = {"Authorization": f"Bearer {api.token('ann')}"}
    got = api.http.post(f"{api.base_url}//api//v1///live/get", json={"id": room["id"], "user_id": "ann"}, headers=headers)
    assert got.status_code == 200 and got.json()["id"] == room["id"]
    assert api.http.get(f"{api.base_url}//openapi.json").status_code == 200
    assert_error(api.http.post(f"{api.base_url}//api/v1/live/nothing", json={}), 404, "/api/v1/live/nothing")
    assert_error(api.http.get(f"{api.base_url}//api/v1/live/create"), 405, "/api/v1/live/create")


def test_openapi_describes_every_served_path_and_status(api: Api) -> None:
    doc = api.http.get("/openapi.json").json()
    assert doc == api.http.get("/swagger.json").json()
    names = ["login", "refresh_token", "token", "create", "get", "list", "update", "start", "pause", "stop", "delete", "getMeetingInfo", "updateMeetingInfo",
             "getStatistics", "sendLikeMessage", "muteChatroom", "cancelMuteChatroom", "isMuteChatroom", "getRtcAuthToken", "getLiveJumpUrl", "verifyAuthToken"]  # fmt: skip
    for version in (1, 2):
        for name in names:
            op = doc["paths"][f"/api/v{version}/live/{name}"]["post"]
            assert "200" in op["responses"] and "500" in op["responses"]
    assert "/login" in doc["paths"] and "get" in doc["paths"]["/auth/refresh_token"]
    start = doc["paths"]["/api/v1/live/start"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "413", "415"} <= set(start)
    assert doc["paths"]["/api/v2/live/token"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("TokenV2Response")
    assert "429" in doc["paths"]["/login"]["post"]["responses"]
    assert set(doc["paths"][f"{API}/getMeetingInfo"]["post"]["responses"]) == {"200", "400", "401", "404", "413", "415", "500", "503"}  # no 409
    assert {"403", "404"} <= set(doc["paths"][f"{API}/sendLikeMessage"]["post"]["responses"])
    assert {"403", "404"} <= set(doc["paths"][f"{API}/muteChatroom"]["post"]["responses"])
    assert "403" not in doc["paths"][f"{API}/isMuteChatroom"]["post"]["responses"]
    verify = doc["paths"]["/api/v2/live/verifyAuthToken"]["post"]
    assert "security" not in verify and set(verify["responses"]) == {"200", "400", "401", "413", "415", "500"}
    # refresh needs no body, but a body it is sent still meets the size limit and the Content-Type check
    token = api.token("ann")
    refresh = api.http.post(f"{API}/refresh_token", content="x", headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"})
    assert_error(refresh, 415, "Content-Type")
    for path, method in ((f"{API}/refresh_token", "post"), ("/api/v2/live/refresh_token", "post"), ("/auth/refresh_token", "get")):
        assert {"401", "413", "415", "500"} <= set(doc["paths"][path][method]["responses"]), path


def test_a_server_fault_is_a_one_line_500(api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(api.server.store, "get", broken)
    r = api.call("get", {"id": "x", "user_id": "ann"})
    assert_error(r, 500)
    assert "disk on fire" not in r.text
    assert "disk on fire" in caplog.text  # the log has it


# -- presence: heartbeat (SPEC 14, ours) ---------------------------------------------------------


def _online(api: Api, room_id: str) -> int:
    return api.ok("get", {"id": room_id, "user_id": "ann"})["metrics"]["online_count"]


@pytest.mark.parametrize("version", [1, 2])
def test_a_viewer_is_online_for_30_seconds_after_its_last_heartbeat(api: Api, version: int) -> None:
    room = api.create()["id"]
    beat = lambda user: api.ok("heartbeat", {"id": room, "user_id": user}, user, version=version)
    assert beat("bob") == {"code": 200, "online_count": 1}
    assert beat("carol") == {"code": 200, "online_count": 2}
    api.clock.advance(20)
    assert beat("bob")["online_count"] == 2  # a second beat refreshes, never counts twice
    api.clock.advance(9.5)
    assert _online(api, room) == 2  # carol's last beat was 29.5 s ago
    api.clock.advance(0.5)
    assert _online(api, room) == 1  # 30 s: carol is gone, bob beat 10 s ago
    api.clock.advance(20)
    assert _online(api, room) == 0
    assert beat("carol")["online_count"] == 1  # coming back counts again


def test_heartbeat_is_for_the_caller_in_a_room_that_exists(api: Api) -> None:
    room = api.create()["id"]
    assert_error(api.call("heartbeat", {"id": room, "user_id": "bob"}, "carol"), 403, "'bob' is not you")
    assert_error(api.call("heartbeat", {"id": "no-such-room", "user_id": "bob"}, "bob"), 404, "no-such-room")
    body = assert_error(api.call("heartbeat", {"user_id": ""}, "bob"), 400)
    assert {d["field"] for d in body["details"]} == {"id", "user_id"}
    assert_error(api.call("heartbeat", {"id": room, "user_id": "bob"}, None), 401)
    assert _online(api, room) == 0  # none of the refused beats counted
    api.token("boss", "s3cret-admin")
    assert api.ok("heartbeat", {"id": room, "user_id": "bob"}, "boss")["online_count"] == 1  # an admin may name anyone


def test_online_count_adds_heartbeats_to_the_other_online_sources(api: Api) -> None:
    room = api.create()["id"]
    api.server.rooms.metrics.add_online_source(lambda room_id: 5 if room_id == room else 0)
    assert api.ok("heartbeat", {"id": room, "user_id": "bob"}, "bob")["online_count"] == 6
    assert _online(api, room) == 6
    assert api.ok("list", {"user_id": "ann", "page_num": 1, "page_size": 10})[0]["metrics"]["online_count"] == 6


def test_deleting_a_room_forgets_its_viewers(api: Api) -> None:
    room = api.create()["id"]
    other = api.create()["id"]
    for user in ("bob", "carol"):
        api.ok("heartbeat", {"id": room, "user_id": user}, user)
    api.ok("heartbeat", {"id": other, "user_id": "bob"}, "bob")
    assert repr(api.server.rooms.presence) == "Presence(window=30s, rooms=2)"
    api.ok("delete", {"id": room, "user_id": "ann"})
    assert repr(api.server.rooms.presence) == "Presence(window=30s, rooms=1)"
    assert api.server.rooms.presence(room) == 0 and _online(api, other) == 1


def test_departed_viewers_of_rooms_nobody_reads_are_swept(api: Api) -> None:
    rooms = [api.create()["id"] for _ in range(3)]
    for room in rooms:
        api.ok("heartbeat", {"id": room, "user_id": "bob"}, "bob")
    api.clock.advance(31)
    api.ok("heartbeat", {"id": rooms[0], "user_id": "carol"}, "carol")
    assert repr(api.server.rooms.presence) == "Presence(window=30s, rooms=1)"


def test_openapi_marks_heartbeat_as_ours(api: Api) -> None:
    paths = api.http.get("/openapi.json").json()["paths"]
    for version in (1, 2):
        op = paths[f"/api/v{version}/live/heartbeat"]["post"]
        assert op["x-livekit-demo-ours"] is True and "Ours, not the original" in op["description"]
        assert {"200", "400", "401", "403", "404"} <= set(op["responses"])
        assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("HeartbeatResponse")
        assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("HeartbeatRequest")
    assert "x-livekit-demo-ours" not in paths["/api/v1/live/get"]["post"]
