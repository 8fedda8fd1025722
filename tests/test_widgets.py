"""The notebook forms, driven headless: set values, click, read the state back. No browser, no kernel."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from livekit_demo.audience import Sample
from livekit_demo.client import AppServerClient, connect
from livekit_demo.clock import FixedClock
from livekit_demo.runner import ServerHandle, start_server
from livekit_demo.widgets import ALLOWED_FROM, AudienceControl, ControlPanel, Session, control_panel, render_timeline
from livekit_demo.widgets.panel import TAB_TITLES


@pytest.fixture(params=["thread", "inprocess"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    """A server in a thread (a notebook's) and an in-process one (a browser tab's): the forms work with both."""
    handle = start_server(storage="memory", env={}, keep=True, inprocess=request.param == "inprocess")
    yield handle
    handle.stop()


@pytest.fixture
def make_panel(server: ServerHandle) -> Iterator[Callable[..., ControlPanel]]:
    """Panels logged in as a given user through the Login tab; all closed afterwards."""
    made: list[ControlPanel] = []

    def make(username: str | None = "ann", password: str = "") -> ControlPanel:
        panel = control_panel(server=server)
        made.append(panel)
        if username is not None:
            log_in(panel, username, password)
        return panel

    yield make
    for panel in made:
        panel.close()


def log_in(panel: ControlPanel, username: str, password: str = "") -> None:
    panel.login_form.username.value = username
    panel.login_form.password.value = password
    panel.login_form.button.click()


def create_room(panel: ControlPanel, title: str, *, mode: int = 0, **extends: str) -> dict:
    form = panel.create_form
    form.fields["title"].value = title
    form.mode.value = mode
    for key, value in extends.items():
        form.extends.add_pair(key, value)
    form.button.click()
    assert form.status_text == "✓ create: ok", form.status_text
    return panel.session.room


def test_login_fills_the_session_and_a_bad_password_shows_inline(make_panel: Callable[..., ControlPanel], server: ServerHandle) -> None:
    panel = make_panel(None)
    assert panel.login_form.url.value == server.url
    log_in(panel, "ann", "wrong")
    assert panel.client is None
    assert panel.login_form.status_text.startswith("✗ login: 401 ")
    assert panel.json_view.data["code"] == 401
    log_in(panel, "ann")
    assert panel.login_form.status_text == "✓ login: ok"
    assert isinstance(panel.client, AppServerClient) and panel.client.username == "ann"
    assert panel.json_view.data["code"] == 200 and "logged in as <b>ann</b>" in panel.header.value


def test_calls_before_login_and_to_a_dead_server_show_inline(make_panel: Callable[..., ControlPanel], server: ServerHandle) -> None:
    panel = make_panel(None)
    panel.create_form.fields["title"].value = "too early"
    panel.create_form.button.click()
    assert panel.create_form.status_text == "✗ create: log in first"
    log_in(panel, "ann")
    server.stop()
    panel.room_list.reload.click()
    assert panel.room_list.status_text == (
        f"✗ list: the server at {server.url} was stopped (server.stop() or a later start_server()); run start_server() again"
    )
    panel.login_form.url.value = "not a url"
    panel.login_form.button.click()
    assert panel.login_form.status_text.startswith("✗ login: no answer")


def test_create_encodes_extends_and_selects_the_room(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    form = panel.create_form
    form.fields["notice"].value = "welcome"
    form.fields["anchor_nick"].value = "Ann"
    key, value = form.extends.add_pair()
    key.value, value.value = "userAvatar", "https://example.com/a.png"
    form.extends.add_pair("", "ignored: no key")
    room = create_room(panel, "Morning show", userNick="Ann")
    assert json.loads(room["extends"]) == {"userAvatar": "https://example.com/a.png", "userNick": "Ann"}
    assert isinstance(room["extends"], str)
    assert panel.json_view.data == room and '"title": "Morning show"' in panel.json_view.value
    assert room["notice"] == "welcome" and room["anchor_nick"] == "Ann" and room["mode"] == 0
    assert panel.room_list.select.value == room["id"]  # the new room is listed and selected
    assert panel.update_form.fields["title"].value == "Morning show"


def test_create_refused_shows_the_fields(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    panel.create_form.button.click()  # no title
    assert panel.create_form.status_text.startswith("✗ create: 400 ")
    assert [d["field"] for d in panel.json_view.data["details"]] == ["title"]


def test_lifecycle_buttons_follow_the_table(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    buttons = panel.lifecycle
    assert buttons.enabled == []  # nothing selected
    room = create_room(panel, "Lifecycle")
    steps = [("start", 1), ("pause", 3), ("start", 1), ("stop", 2), ("start", 1), ("stop", 2)]
    assert buttons.enabled == ["start", "stop", "delete"]
    for action, status in steps:
        buttons.buttons[action].click()
        assert buttons.status_text == f"✓ {action}: ok"
        assert panel.session.room["status"] == status and panel.json_view.data["status"] == status
        assert buttons.enabled == [name for name in ALLOWED_FROM if status in ALLOWED_FROM[name]]
        assert f"status {status}" in buttons.room_label.value
    assert "ended" in panel.room_list.select.label  # the list shows the new status
    buttons.buttons["delete"].click()
    assert buttons.status_text == "✓ delete: ok"
    assert panel.session.room is None and buttons.enabled == []
    assert room["id"] not in [r["id"] for r in panel.room_list.rooms]


def test_a_disabled_button_does_nothing_and_any_call_shows_the_409(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    create_room(panel, "Prepared")
    pause = panel.lifecycle.buttons["pause"]
    assert pause.disabled
    pause.click()  # as a browser: a disabled button sends nothing
    assert panel.lifecycle.status_text == "" and panel.session.room["status"] == 0
    panel.lifecycle.any_call.value = True
    assert panel.lifecycle.enabled == ["start", "pause", "stop", "delete"]
    pause.click()
    assert panel.lifecycle.status_text.startswith("✗ pause: 409 cannot pause")
    assert panel.json_view.data["code"] == 409
    assert panel.lifecycle.last_error is not None and panel.lifecycle.last_error.status == 409
    assert panel.session.room["status"] == 0  # a refused call changes nothing


def test_another_user_acting_on_the_room_gets_403_inline(make_panel: Callable[..., ControlPanel]) -> None:
    ann = make_panel("ann")
    room = create_room(ann, "Ann's room")
    bob = make_panel("bob")
    assert room["id"] in [r["id"] for r in bob.room_list.rooms]
    bob.room_list.select.value = room["id"]  # bob picks ann's room from the list
    assert bob.session.room["id"] == room["id"] and "push_url_info" not in bob.session.room
    bob.lifecycle.buttons["start"].click()
    assert bob.lifecycle.status_text.startswith("✗ start: 403 ")
    assert bob.json_view.data["code"] == 403
    bob.update_form.fields["title"].value = "Bob's now"
    bob.update_form.button.click()
    assert bob.update_form.status_text.startswith("✗ update: 403 ")
    assert "push URLs are answered only" in bob.urls.qr.value


def test_the_room_view_likes_counts_and_the_anchor_mutes_the_chat(make_panel: Callable[..., ControlPanel]) -> None:
    ann = make_panel("ann")
    room = create_room(ann, "Ann's show")
    view = ann.engagement
    assert view.counts == {"pv": 0, "uv": 0, "like_count": 0, "online_count": 0} and view.muted is False
    view.likes.value = 5
    view.like_button.click()
    assert view.status_text == "✓ like: ok" and ann.json_view.data == {"code": 200, "count": 5}
    assert view.counts["like_count"] == 5 and ">5</div><small>likes" in view.counters.value
    bob = make_panel("bob")
    bob.room_list.select.value = room["id"]  # bob opens ann's room: a visit, then his like
    bob.engagement.like_button.click()
    assert bob.engagement.counts["like_count"] == 6
    assert bob.engagement.counts["pv"] == 0  # getStatistics counts no visit; selecting from the list does not get
    # Only the anchor mutes: bob's click shows the server's 403, ann's mutes for everyone but her.
    bob.engagement.mute_button.click()
    assert bob.engagement.status_text.startswith("✗ mute chat: 403 ")
    view.mute_button.click()
    assert view.status_text == "✓ mute chat: ok" and view.muted is True and view.mute_button.description == "unmute chat"
    assert "muted" in view.room_label.value
    bob.engagement.refresh_button.click()
    assert bob.engagement.muted is True and bob.client is not None
    assert bob.client.get(room["id"])["user_status"] == {"mute": True, "mute_source": ["group"]}
    view.mute_button.click()
    assert view.muted is False and view.mute_button.description == "mute chat" and ann.json_view.data == {"code": 200, "mute": False}


def test_live_counters_follow_likes_made_elsewhere(make_panel: Callable[..., ControlPanel], server: ServerHandle) -> None:
    panel = make_panel("ann")
    room = create_room(panel, "Busy room")
    view = panel.engagement
    view.interval = 0.05
    view.live.value = True
    with connect(server.url, "carl") as phone:
        phone.send_like_message(room["chat_id"], 42)
        deadline = time.monotonic() + 10  # a bound on waiting, not a timing assertion
        while view.counts.get("like_count") != 42 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert view.counts["like_count"] == 42
    view.live.value = False
    assert view._poller is None  # stopped and joined


def test_the_room_view_without_a_room_says_so(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    view = panel.engagement
    assert view.like_button.disabled and view.mute_button.disabled
    assert "no room selected" in view.room_label.value
    view.like()
    assert view.status_text == "✗ like: select a room first"


def test_update_form_fills_and_sends_changes(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    create_room(panel, "Before", userNick="Ann")
    form = panel.update_form
    assert form.extends.pairs() == {"userNick": "Ann"}
    form.fields["title"].value = "After"
    form.fields["notice"].value = ""  # empty changes nothing
    form.extends.rows[0][1].value = "Annie"
    form.button.click()
    assert form.status_text == "✓ update: ok"
    assert panel.session.room["title"] == "After" and json.loads(panel.session.room["extends"]) == {"userNick": "Annie"}
    assert panel.json_view.data["title"] == "After"


def test_room_list_pages_and_filters(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    for n in range(5):
        create_room(panel, f"room {n}")
    panel.lifecycle.buttons["start"].click()  # "room 4" goes live
    rooms = panel.room_list
    rooms.page_size.value = 2
    assert [r["title"] for r in rooms.rooms] == ["room 4", "room 3"] and rooms.previous.disabled
    rooms.next.click()
    assert rooms.page == 2 and [r["title"] for r in rooms.rooms] == ["room 2", "room 1"]
    assert isinstance(panel.json_view.data, list) and len(panel.json_view.data) == 2  # a click shows the answer
    rooms.next.click()
    assert [r["title"] for r in rooms.rooms] == ["room 0"] and rooms.next.disabled
    rooms.previous.click()
    assert rooms.page == 2
    rooms.status_filter.value = 1
    assert rooms.page == 1 and [r["title"] for r in rooms.rooms] == ["room 4"]
    rooms.status_filter.value = 2
    assert rooms.rooms == [] and rooms.select.options == ()
    rooms.status_filter.value = -1
    rooms.select.value = rooms.rooms[1]["id"]
    assert panel.session.room["title"] == "room 3"
    assert panel.update_form.fields["title"].value == "room 3"


def test_meeting_editor_adds_toggles_removes_and_saves(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    editor = panel.meeting
    create_room(panel, "Plain")
    assert editor.save_button.disabled and "needs a mode 1 room" in editor.room_label.value
    create_room(panel, "Duet", mode=1)
    assert not editor.save_button.disabled and editor.rows == []
    editor.new_user.value = "ann"
    editor.add_button.click()
    editor.add_member("bob", "Bob")
    editor.add_member("cy")
    editor.rows[0].mic.value = True
    editor.rows[1].camera.value = True
    editor.remove_member("cy")
    editor.save_button.click()
    assert editor.status_text == "✓ updateMeetingInfo: ok"
    members = panel.json_view.data["members"]
    assert [m["user_id"] for m in members] == ["ann", "bob"]
    assert (members[0]["mic_opened"], members[0]["camera_opened"]) == (True, False)
    assert (members[1]["mic_opened"], members[1]["camera_opened"], members[1]["user_nick"]) == (False, True, "Bob")
    assert all(m["rtc_pull_url"].startswith("artc://live.aliyun.com/play/") for m in members)
    # The stored list is what another viewer reads.
    # (Server-supplied play URLs are minted per read with a fresh timestamp, so compare without them.)
    without_urls = lambda ms: [{k: v for k, v in m.items() if k != "rtc_pull_url"} for m in ms]
    with connect(panel.client.url, "bob") as bob:
        assert without_urls(bob.get_meeting_info(panel.session.room["id"])["members"]) == without_urls(members)
    editor.rows[1].remove.click()
    editor.save_button.click()
    assert [m["user_id"] for m in panel.json_view.data["members"]] == ["ann"]


def test_meeting_editor_shows_a_refused_member_inline(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    create_room(panel, "Duet", mode=1)
    assert panel.meeting.add_member("not valid!") is None
    assert panel.meeting.status_text == (
        "✗ add member: user id 'not valid!' must use only A-Z a-z 0-9 _ - = (the RTC service's rule for co-streaming user ids), 1 to 64 of them"
    )
    row = panel.meeting.add_member("cy")
    assert row is not None
    row.user_id.value = "not valid!"  # edited after adding: the server still refuses it
    panel.meeting.save_button.click()
    assert panel.meeting.status_text.startswith("✗ updateMeetingInfo: 400 ")
    assert panel.json_view.data["details"][0]["field"] == "members[0].user_id"
    panel.meeting.add_button.click()  # empty id
    assert panel.meeting.status_text == "✗ add member: type a user id first"


def test_url_panel_lists_every_url_with_verdicts_and_a_qr(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    create_room(panel, "Links", mode=1)
    urls = panel.urls
    names = set(urls.explanations)
    assert {"push_url_info.rtmp_url", "push_url_info.rts_url", "push_url_info.srt_url"} <= names
    assert {f"pull_url_info.{k}" for k in ("rtmp_url", "rts_url", "flv_url", "hls_url")} <= names
    assert {"link_info.rtc_push_url", "link_info.rtc_pull_url", "link_info.cdn_pull_info.flv_url"} <= names
    # The server runs in this kernel, so the panel knows its keys: every signature checks out.
    assert {e.verdict for e in urls.explanations.values()} == {"valid"}
    assert "<svg" in urls.qr.value and "RTMP push URL" in urls.qr.value
    assert urls.table.value.count("<tr>") == len(names)
    # A copy button beside each URL, carrying the URL itself (escaped for the attribute).
    import html as html_module
    import re as re_module

    copied = [html_module.unescape(u) for u in re_module.findall(r'data-url="([^"]*)"', urls.table.value)]
    assert sorted(copied) == sorted(e.url for e in urls.explanations.values())
    assert urls.table.value.count("navigator.clipboard.writeText(this.dataset.url)") == len(names)
    urls.any_url.value = urls.explanations["pull_url_info.flv_url"].url.replace("auth_key=", "auth_key=1")
    urls.explain_button.click()
    assert urls.status_text == "✓ explain: bad signature" and "URL explained" in urls.explained.value


def test_url_panel_without_keys_says_unchecked(server: ServerHandle) -> None:
    with connect(server.url, "ann") as client:
        panel = ControlPanel(client=client, server=None)  # a client alone: the panel does not know the keys
        panel.session.server = None
        try:
            assert panel.tabs.selected_index == 1 and panel.room_list.rooms == []
            panel.create_form.fields["title"].value = "Remote"
            panel.create_form.button.click()
            assert {e.verdict for e in panel.urls.explanations.values()} == {"unchecked"}
        finally:
            panel.close()
        assert client.raw("/", method="GET").status_code == 200  # a client passed in stays open


def test_missing_ipywidgets_names_the_extra() -> None:
    code = "import sys; sys.modules['ipywidgets'] = None; import livekit_demo.widgets"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert 'pip install "livekit_demo[lab]"' in done.stderr


# -- the audience tab ----------------------------------------------------------------------------


def test_audience_tab_runs_a_crowd_against_the_selected_room_and_charts_it(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    control = panel.audience
    assert TAB_TITLES[panel.tabs.children.index(control)] == "Audience"
    control.start_button.click()
    assert control.status_text == "✗ audience: select a room first (Rooms tab)"
    room = create_room(panel, "Crowded")
    panel.lifecycle.buttons["start"].click()
    assert room["id"] in control.room_label.value
    control.viewers.value, control.duration.value, control.time_scale.value = 4, 3, 0.02
    control.start_button.click()
    assert control.status_text == "✓ audience: 4 viewers started (seed 1)"
    audience = control.audience
    assert audience is not None
    audience.wait(timeout=30)
    assert control.status_text.startswith("✓ audience: audience of 4 (seed 1) done at 3/3 s: pv=")
    assert (control.start_button.disabled, control.stop_button.disabled) == (False, True)
    assert audience.timeline[-1].uv == 4 and audience.timeline[-1].online == 4
    assert bytes(control.chart.image.value).startswith(b"\x89PNG") and control.chart.draws >= 2
    assert "done at 3/3 s" in control.chart.caption.value


def test_audience_control_on_a_moved_clock_and_stopped_early() -> None:
    clock = FixedClock("2026-11-28T10:15:00Z")
    server = start_server(storage="memory", env={}, keep=True, clock=clock)
    client = connect(server, "ann")
    try:
        session = Session(server=server)
        control = AudienceControl(session, clock=clock)
        session.client = client
        control.start_button.click()
        assert control.status_text == "✗ audience: select a room first (Rooms tab)"
        session.select(client.start(client.create("Moved")["id"]))
        control.viewers.value, control.duration.value, control.seed.value, control.time_scale.value = 12, 90, 5, 0
        control.start_button.click()
        audience = control.audience
        assert audience is not None
        audience.wait(timeout=60)
        assert audience.timeline[-1].t == 90 and audience.timeline[-1].uv == 12
        assert clock.now().isoformat() == "2026-11-28T10:16:30+00:00"  # the audience moved the server's clock
        assert control.chart.audience is audience and control.chart.draws >= 2
        # a second run, stopped straight away
        control.duration.value, control.time_scale.value = 3600, 1.0
        control.start_button.click()
        control.start_button.click()  # disabled while running: ignored, as a browser would
        control.stop_button.click()
        control.audience.wait(timeout=30)
        assert control.audience is not audience and control.audience.notes[-1].startswith("stopped at ")
        assert control.status_text.startswith("✓ audience: audience of 12 (seed 5) done at ")
        control.close()
    finally:
        client.close()
        server.stop()


def test_render_timeline_draws_an_empty_and_a_full_run() -> None:
    empty = render_timeline([])
    full = render_timeline([Sample(float(t), t, t, 10 * t, None, 1, 10 * t) for t in range(10)], title="x")
    assert empty.startswith(b"\x89PNG") and full.startswith(b"\x89PNG") and full != empty


def test_audience_control_without_threads_runs_in_the_click(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit_demo.widgets import audience as module

    clock = FixedClock("2026-11-28T10:15:00Z")
    server = start_server(storage="memory", env={}, keep=True, clock=clock, inprocess=True)
    monkeypatch.setattr(module, "threads_available", lambda: False)
    try:
        with connect(server, "ann") as client:
            session = Session(server=server)
            control = AudienceControl(session, clock=clock)
            session.client = client
            session.select(client.start(client.create("In a tab")["id"]))
            control.viewers.value, control.duration.value = 5, 20  # time scale stays 1: ignored without threads
            control.start_button.click()
            assert control.audience is not None and not control.audience.running
            assert control.status_text.startswith("✓ audience: audience of 5 (seed 1) done at 20/20 s")
            assert control.audience.timeline[-1].uv == 5
            control.close()
    finally:
        server.stop()


def test_reset_the_class_deletes_rooms_and_keeps_the_login(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    create_room(panel, "one")
    create_room(panel, "two")
    client = panel.client
    panel.class_tools.reset_button.click()
    assert panel.class_tools.status_text == "✓ reset: 2 rooms deleted; users stay logged in"
    assert panel.client is client and panel.session.room is None
    assert client is not None and client.list() == []
    assert panel.room_list.status_text == "✓ list: ok"  # the list reloaded itself


def test_log_out_then_switch_user(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    create_room(panel, "ann's")
    panel.login_form.logout_button.click()
    assert panel.login_form.status_text == "✓ logged out ann; log in as anyone above"
    assert panel.client is None and panel.session.room is None and "not logged in" in panel.header.value
    panel.create_form.fields["title"].value = "too early"
    panel.create_form.button.click()
    assert panel.create_form.status_text == "✗ create: log in first"
    log_in(panel, "bob")
    assert panel.client is not None and panel.client.username == "bob" and "logged in as <b>bob</b>" in panel.header.value
    panel.login_form.logout_button.click()
    panel.login_form.logout_button.click()
    assert panel.login_form.status_text == "✗ log out: nobody is logged in"


def test_the_last_answer_is_one_summary_line_over_collapsed_json(make_panel: Callable[..., ControlPanel]) -> None:
    panel = make_panel("ann")
    room = create_room(panel, "Morning show")
    view = panel.json_view
    assert view.summary == f"room 'Morning show' · status 0 (prepared) · id {room['id']}"
    assert view.value.startswith(f"<div>room &#x27;Morning show&#x27; · status 0 (prepared) · id {room['id']}</div><details><summary>full JSON (")
    assert "</pre></details>" in view.value and "<details open" not in view.value
    panel.lifecycle.buttons["pause"].disabled = False
    panel.lifecycle.buttons["pause"].click()
    assert view.summary.startswith("error 409: ")
    panel.room_list.reload.click()
    assert view.summary.startswith("1 room: Morning show")


def test_mode_labels_need_no_cjk_font() -> None:
    from livekit_demo.widgets.forms import MODES

    assert all(label.isascii() for label, _ in [(label.replace("·", ""), v) for label, v in MODES])
