"""The in-memory side shared by the memory and TinyDB stores: an ordered index and the locked operations.

`RoomIndex` keeps every room by id and, per status and for all rooms, a sorted list of list keys
(`created_at`, `id`), kept in order by bisection as rooms come and go. So `list` slices and `count`
takes a length: neither sorts nor scans the rooms per call, and both cost the same at 10,000 rooms
as at 100.

It keeps each room as a row, a plain dict of the record's columns, and hands out a new
`RoomRecord` on every read: callers can change what they get without changing what is stored.
Rows are for CPython's garbage collector. A dict holding only text, numbers, times and None is
not tracked by it (and a copy of an untracked dict is untracked too), so a room stored as a row
costs a full collection one glance from the table that holds it, where a stored record object
was two objects to walk, each of its columns looked at, and a survivor counted towards the next
full collection. With a million rooms in memory, those collections came every ~80,000 creates
and paused the server for up to half a second; with rows, one came in a million creates (see
`benchmarks/gc_pauses.py`). An `IntEnum` status or mode is an object the collector tracks, so
rows keep them as plain ints.

`IndexedStore` implements the `RoomStore` protocol on top of it, under one re-entrant lock per
store (re-entrant, so a `change` that reads the store does not deadlock). A subclass makes the
operations durable through hooks (`_persist_put`, `_persist_delete`, `_persist_stats`,
`_persist_used`), which run *before* the memory changes: when they raise, the store is as it was.
Likes and mute flags (SPEC 11) live in a dict of their own beside the index, never in a record.
"""

from __future__ import annotations

import gc
import threading
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from enum import IntEnum
from pathlib import Path
from typing import Any

from ..exceptions import StorageError
from ..models import RoomRecord
from ..types import RoomId
from ._files import load_or_create_secret
from .base import DuplicateRoom, RoomChange, RoomStats

__all__ = ["RoomIndex", "IndexedStore"]

_Row = dict[str, Any]
_ListKey = tuple[datetime, str]
_NO_TIME = datetime.min.replace(tzinfo=timezone.utc)  # a room without created_at sorts oldest


def _row(record: RoomRecord) -> _Row:
    """The columns of `record` as the index keeps them: a dict the collector does not track (see the module's docstring)."""
    row = record.__dict__.copy()  # untracked when the record's values are plain, as the rooms layer makes them
    if gc.is_tracked(row):
        # An IntEnum status or mode (a record made with the enums): rebuilt with plain ints, which
        # leaves the new dict untracked (a copy keeps the tracking of its original).
        row = {name: int(value) if isinstance(value, IntEnum) else value for name, value in row.items()}
    return row


def _record(row: _Row) -> RoomRecord:
    # A RoomRecord of the row's columns without running __init__ (every value is already a
    # column's): several times cheaper, and on every read path, 10 times per list page.
    record = object.__new__(RoomRecord)
    record.__dict__ = row.copy()
    return record


def _list_key(row: _Row) -> _ListKey:
    return (row["created_at"] or _NO_TIME, row["id"])


