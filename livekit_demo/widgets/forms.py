"""Log in, create a room, update a room; and the key/value editor behind `extends`."""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as widgets

from ..client import connect
from ._base import Section, Session, on_click

__all__ = ["LoginForm", "KeyValueEditor", "CreateRoomForm", "UpdateRoomForm", "MODES", "TEXT_FIELDS"]

# English labels: a browser without CJK fonts would draw 连麦 as boxes. The Chinese term is in the tooltip.
MODES = [("0 · normal live", 0), ("1 · co-streaming", 1)]
TEXT_FIELDS = ("title", "notice", "anchor_nick", "cover_url")
"""The free-text fields of create and update, in the order the forms show them."""


class LoginForm(Section):
    """Base URL, username, password (empty: the username, the demo rule), API version; "Log in"."""

    def __init__(self, session: Session, url: str = "") -> None:
        self.url = widgets.Text(value=url, description="Server", placeholder="http://127.0.0.1:8080")
        self.username = widgets.Text(value="demo", description="Username")
        self.password = widgets.Password(description="Password", placeholder="empty: same as the username")
        self.api_version = widgets.Dropdown(options=[("v1", 1), ("v2", 2)], value=1, description="API")
        self.button = widgets.Button(description="Log in", button_style="primary")
        on_click(self.button, self.log_in)
        # Switching user is logging in again; logging out leaves the panel with no client at all.
        self.logout_button = widgets.Button(description="Log out")
        on_click(self.logout_button, self.log_out)
        self._owned: list[Any] = []  # clients this form opened, closed with it
        buttons = widgets.HBox([self.button, self.logout_button])
        super().__init__(session, [self.url, self.username, self.password, self.api_version, buttons])

    def log_in(self) -> None:
        def attempt(_: Any) -> Any:
            # A fresh client per login: a failed attempt must not log the current user out.
            client = connect(
                self.url.value.strip() or None,
                self.username.value.strip(),
                self.password.value or None,
                api_version=self.api_version.value,
            )
            self.session.client = client
            for old in self._owned:
                old.close()
            self._owned = [client]
            return client.login_result

        self.call("login", attempt, requires_client=False)

    def log_out(self) -> None:
        """Forget the session's client (closing it if this form opened it) and the selected room."""
        if self.session.client is None:
            self.fail("log out: nobody is logged in")
            return
        name = self.session.client.username
        self.session.select(None)
        self.session.client = None
        for client in self._owned:
            client.close()
        self._owned.clear()
        self.succeed(f"logged out {name}; log in as anyone above")

    def close(self) -> None:
        for client in self._owned:
            client.close()
        self._owned.clear()
        super().close()


class KeyValueEditor(widgets.VBox):
    """Rows of key and value, encoded as the JSON *string* the contract's `extends` carries."""

    def __init__(self, description: str = "extends") -> None:
        self.rows: list[tuple[widgets.Text, widgets.Text, widgets.HBox]] = []
        self.add_button = widgets.Button(description="add key", icon="plus")
        on_click(self.add_button, self.add_pair)
        self._label = widgets.HTML(f"<b>{description}</b> <small>(a JSON object sent as a string)</small>")
        super().__init__(children=[self._label, self.add_button])

    def add_pair(self, key: str = "", value: str = "") -> tuple[widgets.Text, widgets.Text]:
        key_box = widgets.Text(value=key, placeholder="key, e.g. userNick", layout=widgets.Layout(width="14em"))
        value_box = widgets.Text(value=value, placeholder="value", layout=widgets.Layout(width="24em"))
        remove = widgets.Button(icon="trash", tooltip="remove", layout=widgets.Layout(width="3em"))
        row = widgets.HBox([key_box, value_box, remove])
        entry = (key_box, value_box, row)
        on_click(remove, lambda: self._remove(entry))
        self.rows.append(entry)
        self._redraw()
        return key_box, value_box

    def _remove(self, entry: tuple[widgets.Text, widgets.Text, widgets.HBox]) -> None:
        self.rows.remove(entry)
        self._redraw()

    def _redraw(self) -> None:
        self.children = [self._label, *(row for _, _, row in self.rows), self.add_button]

    def pairs(self) -> dict[str, str]:
        """The non-empty keys and their values (a later row wins over an earlier one)."""
        return {k.value.strip(): v.value for k, v, _ in self.rows if k.value.strip()}

    def encoded(self) -> str:
        """The pairs as the JSON string `extends` wants; "" when there are none."""
        pairs = self.pairs()
        return json.dumps(pairs, ensure_ascii=False, separators=(",", ":")) if pairs else ""

    def load(self, extends: str) -> None:
        """Show a room's `extends`: its keys when it holds a JSON object, else one row with the raw text."""
        self.rows.clear()
        try:
            data = json.loads(extends) if extends else {}
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key, value in data.items():
                self.add_pair(key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        else:
            self.add_pair("", extends)
        self._redraw()


def _text_fields() -> dict[str, widgets.Text]:
    return {name: widgets.Text(description=name) for name in TEXT_FIELDS}


class CreateRoomForm(Section):
    """title, notice, anchor nick, cover URL, mode and `extends` pairs; "Create" selects the new room."""

    def __init__(self, session: Session) -> None:
        self.fields = _text_fields()
        self.fields["title"].placeholder = "required"
        self.mode = widgets.Dropdown(options=MODES, value=0, description="mode", tooltip="1 · co-streaming: 连麦 in the product's docs")
        self.extends = KeyValueEditor()
        self.button = widgets.Button(description="Create", button_style="primary")
        on_click(self.button, self.create)
        super().__init__(session, [*self.fields.values(), self.mode, self.extends, self.button])

    def create(self) -> None:
        values = {name: box.value.strip() for name, box in self.fields.items()}
        title = values.pop("title")
        room = self.call(
            "create",
            lambda c: c.create(title, mode=self.mode.value, extends=self.extends.encoded() or None, **{k: v or None for k, v in values.items()}),
        )
        if room is not None:
            self.session.select(room)
            self.session.rooms_version += 1


class UpdateRoomForm(Section):
    """The selected room's title, notice, nick, cover and `extends`; empty fields change nothing."""

    def __init__(self, session: Session) -> None:
        self.room_label = widgets.HTML()
        self.fields = _text_fields()
        self.extends = KeyValueEditor()
        self.button = widgets.Button(description="Update", button_style="primary")
        on_click(self.button, self.update_room)
        super().__init__(session, [self.room_label, *self.fields.values(), self.extends, self.button])
        session.observe(self._room_changed, names="room")
        self._fill(session.room)

    def _room_changed(self, change: dict[str, Any]) -> None:
        old, new = change["old"], change["new"]
        # Refill only when another room is selected: an answer for the same room must not wipe edits.
        if (old or {}).get("id") != (new or {}).get("id"):
            self._fill(new)

    def _fill(self, room: dict[str, Any] | None) -> None:
        self.button.disabled = room is None
        self.room_label.value = "<i>select a room first</i>" if room is None else f"room <code>{room.get('id')}</code>"
        for name, box in self.fields.items():
            box.value = str((room or {}).get(name, ""))
        self.extends.load(str((room or {}).get("extends", "")))

    def update_room(self) -> None:
        room = self.session.room
        if room is None:
            self.fail("update: select a room first")
            return
        changes = {name: box.value.strip() or None for name, box in self.fields.items()}
        extends = self.extends.encoded() or None
        answer = self.call("update", lambda c: c.update(room["id"], extends=extends, **changes))
        if answer is not None:
            self.session.select(answer)
