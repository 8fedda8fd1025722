"""The CDN's push callback (SPEC 13), in-process on every storage engine: signature, parameters, the room following its stream."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_api import ZERO, Api, assert_error

from livekit_demo.callbacks import PushEvent, check_signature, parse_push_event
from livekit_demo.exceptions import BadRequest, Unauthorized
from livekit_demo.rooms import MAX_EVENTS
from livekit_demo.signing import callback_signature

from conftest import STORE_PARAMS, storage_setting

CALLBACK = "handlePushStreamEventCallback"
HOST, KEY = "push.example.com", "demo-push-key"  # the defaults: push_url and push_auth_key


@pytest.fixture(params=STORE_PARAMS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    made = Api(storage=storage_setting(request.param, tmp_path))
    try:
        yield made
    finally:
        made.server.close()


def signed(api: Api, *, host: str = HOST, key: str = KEY, skew: int = 0) -> dict[str, str]:
    ts = api.clock.timestamp() + skew
    return {"ALI-LIVE-TIMESTAMP": str(ts), "ALI-LIVE-SIGNATURE": callback_signature(host, ts, key)}


def push(api: Api, action: str, stream: str, *, how: str = "json", version: int = 1, headers: dict[str, str] | None = None, **extra: Any):
    path = f"/api/v{version}/live/{CALLBACK}"
    params: dict[str, Any] = {"action": action, "id": stream, "app": HOST, "appname": "live", "ip": "10.0.0.7", **extra}
    sent = signed(api) if headers is None else headers
    if how == "query":
        return api.http.get(path, params={k: str(v) for k, v in params.items()}, headers=sent)
    if how == "form":
        return api.http.post(path, data={k: str(v) for k, v in params.items()}, headers=sent)
    return api.http.post(path, json=params, headers=sent)


def status_of(api: Api, room_id: str) -> dict:
    return api.ok("get", {"id": room_id, "user_id": "ann"})


@pytest.mark.parametrize("how", ["json", "form", "query"])
def test_publish_takes_a_room_live_and_publish_done_back_to_0(api: Api, how: str) -> None:
    room = api.create()
    r = push(api, "publish", room["id"], how=how, time=api.clock.timestamp())
    assert (r.status_code, r.json()) == (200, {"code": 200})
    live = status_of(api, room["id"])
    assert live["status"] == 1 and live["started_at"] == "2026-11-28T10:15:00Z"  # as start does
    api.clock.advance(30)
    assert push(api, "publish_done", room["id"], how=how, version=2).json() == {"code": 200}
    back = status_of(api, room["id"])
    assert back["status"] == 0 and back["started_at"] == "2026-11-28T10:15:00Z" and back["stopped_at"] == ZERO
    assert [(e.action, e.room_id, e.ip, e.outcome) for e in api.server.rooms.events] == [
        ("publish", room["id"], "10.0.0.7", "0 -> 1"),
        ("publish_done", room["id"], "10.0.0.7", "1 -> 0"),
    ]


def test_json_takes_numbers_and_the_event_keeps_the_cdns_time(api: Api) -> None:
    room = api.create()
    r = push(api, "publish", room["id"], time=1700000000, width=1280, height=720)
    assert r.status_code == 200, r.text
    event = api.server.rooms.events[-1]
    assert event.to_json() == {
        "room_id": room["id"], "action": "publish", "time": "2023-11-14T22:13:20Z", "ip": "10.0.0.7",
        "stream": room["id"], "outcome": "0 -> 1",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("before", "action", "after"),
    [(0, "publish", 1), (1, "publish", 1), (3, "publish", 1), (2, "publish", 2),
     (1, "publish_done", 0), (0, "publish_done", 0), (3, "publish_done", 3), (2, "publish_done", 2)],
)  # fmt: skip
def test_every_cell_of_the_stream_following_table(api: Api, before: int, action: str, after: int) -> None:
    room = api.create()
    for call in {0: [], 1: ["start"], 3: ["start", "pause"], 2: ["stop"]}[before]:
        api.ok(call, {"id": room["id"], "user_id": "ann"})
    was = api.stored()
    api.clock.advance(60)
    assert push(api, action, room["id"]).json() == {"code": 200}
    now = api.stored()
    assert now[0]["status"] == after
    if before == after:
        assert now == was, "a stays changes nothing, not even updated_at"
    assert push(api, action, room["id"]).json() == {"code": 200}
    assert api.stored() == now, "a repeat changes nothing"


def test_an_ended_room_stays_ended_and_the_log_says_why(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    room = api.create()
    api.ok("stop", {"id": room["id"], "user_id": "ann"})
    with caplog.at_level(logging.INFO, logger="livekit_demo.rooms"):
        push(api, "publish", room["id"])
    assert status_of(api, room["id"])["status"] == 2
    assert "stays ended" in caplog.text
    assert api.server.rooms.events[-1].outcome == "stays 2 (ended)"
    api.ok("start", {"id": room["id"], "user_id": "ann"})  # only the anchor's start re-opens it
    assert status_of(api, room["id"])["status"] == 1


def test_a_co_streaming_mix_names_its_room_by_exact_meeting_id_and_anchor(api: Api) -> None:
    room = api.create(mode=1)
    other = api.create(mode=1)
    app_id = api.server.settings.live_mic.app_id
    meeting = room["meeting_id"]
    for stream in (
        f"{app_id}_{meeting[:-1]}_ann_camera",  # a prefix of the meeting id (the reference matched with >=)
        f"{app_id}_{meeting.upper()}_ann_camera",
        f"{app_id}_{meeting}_bob_camera",  # someone else's mix
        f"{app_id}_{meeting}_ann_screen",
        f"other-app_{meeting}_ann_camera",
    ):
        assert push(api, "publish", stream).status_code == 200
        assert status_of(api, room["id"])["status"] == 0, stream
    assert push(api, "publish", f"{app_id}_{meeting}_ann_audio").json() == {"code": 200}
    assert status_of(api, room["id"])["status"] == 1
    assert status_of(api, other["id"])["status"] == 0
    assert push(api, "publish_done", f"{app_id}_{meeting}_ann_camera").status_code == 200
    assert status_of(api, room["id"])["status"] == 0


def test_a_co_streaming_anchor_with_underscores_is_found() -> None:
    api = Api()
    room = api.create("dj_ann_2", mode=1)
    assert push(api, "publish", f"{api.server.settings.live_mic.app_id}_{room['meeting_id']}_dj_ann_2_camera").status_code == 200
    assert api.ok("get", {"id": room["id"], "user_id": "dj_ann_2"}, "dj_ann_2")["status"] == 1


def test_an_unknown_stream_is_200_changes_nothing_and_is_logged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    room = api.create()
    before = api.stored()
    with caplog.at_level(logging.INFO, logger="livekit_demo.rooms"):
        r = push(api, "publish", "no-such-stream")
    assert (r.status_code, r.json()) == (200, {"code": 200})
    assert api.stored() == before and status_of(api, room["id"])["status"] == 0
    assert "'no-such-stream'" in caplog.text and "names no room" in caplog.text
    assert api.server.rooms.events[-1].outcome == "unknown stream"


def test_signature_refusals_change_nothing(api: Api) -> None:
    room = api.create()
    before = api.stored()
    good = signed(api)
    cases = [
        ({}, 400, "ALI-LIVE-TIMESTAMP and ALI-LIVE-SIGNATURE"),
        ({"ALI-LIVE-TIMESTAMP": good["ALI-LIVE-TIMESTAMP"]}, 400, "ALI-LIVE-SIGNATURE header"),
        ({"ALI-LIVE-SIGNATURE": good["ALI-LIVE-SIGNATURE"]}, 400, "ALI-LIVE-TIMESTAMP header"),
        (signed(api, key="wrong"), 401, "does not match"),
        (signed(api, host="pull.example.com"), 401, "does not match"),
        ({**good, "ALI-LIVE-SIGNATURE": good["ALI-LIVE-SIGNATURE"][:-1] + "0"}, 401, "does not match"),
        (signed(api, skew=-301), 401, "replay"),
        (signed(api, skew=301), 401, "replay"),
    ]
    for headers, status, words in cases:
        for how in ("json", "query", "form"):
            assert_error(push(api, "publish", room["id"], how=how, headers=headers), status, words)
    assert api.stored() == before and api.server.rooms.events == []
    # the window's edges are inside it
    assert push(api, "publish", room["id"], headers=signed(api, skew=-300)).status_code == 200
    assert push(api, "publish", room["id"], headers=signed(api, skew=300)).status_code == 200


def test_signature_comes_before_the_parameters_and_bad_parameters_are_400_naming_them(api: Api) -> None:
    path = f"/api/v1/live/{CALLBACK}"
    assert_error(api.http.post(path, json={"id": ""}, headers=signed(api, key="x")), 401)
    r = api.http.post(path, json={"id": "", "time": "soon", "width": 1.5, "ip": 7}, headers=signed(api))
    fields = {d["field"] for d in assert_error(r, 400)["details"]}
    assert fields == {"action", "id", "time", "width", "ip"}
    r = api.http.get(path, params={"action": "unpublish", "id": "x"}, headers=signed(api))
    assert [d["field"] for d in assert_error(r, 400)["details"]] == ["action"]
    assert_error(api.http.post(path, json={"action": "publish", "id": True}, headers=signed(api)), 400, "id")
    assert_error(api.http.post(path, json={"action": "publish", "id": "x", "time": True}, headers=signed(api)), 400, "time")
    assert_error(api.http.post(path, content=b"[1]", headers={**signed(api), "Content-Type": "application/json"}), 400, "object")
    assert_error(api.http.post(path, content=b"{", headers={**signed(api), "Content-Type": "application/json"}), 400, "JSON")
    assert_error(api.http.post(path, content=b"x", headers={**signed(api), "Content-Type": "text/plain"}), 415)
    big = b"a=" + b"x" * (api.server.settings.server.max_body + 1)
    assert_error(api.http.post(path, content=big, headers={**signed(api), "Content-Type": "application/x-www-form-urlencoded"}), 413)
    r = api.http.post(path, json={"action": "publish", "id": "x", "usrargs": {"a": 1}, "node": 3}, headers=signed(api))
    assert r.status_code == 200, "unknown parameters are ignored"
    assert api.http.put(path, headers=signed(api)).status_code == 405


def test_callback_host_and_key_settings_are_what_it_checks() -> None:
    api = Api(live_stream={"callback_host": "cb.test", "callback_auth_key": "cb-key"})
    room = api.create()
    assert_error(push(api, "publish", room["id"]), 401)
    assert push(api, "publish", room["id"], headers=signed(api, host="cb.test", key="cb-key")).status_code == 200
    api = Api(live_stream={"push_url": "push.cdn.test", "push_auth_key": "pk"})
    room = api.create()
    assert push(api, "publish", room["id"], headers=signed(api, host="push.cdn.test", key="pk")).status_code == 200


def test_the_last_100_events_are_kept(api: Api) -> None:
    room = api.create()
    for i in range(MAX_EVENTS + 5):
        push(api, "publish" if i % 2 else "publish_done", room["id"])
    events = api.server.rooms.events
    assert len(events) == MAX_EVENTS and events[-1].action == "publish_done" and events[0].action == "publish"


def test_the_openapi_describes_get_and_post_with_the_headers() -> None:
    doc = Api().http.get("/openapi.json").json()
    for version in (1, 2):
        entry = doc["paths"][f"/api/v{version}/live/{CALLBACK}"]
        assert set(entry) == {"get", "post"}
        for method in ("get", "post"):
            assert {"200", "400", "401", "500"} <= set(entry[method]["responses"])
            assert {p["name"] for p in entry[method]["parameters"] if p["in"] == "header"} == {"ALI-LIVE-TIMESTAMP", "ALI-LIVE-SIGNATURE"}
            assert "security" not in entry[method]
        assert {p["name"] for p in entry["get"]["parameters"] if p["in"] == "query"} >= {"action", "id", "time"}
        assert set(entry["post"]["requestBody"]["content"]) == {"application/json", "application/x-www-form-urlencoded"}
    assert doc["components"]["schemas"]["CallbackResponse"]["properties"]["code"]["enum"] == [200]


def test_the_parser_and_the_checker_without_http() -> None:
    assert parse_push_event({"action": "publish", "id": "r", "time": " 17 ", "width": 640}) == PushEvent("publish", "r", time=17, width=640)
    with pytest.raises(BadRequest):
        parse_push_event({"action": "publish", "id": "r", "time": "1e9"})
    with pytest.raises(BadRequest):
        parse_push_event({"action": "publish", "id": "x" * 1025})
    sig = callback_signature("h", 1000, "k")
    check_signature("1000", sig.upper(), host="h", key="k", now=1200)
    with pytest.raises(Unauthorized, match="replay"):
        check_signature("1000", sig, host="h", key="k", now=1301)
    with pytest.raises(Unauthorized, match="unix seconds"):
        check_signature("1e3", callback_signature("h", "1e3", "k"), host="h", key="k", now=1000)
