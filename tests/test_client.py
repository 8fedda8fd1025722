"""The Python client against a real background server: every call, re-login, errors, raw requests."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from urllib.parse import parse_qsl

import httpx
import pytest

import livekit_demo
from livekit_demo.client import ApiError, AppServerClient, ServerUnavailable, connect
from livekit_demo.clock import FixedClock
from livekit_demo.models import LoginResult, MeetingInfo, RoomInfo
from livekit_demo.runner import ServerHandle, start_server

TTL = 600


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock("2026-11-28T10:15:00Z")


@pytest.fixture(scope="module")
def server(clock: FixedClock) -> Iterator[ServerHandle]:
    handle = start_server(storage="memory", env={}, clock=clock, auth={"token_ttl": TTL}, keep=True)
    yield handle
    handle.stop()


@pytest.fixture
def ann(server: ServerHandle) -> Iterator[AppServerClient]:
    with connect(server.url, "ann", "ann") as client:
        yield client


@pytest.fixture
def bob(server: ServerHandle) -> Iterator[AppServerClient]:
    with connect(server, "bob") as client:  # a handle works as the url; the password defaults to the username
        yield client


def test_connect_logs_in_and_repr_hides_the_token(ann: AppServerClient, server: ServerHandle) -> None:
    assert isinstance(ann.login_result, LoginResult) and ann.login_result["code"] == 200
    assert ann.jwt and ann.jwt not in repr(ann)
    assert repr(ann) == f"<AppServerClient {server.url} user='ann' v1 logged in>"


def test_connect_without_url_uses_the_latest_server(server: ServerHandle) -> None:
    with connect(username="cy") as client:
        assert client.url == server.url and client.jwt


def test_connect_without_any_server_says_what_to_do(server: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit_demo import runner

    monkeypatch.setattr(runner, "current_server", lambda: None)
    with pytest.raises(LookupError, match="start_server"):
        connect(username="cy")


def test_room_calls_answer_models(ann: AppServerClient) -> None:
    room = ann.create("Morning show", notice="hi", anchor_nick="Ann", extends={"userNick": "Ann", "n": 1})
    assert isinstance(room, RoomInfo) and room["anchor_id"] == "ann" and room["status"] == 0
    assert json.loads(room["extends"]) == {"userNick": "Ann", "n": 1}
    assert "push_url_info" in room
    got = ann.get(room["id"])
    assert isinstance(got, RoomInfo) and got["title"] == "Morning show" and got["metrics"]["pv"] == 1
    updated = ann.update(room["id"], title="Evening show", notice="")
    assert updated["title"] == "Evening show" and updated["notice"] == "hi"
    assert ann.start(room["id"])["status"] == 1
    assert ann.pause(room["id"])["status"] == 3
    assert ann.start(room["id"])["status"] == 1
    assert ann.stop(room["id"])["status"] == 2
    listed = ann.list(page_size=100, status=2)
    assert all(isinstance(r, RoomInfo) for r in listed) and room["id"] in [r["id"] for r in listed]
    assert ann.list(page_num=1000) == []
    assert ann.delete(room["id"])["id"] == room["id"]
    with pytest.raises(ApiError) as gone:
        ann.get(room["id"])
    assert gone.value.status == 404


def test_meeting_calls(ann: AppServerClient) -> None:
    room = ann.create("Duet", mode=1)
    assert ann.get_meeting_info(room["id"]) == {"members": []}
    members = [{"user_id": "ann", "mic_opened": True}, {"user_id": "bob", "camera_opened": True}]
    answer = ann.update_meeting_info(room["id"], members)
    assert isinstance(answer, MeetingInfo)
    assert [m["user_id"] for m in answer["members"]] == ["ann", "bob"]
    assert answer["members"][0]["mic_opened"] is True and answer["members"][1]["camera_opened"] is True
    assert all(m["rtc_pull_url"].startswith("artc://") for m in answer["members"])
    assert ann.get_meeting_info(room["id"]) == answer
    assert ann.update_meeting_info(room["id"], []) == {"members": []}


def test_audience_calls(ann: AppServerClient, bob: AppServerClient) -> None:
    room = ann.create("likes")
    chat = room["chat_id"]
    assert bob.send_like_message(chat, 3) == {"code": 200, "count": 3}
    assert ann.send_like_message(chat) == {"code": 200, "count": 4}
    assert bob.get_statistics(chat) == {"pv": 0, "uv": 0, "like_count": 4, "online_count": 0}
    assert ann.mute_chatroom(chat) == {"code": 200, "mute": True}
    assert bob.is_mute_chatroom(chat) == {"code": 200, "mute": True}
    assert bob.get(room["id"])["user_status"] == {"mute": True, "mute_source": ["group"]}
    with pytest.raises(ApiError) as refused:
        bob.cancel_mute_chatroom(chat)
    assert refused.value.status == 403
    assert ann.cancel_mute_chatroom(chat) == {"code": 200, "mute": False}


def test_hand_off_calls(ann: AppServerClient, server: ServerHandle) -> None:
    room = ann.create("hand-off")
    rtc = ann.get_rtc_auth_token("channel_1")
    assert set(rtc) == {"auth_token", "timestamp"} and len(rtc["auth_token"]) == 64
    url = ann.get_live_jump_url(room["id"], user_name="Ann", version="2")["live_jump_url"]
    query = dict(parse_qsl(url.split("?", 1)[1]))
    assert query["app_server"] == server.url and query["version"] == "2"
    with connect(server.url, login=False) as pusher:  # the PC pusher app has no login of its own
        trade = {"user_id": "ann", "live_id": room["id"], "app_server": query["app_server"]}
        login = pusher.verify_auth_token(query["token"], **trade)["login_token"]
        assert pusher.raw("/api/v1/live/get", {"id": room["id"], "user_id": "ann"}, headers={"Authorization": f"Bearer {login}"}).status_code == 200
        with pytest.raises(ApiError) as again:
            pusher.verify_auth_token(query["token"], **trade)
        assert again.value.status == 401 and "traded already" in again.value.message


def test_im_tokens(ann: AppServerClient) -> None:
    v1 = ann.token(device_id="d1", device_type="android")
    assert set(v1) == {"access_token", "refresh_token"}
    v2 = ann.token_v2(role="admin", im_server=["aliyun_new", "aliyun_old"])
    assert v2["code"] == 200 and v2["aliyun_new_im"]["auth"]["user_id"] == "ann"
    assert v2["aliyun_new_im"]["auth"]["role"] == "admin" and "aliyun_old_im" in v2


def test_api_version_2_uses_v2_paths(server: ServerHandle) -> None:
    seen: list[str] = []
    with connect(server.url, "ann", api_version=2) as client:
        client._http.event_hooks["request"].append(lambda request: seen.append(request.url.path))
        room = client.create("via v2")
        client.get(room["id"])
        client.token()
    assert seen == ["/api/v2/live/create", "/api/v2/live/get", "/api/v1/live/token"]
    with pytest.raises(ValueError, match="api_version"):
        AppServerClient(server.url, "ann", api_version=3)


def test_refresh_token_gives_a_new_token(ann: AppServerClient, clock: FixedClock) -> None:
    old = ann.jwt
    clock.advance(5)
    result = ann.refresh_token()
    assert result["code"] == 200 and ann.jwt == result["token"] != old


def test_expired_token_relogs_in_once_and_retries(ann: AppServerClient, clock: FixedClock) -> None:
    room = ann.create("long session")
    old = ann.jwt
    clock.advance(TTL + 1)  # the token has expired: the server answers 401
    assert ann.raw("/api/v1/live/get", {"id": room["id"], "user_id": "ann"}).status_code == 401
    assert ann.get(room["id"])["id"] == room["id"]
    assert ann.jwt != old


def test_relogin_happens_only_once() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/login":
            return httpx.Response(200, json={"code": 200, "expire": "2026-11-29T10:15:00Z", "token": f"t{len(calls)}"})
        return httpx.Response(401, json={"code": 401, "message": "token expired", "details": None})

    with connect("http://appserver.test", "ann", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ApiError) as caught:
            client.get("r1")
    assert caught.value.status == 401 and caught.value.message == "token expired"
    assert calls == ["/login", "/api/v1/live/get", "/login", "/api/v1/live/get"]


def test_error_fields_for_each_status(ann: AppServerClient, bob: AppServerClient, server: ServerHandle) -> None:
    with pytest.raises(ApiError) as bad:
        ann.create("")
    assert (bad.value.status, bad.value.code) == (400, 400)
    assert [d["field"] for d in bad.value.details] == ["title"]
    assert isinstance(bad.value.response, httpx.Response) and bad.value.response.status_code == 400

    with pytest.raises(ApiError) as unauthorized:
        connect(server.url, "ann", "not-ann")
    assert unauthorized.value.status == 401 and unauthorized.value.code == 401 and unauthorized.value.message

    room = ann.create("ann's room")
    with pytest.raises(ApiError) as forbidden:
        bob.start(room["id"])
    assert forbidden.value.status == 403 and forbidden.value.details is None
    with pytest.raises(ApiError) as acting_as:
        bob.get(room["id"], user_id="ann")
    assert acting_as.value.status == 403

    with pytest.raises(ApiError) as missing:
        ann.get("0" * 32)
    assert missing.value.status == 404 and "0" * 32 in missing.value.message

    with pytest.raises(ApiError) as conflict:
        ann.pause(room["id"])
    assert conflict.value.status == 409 and "cannot pause" in conflict.value.message
    assert ann.get_meeting_info(room["id"]) == {"members": []}  # a plain room: nobody on stage
    with pytest.raises(ApiError) as mode:
        ann.update_meeting_info(room["id"], [])
    assert (mode.value.status, mode.value.message) == (409, "unsupported live mode: 0")
    assert str(mode.value) == "409 unsupported live mode: 0"
    assert repr(mode.value) == "ApiError(409, 'unsupported live mode: 0')"
    assert mode.value.to_json() == {"code": 409, "message": "unsupported live mode: 0", "details": None}


def test_error_without_a_status_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/login":
            return httpx.Response(200, json={"code": 200, "expire": "", "token": "t"})
        if request.url.path.endswith("/get"):
            return httpx.Response(500, text="record not found\n", headers={"content-type": "text/plain"})
        return httpx.Response(502, text="")

    with connect("http://go-appserver.test", "ann", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(ApiError) as text:
            client.get("r1")
        assert (text.value.status, text.value.code, text.value.message, text.value.details) == (500, 500, "record not found", None)
        with pytest.raises(ApiError) as empty:
            client.stop("r1")
        assert (empty.value.status, empty.value.message) == (502, "Bad Gateway")


def test_raw_sends_anything(ann: AppServerClient) -> None:
    wrong_type = ann.raw("/api/v1/live/list", content=b"{}", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    not_json = ann.raw("/api/v1/live/list", content=b"{not json")
    assert not_json.status_code == 400
    anonymous = ann.raw("/api/v1/live/list", {"user_id": "ann", "page_num": 1, "page_size": 1}, authenticate=False)
    assert anonymous.status_code == 401
    root = ann.raw("/", method="GET")
    assert root.status_code == 200 and "base URL" in root.text


def test_calls_work_inside_a_running_event_loop(server: ServerHandle) -> None:
    """A Jupyter cell runs inside the kernel's asyncio loop; the synchronous client must not care."""

    async def cell() -> list[RoomInfo]:
        asyncio.get_running_loop()  # as in a notebook cell: a loop is running right here
        with connect(server.url, "ann") as client:
            client.create("from a cell")
            return client.list(page_size=5)

    rooms = asyncio.run(cell())
    assert rooms and rooms[0]["title"] == "from a cell"
    assert "nest_asyncio" not in sys.modules


