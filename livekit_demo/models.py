"""The contract's data: the stored room record, the answered models, and their rich display.

The stored record (`RoomRecord`) is exactly the columns of `room_infos`; what a call answers
(`RoomInfo`) is built per viewer from it by the rooms layer. Keep the two apart: `anchor` and
`pk_id` are stored but never answered, and the URL parts are never stored.

Answers are plain JSON objects wrapped in `dict` subclasses, so they serialise as they are and
still show as a table in a notebook.
"""

from __future__ import annotations

import dataclasses
import html
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import IntEnum
from typing import Any

from .clock import format_time, parse_time
from .types import JSONDict

__all__ = [
    "RoomStatus",
    "Mode",
    "RoomRecord",
    "ROOM_COLUMNS",
    "ROOMINFO_FIELDS",
    "MEETING_MEMBER_FIELDS",
    "METRICS_FIELDS",
    "JsonModel",
    "RoomInfo",
    "MeetingInfo",
    "LoginResult",
]


class RoomStatus(IntEnum):
    """A room's `status`. 3 is the later original's "paused" (the host stepped away)."""

    PREPARED = 0
    LIVE = 1
    ENDED = 2
    PAUSED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Mode(IntEnum):
    """A room's `mode`: 0 plain live, 1 co-streaming (连麦), 2 PK (in the enum, not supported)."""

    NORMAL = 0
    LINK = 1
    PK = 2


ROOM_COLUMNS = (
    "id", "created_at", "updated_at", "title", "anchor", "extends", "status", "mode", "chat_id", "pk_id",
    "notice", "meeting_id", "cover_url", "anchor_id", "anchor_nick", "vod_id", "meeting_info",
    "started_at", "stopped_at",
)  # fmt: skip
"""The columns of `contract/room_infos.sql`, in its order."""

ROOMINFO_FIELDS = (
    "id", "created_at", "updated_at", "started_at", "stopped_at", "title", "notice", "cover_url",
    "anchor_id", "anchor_nick", "extends", "status", "mode", "chat_id", "meeting_id", "vod_id", "meeting_info",
)  # fmt: skip
"""The stored fields a RoomInfo answers; the dynamic parts come after them."""

MEETING_MEMBER_FIELDS = ("user_id", "user_nick", "user_avatar", "camera_opened", "mic_opened", "rtc_pull_url")
METRICS_FIELDS = ("like_count", "online_count", "pv", "uv")
_TIME_COLUMNS = ("created_at", "updated_at", "started_at", "stopped_at")


@dataclass
class RoomRecord:
    """One row of `room_infos`. Times are aware UTC datetimes with whole seconds, or None when unset."""

    id: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    title: str = ""
    anchor: str = ""
    extends: str = ""
    status: int = RoomStatus.PREPARED.value  # plain ints, not the enums: see storage/_index.py
    mode: int = Mode.NORMAL.value
    chat_id: str = ""
    pk_id: str = ""
    notice: str = ""
    meeting_id: str = ""
    cover_url: str = ""
    anchor_id: str = ""
    anchor_nick: str = ""
    vod_id: str = ""
    meeting_info: str = ""
    started_at: datetime | None = None
    stopped_at: datetime | None = None

    def copy(self, **changes: Any) -> RoomRecord:
        """A new record with some columns changed."""
        return dataclasses.replace(self, **changes)

    def to_row(self) -> JSONDict:
        """JSON-ready columns: times as RFC 3339 text or None (for file stores)."""
        row = dataclasses.asdict(self)
        for name in _TIME_COLUMNS:
            row[name] = format_time(row[name]) if row[name] is not None else None
        row["status"] = int(self.status)
        row["mode"] = int(self.mode)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RoomRecord:
        """Back from `to_row` or a database row; NULL text becomes "" and NULL numbers 0."""
        values: dict[str, Any] = {}
        for name in ROOM_COLUMNS:
            value = row.get(name)
            if name in _TIME_COLUMNS:
                if isinstance(value, str):
                    value = parse_time(value)
                elif isinstance(value, datetime) and value.tzinfo is None:
                    value = value.replace(tzinfo=timezone.utc)  # databases hand back naive UTC
                values[name] = value
            elif name in ("status", "mode"):
                values[name] = int(value or 0)
            else:
                values[name] = "" if value is None else str(value)
        return cls(**values)

    def meeting_members(self) -> list[JSONDict]:
        """The stored meeting members, [] when none (or when the stored text is not what we wrote)."""
        if not self.meeting_info:
            return []
        try:
            members = json.loads(self.meeting_info).get("members")
        except (ValueError, AttributeError):
            return []
        return [m for m in members if isinstance(m, dict)] if isinstance(members, list) else []


class JsonModel(dict):
    """A JSON object answered by the contract, with a readable display in notebooks."""

    title = "answer"

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self, ensure_ascii=False, **kwargs)

    def _repr_html_(self) -> str:
        return _html_table(self, caption=self.title)

    def _repr_json_(self) -> tuple[dict, dict]:
        return dict(self), {"expanded": False, "root": self.title}


class RoomInfo(JsonModel):
    """One room as answered for one viewer (`create`, `get`, `update`, the lifecycle calls, `delete`)."""

    title = "RoomInfo"

    @property
    def status_label(self) -> str:
        try:
            return RoomStatus(int(self.get("status", -1))).label
        except (TypeError, ValueError):
            return str(self.get("status"))

    def __repr__(self) -> str:
        return f"RoomInfo(id={self.get('id')!r}, title={self.get('title')!r}, status={self.get('status')!r} {self.status_label})"


class MeetingInfo(JsonModel):
    """`{"members": [...]}` of a co-streaming room."""

    title = "MeetingInfo"


class LoginResult(JsonModel):
    """`{"code": 200, "expire": ..., "token": ...}` of login and refresh."""

    title = "Login"

    def __repr__(self) -> str:
        token = str(self.get("token", ""))
        return f"LoginResult(expire={self.get('expire')!r}, token={token[:12] + '...' if token else ''!r})"


def _html_table(value: Any, caption: str | None = None) -> str:
    """Nested JSON as nested HTML tables; long strings (URLs, tokens) wrap instead of widening the page."""
    if isinstance(value, dict):
        rows = "".join(
            f"<tr><th style='text-align:left;vertical-align:top'>{html.escape(str(k))}</th>"
            f"<td style='text-align:left'>{_html_table(v)}</td></tr>"
            for k, v in value.items()
        )
        head = f"<caption style='text-align:left'><b>{html.escape(caption)}</b></caption>" if caption else ""
        return f"<table>{head}{rows}</table>"
    if isinstance(value, list):
        if not value:
            return "<code>[]</code>"
        return "<ol start='0'>" + "".join(f"<li>{_html_table(v)}</li>" for v in value) + "</ol>"
    text = json.dumps(value, ensure_ascii=False)
    return f"<code style='word-break:break-all'>{html.escape(text)}</code>"
