"""The rules of rooms: create, read, list, update, the lifecycle table, meetings, metrics, ownership.

Calls come in already validated (types, lengths, required fields) with the acting `Identity`;
this layer decides what the actor may do, changes the store, and builds the RoomInfo each viewer
sees. It knows nothing of HTTP.
"""

from __future__ import annotations

import builtins  # RoomService.list shadows the name inside the class
import json
import logging
import operator
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from .auth import Identity
from .clock import Clock, format_time, to_second
from .exceptions import BadRequest, Forbidden, InternalError, LifecycleConflict, ModeConflict, RoomLimitReached, RoomNotFound
from .jsonbytes import Encoded, dumps
from .models import METRICS_FIELDS, ROOMINFO_FIELDS, MeetingInfo, Mode, RoomInfo, RoomRecord, RoomStatus
from .presence import Presence
from .storage.base import RoomStats, RoomStore
from .streams import LINK_STREAM_KINDS, StreamUrls
from .types import JSONDict, RoomId, UserId
from .validation import rtc_id_problem

__all__ = [
    "RoomService",
    "RoomView",
    "LIFECYCLE",
    "STREAM_FOLLOWING",
    "Transition",
    "StreamEvent",
    "new_room_id",
    "MAX_EVENTS",
    "stored_row_problem",
]

log = logging.getLogger("livekit_demo.rooms")
MAX_EVENTS = 100
"""How many accepted stream events a server keeps (SPEC 13)."""
_KNOWN_STATUSES = frozenset(int(s) for s in RoomStatus)
_KNOWN_MODES = frozenset(int(m) for m in Mode)


def stored_row_problem(record: RoomRecord) -> str | None:
    """How a stored row breaks the contract (someone wrote it by hand, or another program), or None."""
    if not record.id:
        return "it has no id"
    if int(record.status) not in _KNOWN_STATUSES:
        return f"its status {int(record.status)} is none of the contract's ({', '.join(map(str, sorted(_KNOWN_STATUSES)))})"
    if int(record.mode) not in _KNOWN_MODES:
        return f"its mode {int(record.mode)} is none of the contract's ({', '.join(map(str, sorted(_KNOWN_MODES)))})"
    return None


def _refuse_bad_row(record: RoomRecord) -> RoomRecord:
    """The record, or a 500 for this room alone saying what is wrong with its row."""
    problem = stored_row_problem(record)
    if problem is not None:
        raise InternalError(f"room {record.id!r} is stored in a shape this server cannot serve: {problem}; fix or delete its row")
    return record


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
_TEMPLATES = 4096  # RoomInfo templates kept (see RoomService._template)
_KEPT = 4096  # answers kept (see RoomService._kept_rooms)
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

STREAM_FOLLOWING: dict[str, dict[RoomStatus, Transition]] = {
    # Only the anchor's `start` re-opens an ended room: a pusher still retrying after the live ended
    # must not (the reference re-opened it). Clients know no status 3 for "waiting for the stream",
    # so a stream that ends takes a live room back to 0, as the reference did.
    "publish": {_P: Transition(_L, set_started=True), _L: Transition(_L), _S: Transition(_L), _E: Transition(_E)},
    "publish_done": {_P: Transition(_P), _L: Transition(_P), _S: Transition(_S), _E: Transition(_E)},
}
"""SPEC section 13: how a room follows its stream, as the CDN's callback reports it."""


@dataclass(frozen=True)
class StreamEvent:
    """One accepted push callback: which room (None: the stream names none), what happened, from where."""

    action: str  # "publish" or "publish_done"
    stream: str
    room_id: RoomId | None
    time: datetime  # when the CDN says it happened (our clock's time when it did not say)
    ip: str  # the pusher's address as the CDN reports it (else the caller's)
    status_before: int | None = None
    status_after: int | None = None

    @property
    def outcome(self) -> str:
        """What the event did, in words: ``0 -> 1``, ``stays 2 (ended)``, ``unknown stream``."""
        if self.room_id is None or self.status_before is None:
            return "unknown stream"
        if self.status_before == self.status_after:
            return f"stays {self.status_before} ({RoomStatus(self.status_before).label})"
        return f"{self.status_before} -> {self.status_after}"

    def to_json(self) -> JSONDict:
        """The event as plain data (time as RFC 3339)."""
        return {
            "room_id": self.room_id, "action": self.action, "time": format_time(self.time), "ip": self.ip,
            "stream": self.stream, "outcome": self.outcome,
        }  # fmt: skip


