"""Rooms, newest first, a page at a time, filtered by status; picking one selects it for the other forms."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ..models import RoomInfo, RoomStatus
from ._base import Section, Session, on_click

__all__ = ["RoomList", "STATUS_FILTER"]

STATUS_FILTER = [("all", -1)] + [(f"{s.value} · {s.label}", s.value) for s in RoomStatus]


def room_label(room: dict[str, Any]) -> str:
    """One line per room: title, status, anchor and the start of the id."""
    return f"{room.get('title')} · {RoomInfo(room).status_label} · {room.get('anchor_id')} · {str(room.get('id'))[:8]}"


class RoomList(Section):
    """A page of `list`; reloads when the client changes or rooms come and go."""

    def __init__(self, session: Session, page_size: int = 10) -> None:
        self.status_filter = widgets.Dropdown(options=STATUS_FILTER, value=-1, description="status")
        self.page_size = widgets.BoundedIntText(value=page_size, min=1, max=100, description="per page")
        self.previous = widgets.Button(description="◀ newer", disabled=True)
        self.next = widgets.Button(description="older ▶", disabled=True)
        self.reload = widgets.Button(description="Reload", icon="refresh")
        self.page_label = widgets.HTML()
        self.select = widgets.Select(options=[], rows=8, layout=widgets.Layout(width="40em"))
        self.page = 1
        self.rooms: list[RoomInfo] = []
        self._syncing = False  # set while we change `select` ourselves, so that is not a user's pick
        on_click(self.previous, lambda: self.load(self.page - 1, show=True))
        on_click(self.next, lambda: self.load(self.page + 1, show=True))
        on_click(self.reload, lambda: self.load(self.page, show=True))
        self.status_filter.observe(lambda _: self.load(1), names="value")
        self.page_size.observe(lambda _: self.load(1), names="value")
        self.select.observe(self._picked, names="value")
        controls = widgets.HBox([self.status_filter, self.page_size])
        paging = widgets.HBox([self.previous, self.page_label, self.next, self.reload])
        super().__init__(session, [controls, self.select, paging])
        session.observe(lambda _: self.load(1), names="client")
        session.observe(lambda _: self.load(self.page), names="rooms_version")
        session.observe(self._room_changed, names="room")
        if session.client is not None:
            self.load(1)

    def load(self, page: int, *, show: bool = False) -> None:
        """Fetch page `page` (from 1) with the current filter; `show` puts the answer in the JSON view."""
        if self.session.client is None:
            return
        page = max(1, page)
        status = self.status_filter.value
        rooms = self.call(
            "list",
            lambda c: c.list(page, self.page_size.value, status=None if status == -1 else status),
            show=show,
        )
        if rooms is None:
            return
        if not rooms and page > 1:
            # Past the end (rooms were deleted): step back rather than show an empty page.
            self.load(page - 1, show=show)
            return
        self.page, self.rooms = page, rooms
        self._show_rooms()

    def _show_rooms(self) -> None:
        selected = (self.session.room or {}).get("id")
        ids = [room["id"] for room in self.rooms]
        self._syncing = True
        try:
            self.select.options = [(room_label(room), room["id"]) for room in self.rooms]
            self.select.value = selected if selected in ids else None
        finally:
            self._syncing = False
        self.page_label.value = f"&nbsp;page {self.page}&nbsp;"
        self.previous.disabled = self.page == 1
        self.next.disabled = len(self.rooms) < self.page_size.value

    def _picked(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None:
            return
        room = next(room for room in self.rooms if room["id"] == change["new"])
        self.session.select(room)

    def _room_changed(self, change: dict[str, Any]) -> None:
        # Another form changed the selected room (start, update...): show its new state in the list.
        room = change["new"]
        if room is None:
            self._syncing = True
            try:
                self.select.value = None
            finally:
                self._syncing = False
            return
        for index, known in enumerate(self.rooms):
            if known["id"] == room["id"]:
                self.rooms[index] = RoomInfo(room)
                self._show_rooms()
                return
