"""Notebook forms over the client: log in, create and drive rooms, like and mute them, edit co-streaming, read URLs, run an audience.

    >>> import livekit_demo
    >>> from livekit_demo.widgets import control_panel
    >>> server = livekit_demo.start_server(storage="memory")   # doctest: +SKIP
    >>> control_panel(server=server)                           # doctest: +SKIP

Every form talks HTTP through an `AppServerClient`, exactly as a phone would; a refused call shows
its status and message in the form's status line, and its Status body in the JSON view. Forms work
headless: set their widgets' ``.value``, call ``button.click()``, read the state back.

This is the only part of the package that imports ipywidgets (the ``lab`` extra).
"""

from __future__ import annotations

try:
    import ipywidgets as _ipywidgets  # noqa: F401
except ImportError as exc:  # pragma: no cover - the test extra installs it
    raise ImportError('livekit_demo.widgets needs ipywidgets: pip install "livekit_demo[lab]"') from exc

from ._base import Section, Session
from .audience import AudienceChart, AudienceControl, audience_chart, render_timeline
from .engagement import RoomEngagement
from .forms import CreateRoomForm, KeyValueEditor, LoginForm, UpdateRoomForm
from .json_view import JsonView
from .lifecycle import ALLOWED_FROM, LifecycleButtons
from .meeting import MeetingEditor
from .panel import ControlPanel, control_panel
from .room_list import RoomList
from .urls import UrlPanel
from .watch import Player, StreamEventsView, WatchPanel

__all__ = [
    "Session",
    "Section",
    "LoginForm",
    "KeyValueEditor",
    "CreateRoomForm",
    "UpdateRoomForm",
    "LifecycleButtons",
    "ALLOWED_FROM",
    "RoomList",
    "MeetingEditor",
    "RoomEngagement",
    "UrlPanel",
    "AudienceChart",
    "AudienceControl",
    "audience_chart",
    "render_timeline",
    "JsonView",
    "ControlPanel",
    "control_panel",
    "Player",
    "StreamEventsView",
    "WatchPanel",
]
