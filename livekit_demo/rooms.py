"""The rules of rooms: create, read, list, update, the lifecycle table, meetings, metrics, ownership.

Calls come in already validated (types, lengths, required fields) with the acting `Identity`;
this layer decides what the actor may do, changes the store, and builds the RoomInfo each viewer
sees. It knows nothing of HTTP.
"""

from __future__ import annotations

import builtins  # RoomService.list shadows the name inside the class
import json
import operator
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .auth import Identity
from .clock import Clock, format_time, to_second
from .exceptions import BadRequest, Forbidden, LifecycleConflict, ModeConflict, RoomNotFound
from .models import ROOMINFO_FIELDS, MeetingInfo, Mode, RoomInfo, RoomRecord, RoomStatus
from .storage.base import RoomStore
from .streams import StreamUrls
from .types import JSONDict, RoomId, UserId
from .validation import rtc_id_problem

__all__ = ["RoomService", "LIFECYCLE", "Transition", "new_room_id"]


@dataclass(frozen=True)
class Transition:
    """One cell of the lifecycle table: the status a call leads to, and which times it sets."""

    to: RoomStatus | None  # None: not allowed (409)
    set_started: bool = False
    set_stopped: bool = False
    clear_stopped: bool = False

    def changes(self, current: RoomStatus) -> bool:
        """Whether this cell changes a room in `current` (not a 409, not a "stays")."""
        return self.to is not None and (self.to != current or self.set_started or self.set_stopped)


_TIME_FIELDS = frozenset({"created_at", "updated_at", "started_at", "stopped_at"})
_TIMES_ANSWERED = tuple(name for name in ROOMINFO_FIELDS if name in _TIME_FIELDS)
_read_stored = operator.attrgetter(*ROOMINFO_FIELDS)
_P, _L, _E, _S = RoomStatus.PREPARED, RoomStatus.LIVE, RoomStatus.ENDED, RoomStatus.PAUSED
_NO = Transition(None)

LIFECYCLE: dict[str, dict[RoomStatus, Transition]] = {
    # A cell whose `to` equals the current status with no time change is "stays": nothing is written.
    "start": {
        _P: Transition(_L, set_started=True),
        _L: Transition(_L),
        _S: Transition(_L),  # resuming keeps started_at
        _E: Transition(_L, set_started=True, clear_stopped=True),  # re-opened
    },
    "pause": {_P: _NO, _L: Transition(_S), _S: Transition(_S), _E: _NO},
    "stop": {
        _P: Transition(_E, set_stopped=True),
        _L: Transition(_E, set_stopped=True),
        _S: Transition(_E, set_stopped=True),
        _E: Transition(_E),
    },
}
"""SPEC section 3's lifecycle table, written once as data."""


class _UUID7:
    """Version 7 UUIDs (millisecond time, then random bits), strictly increasing within a process.

    Stored times have whole seconds, so the id is what keeps rooms made in one second in order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0

    def __call__(self, clock: Clock) -> str:
        ms = int(clock.now().timestamp() * 1000)
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                self._seq += 1
                if self._seq >= 1 << 12:  # 12-bit sequence spent: borrow the next millisecond
                    ms += 1
                    self._seq = secrets.randbits(11)
            else:
                self._seq = secrets.randbits(11)  # leave headroom for the increments above
            self._last_ms = ms
            seq = self._seq
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | secrets.randbits(62)
        return f"{value:032x}"


new_room_id = _UUID7()


OnlineSource = Callable[[RoomId], int]
"""Something that knows how many are watching a room right now (the local edge, heartbeating viewers)."""


class _Metrics:
    """Visit counts per room, kept in memory so that a read never rewrites the store.

    `online_count` is the sum of the registered online sources: the one narrow interface through
    which the local edge's viewers (SPEC 13) and heartbeating viewers (SPEC 14) reach the metrics.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pv: dict[RoomId, int] = {}
        self._visitors: dict[RoomId, set[UserId]] = {}
        self._online_sources: list[OnlineSource] = []

    def add_online_source(self, source: OnlineSource) -> None:
        """Count `source(room_id)` viewers as online in every room's metrics from now on."""
        self._online_sources.append(source)

    def online(self, room_id: RoomId) -> int:
        return sum(source(room_id) for source in self._online_sources) if self._online_sources else 0

    def visit(self, room_id: RoomId, user_id: UserId) -> None:
        with self._lock:
            self._pv[room_id] = self._pv.get(room_id, 0) + 1
            self._visitors.setdefault(room_id, set()).add(user_id)

    def of(self, room_id: RoomId) -> JSONDict:
        online = self.online(room_id)  # outside our lock: a source has locks of its own
        with self._lock:
            return {
                "like_count": 0,
                "online_count": online,
                "pv": self._pv.get(room_id, 0),
                "uv": len(self._visitors.get(room_id, ())),
            }

    def forget(self, room_id: RoomId) -> None:
        with self._lock:
            self._pv.pop(room_id, None)
            self._visitors.pop(room_id, None)


