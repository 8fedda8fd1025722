"""Watching a room (SPEC 13): a plain `<video>` on the local edge's fragmented MP4, the push callback's events,
and the Watch tab that puts them together with a test-pattern pusher.

No player library and no script: Chromium plays fragmented MP4 over HTTP natively, so the player
is one `<video>` element whose `src` is the room's signed ``/{app}/{id}.mp4?auth_key=...`` URL.
Signing that URL needs the pull key, so the player works with a server running in this kernel
(`start_server(edge=True)`), or with a signed URL given as is.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from ._base import Section, Session, on_click

__all__ = ["Player", "StreamEventsView", "WatchPanel", "player_url", "events_table"]


def _server_or_current(server: Any) -> Any:
    if server is not None:
        return server
    from ..runner import current_server

    return current_server()


def player_url(room_id: str, server: Any = None) -> str | None:
    """The signed fMP4 URL of `room_id` on the local edge of `server` (default: this kernel's latest), or None."""
    server = _server_or_current(server)
    app_server = getattr(server, "app_server", None)
    if app_server is None:
        return None
    url: str | None = app_server.streams.player_url(room_id, server.host)
    return url


def _video_html(url: str, room_id: str, width: int) -> str:
    # crossorigin: the page (JupyterLab) and the edge differ in port, and a test (or a learner's
    # snapshot) may draw the frame on a canvas; the edge answers with Access-Control-Allow-Origin: *.
    return (
        f"<video class='livekit-demo-player' data-room='{html.escape(room_id)}' src='{html.escape(url)}' "
        f"width='{width}' autoplay muted playsinline controls crossorigin='anonymous' "
        "style='background:#000;max-width:100%'></video>"
    )


class Player(widgets.VBox):
    """Plays a room's live stream in the notebook: ``Player(room)`` (a RoomInfo or a room id), or ``Player(url=...)``.

    The stream must be live on the local edge when the player loads; `reload()` starts it again
    (after the pusher started, or when the stream came back).
    """

    def __init__(self, room: Mapping[str, Any] | str | None = None, *, server: Any = None, url: str | None = None, width: int = 480) -> None:
        self.room_id = (room.get("id") if isinstance(room, Mapping) else room) or ""
        self.server = server
        self.width = width
        self._given_url = url
        self.video = widgets.HTML()
        self.note = widgets.HTML()
        self.reload_button = widgets.Button(description="Reload", tooltip="load the stream again")
        on_click(self.reload_button, self.reload)
        super().__init__([self.video, widgets.HBox([self.reload_button, self.note])])
        self.reload()

    @property
    def url(self) -> str | None:
        """The signed URL the `<video>` plays, or None when no local edge can serve this room."""
        if self._given_url:
            return self._given_url
        return player_url(str(self.room_id), self.server) if self.room_id else None

    def reload(self) -> None:
        """Put a fresh `<video>` on the stream (a browser does not retry a stream that was not live yet)."""
        url = self.url
        if url is None:
            self.video.value = ""
            self.note.value = (
                "<i>no player: it needs a room and the local edge of a server in this kernel "
                "(livekit_demo.start_server(edge=True)), or a signed .mp4 URL</i>"
            )
            return
        # A changed value makes the frontend render a new element; the fragment keeps the URL valid.
        self._reloads = getattr(self, "_reloads", 0) + 1
        self.video.value = _video_html(f"{url}#{self._reloads}", str(self.room_id), self.width)
        self.note.value = f"<small>room <code>{html.escape(str(self.room_id))}</code>: fragmented MP4 from the local edge</small>"

    def __repr__(self) -> str:
        return f"Player(room={self.room_id!r}, url={'set' if self.url else None})"


def events_table(events: list[Any], *, limit: int = 20) -> str:
    """HTML of the newest push-callback events first (time, action, room, outcome, ip)."""
    if not events:
        return "<i>no push events yet: they arrive when a stream is published or ends</i>"
    def row(e: Any) -> str:
        cells = (f"{e.time:%H:%M:%S}", e.action, e.room_id or e.stream, e.outcome, e.ip)
        return "<tr>" + "".join(f"<td style='text-align:left;padding-right:1em'>{html.escape(str(v))}</td>" for v in cells) + "</tr>"

    rows = "".join(row(e) for e in reversed(events[-limit:]))
    head = "".join(f"<th style='text-align:left'>{h}</th>" for h in ("time (UTC)", "action", "room", "outcome", "from"))
    return f"<table style='line-height:1.4'><tr>{head}</tr>{rows}</table>"


class StreamEventsView(widgets.VBox):
    """The last push-callback events of a server in this kernel (`ServerHandle.events`), with a Refresh button."""

    def __init__(self, server: Any = None) -> None:
        self.server = server
        self.table = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh events")
        on_click(self.refresh_button, self.refresh)
        super().__init__([widgets.HTML("<b>Push events</b> (the CDN callback)"), self.table, self.refresh_button])
        self.refresh()

    def refresh(self) -> None:
        server = _server_or_current(self.server)
        if server is None:
            self.table.value = "<i>events are shown for a server started in this kernel</i>"
            return
        self.table.value = events_table(list(server.events))


class WatchPanel(Section):
    """The control panel's Watch tab: push a test pattern to the selected room, watch it, see the events."""

    def __init__(self, session: Session) -> None:
        self.pusher: Any = None
        self.room_label = widgets.HTML()
        self.push_button = widgets.Button(description="Push test pattern", button_style="success")
        self.stop_button = widgets.Button(description="Stop pusher")
        self.reload_button = widgets.Button(description="Reload room")
        on_click(self.push_button, self.push)
        on_click(self.stop_button, self.stop_pusher)
        on_click(self.reload_button, self.reload)
        self.player_box = widgets.VBox()
        self.events = StreamEventsView(session.server)
        controls = widgets.HBox([self.push_button, self.stop_button, self.reload_button])
        super().__init__(session, [self.room_label, controls, self.player_box, self.events])
        session.observe(lambda _: self._redraw(), names="room")
        self._redraw()

    @property
    def player(self) -> Player | None:
        children = self.player_box.children
        return children[0] if children and isinstance(children[0], Player) else None

    def _redraw(self) -> None:
        room = self.session.room
        pushing = self.pusher is not None and self.pusher.running
        self.push_button.disabled = room is None or pushing
        self.stop_button.disabled = not pushing
        self.reload_button.disabled = room is None
        if room is None:
            self.room_label.value = "<i>select a room (Rooms tab) to watch it</i>"
            self.player_box.children = ()
            return
        metrics = room.get("metrics") or {}
        self.room_label.value = (
            f"<b>{html.escape(str(room.get('title')))}</b>: status {room.get('status')}, "
            f"{metrics.get('online_count', 0)} watching"
        )
        old = self.player
        if old is None or old.room_id != room.get("id"):
            if old is not None:
                old.close()
            self.player_box.children = (Player(room, server=self.session.server),)
        self.events.refresh()

    def push(self) -> None:
        """Start the test-pattern pusher on the selected room (as its anchor)."""
        room = self.session.room
        if room is None:
            self.fail("push: select a room first")
            return
        try:
            pusher = self.call("push", lambda c: c.push_test_pattern(room["id"]), show=False)
        except Exception as exc:  # ffmpeg missing, a placeholder URL: one line, never a traceback
            self.fail(f"push: {exc}")
            return
        if pusher is not None:
            self.pusher = pusher
            self.succeed(f"push: {pusher!r} (Reload room when it is live)")
        self._redraw()

    def stop_pusher(self) -> None:
        if self.pusher is not None:
            self.pusher.stop()
            self.succeed("pusher stopped")
        self._redraw()

    def reload(self) -> None:
        """Read the room again (status, online count) and load the player afresh."""
        room = self.session.room
        if room is None:
            return
        answer = self.call("get", lambda c: c.get(room["id"]), show=False)
        if answer is not None:
            self.session.select(dict(answer))
        if self.player is not None:
            self.player.reload()
        self.events.refresh()

    def close(self) -> None:
        """Stop a pusher this tab started, then close the widgets."""
        if self.pusher is not None:
            self.pusher.stop()
        super().close()
