"""Who is co-streaming in a mode 1 room: add and remove members, switch mics and cameras, save the list."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..models import Mode
from ..validation import rtc_id_problem
from ._base import Section, Session, on_click

__all__ = ["MeetingEditor", "MemberRow"]


class MemberRow(widgets.HBox):
    """One member: user id, nick, mic and camera toggles, a remove button."""

    def __init__(self, member: dict[str, Any]) -> None:
        self.extra = {"user_avatar": member.get("user_avatar", "")}  # kept as it was; no widget edits it
        self.user_id = widgets.Text(value=str(member.get("user_id", "")), description="user_id")
        self.user_nick = widgets.Text(value=str(member.get("user_nick", "")), placeholder="nick", layout=widgets.Layout(width="12em"))
        self.mic = widgets.ToggleButton(value=bool(member.get("mic_opened")), description="mic", icon="microphone")
        self.camera = widgets.ToggleButton(value=bool(member.get("camera_opened")), description="camera", icon="video-camera")
        self.remove = widgets.Button(icon="trash", tooltip="remove", layout=widgets.Layout(width="3em"))
        super().__init__([self.user_id, self.user_nick, self.mic, self.camera, self.remove])

    def member(self) -> dict[str, Any]:
        """The member as `updateMeetingInfo` takes it.

        `rtc_pull_url` is left out on purpose: empty, the server supplies a fresh play URL on every
        read, whereas echoing back the one it answered would store a URL that later expires.
        """
        member: dict[str, Any] = {
            "user_id": self.user_id.value.strip(),
            "user_nick": self.user_nick.value,
            "mic_opened": self.mic.value,
            "camera_opened": self.camera.value,
        }
        if self.extra["user_avatar"]:
            member["user_avatar"] = self.extra["user_avatar"]
        return member


class MeetingEditor(Section):
    """Loads the selected room's members (mode 1 only) and saves the whole list back, in order."""

    def __init__(self, session: Session) -> None:
        self.room_label = widgets.HTML()
        self.rows: list[MemberRow] = []
        self.rows_box = widgets.VBox()
        self.new_user = widgets.Text(placeholder="user id (A-Z a-z 0-9 _ - =)", description="add")
        self.add_button = widgets.Button(description="add member", icon="plus")
        self.save_button = widgets.Button(description="Save members", button_style="primary")
        self.reload_button = widgets.Button(description="Reload", icon="refresh")
        on_click(self.add_button, lambda: self.add_member(self.new_user.value))
        on_click(self.save_button, self.save)
        on_click(self.reload_button, lambda: self.reload(show=True))
        adding = widgets.HBox([self.new_user, self.add_button])
        buttons = widgets.HBox([self.save_button, self.reload_button])
        super().__init__(session, [self.room_label, self.rows_box, adding, buttons])
        session.observe(self._room_changed, names="room")
        self._room_changed({"old": None, "new": session.room})

    def _room_changed(self, change: dict[str, Any]) -> None:
        old, room = change["old"], change["new"]
        usable = room is not None and room.get("mode") == Mode.LINK
        for button in (self.add_button, self.save_button, self.reload_button):
            button.disabled = not usable
        if room is None:
            self.room_label.value = "<i>select a room first</i>"
        elif not usable:
            self.room_label.value = f"room <b>{html.escape(str(room.get('title')))}</b> has mode {room.get('mode')}: co-streaming needs a mode 1 room"
        else:
            self.room_label.value = f"co-streaming in <b>{html.escape(str(room.get('title')))}</b>"
        if not usable:
            self._set_rows([])
        elif (old or {}).get("id") != room.get("id"):
            self.reload(show=False)

    def reload(self, *, show: bool = True) -> None:
        """Fetch the members from the server, replacing unsaved edits."""
        room = self.session.room
        if room is None:
            return
        answer = self.call("getMeetingInfo", lambda c: c.get_meeting_info(room["id"]), show=show)
        if answer is not None:
            self._set_rows(answer.get("members") or [])

    def _set_rows(self, members: list[dict[str, Any]]) -> None:
        self.rows = []
        for member in members:
            self._append(MemberRow(member))
        self._redraw()

    def _append(self, row: MemberRow) -> None:
        on_click(row.remove, lambda: self.remove_member(row))
        self.rows.append(row)

    def _redraw(self) -> None:
        self.rows_box.children = list(self.rows)

    def add_member(self, user_id: str, nick: str = "") -> MemberRow | None:
        """A new row (not saved yet), once its id passes the RTC rule here (the server checks again on save)."""
        user_id = user_id.strip()
        if not user_id:
            self.fail("add member: type a user id first")
            return None
        problem = rtc_id_problem(user_id)
        if problem is not None:
            # Said at once, in the server's words, instead of after "Save members" as a 400.
            self.fail(f"add member: user id {user_id!r} {problem}")
            return None
        row = MemberRow({"user_id": user_id, "user_nick": nick})
        self._append(row)
        self._redraw()
        self.new_user.value = ""
        return row

    def remove_member(self, row: MemberRow | str) -> None:
        """Drop a row (or the row of a user id); not saved until "Save members"."""
        self.rows = [r for r in self.rows if r is not row and r.user_id.value != row]
        self._redraw()

    def members(self) -> list[dict[str, Any]]:
        return [row.member() for row in self.rows]

    def save(self) -> None:
        """Send the full list (updateMeetingInfo replaces it) and show what the server kept."""
        room = self.session.room
        if room is None:
            return
        members = self.members()
        answer = self.call("updateMeetingInfo", lambda c: c.update_meeting_info(room["id"], members))
        if answer is not None:
            self._set_rows(answer.get("members") or [])