class RoomIndex:
    """Rows by id plus sorted list keys per status; not locked (its owner locks)."""

    def __init__(self) -> None:
        self._rows: dict[RoomId, _Row] = {}
        # Ascending keys; "newest first" reads them from the end.
        self._keys: dict[int | None, list[_ListKey]] = {None: []}
        self._per_anchor: dict[str, int] = {}  # rooms per anchor_id, for the per-user cap
        self.revision = 0  # counts the puts and pops: every change of a room passes through one

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._rows

    def ids(self) -> list[RoomId]:
        return list(self._rows)

    def get(self, room_id: RoomId) -> RoomRecord | None:
        """A new record of the stored room, or None."""
        row = self._rows.get(room_id)
        return _record(row) if row is not None else None

    def find(self, column: str, value: Any) -> RoomRecord | None:
        """The first room whose `column` equals `value` (a scan)."""
        return next((_record(row) for row in self._rows.values() if row[column] == value), None)

    def count_where(self, anchor: str, status: int) -> int:
        """How many rooms of `anchor` have `status` (a scan)."""
        return sum(1 for row in self._rows.values() if row["anchor_id"] == anchor and int(row["status"]) == status)

    def put(self, record: RoomRecord) -> None:
        """Add or replace a room (the index keeps a row of its own: `record` stays the caller's)."""
        self.revision += 1
        row = _row(record)
        room_id, anchor = row["id"], row["anchor_id"]
        old = self._rows.get(room_id)
        key, status = _list_key(row), int(row["status"])
        if old is not None:
            old_key, old_status = _list_key(old), int(old["status"])
            self._uncount(old["anchor_id"])
            if old_key == key and old_status == status:
                self._rows[room_id] = row
                self._per_anchor[anchor] = self._per_anchor.get(anchor, 0) + 1
                return
            self._unkey(old_key, old_status)
        self._rows[room_id] = row
        self._per_anchor[anchor] = self._per_anchor.get(anchor, 0) + 1
        for keys in (self._keys[None], self._keys.setdefault(status, [])):
            if not keys or keys[-1] <= key:
                keys.append(key)  # the common case, a new room: newest of all, no search
            else:
                insort(keys, key)

    def pop(self, room_id: RoomId) -> RoomRecord | None:
        row = self._rows.pop(room_id, None)
        if row is None:
            return None
        self.revision += 1
        self._unkey(_list_key(row), int(row["status"]))
        self._uncount(row["anchor_id"])
        record = object.__new__(RoomRecord)
        record.__dict__ = row  # out of the index, nobody else holds this row: no copy needed
        return record

    def page(self, status: int | None, offset: int, limit: int) -> list[RoomRecord]:
        """Newest first, from `offset`, at most `limit`."""
        keys = self._keys.get(status, [])
        end = len(keys) - offset
        if end <= 0 or limit <= 0:
            return []
        window = keys[max(0, end - limit) : end]
        return [_record(self._rows[room_id]) for _, room_id in reversed(window)]

    def count(self, status: int | None) -> int:
        return len(self._keys.get(status, ()))

    def count_of(self, anchor: str) -> int:
        return self._per_anchor.get(anchor, 0)

    def _uncount(self, anchor: str) -> None:
        left = self._per_anchor[anchor] - 1
        if left:
            self._per_anchor[anchor] = left
        else:
            del self._per_anchor[anchor]

    def _unkey(self, key: _ListKey, status: int) -> None:
        for keys in (self._keys[None], self._keys[status]):
            del keys[bisect_left(keys, key)]


