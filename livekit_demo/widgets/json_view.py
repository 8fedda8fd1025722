"""The last answer as indented JSON: what the server really said, a refused call's Status body included."""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as widgets

from ..models import RoomStatus
from ._base import Session

__all__ = ["JsonView", "summarize"]


class JsonView(widgets.HTML):
    """Shows `session.answer`; `data` is the answer itself."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.data: Any = None
        session.observe(lambda change: self.show(change["new"]), names="answer")
        self.show(session.answer)

    def show(self, data: Any) -> None:
        self.data = data
        if data is None:
            self.value = "<i>no answer yet</i>"
            return
        text = json.dumps(data, indent=2, ensure_ascii=False)
        lines = text.count("\n") + 1
        # One line to read at a glance; the whole answer one click away, not an 80-line wall.
        self.value = (
            f"<div>{html.escape(summarize(data))}</div>"
            f"<details><summary>full JSON ({lines} lines)</summary>"
            f"<pre style='white-space:pre-wrap;word-break:break-all'>{html.escape(text, quote=False)}</pre></details>"
        )

    @property
    def summary(self) -> str:
        """The one-line summary shown above the collapsed JSON."""
        return "" if self.data is None else summarize(self.data)


def summarize(data: Any) -> str:
    """One line about an answer: a room's title, status and id; an error's code and message; a list's length."""
    if isinstance(data, list):
        titles = [str(item.get("title")) for item in data[:3] if isinstance(item, dict) and "title" in item]
        more = ", ..." if len(data) > 3 else ""
        return f"{len(data)} room{'s' if len(data) != 1 else ''}" + (f": {', '.join(titles)}{more}" if titles else "")
    if not isinstance(data, dict):
        return str(data)
    if "message" in data and "code" in data and len(data) <= 3:
        return f"error {data['code']}: {data['message']}"
    if "status" in data and "id" in data:
        try:
            status = f"{data['status']} ({RoomStatus(int(data['status'])).label})"
        except (TypeError, ValueError):
            status = str(data["status"])
        return f"room {data.get('title', '')!r} · status {status} · id {data['id']}"
    if "token" in data:
        return f"logged in; token expires {data.get('expire', data.get('expires_at', '?'))}"
    if "members" in data:
        return f"meeting {data.get('meeting_id', data.get('id', ''))} · {len(data['members'] or [])} member(s)"
    keys = list(data)
    return "answer with " + ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