def test_package_exports_connect_and_errors() -> None:
    assert livekit_demo.connect is connect and livekit_demo.ApiError is ApiError
    assert livekit_demo.AppServerClient is AppServerClient


def test_heartbeat_counts_the_caller_online_and_names_it(ann: AppServerClient, bob: AppServerClient) -> None:
    room = ann.create("Presence")["id"]
    assert bob.heartbeat(room) == {"code": 200, "online_count": 1}
    assert ann.heartbeat(room)["online_count"] == 2
    with pytest.raises(ApiError) as refused:
        bob.heartbeat(room, user_id="ann")
    assert refused.value.status == 403
    sent = ann.raw("/api/v2/live/heartbeat", {"id": room, "user_id": "ann"})
    assert sent.json() == {"code": 200, "online_count": 2}


def test_a_client_of_a_stopped_server_says_so_in_one_line() -> None:
    first = start_server(storage="memory")
    old = connect(first, username="ann")
    second = start_server(storage="memory")  # stops `first`, as re-running a notebook's first cell does
    try:
        with pytest.raises(ServerUnavailable) as caught:
            old.list()
        assert str(caught.value) == (
            f"the server at {first.url} was stopped (server.stop() or a later start_server()); run start_server() again"
        )
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        with pytest.raises(ServerUnavailable, match="was stopped"):
            old.login()
        with pytest.raises(ServerUnavailable, match="was stopped"):
            old.raw("/login", {"username": "ann", "password": "ann"})
    finally:
        second.stop()
        old.close()


def test_a_client_of_nothing_says_what_to_start() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with AppServerClient(f"http://127.0.0.1:{port}", "ann") as client, pytest.raises(ServerUnavailable) as caught:
        client.login()
    assert str(caught.value).startswith(f"no AppServer answers at http://127.0.0.1:{port} (ConnectError")
    assert "start_server()" in str(caught.value)


def test_ipython_shows_an_unreachable_server_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_cell("from livekit_demo.client import AppServerClient\nAppServerClient('http://127.0.0.1:9', 'ann').login()")
    finally:
        InteractiveShell.clear_instance()
    shown = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(shown) == 1 and shown[0].startswith("ServerUnavailable: no AppServer answers at http://127.0.0.1:9"), shown
