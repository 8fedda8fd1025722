"""Start, pause, stop and delete the selected room, each enabled where the lifecycle table allows it."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..models import RoomInfo, RoomStatus
from ..rooms import LIFECYCLE
from ._base import Section, Session, on_click

__all__ = ["LifecycleButtons", "ALLOWED_FROM", "ACTIONS"]

ACTIONS = ("start", "pause", "stop", "delete")

ALLOWED_FROM: dict[str, frozenset[int]] = {
    **{action: frozenset(int(s) for s, cell in table.items() if cell.changes(s)) for action, table in LIFECYCLE.items()},
    "delete": frozenset(int(s) for s in RoomStatus),
}
"""Statuses from which each call changes something, read off SPEC section 3's table (`rooms.LIFECYCLE`).

start on a live room and pause on a paused one are harmless no-ops ("stays"), and are left
disabled so the buttons teach the table; pause on a prepared or ended room is a 409. Ownership is
not judged here: the server decides it (an admin may act on any room), and a non-anchor's click
shows the server's 403. Tick "any call" to enable every button and see the server refuse.
"""


class LifecycleButtons(Section):
    """One button per lifecycle call on `session.room`; the answer becomes the selected room."""

    def __init__(self, session: Session) -> None:
        self.room_label = widgets.HTML()
        self.buttons = {name: widgets.Button(description=name) for name in ACTIONS}
        self.buttons["delete"].button_style = "danger"
        for name, button in self.buttons.items():
            on_click(button, self._action(name))
        self.any_call = widgets.Checkbox(value=False, description="any call (see the server refuse)", indent=False)
        self.any_call.observe(lambda _: self._redraw(), names="value")
        super().__init__(session, [self.room_label, widgets.HBox(list(self.buttons.values())), self.any_call])
        session.observe(lambda _: self._redraw(), names="room")
        self._redraw()

    def _redraw(self) -> None:
        room = self.session.room
        status = room.get("status") if room else None
        for name, button in self.buttons.items():
            button.disabled = room is None or not (self.any_call.value or status in ALLOWED_FROM[name])
        if room is None:
            self.room_label.value = "<i>no room selected</i>"
            return
        label = RoomInfo(room).status_label
        title, anchor = html.escape(str(room.get("title"))), html.escape(str(room.get("anchor_id")))
        self.room_label.value = f"<b>{title}</b> by {anchor}: status {status} ({label})"

    @property
    def enabled(self) -> list[str]:
        """The names of the buttons one can click now."""
        return [name for name, button in self.buttons.items() if not button.disabled]

    def _action(self, name: str) -> Callable[[], None]:
        return lambda: self.act(name)

    def act(self, name: str) -> None:
        room: dict[str, Any] | None = self.session.room
        if room is None:
            self.fail(f"{name}: select a room first")
            return
        answer = self.call(name, lambda c: getattr(c, name)(room["id"]))
        if answer is None:
            return
        if name == "delete":
            self.session.select(None)
            self.session.rooms_version += 1
        else:
            self.session.select(answer)