class IndexedStore:
    """A `RoomStore` whose reads come from a `RoomIndex`; subclasses make writes durable."""

    kind = "indexed"

    def __init__(self, *, secret_file: str | Path | None = None) -> None:
        self._lock = threading.RLock()
        self._index = RoomIndex()
        self._secret_file = Path(secret_file) if secret_file else None
        self._secret: str | None = None
        self._closed = False
        self._stats: dict[RoomId, RoomStats] = {}  # only rooms with likes or a mute flag
        self._used: dict[str, int] = {}  # one-time token id -> its expiry (unix seconds)

    # -- hooks for durable engines: raise to refuse the write, before anything changed --

    def _persist_stats(self, room_id: RoomId, stats: RoomStats) -> None:
        """Make a room's new like total and mute flag durable."""

    def _persist_used(self, token_id: str, expires_at: int) -> None:
        """Make a used one-time token durable."""

    def _persist_put(self, record: RoomRecord) -> None:
        """Make an insert or update durable."""

    def _persist_delete(self, room_id: RoomId) -> None:
        """Make a delete durable."""

    # -- the RoomStore protocol --

    def insert(self, record: RoomRecord) -> None:
        with self._lock:
            self._check_open()
            if record.id in self._index:
                raise DuplicateRoom(f"room already exists: {record.id}")
            self._persist_put(record)
            self._index.put(record)

    def get(self, room_id: RoomId) -> RoomRecord | None:
        with self._lock:
            self._check_open()
            return self._index.get(room_id)

    def get_by_meeting(self, meeting_id: str) -> RoomRecord | None:
        if not meeting_id:
            return None
        with self._lock:
            self._check_open()
            # A scan: only the CDN's callback for a co-streaming mix asks, a few times per live.
            return self._index.find("meeting_id", meeting_id)

    def update(self, room_id: RoomId, change: RoomChange) -> RoomRecord | None:
        with self._lock:
            self._check_open()
            given = self._index.get(room_id)
            if given is None:
                return None
            new = change(given)
            if new is given:
                # "No change", even if `change` mutated its copy in place.
                return self._index.get(room_id)
            if not isinstance(new, RoomRecord) or new.id != room_id:
                raise ValueError(f"a room change must return a RoomRecord with id {room_id!r}, not {new!r}")
            self._persist_put(new)
            self._index.put(new)
            return self._index.get(room_id)

    def delete(self, room_id: RoomId) -> RoomRecord | None:
        with self._lock:
            self._check_open()
            if room_id not in self._index:
                return None
            self._persist_delete(room_id)  # a durable delete forgets the room's stats too
            self._stats.pop(room_id, None)
            return self._index.pop(room_id)

    def clear(self) -> int:
        with self._lock:
            self._check_open()
            # One durable delete per room (a journal line each for TinyDB): a class's worth of
            # rooms, and a crash half-way leaves a consistent store with fewer rooms.
            doomed = self._index.ids()
            for room_id in doomed:
                self._persist_delete(room_id)
                self._stats.pop(room_id, None)
                self._index.pop(room_id)
            return len(doomed)

    def list(self, *, status: int | None = None, offset: int = 0, limit: int = 10) -> list[RoomRecord]:
        if offset < 0 or limit < 0:
            raise ValueError(f"offset and limit must not be negative (got {offset}, {limit})")
        with self._lock:
            self._check_open()
            return self._index.page(_status_key(status), offset, limit)

    def revision(self) -> int | None:
        self._check_open()
        return self._index.revision  # one read of an int: no lock needed

    def count(self, *, status: int | None = None, anchor: str | None = None) -> int:
        with self._lock:
            self._check_open()
            if anchor is not None:
                if status is None:
                    return self._index.count_of(anchor)
                return self._index.count_where(anchor, int(status))
            return self._index.count(_status_key(status))

    def add_likes(self, room_id: RoomId, count: int) -> int | None:
        with self._lock:
            self._check_open()
            if room_id not in self._index:
                return None
            old = self._stats.get(room_id, RoomStats())
            new = old._replace(likes=old.likes + count)
            self._persist_stats(room_id, new)
            self._stats[room_id] = new
            return new.likes

    def set_muted(self, room_id: RoomId, muted: bool) -> bool:
        with self._lock:
            self._check_open()
            if room_id not in self._index:
                return False
            old = self._stats.get(room_id, RoomStats())
            if old.muted != muted:  # muting a muted room writes nothing
                new = old._replace(muted=muted)
                self._persist_stats(room_id, new)
                self._stats[room_id] = new
            return True

    def stats(self, room_ids: Iterable[RoomId]) -> dict[RoomId, RoomStats]:
        with self._lock:
            self._check_open()
            return {room_id: self._stats[room_id] for room_id in room_ids if room_id in self._stats}

    def use_token(self, token_id: str, expires_at: int, now: int) -> bool:
        with self._lock:
            self._check_open()
            if token_id in self._used:
                return False
            # Forget tokens past their expiry: they are refused by their exp, so the set stays small.
            for expired in [t for t, exp in self._used.items() if exp < now]:
                del self._used[expired]
            self._persist_used(token_id, expires_at)
            self._used[token_id] = expires_at
            return True

    def load_secret(self, make: Callable[[], str]) -> str:
        with self._lock:
            self._check_open()
            if self._secret is None:
                self._secret = load_or_create_secret(self._secret_file, make) if self._secret_file else make()
            return self._secret

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def __enter__(self) -> IndexedStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"rooms={len(self._index)}"
        return f"{type(self).__name__}({state})"

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"the {self.kind} room store is closed")


def _status_key(status: int | None) -> int | None:
    return None if status is None else int(status)