class RoomService:
    """Every room call of the contract, for an acting identity."""

    def __init__(self, store: RoomStore, streams: StreamUrls, clock: Clock) -> None:
        self.store = store
        self.streams = streams
        self.clock = clock
        self.metrics = _Metrics()

    def __repr__(self) -> str:
        return f"RoomService(store={self.store.kind})"

    # -- reads ---------------------------------------------------------------------------------

    def create(self, actor: Identity, fields: JSONDict) -> RoomInfo:
        """A new room for `fields["anchor"]`, answered with its push URLs."""
        anchor = fields["anchor"]
        mode = fields.get("mode", Mode.NORMAL)
        # A field rule, so it is a 400 before the identity 403 (SPEC 1's order of checks).
        if mode == Mode.LINK and (problem := rtc_id_problem(anchor)):
            raise BadRequest.for_fields([{"field": "anchor", "problem": f"a co-streaming room's anchor {problem}"}])
        self.check_acting_as(actor, anchor, "anchor")
        now = to_second(self.clock.now())
        room_id = new_room_id(self.clock)
        record = RoomRecord(
            id=room_id,
            created_at=now,
            updated_at=now,
            title=fields["title"],
            anchor=anchor,
            anchor_id=anchor,
            anchor_nick=fields.get("anchor_nick", ""),
            notice=fields.get("notice", ""),
            cover_url=fields.get("cover_url", ""),
            extends=fields.get("extends", ""),
            status=RoomStatus.PREPARED,
            mode=mode,
            chat_id=room_id,
            meeting_id=str(uuid.uuid4()) if mode == Mode.LINK else "",
        )
        self.store.insert(record)
        return self._room_info(record, anchor, actor, with_push=True)

    def get(self, actor: Identity, room_id: RoomId, user_id: UserId) -> RoomInfo:
        """The room as `user_id` sees it; counts the visit."""
        self.check_acting_as(actor, user_id, "user_id")
        record = self._find(room_id)
        self.metrics.visit(room_id, user_id)
        return self._room_info(record, user_id, actor)

    def list(self, actor: Identity, user_id: UserId, page_num: int, page_size: int, status: int | None) -> list[RoomInfo]:
        """A page of rooms, newest first, as `user_id` sees them (no visits counted)."""
        self.check_acting_as(actor, user_id, "user_id")
        wanted = None if status in (None, -1) else status
        records = self.store.list(status=wanted, offset=(page_num - 1) * page_size, limit=page_size)
        return [self._room_info(r, user_id, actor) for r in records]

    def get_meeting(self, actor: Identity, room_id: RoomId) -> MeetingInfo:
        record = self._find(room_id)
        self._require_link_mode(record)
        return MeetingInfo(members=self._members_out(record))

    # -- changes -------------------------------------------------------------------------------

    def update(self, actor: Identity, room_id: RoomId, fields: JSONDict) -> RoomInfo:
        """Overwrite the fields given non-empty; the others stay (a field cannot be cleared)."""
        changes = {k: v for k, v in fields.items() if k != "id" and v != ""}

        def change(record: RoomRecord) -> RoomRecord:
            self._require_anchor(actor, record)
            return record.copy(**changes, updated_at=to_second(self.clock.now()))

        record = self._update(room_id, change)
        return self._room_info(record, actor.user_id, actor)

    def transition(self, action: str, actor: Identity, room_id: RoomId, user_id: UserId) -> RoomInfo:
        """`start`, `pause` or `stop`, as the lifecycle table says."""
        self.check_acting_as(actor, user_id, "user_id")
        table = LIFECYCLE[action]

        def change(record: RoomRecord) -> RoomRecord:
            self._require_anchor(actor, record)
            current = RoomStatus(record.status)
            cell = table[current]
            if cell.to is None:
                raise LifecycleConflict(action, int(current), current.label)
            if not cell.changes(current):
                return record  # "stays": nothing written, updated_at untouched
            now = to_second(self.clock.now())
            new = record.copy(status=cell.to, updated_at=now)
            if cell.set_started:
                new.started_at = now
            if cell.set_stopped:
                new.stopped_at = now
            if cell.clear_stopped:
                new.stopped_at = None
            return new

        record = self._update(room_id, change)
        return self._room_info(record, user_id, actor)

    def delete(self, actor: Identity, room_id: RoomId, user_id: UserId) -> RoomInfo:
        """Remove the room; answer it as it was."""
        self.check_acting_as(actor, user_id, "user_id")
        record = self._find(room_id)
        self._require_anchor(actor, record)
        answer = self._room_info(record, user_id, actor)
        if self.store.delete(room_id) is None:
            raise RoomNotFound(room_id)  # deleted by someone else in between
        self.metrics.forget(room_id)
        return answer

    def update_meeting(self, actor: Identity, room_id: RoomId, members: builtins.list[JSONDict]) -> MeetingInfo:
        """Replace the members, in the order given."""
        seen: dict[str, int] = {}
        for i, member in enumerate(members):
            if member["user_id"] in seen:
                raise BadRequest.for_fields(
                    [{"field": f"members[{i}].user_id", "problem": f"duplicates members[{seen[member['user_id']]}]"}]
                )
            seen[member["user_id"]] = i
        stored = json.dumps({"members": members}, ensure_ascii=False, separators=(",", ":"))

        def change(record: RoomRecord) -> RoomRecord:
            self._require_anchor(actor, record)
            self._require_link_mode(record)
            return record.copy(meeting_info=stored, updated_at=to_second(self.clock.now()))

        record = self._update(room_id, change)
        return MeetingInfo(members=self._members_out(record))

    # -- rules ---------------------------------------------------------------------------------

    @staticmethod
    def check_acting_as(actor: Identity, named: UserId, field: str) -> None:
        if named != actor.user_id and not actor.is_admin:
            raise Forbidden(f"{field} {named!r} is not you: your token is for {actor.user_id!r}")

    @staticmethod
    def _require_anchor(actor: Identity, record: RoomRecord) -> None:
        if record.anchor_id != actor.user_id and not actor.is_admin:
            raise Forbidden(f"only the room's anchor may change it; {actor.user_id!r} is not its anchor")

    @staticmethod
    def _require_link_mode(record: RoomRecord) -> None:
        if record.mode != Mode.LINK:
            raise ModeConflict(record.mode)

    def _find(self, room_id: RoomId) -> RoomRecord:
        record = self.store.get(room_id)
        if record is None:
            raise RoomNotFound(room_id)
        return record

    def _update(self, room_id: RoomId, change: Any) -> RoomRecord:
        record = self.store.update(room_id, change)
        if record is None:
            raise RoomNotFound(room_id)
        return record

    # -- answers -------------------------------------------------------------------------------

    def _members_out(self, record: RoomRecord) -> builtins.list[JSONDict]:
        # A member without its own play URL gets a fresh one on every read, so it never expires in storage.
        members = record.meeting_members()
        for member in members:
            if not member.get("rtc_pull_url"):
                member["rtc_pull_url"] = self.streams.member_pull_url(record.meeting_id, str(member.get("user_id", "")))
        return members

    def _room_info(self, record: RoomRecord, viewer: UserId, actor: Identity, *, with_push: bool = False) -> RoomInfo:
        """The RoomInfo `viewer` sees. Parts that do not apply are left out, never null."""
        # The stored fields the original answers, in its order, read in one go; then the few that
        # are not answered as stored are converted in place (which keeps their place in the order).
        info = RoomInfo(zip(ROOMINFO_FIELDS, _read_stored(record), strict=True))
        for name in _TIMES_ANSWERED:
            info[name] = format_time(info[name])
        info["status"] = int(info["status"])
        info["mode"] = int(info["mode"])
        info["pull_url_info"] = self.streams.pull_info(record.id)
        # Push URLs are the anchor's (an admin acting as itself sees every room's).
        if with_push or viewer == record.anchor_id or (actor.is_admin and viewer == actor.user_id):
            info["push_url_info"] = self.streams.push_info(record.id)
        if record.mode == Mode.LINK:
            info["link_info"] = self.streams.link_info(record, viewer)
        info["metrics"] = self.metrics.of(record.id)
        info["user_status"] = {"mute": False, "mute_source": []}
        if record.status == RoomStatus.ENDED:
            info["vod_info"] = {"status": 0, "playlist": []}
        return info
