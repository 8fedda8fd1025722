"""The Watch tab, the player and the push-events view, driven headless against a server with its edge."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import pytest
from test_live import require_ffmpeg

from livekit_demo.rooms import StreamEvent
from livekit_demo.runner import ServerHandle, start_server
from livekit_demo.widgets import ControlPanel, Player, StreamEventsView, control_panel
from livekit_demo.widgets.watch import events_table


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def edge_server() -> Iterator[ServerHandle]:
    handle = start_server(storage="memory", env={}, keep=True, edge=True)
    yield handle
    handle.stop()


def logged_in_panel(server: ServerHandle) -> ControlPanel:
    panel = control_panel(server=server)
    panel.login_form.username.value = "ann"
    panel.login_form.button.click()
    return panel


def test_the_player_is_a_plain_video_on_the_signed_mp4_url(edge_server: ServerHandle) -> None:
    player = Player({"id": "room1"}, server=edge_server)
    url = player.url
    assert url is not None and url.startswith(f"{edge_server.url}/live/room1.mp4?auth_key=")
    assert edge_server.app_server is not None
    assert edge_server.app_server.streams.explain(url).verdict == "valid"
    html = player.video.value
    assert "<video" in html and "autoplay" in html and "muted" in html and "crossorigin='anonymous'" in html
    assert "<script" not in html
    before = player.video.value
    player.reload_button.click()
    assert player.video.value != before and player.video.value.replace("#2", "#1") == before  # a fresh element, same stream
    assert Player(url="http://x/live/r.mp4?auth_key=k").url == "http://x/live/r.mp4?auth_key=k"


def test_without_an_edge_the_player_says_what_it_needs() -> None:
    server = start_server(storage="memory", env={}, keep=True)
    try:
        player = Player("room1", server=server)
        assert player.url is None and player.video.value == "" and "edge=True" in player.note.value
    finally:
        server.stop()


def test_the_events_table_shows_the_newest_first() -> None:
    when = datetime(2026, 11, 28, 10, 15, tzinfo=timezone.utc)
    events = [StreamEvent("publish", "r1", "r1", when, "10.0.0.7", 0, 1), StreamEvent("publish_done", "zz", None, when, "10.0.0.8")]
    table = events_table(events)
    assert table.index("unknown stream") < table.index("0 -&gt; 1") and "10:15:00" in table and "10.0.0.7" in table
    assert "no push events yet" in events_table([])


def test_the_watch_tab_pushes_plays_and_shows_the_events(edge_server: ServerHandle) -> None:
    require_ffmpeg()
    panel = logged_in_panel(edge_server)
    try:
        watch = panel.watch
        assert watch.push_button.disabled and "select a room" in watch.room_label.value
        panel.create_form.fields["title"].value = "Watch tab"
        panel.create_form.button.click()
        room = panel.session.room
        assert room is not None and room["status"] == 0
        assert not watch.push_button.disabled and watch.stop_button.disabled
        assert watch.player is not None and watch.player.room_id == room["id"]
        watch.push_button.click()
        assert watch.pusher is not None and watch.pusher.running, watch.status_text
        assert watch.push_button.disabled and not watch.stop_button.disabled
        wait_for(lambda: edge_server.events != [], "the publish event")
        watch.reload_button.click()
        assert panel.session.room["status"] == 1 and "status 1" in watch.room_label.value
        assert "0 -&gt; 1" in watch.events.table.value
        watch.stop_button.click()
        assert not watch.pusher.running and "pusher stopped" in watch.status_text
        wait_for(lambda: len(edge_server.events) == 2, "the publish_done event")
        watch.reload_button.click()
        assert panel.session.room["status"] == 0 and "1 -&gt; 0" in watch.events.table.value
    finally:
        panel.close()


def test_a_push_that_cannot_work_is_one_line_in_the_tab() -> None:
    server = start_server(storage="memory", env={}, keep=True)  # no edge: placeholder URLs
    panel = logged_in_panel(server)
    try:
        panel.create_form.fields["title"].value = "no edge"
        panel.create_form.button.click()
        panel.watch.push_button.click()
        assert panel.watch.status_text.startswith("✗ push: the room's push URL points at the placeholder")
        assert panel.watch.pusher is None
    finally:
        panel.close()
        server.stop()


def test_events_view_reads_the_servers_events(edge_server: ServerHandle) -> None:
    view = StreamEventsView(edge_server)
    assert "no push events yet" in view.table.value
    assert edge_server.app_server is not None
    edge_server.app_server.rooms.follow_stream("publish", "nothing-here", ip="1.2.3.4")
    view.refresh_button.click()
    assert "nothing-here" in view.table.value and "unknown stream" in view.table.value
