"""The control panel: every form in tabs over one session, with the last answer below."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..client import AppServerClient
from ._base import Session
from .audience import AudienceControl
from .class_tools import ClassTools
from .engagement import RoomEngagement
from .forms import CreateRoomForm, LoginForm, UpdateRoomForm
from .json_view import JsonView
from .lifecycle import LifecycleButtons
from .meeting import MeetingEditor
from .room_list import RoomList
from .urls import UrlPanel
from .watch import WatchPanel

__all__ = ["ControlPanel", "control_panel", "TAB_TITLES"]

TAB_TITLES = ("Login", "Rooms", "Create", "Update", "Co-streaming", "URLs", "Audience", "Watch")


class ControlPanel(widgets.VBox):
    """Login, rooms (list, lifecycle, counters, likes and chat mute), create, update, co-streaming, URLs, audience, watch; and the JSON of the last answer.

    `client`: an `AppServerClient` to use (you keep closing it); else log in from the Login tab.
    `server`: a `ServerHandle` (default: the latest `start_server()` of this kernel) whose URL the
    login form proposes and whose keys the URL panel checks signatures with.
    """

    def __init__(self, client: AppServerClient | None = None, server: Any = None) -> None:
        if server is None:
            from ..runner import current_server

            server = current_server()
        self.session = Session(server=server)
        url = client.url if client is not None else (server.url if server is not None else "")
        self.header = widgets.HTML()
        self.login_form = LoginForm(self.session, url=url)
        self.room_list = RoomList(self.session)
        self.lifecycle = LifecycleButtons(self.session)
        self.engagement = RoomEngagement(self.session)
        self.create_form = CreateRoomForm(self.session)
        self.update_form = UpdateRoomForm(self.session)
        self.meeting = MeetingEditor(self.session)
        self.urls = UrlPanel(self.session)
        self.audience = AudienceControl(self.session)
        self.watch = WatchPanel(self.session)
        self.json_view = JsonView(self.session)
        self.class_tools = ClassTools(self.session)
        self.tabs = widgets.Tab(
            children=[
                self.login_form,
                widgets.VBox([self.room_list, self.lifecycle, self.engagement]),
                self.create_form,
                self.update_form,
                self.meeting,
                self.urls,
                self.audience,
                self.watch,
            ],
            titles=TAB_TITLES,
        )
        answer = widgets.VBox([widgets.HTML("<b>Last answer</b>"), self.json_view])
        super().__init__([self.header, self.class_tools, self.tabs, answer])
        self.session.observe(lambda _: self._redraw_header(), names=["client", "room"])
        if client is not None:
            self.session.client = client
            self.tabs.selected_index = 1
        self._redraw_header()

    @property
    def client(self) -> AppServerClient | None:
        return self.session.client

    def _redraw_header(self) -> None:
        client, server, room = self.session.client, self.session.server, self.session.room
        where = html.escape(client.url if client else (server.url if server else "no server"))
        who = f"logged in as <b>{html.escape(client.username)}</b>" if client else "not logged in"
        selected = f", room <code>{html.escape(str(room.get('id')))}</code>" if room else ""
        lan_urls = getattr(server, "lan_urls", None) or []
        # LAN mode: the address phones enter, in the header a whole class can read off the projector.
        lan = f" · LAN <code>{html.escape(lan_urls[0])}</code>" if lan_urls else ""
        self.header.value = f"<b>livekit_demo</b> · {where}{lan} · {who}{selected}"

    def close(self) -> None:
        """Close the widgets and any client the Login tab opened (a client passed in stays open)."""
        self.login_form.close()
        self.audience.close()  # a running audience stops with the panel
        self.engagement.close()  # and so do live counters
        self.watch.close()
        super().close()


def control_panel(client: AppServerClient | None = None, server: Any = None) -> ControlPanel:
    """A `ControlPanel`; display it as a cell's last expression."""
    return ControlPanel(client=client, server=server)
