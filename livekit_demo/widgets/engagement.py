"""The selected room as its audience sees it: live counters, a like button, and the anchor's chat mute (SPEC 11)."""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as widgets

from ._base import Section, Session, on_click

__all__ = ["RoomEngagement", "COUNTERS"]

COUNTERS = ("pv", "uv", "like_count", "online_count")
"""What `getStatistics` answers, in the order the counters show."""
_LABELS = {"pv": "visits", "uv": "visitors", "like_count": "likes", "online_count": "online"}


class RoomEngagement(Section):
    """Counters of `session.room` (getStatistics), a like button (sendLikeMessage) and mute / unmute (the anchor's).

    The counters follow every click here; tick "live" to re-read them every `interval` seconds
    while other people (phones, the audience simulator) like and watch. Ownership is left to the
    server: a viewer's mute shows the server's 403, as a phone would get it.
    """

    def __init__(self, session: Session, *, interval: float = 2.0) -> None:
        self.interval = interval
        self.counts: dict[str, int] = {}
        self.muted: bool | None = None
        self.room_label = widgets.HTML()
        self.counters = widgets.HTML()
        self.likes = widgets.BoundedIntText(value=1, min=1, max=1000, description="likes", layout=widgets.Layout(width="160px"))
        self.like_button = widgets.Button(description="♥ like", button_style="danger", tooltip="sendLikeMessage")
        self.refresh_button = widgets.Button(description="refresh", tooltip="getStatistics and isMuteChatroom")
        self.mute_button = widgets.Button(description="mute chat", tooltip="muteChatroom / cancelMuteChatroom (the anchor's)")
        self.live = widgets.Checkbox(value=False, description=f"live (every {interval:g} s)", indent=False)
        on_click(self.like_button, self.like)
        on_click(self.refresh_button, lambda: self.refresh())
        on_click(self.mute_button, self.toggle_mute)
        self.live.observe(lambda change: self._set_live(bool(change["new"])), names="value")
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        row = widgets.HBox([self.likes, self.like_button, self.refresh_button, self.mute_button, self.live])
        super().__init__(session, [self.room_label, self.counters, row])
        session.observe(lambda _: self._room_changed(), names=["room", "client"])
        self._room_changed()

    # -- what a person clicks ----------------------------------------------------------------------

    def like(self) -> None:
        """Send the likes in the box as one batch; the counters show the room's new total."""
        room = self._room("like")
        if room is None:
            return
        answer = self.call("like", lambda c: c.send_like_message(room["chat_id"], self.likes.value))
        if answer is not None:
            self.refresh(show=False, quiet=True)

    def toggle_mute(self) -> None:
        """Mute the chat when it is open, open it when muted (the room's anchor or an admin)."""
        room = self._room("mute")
        if room is None:
            return
        if self.muted:
            answer = self.call("unmute chat", lambda c: c.cancel_mute_chatroom(room["chat_id"]))
        else:
            answer = self.call("mute chat", lambda c: c.mute_chatroom(room["chat_id"]))
        if answer is not None:
            self.muted = bool(answer.get("mute"))
            self._redraw()

    def refresh(self, *, show: bool = True, quiet: bool = False) -> None:
        """Read the counters and the chat's mute flag again (`quiet`: keep the status line unless it fails)."""
        room = self._room("refresh")
        if room is None:
            return
        before = self.status.value
        stats = self.call("statistics", lambda c: c.get_statistics(room["chat_id"]), show=show)
        if stats is None:
            return
        mute = self.call("statistics", lambda c: c.is_mute_chatroom(room["chat_id"]), show=False)
        self.counts = {name: int(stats.get(name, 0)) for name in COUNTERS}
        self.muted = bool(mute.get("mute")) if mute is not None else None
        if quiet and mute is not None:
            self.status.value = before
        self._redraw()

    # -- drawing -----------------------------------------------------------------------------------

    def _room(self, label: str) -> dict[str, Any] | None:
        room: dict[str, Any] | None = self.session.room
        if room is None:
            self.fail(f"{label}: select a room first")
        return room

    def _room_changed(self) -> None:
        self.counts, self.muted = {}, None
        room, client = self.session.room, self.session.client
        for button in (self.like_button, self.refresh_button, self.mute_button):
            button.disabled = room is None or client is None
        if room is not None and client is not None:
            self.refresh(show=False, quiet=True)
        self._redraw()

    def _redraw(self) -> None:
        room = self.session.room
        if room is None:
            self.room_label.value = "<i>no room selected</i>"
            self.counters.value = ""
            return
        title = html.escape(str(room.get("title")))
        chat = {None: "", True: " · chat <b>muted</b> for everyone but the anchor", False: " · chat open"}[self.muted]
        self.room_label.value = f"<b>{title}</b>{chat}"
        cells = "".join(
            f"<td style='padding:0 12px;text-align:center'><div style='font-size:1.4em'>{self.counts.get(name, '-')}</div>"
            f"<small>{_LABELS[name]}</small></td>"
            for name in COUNTERS
        )
        self.counters.value = f"<table><tr>{cells}</tr></table>"
        self.mute_button.description = "unmute chat" if self.muted else "mute chat"

    # -- live counters -------------------------------------------------------------------------------

    def _set_live(self, on: bool) -> None:
        if on and self._poller is None:
            self._stop.clear()
            self._poller = threading.Thread(target=self._poll, name="livekit-demo-counters", daemon=True)
            self._poller.start()
        elif not on and self._poller is not None:
            self._stop.set()
            self._poller.join(timeout=10)
            self._poller = None

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            if self.session.room is not None and self.session.client is not None:
                self.refresh(show=False, quiet=True)

    def close(self) -> None:
        """Stop the live counters, then close the widgets."""
        self._set_live(False)
        super().close()
