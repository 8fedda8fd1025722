"""Checks of rooms: RoomInfo shapes, create/get/update/list, the lifecycle table, meetings, URLs, IM tokens.

RoomInfo rules run over a set of sample answers (create, get as the anchor and as another user,
list, a stopped room) gathered once per run, so each rule is one check with one clear message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from itertools import pairwise
from typing import Any

from ..signing import explain_url, im_app_token
from . import _shapes as shapes
from ._base import API_V2, CheckFailed, CheckSkipped, Probe, check, now
from ._shapes import ZERO_TIME, Sample

__all__: list[str] = []

_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_NO_KEYS = "no keys given: pass the server's config (--keys config.json with live_stream.push_auth_key ...) to verify signatures"
_SLACK = 600  # seconds of clock difference tolerated between checker and server


def _samples(p: Probe) -> list[Sample]:
    """RoomInfo answers to judge, built once per run; the requests are recorded on each check using them."""
    return p.cached("samples", lambda: _gather_samples(p))


def _gather_samples(p: Probe) -> list[Sample]:
    found: list[Sample] = []
    me = p.username
    for mode in (0, 1):
        info = p.room(mode, notice="conformance notice", extends='{"userNick":"Conf"}')
        found.append(Sample(f"create (mode {mode})", info, me, True))
        got = p.ok("get", {"id": info["id"], "user_id": me})
        found.append(Sample(f"get by the anchor (mode {mode})", got, me, True))
        try:
            peer = p.ok("get", {"id": info["id"], "user_id": p.peer_name}, as_user="peer")
            found.append(Sample(f"get by another user (mode {mode})", peer, p.peer_name, False))
        except CheckSkipped:
            pass  # no second user: the anchor's views are still judged
    ids = {s.info["id"] for s in found}
    listed = p.ok("list", {"user_id": me, "page_num": 1, "page_size": 20})
    found += [Sample("list item", item, me, True) for item in listed or [] if isinstance(item, dict) and item.get("id") in ids]
    found.append(Sample("stop (status 2)", p.room_in(2), me, True))
    return found


def _judge(p: Probe, rule: str, problems_of: Callable[[Sample], list[str]], only: Callable[[Sample], bool] = lambda s: True) -> None:
    problems = [f"{s.label}: {problem}" for s in _samples(p) if only(s) for problem in problems_of(s)]
    p.expect(not problems, rule, lambda: "; ".join(problems[:6]) + (f" (and {len(problems) - 6} more)" if len(problems) > 6 else ""))


_ROOMINFO_RULES: list[tuple[str, str, Callable[[Sample], list[str]], str]] = [
    ("fields", "RoomInfo carries exactly the original's fields plus the dynamic parts", lambda s: shapes.base_field_problems(s.info), ""),
    ("strings_never_null", "every string field of RoomInfo is a JSON string, never null", lambda s: shapes.string_problems(s.info), ""),
    ("integers", "status and mode are JSON integers in range", lambda s: shapes.integer_problems(s.info), ""),
    ("times_rfc3339", "times are RFC 3339 with an offset, or the zero time 0001-01-01T00:00:00Z", lambda s: shapes.time_problems(s.info), ""),
    ("times_utc_whole_seconds", "times are UTC in whole seconds with Z (2026-11-28T10:15:00Z)", lambda s: shapes.utc_time_problems(s.info),
     "the original answered times with the server's local offset and fractions of a second"),
    ("metrics", "metrics is always an object of exactly like_count, online_count, pv, uv (integers)", lambda s: shapes.metrics_problems(s.info), ""),
    ("user_status", "user_status is always {mute: bool, mute_source: [strings]}", lambda s: shapes.user_status_problems(s.info), ""),
    ("pull_url_info", "pull_url_info always carries rtmp, rts, flv, hls URLs of the room's stream", lambda s: shapes.pull_url_problems(s.info), ""),
    ("no_link_info_on_mode0", "link_info is absent (no key) on mode 0 rooms", shapes.link_info_problems, ""),
    ("link_info_on_mode1", "mode 1 rooms carry link_info: the CDN mix and RTC URLs for the asking user", shapes.link_info_problems, ""),
    ("vod_info_only_when_stopped", "vod_info only on stopped rooms, as {status, playlist}", lambda s: shapes.vod_info_problems(s.info), ""),
    ("meeting_info_string", "meeting_info is the stored JSON string (\"\" when none)", lambda s: shapes.meeting_info_problems(s.info), ""),
    ("srt_url_form", "the SRT push URL is the documented srt://{push}:1105?streamid=#!::h=...,r=/{app}/{id}...,m=publish form",
     lambda s: shapes.srt_form_problems(s.info), "the original wrongly reused the RTMP form for SRT"),
]
_MODE_ONLY = {"no_link_info_on_mode0": 0, "link_info_on_mode1": 1}
for _name, _rule, _problems, _stricter in _ROOMINFO_RULES:

    def _roominfo(p: Probe, rule: str = _rule, problems: Callable[[Sample], list[str]] = _problems, mode: int | None = _MODE_ONLY.get(_name)) -> None:
        _judge(p, rule, problems, lambda s: mode is None or s.info.get("mode") == mode)

    check(f"roominfo.{_name}", _rule, stricter=_stricter)(_roominfo)


@check("roominfo.push_url_info_for_anchor", "create, and the anchor's get and list, carry push_url_info with rtmp, rts, srt URLs")
def _push_for_anchor(p: Probe) -> None:
    _judge(p, "push_url_info for the anchor", shapes.push_url_problems, lambda s: s.push_expected)


@check("roominfo.no_push_url_info_for_others", "another user's get carries no push_url_info", stricter="the original gave every viewer the push URLs")
def _push_for_others(p: Probe) -> None:
    p.token("peer")
    _judge(p, "no push_url_info for a user who is not the anchor", shapes.push_url_problems, lambda s: not s.push_expected)


# -- create, get, update ----------------------------------------------------------------------------


@check("create.answer", "create answers the new room: fields as given, status 0, anchor_id the anchor, times set and zero")
def _create(p: Probe) -> None:
    body = {"title": "conformance create", "notice": "hello", "extends": '{"userNick":"Ann","n":1}'}
    info = p.room(0, **body)
    for key, value in body.items():
        p.expect(info.get(key) == value, f"{key} as given ({value!r}; extends stays a string)", repr(info.get(key)))
    p.expect(info.get("anchor_id") == p.username, f"anchor_id {p.username!r}", repr(info.get("anchor_id")))
    p.expect(info.get("status") == 0 and info.get("mode") == 0, "status 0 and mode 0", f"status {info.get('status')!r}, mode {info.get('mode')!r}")
    p.expect(isinstance(info.get("chat_id"), str) and info["chat_id"] != "", "a chat_id (the IM group)", repr(info.get("chat_id")))
    p.expect(info.get("created_at") == info.get("updated_at"), "updated_at equal to created_at", f"{info.get('created_at')!r} vs {info.get('updated_at')!r}")
    p.expect(info.get("started_at") == ZERO_TIME and info.get("stopped_at") == ZERO_TIME, f"started_at and stopped_at {ZERO_TIME}",
             f"{info.get('started_at')!r}, {info.get('stopped_at')!r}")  # fmt: skip


@check("create.mode1_meeting_id", "a mode 1 room gets a meeting_id that is a UUID")
def _meeting_id(p: Probe) -> None:
    info = p.shared_room(1)
    p.expect(isinstance(info.get("meeting_id"), str) and bool(_UUID.fullmatch(info["meeting_id"])), "meeting_id a UUID", repr(info.get("meeting_id")))


@check("create.stores_nick_and_cover", "create stores anchor_nick and cover_url; get answers them", stricter="the original dropped anchor_nick and cover_url")
def _nick_cover(p: Probe) -> None:
    info = p.room(0, anchor_nick="Conf Nick", cover_url="https://img.example.com/c.png")
    got = p.ok("get", {"id": info["id"], "user_id": p.username})
    for source, label in ((info, "create"), (got, "get")):
        seen = (source.get("anchor_nick"), source.get("cover_url"))
        p.expect(seen == ("Conf Nick", "https://img.example.com/c.png"), f"{label} answers anchor_nick and cover_url as given", repr(seen))


@check("create.id_time_ordered", "room ids are time-ordered UUIDs (version 7) in 32 hex digits", stricter="time-ordered ids are SPEC's; the original's ids were random")
def _uuid7(p: Probe) -> None:
    first, second = p.room(0)["id"], p.room(0)["id"]
    for room_id in (first, second):
        p.expect(bool(re.fullmatch(r"[0-9a-f]{12}7[0-9a-f]{19}", room_id)), "32 lowercase hex digits, version nibble 7", repr(room_id))
    p.expect(second > first, "a later room's id sorts after an earlier one's", f"{first} then {second}")


@check("get.answer", "get answers the room as created, for its anchor with push_url_info")
def _get(p: Probe) -> None:
    info = p.room(0, notice="n1")
    got = p.ok("get", {"id": info["id"], "user_id": p.username})
    for key in ("id", "title", "notice", "anchor_id", "created_at", "status", "mode"):
        p.expect(got.get(key) == info.get(key), f"{key} as create answered it ({info.get(key)!r})", repr(got.get(key)))
    p.expect("push_url_info" in got, "push_url_info for the anchor", "no push_url_info")


@check("get.counts_visits", "each get counts a visit: pv + 1, uv = distinct users, in the same answer")
def _visits(p: Probe) -> None:
    info = p.room(0)
    ask = {"id": info["id"], "user_id": p.username}
    first, second = (p.ok("get", ask).get("metrics") or {} for _ in range(2))
    p.expect((first.get("pv"), first.get("uv")) == (1, 1), "pv 1, uv 1 after the first get", repr(first))
    p.expect((second.get("pv"), second.get("uv")) == (2, 1), "pv 2, uv 1 after a second get by the same user", repr(second))
    p.token("peer")
    third = p.ok("get", {"id": info["id"], "user_id": p.peer_name}, as_user="peer").get("metrics") or {}
    p.expect((third.get("pv"), third.get("uv")) == (3, 2), "pv 3, uv 2 after a get by another user", repr(third))


@check("update.changes_fields", "update changes title, notice and extends and answers the room")
def _update(p: Probe) -> None:
    info = p.room(0)
    change = {"title": "new title", "notice": "new notice", "extends": '{"k":"v"}'}
    answered = p.ok("update", {"id": info["id"], **change})
    got = p.ok("get", {"id": info["id"], "user_id": p.username})
    for source, label in ((answered, "update"), (got, "get after update")):
        seen = {k: source.get(k) for k in change}
        p.expect(seen == change, f"{label} answers {change}", repr(seen))


@check("update.changes_cover_and_nick", "update changes cover_url and anchor_nick", stricter="the original's update took only title, notice and extends")
def _update_cover(p: Probe) -> None:
    info = p.room(0)
    change = {"cover_url": "https://img.example.com/new.png", "anchor_nick": "New Nick"}
    answered = p.ok("update", {"id": info["id"], **change})
    p.expect({k: answered.get(k) for k in change} == change, f"update answers {change}", repr({k: answered.get(k) for k in change}))


@check("update.null_and_empty_keep", "update with extends null and title '' changes nothing (Android sends extends: null after create)")
def _update_keep(p: Probe) -> None:
    info = p.room(0, extends='{"keep":true}')
    answered = p.ok("update", {"id": info["id"], "extends": None, "title": ""})
    seen = (answered.get("title"), answered.get("extends"))
    p.expect(seen == (info["title"], '{"keep":true}'), "title and extends unchanged", repr(seen))


@check("delete.answers_the_room", "delete answers the room as it was; afterwards get fails")
def _delete(p: Probe) -> None:
    info = p.room(0)
    answered = p.ok("delete", {"id": info["id"], "user_id": p.username})
    p.forget(info["id"])
    p.expect(isinstance(answered, dict) and answered.get("id") == info["id"] and answered.get("title") == info["title"], "the deleted room's RoomInfo", repr(answered)[:200])
    gone = p.call("get", {"id": info["id"], "user_id": p.username})
    p.expect(gone.status >= 400, "get of the deleted room fails (404)", gone.show)


# -- the lifecycle table ----------------------------------------------------------------------------

_STATES = {0: "prepared", 1: "live", 3: "paused", 2: "ended"}
_TABLE: dict[tuple[int, str], int | None] = {  # (from, call) -> to; None = 409
    (0, "start"): 1, (0, "pause"): None, (0, "stop"): 2,
    (1, "start"): 1, (1, "pause"): 3, (1, "stop"): 2,
    (3, "start"): 1, (3, "pause"): 3, (3, "stop"): 2,
    (2, "start"): 1, (2, "pause"): None, (2, "stop"): 2,
}  # fmt: skip


def _at(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _cell(p: Probe, start: int, action: str, to: int | None) -> None:
    before = p.room_in(start)
    body = {"id": before["id"], "user_id": p.username}
    if to is None:
        p.expect_error(p.call(action, body), 409, why=f"{action} is not allowed from status {start}")
        after = p.ok("get", body)
        p.expect(after.get("status") == start, f"status still {start} after the refused {action}", repr(after.get("status")))
        return
    answered = p.ok(action, body)
    p.expect(answered.get("status") == to, f"{action} from status {start} answers status {to}", repr(answered.get("status")))
    got = p.ok("get", body)
    p.expect(got.get("status") == to, f"get after {action} shows status {to}", repr(got.get("status")))
    times = {k: answered.get(k) for k in ("started_at", "stopped_at", "updated_at")}
    if to == start:  # "stays": nothing changes, not even updated_at
        old = {k: before.get(k) for k in times}
        p.expect(times == old, "no change at all (updated_at, started_at, stopped_at as before)", f"{old} became {times}")
    elif action == "start" and start == 3:
        p.expect(times["started_at"] == before.get("started_at"), "started_at kept when resuming", f"{before.get('started_at')!r} became {times['started_at']!r}")
    elif action == "start":
        p.expect(times["started_at"] not in (None, ZERO_TIME) and shapes.is_rfc3339(times["started_at"]), "started_at set to now", repr(times["started_at"]))
        if start == 2:
            p.expect(times["stopped_at"] == ZERO_TIME, f"stopped_at back to {ZERO_TIME} (re-opened)", repr(times["stopped_at"]))
    elif action == "stop":
        p.expect(times["stopped_at"] not in (None, ZERO_TIME) and shapes.is_rfc3339(times["stopped_at"]), "stopped_at set to now", repr(times["stopped_at"]))
    if to != start and shapes.is_rfc3339(times["updated_at"]) and shapes.is_rfc3339(before.get("updated_at")):
        p.expect(_at(times["updated_at"]) >= _at(before["updated_at"]), "updated_at not earlier than before", f"{before['updated_at']} became {times['updated_at']}")


for (_from, _action), _to in _TABLE.items():
    _suffix = "_409" if _to is None else "_stays" if _to == _from else ""
    _what = "409" if _to is None else f"stays {_to}" if _to == _from else f"-> {_to}"

    def _lifecycle(p: Probe, start: int = _from, action: str = _action, to: int | None = _to) -> None:
        _cell(p, start, action, to)

    check(f"lifecycle.{_action}_from_{_STATES[_from]}{_suffix}", f"{_action} on a {_STATES[_from]} room (status {_from}): {_what}")(_lifecycle)


# -- list -------------------------------------------------------------------------------------------


def _page(p: Probe, num: int, size: int, status: int | None = None) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"user_id": p.username, "page_num": num, "page_size": size}
    if status is not None:
        body["status"] = status
    data = p.ok("list", body)
    p.expect(isinstance(data, list) and all(isinstance(i, dict) for i in data), "a bare JSON array of RoomInfo", repr(data)[:200])
    return data


def _fresh_rooms(p: Probe) -> list[dict[str, Any]]:
    """Three rooms made one after the other: the newest of the server when no one else is creating."""
    return p.cached("list_rooms", lambda: [p.room(0) for _ in range(3)])


@check("list.newest_first", "list answers newest first (created_at descending) and starts with the newest rooms")
def _newest(p: Probe) -> None:
    ours = _fresh_rooms(p)
    items = _page(p, 1, 100)
    stamps = [i.get("created_at") for i in items]
    ordered = all(shapes.is_rfc3339(a) and shapes.is_rfc3339(b) and _at(a) >= _at(b) for a, b in pairwise(stamps))
    p.expect(ordered, "created_at never increasing down the page", repr(stamps[:10]))
    top = {i.get("id") for i in items[:3]}
    p.expect(top == {r["id"] for r in ours}, "the three rooms just created at the top of page 1", f"top ids {sorted(map(str, top))}")


@check("list.same_second_newest_first", "rooms created within one second still list newest first (then id descending)",
       stricter="SPEC's tie-break on time-ordered ids; the original ordered by created_at only")  # fmt: skip
def _same_second(p: Probe) -> None:
    ours = [r["id"] for r in _fresh_rooms(p)]
    listed = [i.get("id") for i in _page(p, 1, 3)]
    p.expect(listed == ours[::-1], f"the three newest in reverse creation order {ours[::-1]}", repr(listed))


@check("list.paging", "page_num/page_size page through one order; a page past the end is [] with 200")
def _paging(p: Probe) -> None:
    _fresh_rooms(p)
    p.room(0)
    four = [i.get("id") for i in _page(p, 1, 4)]
    halves = [i.get("id") for i in _page(p, 1, 2) + _page(p, 2, 2)]
    p.expect(len(four) == 4 and halves == four, "pages 1 and 2 of size 2 equal page 1 of size 4", f"{halves} vs {four}")
    p.expect(_page(p, 100000, 100) == [], "[] for a page past the end", "a non-empty page")


@check("list.status_filter", "status filters the list; -1 or absent lists every status")
def _filter(p: Probe) -> None:
    live, ended = p.room_in(1), p.room_in(2)
    for status, want, other in ((1, live, ended), (2, ended, live)):
        items = _page(p, 1, 100, status)
        statuses = sorted({i.get("status") for i in items}, key=repr)
        p.expect(statuses == [status], f"status {status}: only rooms of status {status}", repr(statuses))
        ids = {i.get("id") for i in items}
        p.expect(want["id"] in ids and other["id"] not in ids, f"status {status}: our room of that status, not the other", "missing or mixed")
    for every in (-1, None):
        ids = {i.get("id") for i in _page(p, 1, 100, every)}
        p.expect({live["id"], ended["id"]} <= ids, f"status {every}: rooms of every status", "a room missing")


@check("list.does_not_count_visits", "list does not count visits (pv stays until a get)")
def _list_visits(p: Probe) -> None:
    info = p.room(0)
    _page(p, 1, 10)
    metrics = p.ok("get", {"id": info["id"], "user_id": p.username}).get("metrics") or {}
    p.expect(metrics.get("pv") == 1, "pv 1 at the first get after a list", repr(metrics))


# -- co-streaming meetings --------------------------------------------------------------------------

_MEMBER_KEYS = {"user_id", "user_nick", "user_avatar", "camera_opened", "mic_opened", "rtc_pull_url"}


def _members(p: Probe, data: Any, where: str) -> list[dict[str, Any]]:
    p.expect(isinstance(data, dict) and isinstance(data.get("members"), list), f"{where}: {{\"members\": [...]}} (a list, never null)", repr(data)[:200])
    return data["members"]


@check("meeting.empty_members_list", "getMeetingInfo of a new mode 1 room is {\"members\": []}, never null")
def _empty(p: Probe) -> None:
    members = _members(p, p.ok("getMeetingInfo", {"id": p.shared_room(1)["id"]}), "getMeetingInfo")
    p.expect(members == [], "no members yet", repr(members))


@check("meeting.full_replacement_in_order", "updateMeetingInfo replaces all members in the given order; [] clears; get reflects it")
def _replace(p: Probe) -> None:
    room = p.room(1)
    first = [{"user_id": "guest_b", "mic_opened": True}, {"user_id": "guest_a"}]
    answered = _members(p, p.ok("updateMeetingInfo", {"id": room["id"], "members": first}), "updateMeetingInfo")
    p.expect([m.get("user_id") for m in answered] == ["guest_b", "guest_a"], "members in the order given", repr([m.get("user_id") for m in answered]))
    for m in answered:
        p.expect_keys(m, _MEMBER_KEYS, f"member {m.get('user_id')}")
    p.expect(answered[0].get("mic_opened") is True and answered[1].get("mic_opened") is False and answered[1].get("camera_opened") is False,
             "mic_opened as given, booleans defaulting to false", repr(answered))  # fmt: skip
    _members(p, p.ok("updateMeetingInfo", {"id": room["id"], "members": [{"user_id": "guest_a"}]}), "second update")
    now_on = _members(p, p.ok("getMeetingInfo", {"id": room["id"]}), "getMeetingInfo")
    p.expect([m.get("user_id") for m in now_on] == ["guest_a"], "only the members of the last update", repr([m.get("user_id") for m in now_on]))
    stored = p.ok("get", {"id": room["id"], "user_id": p.username}).get("meeting_info")
    p.expect(isinstance(stored, str) and '"guest_a"' in stored and '"guest_b"' not in stored, "meeting_info the stored JSON string of the members", repr(stored)[:200])
    cleared = _members(p, p.ok("updateMeetingInfo", {"id": room["id"], "members": []}), "update with []")
    p.expect(cleared == [], "members: [] clears the meeting", repr(cleared))


@check("meeting.server_supplies_rtc_pull_url", "an empty rtc_pull_url is filled with the member's RTC play URL; a given one is kept")
def _supplied(p: Probe) -> None:
    room = p.room(1)
    given = "artc://live.aliyun.com/play/given?sdkAppId=x&userId=guest_b&timestamp=1&token=t"
    members = [{"user_id": "guest_a", "color": "red"}, {"user_id": "guest_b", "rtc_pull_url": given}]
    for data, where in ((p.ok("updateMeetingInfo", {"id": room["id"], "members": members}), "updateMeetingInfo"),
                        (p.ok("getMeetingInfo", {"id": room["id"]}), "getMeetingInfo")):  # fmt: skip
        out = _members(p, data, where)
        problems = shapes.rtc_url_problems(out[0].get("rtc_pull_url"), f"{where} guest_a rtc_pull_url", "play", room["meeting_id"], "guest_a")
        p.expect(not problems, f"{where}: guest_a's RTC play URL supplied by the server", "; ".join(problems))
        p.expect(out[1].get("rtc_pull_url") == given, f"{where}: guest_b's rtc_pull_url kept as given", repr(out[1].get("rtc_pull_url")))
        p.expect("color" not in out[0], f"{where}: unknown member keys dropped", repr(out[0]))


@check("meeting.duplicate_user_ids_400", "two members with one user_id is 400")
def _duplicates(p: Probe) -> None:
    p.expect_error(p.call("updateMeetingInfo", {"id": p.shared_room(1)["id"], "members": [{"user_id": "guest_a"}, {"user_id": "guest_a"}]}), 400)


@check("meeting.member_rtc_rule_400", "a member user_id outside A-Z a-z 0-9 _ - = is 400 naming members[0].user_id", stricter="the RTC id rule is checked by SPEC's server; the original left it to the RTC service")
def _rtc_rule(p: Probe) -> None:
    p.expect_error(p.call("updateMeetingInfo", {"id": p.shared_room(1)["id"], "members": [{"user_id": "guest.a"}]}), 400, field="members[0].user_id")


@check("meeting.at_most_16_members_400", "more than 16 members is 400", stricter="the 16-member limit is SPEC's; the original set none")
def _too_many(p: Probe) -> None:
    members = [{"user_id": f"guest_{i}"} for i in range(17)]
    p.expect_error(p.call("updateMeetingInfo", {"id": p.shared_room(1)["id"], "members": members}), 400)


@check("meeting.get_on_mode0_empty", "getMeetingInfo on a mode 0 room is 200 {\"members\": []} (the web client reads it for every room)")
def _get_mode0(p: Probe) -> None:
    room = p.shared_room(0)
    answer = p.call("getMeetingInfo", {"id": room["id"]})
    p.expect(answer.status == 200 and answer.data == {"members": []}, 'HTTP 200 {"members": []} for a mode 0 room', answer.show)


@check("meeting.update_on_mode0_409", "updateMeetingInfo on a mode 0 room is 409")
def _update_mode0(p: Probe) -> None:
    room = p.shared_room(0)
    p.expect_error(p.call("updateMeetingInfo", {"id": room["id"], "members": []}), 409, why="unsupported live mode: 0")


# -- signatures (need the server's keys) ------------------------------------------------------------


def _keys(p: Probe, *names: str) -> Any:
    keys = p.keys
    if keys is None or any(getattr(keys, n) is None for n in names):
        raise CheckSkipped(_NO_KEYS if keys is None else f"the keys given lack {', '.join(n for n in names if getattr(keys, n) is None)}")
    return keys


def _expect_signed(p: Probe, urls: dict[str, Any], key: str, uris: dict[str, str], expires: int | None) -> None:
    for name, url in urls.items():
        found = explain_url(url, key)
        if not key:
            p.expect(found.verdict == "unsigned", f"{name} unsigned (the key is empty)", f"{found.verdict}: {url}")
            continue
        p.expect(found.verdict == "valid", f"{name} signed with the configured key (Type A)", f"{found.verdict}: {found.reason}: {url}")
        p.expect(found.uri == uris[name], f"{name} signs the path {uris[name]}", repr(found.uri))
        if expires is not None and found.expires_at is not None:
            left = int(found.expires_at.timestamp()) - now()
            p.expect(abs(left - expires) <= _SLACK, f"{name} expires about {expires} s from now", f"{left} s")


def _cdn_uris(app: str, stream: str, names: dict[str, Any]) -> dict[str, str]:
    return {name: f"/{app}/{stream}{'.flv' if 'flv' in name else '.m3u8' if 'hls' in name else ''}" for name in names}


@check("signing.push_urls", "push URLs (rtmp, rts, srt) carry a valid Type A auth_key of the push key for /{app}/{id}")
def _sign_push(p: Probe) -> None:
    keys = _keys(p, "push_auth_key")
    info = p.shared_room(0)
    push = info.get("push_url_info") or {}
    urls = {f"push_url_info.{k}": push.get(k) for k in ("rtmp_url", "rts_url", "srt_url")}
    _expect_signed(p, urls, keys.push_auth_key, _cdn_uris(keys.app_name, info["id"], urls), keys.auth_expires)


@check("signing.pull_urls", "pull URLs (rtmp, rts, flv, hls) carry a valid Type A auth_key of the pull key")
def _sign_pull(p: Probe) -> None:
    keys = _keys(p, "pull_auth_key")
    info = p.shared_room(0)
    pull = info.get("pull_url_info") or {}
    urls = {f"pull_url_info.{k}": pull.get(k) for k in ("rtmp_url", "rts_url", "flv_url", "hls_url")}
    _expect_signed(p, urls, keys.pull_auth_key, _cdn_uris(keys.app_name, info["id"], urls), keys.auth_expires)


@check("signing.link_cdn_pull_urls", "link_info.cdn_pull_info URLs are signed with the pull key under app live, for 86400 s")
def _sign_link(p: Probe) -> None:
    keys = _keys(p, "pull_auth_key", "rtc_app_id")
    info = p.shared_room(1)
    cdn = (info.get("link_info") or {}).get("cdn_pull_info") or {}
    stream = f"{keys.rtc_app_id}_{info.get('meeting_id')}_{info.get('anchor_id')}_camera"
    urls = {f"link_info.cdn_pull_info.{k}": cdn.get(k) for k in ("rtmp_url", "rts_url", "flv_url", "hls_url")}
    _expect_signed(p, urls, keys.pull_auth_key, _cdn_uris("live", stream, urls), 86400)


def _expect_rtc(p: Probe, name: str, url: Any, keys: Any) -> None:
    found = explain_url(url, keys.rtc_app_key)
    p.expect(found.kind == "rtc" and found.verdict == "valid", f"{name} an RTC URL whose token holds with live_mic.app_key", f"{found.verdict}: {found.reason}: {url}")
    p.expect(found.app == keys.rtc_app_id, f"{name} sdkAppId {keys.rtc_app_id!r}", repr(found.app))
    left = int(found.expires_at.timestamp()) - now() if found.expires_at else None
    p.expect(left is not None and abs(left - 86400) <= _SLACK, f"{name} timestamp about now + 86400", f"{left} s")


@check("signing.rtc_urls", "link_info RTC push/play URLs carry a valid token (sha256 of app_id, app_key, channel, user, ts)")
def _sign_rtc(p: Probe) -> None:
    keys = _keys(p, "rtc_app_id", "rtc_app_key")
    link = p.shared_room(1).get("link_info") or {}
    for name in ("rtc_push_url", "rtc_pull_url"):
        _expect_rtc(p, f"link_info.{name}", link.get(name), keys)


@check("signing.meeting_rtc_pull_url", "the rtc_pull_url the server supplies for a member carries a valid RTC token")
def _sign_member(p: Probe) -> None:
    keys = _keys(p, "rtc_app_id", "rtc_app_key")
    room = p.room(1)
    members = p.ok("updateMeetingInfo", {"id": room["id"], "members": [{"user_id": "guest_a"}]}).get("members") or [{}]
    _expect_rtc(p, "members[0].rtc_pull_url", members[0].get("rtc_pull_url"), keys)


@check("signing.im_app_token", "v2 aliyun_new_im.app_token is sha256(app_id + app_key + user_id + nonce + timestamp + role)")
def _sign_im(p: Probe) -> None:
    keys = _keys(p, "im_app_id", "im_app_key")
    data = p.ok(f"{API_V2}/token", {"user_id": p.username, "role": "admin"})
    new = data.get("aliyun_new_im") or {}
    auth = new.get("auth") or {}
    p.expect(new.get("app_id") == keys.im_app_id, f"app_id {keys.im_app_id!r}", repr(new.get("app_id")))
    try:
        want = im_app_token(keys.im_app_id, keys.im_app_key, auth["user_id"], auth["nonce"], auth["timestamp"], auth["role"])
    except KeyError as exc:
        raise CheckFailed("auth with user_id, nonce, timestamp, role", f"no {exc}") from None
    p.expect(new.get("app_token") == want, "app_token as the IM service computes it", repr(new.get("app_token")))


# -- IM tokens and v2 -------------------------------------------------------------------------------


@check("token.v1_shape", "v1 token answers exactly {access_token, refresh_token}, non-empty strings")
def _v1(p: Probe) -> None:
    data = p.ok("token", {"user_id": p.username, "device_id": "conformance-device", "device_type": "web"})
    p.expect_keys(data, {"access_token", "refresh_token"}, "v1 token")
    p.expect(all(isinstance(v, str) and v for v in data.values()), "non-empty strings", "an empty or non-string token")


def _v2_token(p: Probe, im_server: list[str]) -> dict[str, Any]:
    data = p.ok(f"{API_V2}/token", {"user_id": p.username, "role": "admin", "im_server": im_server})
    wanted = {"code", "aliyun_new_im"} | ({"aliyun_old_im"} if "aliyun_old" in im_server else set())
    p.expect_keys(data, wanted, "v2 token (the Android client rejects unknown keys)")
    p.expect(type(data["code"]) is int and data["code"] == 200, "code 200", repr(data["code"]))
    new = data["aliyun_new_im"]
    p.expect_keys(new, {"app_id", "app_sign", "app_token", "auth"}, "aliyun_new_im")
    p.expect_keys(new["auth"], {"user_id", "nonce", "timestamp", "role"}, "aliyun_new_im.auth")
    auth = new["auth"]
    p.expect(auth["user_id"] == p.username and auth["role"] == "admin", "auth.user_id the user, auth.role as given", repr(auth))
    p.expect(isinstance(auth["nonce"], str) and bool(re.fullmatch(r"AK-[0-9a-f]{32}", auth["nonce"])), "nonce AK- and 32 hex digits", repr(auth["nonce"]))
    stamp = auth["timestamp"]
    p.expect(type(stamp) is int and abs(stamp - now() - 172800) <= _SLACK, "timestamp an integer, now + 2 days", repr(stamp))
    return data


@check("token.v2_exact_keys", "v2 token answers exactly {code: 200, aliyun_new_im: {app_id, app_sign, app_token, auth: {user_id, nonce, timestamp, role}}}")
def _v2(p: Probe) -> None:
    _v2_token(p, ["aliyun_new"])


@check("token.v2_old_im", "v2 token with im_server containing aliyun_old adds aliyun_old_im {access_token, refresh_token}")
def _v2_old(p: Probe) -> None:
    data = _v2_token(p, ["aliyun_old", "aliyun_new"])
    p.expect_keys(data["aliyun_old_im"], {"access_token", "refresh_token"}, "aliyun_old_im")


@check("v2.room_calls_served", "create, get, list, start, stop and delete are served under /api/v2/live in the v1 shapes")
def _v2_rooms(p: Probe) -> None:
    info = p.ok(f"{API_V2}/create", {"title": "conformance v2", "anchor": p.username})
    body = {"id": info.get("id"), "user_id": p.username}
    for call in ("get", "start", "stop"):
        got = p.ok(f"{API_V2}/{call}", body)
        p.expect(got.get("id") == info.get("id"), f"v2 {call} answers the room", repr(got.get("id")))
    listed = p.ok(f"{API_V2}/list", {"user_id": p.username, "page_num": 1, "page_size": 5})
    p.expect(isinstance(listed, list), "v2 list answers an array", repr(listed)[:100])
    p.ok(f"{API_V2}/delete", body)
    p.forget(str(info.get("id")))