class _UUID7:
    """Version 7 UUIDs (millisecond time, then random bits), strictly increasing within a process.

    Stored times have whole seconds, so the id is what keeps rooms made in one second in order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0

    def __call__(self, clock: Clock) -> str:
        return self.at(clock.now())

    def at(self, when: datetime) -> str:
        """The next id, for a room made at `when` (the caller's reading of its clock)."""
        ms = int(when.timestamp() * 1000)
        random_bits = int.from_bytes(os.urandom(10))  # 62 for the id, 11 for a new sequence: one system call
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                self._seq += 1
                if self._seq >= 1 << 12:  # 12-bit sequence spent: borrow the next millisecond
                    ms += 1
                    self._seq = random_bits >> 62 & 0x7FF
            else:
                self._seq = random_bits >> 62 & 0x7FF  # 11 bits: headroom for the increments above
            self._last_ms = ms
            seq = self._seq
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | random_bits & ((1 << 62) - 1)
        return f"{value:032x}"


new_room_id = _UUID7()
_NO_STATS = RoomStats()


def _wanted(status: int | None) -> int | None:
    """The status a list asks for; None (also for -1): every status."""
    return None if status in (None, -1) else status


def _user_status(muted: bool) -> JSONDict:
    # A muted chat silences everyone but the anchor; "group" is the web client's word for the whole chat.
    return {"mute": True, "mute_source": ["group"]} if muted else {"mute": False, "mute_source": []}


def _vod_info() -> JSONDict:
    return {"status": 0, "playlist": []}


Counts = tuple[int, int, int, int]
"""A room's metrics, in `METRICS_FIELDS` order."""

# A RoomInfo's JSON after its template: the metrics (to be filled with its `Counts`, all integers),
# then, by (muted, ended), the rest of what `RoomView.info` adds; written once.
_METRICS_JSON = b',"metrics":{' + b",".join(b'"%s":%%d' % name.encode() for name in METRICS_FIELDS) + b"}"
_JSON_TAILS = {
    (muted, ended): b"".join((b',"user_status":', dumps(_user_status(muted)), b',"vod_info":' + dumps(_vod_info()) if ended else b"", b"}"))
    for muted in (False, True)
    for ended in (False, True)
}


class _Template:
    """What `RoomService._template` keeps of a room: the RoomInfo part its row and URLs decide, and that part's JSON."""

    __slots__ = ("_head", "generation", "info")

    def __init__(self, generation: object, info: RoomInfo) -> None:
        self.generation = generation
        self.info = info
        self._head: bytes | None = None

    def head(self) -> bytes:
        """`info` as JSON without its closing brace (made on first use): an answer appends the parts that change."""
        if self._head is None:
            self._head = dumps(self.info)[:-1]
        return self._head


class RoomView:
    """One room as one viewer sees it at one moment: its kept template, then the parts that change per call.

    `info()` is the RoomInfo; `json()` the bytes of that RoomInfo as the api answers it, written
    from the template's JSON without building the dict (a list page is ten of them). Both come
    from the same parts in the same order, so they cannot disagree.
    """

    __slots__ = ("counts", "ended", "muted", "template")

    def __init__(self, template: _Template, counts: Counts, muted: bool, ended: bool) -> None:
        self.template = template
        self.counts = counts
        self.muted = muted
        self.ended = ended

    def info(self) -> RoomInfo:
        info = RoomInfo(self.template.info)
        # Copies of the nested objects: the caller may change its answer, not the template.
        for name in ("pull_url_info", "push_url_info"):
            if name in info:
                info[name] = dict(info[name])
        if "link_info" in info:
            link = info["link_info"] = dict(info["link_info"])
            link["cdn_pull_info"] = dict(link["cdn_pull_info"])
        info["metrics"] = dict(zip(METRICS_FIELDS, self.counts, strict=True))
        info["user_status"] = _user_status(self.muted)
        if self.ended:
            info["vod_info"] = _vod_info()
        return info

    def json(self) -> bytes:
        return _room_json(self.template.head(), self.counts, self.muted, self.ended)


def _room_json(head: bytes, counts: Counts, muted: bool, ended: bool) -> bytes:
    """A RoomInfo's JSON: its template's (`_Template.head`), then what `RoomView.info` adds, in that order."""
    return b"".join((head, _METRICS_JSON % counts, _JSON_TAILS[muted, ended]))


class _Shown(NamedTuple):
    """What an answer shows of a room that only a change of its row or URLs changes."""

    room_id: RoomId
    anchor_id: UserId
    head: bytes  # its template's JSON (`_Template.head`)
    ended: bool


class _Kept(NamedTuple):
    """Rooms as `RoomService.get_json` or `list_json` last showed them, with what that depended on."""

    revision: int | None  # the store's, read before the rows
    generation: object  # the URLs'
    rooms: builtins.list[_Shown]


OnlineSource = Callable[[RoomId], int]
"""Something that knows how many are watching a room right now (the local edge, heartbeating viewers).

A source that also has a `forget(room_id)` method is told when a room is deleted."""


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
        online = 0
        for source in self._online_sources:  # a loop, not sum(generator): on every RoomInfo answered
            online += source(room_id)
        return online

    def visit(self, room_id: RoomId, user_id: UserId) -> None:
        with self._lock:
            self._pv[room_id] = self._pv.get(room_id, 0) + 1
            self._visitors.setdefault(room_id, set()).add(user_id)

    def of(self, room_id: RoomId, likes: int = 0) -> JSONDict:
        """The room's `metrics`; `likes` is the store's total (SPEC 11), the rest is counted here."""
        return dict(zip(METRICS_FIELDS, self.count(room_id, likes), strict=True))

    def count(self, room_id: RoomId, likes: int) -> Counts:
        """One room's `metrics` as values in `METRICS_FIELDS` order (on every RoomInfo answered)."""
        # Without our lock: `visit` adds to pv before it adds the visitor, and this reads the
        # visitors before pv, so a visit in between can raise pv, never make uv pass pv.
        uv = len(self._visitors.get(room_id, ()))
        return (likes, self.online(room_id), self._pv.get(room_id, 0), uv)

    def counts(self, room_ids: builtins.list[RoomId], likes: builtins.list[int]) -> builtins.list[Counts]:
        """The `metrics` of several rooms (a list page), each read as `count` reads it, in one loop
        (a call per room and counter cost a page of ten more than the counting)."""
        visitors, pv, sources = self._visitors, self._pv, self._online_sources
        found = []
        # Equal lengths by construction. Here and on the other hot paths below, zip without `strict`:
        # the keyword sends zip through its slow constructor, ~1.7k instructions a call (callgrind).
        for room_id, room_likes in zip(room_ids, likes):  # noqa: B905
            uv = len(visitors.get(room_id, ()))  # visitors before pv, as in `count`
            online = 0
            for source in sources:
                online += source(room_id)
            found.append((room_likes, online, pv.get(room_id, 0), uv))
        return found

    def forget(self, room_id: RoomId) -> None:
        with self._lock:
            self._pv.pop(room_id, None)
            self._visitors.pop(room_id, None)
        for source in self._online_sources:
            forget = getattr(source, "forget", None)
            if callable(forget):
                forget(room_id)


class RoomService:
    """Every room call of the contract, for an acting identity."""

    def __init__(self, store: RoomStore, streams: StreamUrls, clock: Clock, *, max_per_user: int = 1000) -> None:
        self.store = store
        self.max_per_user = max_per_user
        self.streams = streams
        self.clock = clock
        self.metrics = _Metrics()
        self._warned: set[RoomId] = set()  # broken rows already logged, so a list does not log them each time
        self._warned_lock = threading.Lock()
        self.presence = Presence(clock)  # heartbeating viewers (SPEC 14), one of the online sources
        self.metrics.add_online_source(self.presence)
        self._events: deque[StreamEvent] = deque(maxlen=MAX_EVENTS)
        self._events_lock = threading.Lock()
        self._delete_listeners: builtins.list[Callable[[RoomId], None]] = []
        # The part of each answered RoomInfo that its row and URLs decide (see `_template`).
        self._templates: dict[tuple[Any, ...], _Template] = {}
        self._kept: dict[tuple[Any, ...], _Kept] = {}  # see `_kept_rooms`

    def on_delete(self, listener: Callable[[RoomId], None]) -> None:
        """Call `listener(room_id)` after each room is deleted (the local edge disconnects its publisher)."""
        self._delete_listeners.append(listener)

    @property
    def events(self) -> builtins.list[StreamEvent]:
        """The last accepted stream events (at most `MAX_EVENTS`), oldest first."""
        with self._events_lock:
            return builtins.list(self._events)

    def __repr__(self) -> str:
        return f"RoomService(store={self.store.kind})"

    # -- reads ---------------------------------------------------------------------------------

    def create(self, actor: Identity, fields: JSONDict, *, host: str = "") -> RoomInfo:
        """A new room for `fields["anchor"]`, answered with its push URLs.

        `host` (here and below): the host name the caller reached the server at, for URLs that point at a local edge.
        """
        return self._create(actor, fields, host).info()

    def create_json(self, actor: Identity, fields: JSONDict, *, host: str = "") -> Encoded:
        """`create`, answered as the JSON bytes of its RoomInfo (what the api sends)."""
        return Encoded(self._create(actor, fields, host).json())

    def get(self, actor: Identity, room_id: RoomId, user_id: UserId, *, host: str = "") -> RoomInfo:
        """The room as `user_id` sees it; counts the visit."""
        return self._get(actor, room_id, user_id, host).info()

    def get_json(self, actor: Identity, room_id: RoomId, user_id: UserId, *, host: str = "") -> Encoded:
        """`get`, answered as the JSON bytes of its RoomInfo (see `_kept_rooms`)."""
        self.check_acting_as(actor, user_id, "user_id")

        def read() -> builtins.list[RoomRecord]:
            return [self._find(room_id)]

        (room,) = self._kept_rooms(("get", room_id, user_id, actor.is_admin and user_id == actor.user_id, host), read, user_id, actor, host)
        self.metrics.visit(room_id, user_id)  # after the 404 of a room that is not there, as `get`
        # One room: read as `_page_json` reads a page's, without the lists a page needs.
        stats = self._stats_of(room_id)
        muted = stats.muted and user_id != room.anchor_id
        return Encoded(_room_json(room.head, self.metrics.count(room_id, stats.likes), muted, room.ended))

    def list(
        self, actor: Identity, user_id: UserId, page_num: int, page_size: int, status: int | None, *, host: str = ""
    ) -> list[RoomInfo]:
        """A page of rooms, newest first, as `user_id` sees them (no visits counted)."""
        return [view.info() for view in self._list(actor, user_id, page_num, page_size, status, host)]

    def list_json(self, actor: Identity, user_id: UserId, page_num: int, page_size: int, status: int | None, *, host: str = "") -> Encoded:
        """`list`, answered as the JSON bytes of its array of RoomInfos (see `_kept_rooms`)."""
        self.check_acting_as(actor, user_id, "user_id")
        wanted = _wanted(status)

        def read() -> builtins.list[RoomRecord]:
            return self._page_records(wanted, page_num, page_size)

        key = ("list", user_id, actor.is_admin and user_id == actor.user_id, host, wanted, page_num, page_size)
        return Encoded(self._page_json(self._kept_rooms(key, read, user_id, actor, host), user_id))

    def _kept_rooms(
        self, key: tuple[Any, ...], read: Callable[[], builtins.list[RoomRecord]], viewer: UserId, actor: Identity, host: str
    ) -> builtins.list[_Shown]:
        """The rooms `read()` reads, as `viewer` is shown them, kept under `key` while the store's
        `revision` and the URLs' generation stay the same (never for a store that cannot tell).

        A viewer polls one room, a lobby one page, over and over, and rooms change far less often:
        then neither the rows are read nor their templates looked up again. Counters and mute flags
        are not kept (`_page_json` and `get_json` read them on every call).
        """
        # Read before the rows: a change while they are read makes what is kept stale at once, never current.
        revision = self.store.revision()
        generation = self.streams.generation()
        kept = self._kept.get(key)
        if kept is None or kept.revision is None or kept.revision != revision or kept.generation is not generation:
            rooms = [
                _Shown(r.id, r.anchor_id, self._viewer_template(r, viewer, actor, host, generation).head(), r.status == RoomStatus.ENDED)
                for r in read()
            ]  # fmt: skip
            kept = _Kept(revision, generation, rooms)
            if revision is not None:
                if len(self._kept) >= _KEPT:
                    self._kept.clear()
                self._kept[key] = kept
        return kept.rooms

    def _page_json(self, shown: builtins.list[_Shown], viewer: UserId) -> bytes:
        """A JSON array of the rooms' RoomInfos with this moment's counters and mute flags.

        Written in one join of every room's pieces (what `_room_json` joins per room): a page is
        about 15 kB, and joining each room, then the rooms, then the brackets copied it four times.
        """
        if not shown:
            return b"[]"
        ids = [room.room_id for room in shown]
        stats = self.store.stats(ids)  # only rooms with likes or a mute flag: often none at all
        likes = [stats.get(room_id, _NO_STATS).likes for room_id in ids] if stats else [0] * len(ids)
        pieces = [b"["]
        for room, counts in zip(shown, self.metrics.counts(ids, likes)):  # noqa: B905 (see `_Metrics.counts`)
            muted = bool(stats) and stats.get(room.room_id, _NO_STATS).muted and viewer != room.anchor_id
            pieces += (room.head, _METRICS_JSON % counts, _JSON_TAILS[muted, room.ended], b",")
        pieces[-1] = b"]"  # in place of the last room's comma
        return b"".join(pieces)

    def _create(self, actor: Identity, fields: JSONDict, host: str) -> RoomView:
        anchor = fields["anchor"]
        mode = fields.get("mode", Mode.NORMAL)
        # A field rule, so it is a 400 before the identity 403 (SPEC 1's order of checks).
        if mode == Mode.LINK and (problem := rtc_id_problem(anchor)):
            raise BadRequest.for_fields([{"field": "anchor", "problem": f"a co-streaming room's anchor {problem}"}])
        self.check_acting_as(actor, anchor, "anchor")
        # A soft bound (two creates at once may both pass at the limit): it keeps one user from
        # filling memory or disk with rooms, it is not an exact quota.
        if self.store.count(anchor=anchor) >= self.max_per_user:
            raise RoomLimitReached(anchor, self.max_per_user)
        moment = self.clock.now()
        now, room_id = to_second(moment), new_room_id.at(moment)
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
            status=RoomStatus.PREPARED.value,  # plain ints in records, never the enums (see storage/_index.py)
            mode=int(mode),
            chat_id=room_id,
            meeting_id=str(uuid.uuid4()) if mode == Mode.LINK else "",
        )
        self.store.insert(record)
        return self._view(record, anchor, actor, with_push=True, host=host, stats=_NO_STATS, new=True)

    def _get(self, actor: Identity, room_id: RoomId, user_id: UserId, host: str) -> RoomView:
        self.check_acting_as(actor, user_id, "user_id")
        record = self._find(room_id)
        self.metrics.visit(room_id, user_id)
        return self._view(record, user_id, actor, host=host)

    def _list(
        self, actor: Identity, user_id: UserId, page_num: int, page_size: int, status: int | None, host: str
    ) -> builtins.list[RoomView]:
        self.check_acting_as(actor, user_id, "user_id")
        records = self._page_records(_wanted(status), page_num, page_size)
        stats = self.store.stats(r.id for r in records) if records else {}  # one read for the page
        generation = self.streams.generation()  # one page, one second's URLs
        return [self._view(r, user_id, actor, host=host, stats=stats.get(r.id, _NO_STATS), generation=generation) for r in records]

    def get_meeting(self, actor: Identity, room_id: RoomId) -> MeetingInfo:
        """The co-streaming members; ``[]`` on a room whose mode is not 1.

        Not a 409 there: the web client reads the members of every room it opens without handling
        an error, and the reference Java AppServer answers the empty list too (SPEC 3).
        """
        record = self._find(room_id)
        if record.mode != Mode.LINK:
            return MeetingInfo(members=[])
        return MeetingInfo(members=self._members_out(record))

    def statistics(self, actor: Identity, chatroom_id: str) -> JSONDict:
        """``{pv, uv, like_count, online_count}``: the room's metrics, without counting a visit."""
        record = self._find_chat(chatroom_id)
        return self.metrics.of(record.id, self._stats_of(record.id).likes)

    def is_muted(self, actor: Identity, chatroom_id: str) -> JSONDict:
        """``{"code": 200, "mute": <bool>}``, for anyone."""
        record = self._find_chat(chatroom_id)
        return {"code": 200, "mute": self._stats_of(record.id).muted}

    def heartbeat(self, actor: Identity, room_id: RoomId, user_id: UserId) -> JSONDict:
        """`user_id` is still watching: online for the next 30 s; answers the room's online count."""
        self.check_acting_as(actor, user_id, "user_id")
        self._find(room_id)
        self.presence.beat(room_id, user_id)
        return {"code": 200, "online_count": self.metrics.online(room_id)}

    # -- changes -------------------------------------------------------------------------------

    def send_likes(self, actor: Identity, chatroom_id: str, user_id: UserId, count: int) -> JSONDict:
        """Add `count` likes; ``{"code": 200, "count": <the room's total after this call>}``."""
        self.check_acting_as(actor, user_id, "user_id")
        record = self._find_chat(chatroom_id)
        total = self.store.add_likes(record.id, count)
        if total is None:
            raise RoomNotFound(chatroom_id)  # deleted in between
        return {"code": 200, "count": total}

    def set_muted(self, actor: Identity, chatroom_id: str, muted: bool) -> JSONDict:
        """Mute or unmute the whole chat (the anchor or an admin); ``{"code": 200, "mute": muted}``."""
        record = self._find_chat(chatroom_id)
        self._require_anchor(actor, record, "mute or unmute its chat")
        if not self.store.set_muted(record.id, muted):
            raise RoomNotFound(chatroom_id)
        return {"code": 200, "mute": muted}

    def check_anchor_of(self, actor: Identity, room_id: RoomId, doing: str = "change it") -> RoomRecord:
        """The room, when `actor` is its anchor or an admin: 404 / 403 (saying what was refused) otherwise."""
        record = self._find(room_id)
        self._require_anchor(actor, record, doing)
        return record

    def update(self, actor: Identity, room_id: RoomId, fields: JSONDict, *, host: str = "") -> RoomInfo:
        """Overwrite the fields given non-empty; the others stay (a field cannot be cleared)."""
        changes = {k: v for k, v in fields.items() if k != "id" and v != ""}

        def change(record: RoomRecord) -> RoomRecord:
            self._require_anchor(actor, record)
            return record.copy(**changes, updated_at=to_second(self.clock.now()))

        record = self._update(room_id, change)
        return self._room_info(record, actor.user_id, actor, host=host)

    def transition(self, action: str, actor: Identity, room_id: RoomId, user_id: UserId, *, host: str = "") -> RoomInfo:
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
            new = record.copy(status=int(cell.to), updated_at=now)
            if cell.set_started:
                new.started_at = now
            if cell.set_stopped:
                new.stopped_at = now
            if cell.clear_stopped:
                new.stopped_at = None
            return new

        record = self._update(room_id, change)
        return self._room_info(record, user_id, actor, host=host)

    def delete(self, actor: Identity, room_id: RoomId, user_id: UserId, *, host: str = "") -> RoomInfo:
        """Remove the room; answer it as it was."""
        self.check_acting_as(actor, user_id, "user_id")
        record = self._find(room_id, whole=False)  # a broken row may still be deleted by its anchor
        self._require_anchor(actor, record)
        answer = self._room_info(record, user_id, actor, host=host)
        if self.store.delete(room_id) is None:
            raise RoomNotFound(room_id)  # deleted by someone else in between
        self.metrics.forget(room_id)
        for listener in self._delete_listeners:
            try:
                listener(room_id)
            except Exception:  # the room is gone either way; a listener's fault must not turn that into a 500
                log.exception("a room-delete listener failed for room %s", room_id)
        return answer

    def follow_stream(self, action: str, stream: str, *, ip: str = "", time: datetime | None = None) -> StreamEvent:
        """The room named by `stream` follows a CDN push event (`publish`, `publish_done`); the event is kept.

        `stream` is a room id, or a co-streaming mix ``{app_id}_{meeting_id}_{anchor}_camera`` (or ``_audio``).
        A stream naming no room changes nothing (the event says so). Repeats change nothing.
        """
        table = STREAM_FOLLOWING[action]
        record = self._room_of_stream(stream)
        before = after = None
        if record is not None:
            before = int(record.status)

            def change(current: RoomRecord) -> RoomRecord:
                status = RoomStatus(current.status)
                cell = table[status]
                if cell.to is None or not cell.changes(status):
                    return current
                now = to_second(self.clock.now())
                new = current.copy(status=int(cell.to), updated_at=now)
                if cell.set_started:
                    new.started_at = now
                return new

            updated = self.store.update(record.id, change)
            if updated is None:  # deleted in between: as unknown as a stream that never named a room
                record = None
            else:
                after = int(updated.status)
        event = StreamEvent(
            action, stream, record.id if record is not None else None, time or to_second(self.clock.now()), ip,
            before if record is not None else None, after,
        )  # fmt: skip
        if record is None:
            log.info("stream event %s for %r: the stream names no room; answered 200 so the CDN stops retrying", action, stream)
        elif before == RoomStatus.ENDED and action == "publish":
            log.info("stream event publish for ended room %s: it stays ended (only the anchor's start re-opens it)", record.id)
        with self._events_lock:
            self._events.append(event)
        return event

    def _room_of_stream(self, stream: str) -> RoomRecord | None:
        """The room a CDN stream names: by id, or by the co-streaming mix's exact meeting_id and anchor."""
        if not stream:
            return None
        record = self.store.get(stream)
        if record is not None:
            return record
        prefix = f"{self.streams.live_mic.app_id}_"
        kind = next((k for k in LINK_STREAM_KINDS if stream.endswith(f"_{k}")), None)
        if kind is None or not stream.startswith(prefix):
            return None
        # A meeting id is a UUID (no "_"); the anchor follows the RTC rule, which allows "_".
        meeting_id, sep, anchor = stream[len(prefix) : -len(kind) - 1].partition("_")
        if not sep or not meeting_id or not anchor:
            return None
        record = self.store.get_by_meeting(meeting_id)
        if record is None or record.anchor_id != anchor or record.mode != Mode.LINK:
            return None
        return record

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
    def _require_anchor(actor: Identity, record: RoomRecord, doing: str = "change it") -> None:
        if record.anchor_id != actor.user_id and not actor.is_admin:
            raise Forbidden(f"only the room's anchor may {doing}; {actor.user_id!r} is not its anchor")

    @staticmethod
    def _require_link_mode(record: RoomRecord) -> None:
        if record.mode != Mode.LINK:
            raise ModeConflict(record.mode)

    def _find_chat(self, chatroom_id: str) -> RoomRecord:
        # A room's chat_id is its id here (create sets it so), so the chatroom is found by id.
        return self._find(chatroom_id)

    def _stats_of(self, room_id: RoomId) -> RoomStats:
        return self.store.stats([room_id]).get(room_id, _NO_STATS)

    def _page_records(self, wanted: int | None, page_num: int, page_size: int) -> builtins.list[RoomRecord]:
        records = self.store.list(status=wanted, offset=(page_num - 1) * page_size, limit=page_size)
        return [r for r in records if self._listable(r)]

    def _listable(self, record: RoomRecord) -> bool:
        """Whether a listed row is served; a broken one is skipped (and logged once), the page still answers."""
        problem = stored_row_problem(record)
        if problem is None:
            return True
        with self._warned_lock:
            first = record.id not in self._warned
            if first and len(self._warned) < 10000:
                self._warned.add(record.id)
        if first:
            log.warning("room %r is left out of lists: %s; fix or delete its row", record.id, problem)
        return False

    def _find(self, room_id: RoomId, *, whole: bool = True) -> RoomRecord:
        record = self.store.get(room_id)
        if record is None:
            raise RoomNotFound(room_id)
        return _refuse_bad_row(record) if whole else record

    def _update(self, room_id: RoomId, change: Any) -> RoomRecord:
        def checked(record: RoomRecord) -> RoomRecord:
            return change(_refuse_bad_row(record))  # the same object back keeps "no change" meaning it

        record = self.store.update(room_id, checked)
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

    def _template(
        self, record: RoomRecord, host: str, with_push: bool, link_viewer: UserId | None, generation: object, *, new: bool = False
    ) -> _Template:
        """The stored fields as answered (in the original's order), then the URLs: everything of a
        RoomInfo but the counters and the mute state, which change between calls.

        Kept per row content, host, push or not and co-streaming viewer, while the URLs would come
        out the same (`StreamUrls.generation`: the same second, settings and edge). A list page
        answers ten rooms, so building each anew (times formatted, URLs looked up) once cost more
        than the rest of the call. A `new` room's (the answer of `create`) is neither looked up nor
        kept: nobody has seen it yet, and at thousands of creates a second, keeping each would only
        push the templates of the rooms people read out of the table (and out of the CPU's caches).
        """
        stored = _read_stored(record)
        keep = not new
        if keep:
            key = (stored, host, with_push, link_viewer)
            try:
                found = self._templates.get(key)
            except TypeError:  # an unhashable value in a row from elsewhere: answered, just not kept
                keep = False
            else:
                if found is not None and found.generation is generation:
                    return found
        info = RoomInfo(zip(ROOMINFO_FIELDS, stored))  # noqa: B905 (`_read_stored` reads ROOMINFO_FIELDS; see `_Metrics.counts`)
        for name in _TIMES_ANSWERED:
            info[name] = format_time(info[name])
        info["status"] = int(info["status"])
        info["mode"] = int(info["mode"])
        info["pull_url_info"] = self.streams.pull_info(record.id, host, keep=keep)
        if with_push:
            info["push_url_info"] = self.streams.push_info(record.id, host, keep=keep)
        if link_viewer is not None:
            info["link_info"] = self.streams.link_info(record, link_viewer, host)
        template = _Template(generation, info)
        if keep:
            if len(self._templates) >= _TEMPLATES:
                self._templates.clear()  # rows, hosts and seconds come and go: start afresh
            self._templates[key] = template
        return template

    def _viewer_template(
        self, record: RoomRecord, viewer: UserId, actor: Identity, host: str, generation: object, *, with_push: bool = False, new: bool = False
    ) -> _Template:
        """The template of `record` for `viewer` (see `_template`)."""
        # Push URLs are the anchor's (an admin acting as itself sees every room's).
        with_push = with_push or viewer == record.anchor_id or (actor.is_admin and viewer == actor.user_id)
        return self._template(record, host, with_push, viewer if record.mode == Mode.LINK else None, generation, new=new)

    def _view(
        self,
        record: RoomRecord,
        viewer: UserId,
        actor: Identity,
        *,
        with_push: bool = False,
        host: str = "",
        stats: RoomStats | None = None,
        generation: object = None,
        new: bool = False,
    ) -> RoomView:
        """The room as `viewer` sees it now. Parts that do not apply are left out, never null.

        `generation`: the URLs' (`StreamUrls.generation`), when the caller answers several rooms at once.
        """
        if stats is None:
            stats = self._stats_of(record.id)
        if generation is None and not new:  # (a new room's template is not kept: no generation to keep it by)
            generation = self.streams.generation()
        template = self._viewer_template(record, viewer, actor, host, generation, with_push=with_push, new=new)
        muted = stats.muted and viewer != record.anchor_id
        return RoomView(template, self.metrics.count(record.id, stats.likes), muted, record.status == RoomStatus.ENDED)

    def _room_info(self, record: RoomRecord, viewer: UserId, actor: Identity, **view: Any) -> RoomInfo:
        """The RoomInfo `viewer` sees (see `_view`)."""
        return self._view(record, viewer, actor, **view).info()
