"""The room store: the one contract every storage engine keeps.

Engines hold `RoomRecord`s and nothing else: no users, no permissions, no URLs. What they promise:

- `insert` adds a new room; `get` finds one (`get_by_meeting` by its exact `meeting_id`); `delete`
  removes one and hands it back.
- `update(room_id, change)` is an atomic read-modify-write: `change` gets a copy of the current
  record and returns the new one (or the same object, meaning "no change": nothing is written).
  An exception raised by `change` aborts the update and propagates. Two concurrent updates of one
  room never lose each other's changes: this is what makes the lifecycle safe under concurrency.
- `list` answers newest first (`created_at` descending, then `id` descending), filtered by status,
  paged by offset and limit; `count` tells how many match (by status, or by anchor).
- Beside the rooms, never inside a room record: each room's like total and chat-mute flag (SPEC 11).
  `add_likes` adds to the total atomically (several processes on one database lose no like);
  `set_muted` sets the flag; `stats(ids)` reads both for many rooms in one go; `delete` forgets them.
  Both answer None / False for a room that is not stored, and then keep nothing.
- `use_token(token_id, expires_at, now)` marks a one-time token (a hand-off token's `jti`, SPEC 12)
  as used, where every process sharing the data sees it: True the first time, False ever after.
  Entries past their expiry may be forgotten (the token they name is refused by its `exp` anyway).
- `clear()` deletes every room (a class's "reset"), as durably as `delete`; users and the secret stay.
- `load_secret(make)` keeps one per-deployment secret (the JWT key) with the data, so every process
  sharing the data shares it: it returns the stored secret, or stores `make()` and returns that.
- Every acknowledged write is durable as the engine promises (memory: for the process's life).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol, runtime_checkable

from ..models import RoomRecord
from ..types import RoomId

__all__ = ["RoomStore", "RoomChange", "RoomStats", "DuplicateRoom"]

RoomChange = Callable[[RoomRecord], RoomRecord]
"""Given a copy of the current record, return the new one (or the same object for no change)."""


class RoomStats(NamedTuple):
    """What the store keeps of a room beside its record: the like total and the chat-mute flag."""

    likes: int = 0
    muted: bool = False


NO_STATS = RoomStats()


class DuplicateRoom(ValueError):
    """`insert` was given an id that is already stored."""


@runtime_checkable
class RoomStore(Protocol):
    """What the rooms layer needs of a storage engine."""

    #: a short name for messages and benchmarks, e.g. "memory", "tinydb", "mysql"
    kind: str
    #: whether a call may wait on the network (a database): the api layer then calls it off the
    #: event loop. Stores that answer from memory (memory, TinyDB) are called on the loop directly.
    blocking: bool

    def insert(self, record: RoomRecord) -> None:
        """Store a new room; `DuplicateRoom` if its id exists."""

    def get(self, room_id: RoomId) -> RoomRecord | None:
        """The room, or None."""

    def get_by_meeting(self, meeting_id: str) -> RoomRecord | None:
        """The room whose `meeting_id` is exactly `meeting_id` (never for ""), or None."""

    def update(self, room_id: RoomId, change: RoomChange) -> RoomRecord | None:
        """Atomically apply `change`; the new record, or None when there is no such room."""

    def delete(self, room_id: RoomId) -> RoomRecord | None:
        """Remove the room; the record as it was, or None when there was none."""

    def list(self, *, status: int | None = None, offset: int = 0, limit: int = 10) -> list[RoomRecord]:
        """Rooms newest first (created_at desc, id desc), only `status` when given."""

    def revision(self) -> int | None:
        """A number that changes whenever a room is inserted, changed or deleted (not with likes or
        mute flags), so that what was made of the rooms can be kept until then; None when the store
        cannot know (a database other processes write to)."""

    def count(self, *, status: int | None = None, anchor: str | None = None) -> int:
        """How many rooms (with `status`, and of `anchor_id` `anchor`, when given; ids compared exactly)."""

    def add_likes(self, room_id: RoomId, count: int) -> int | None:
        """Add `count` likes to the room's total atomically; the new total, or None when there is no such room."""

    def set_muted(self, room_id: RoomId, muted: bool) -> bool:
        """Set the room's chat-mute flag; False when there is no such room."""

    def stats(self, room_ids: Iterable[RoomId]) -> dict[RoomId, RoomStats]:
        """Likes and mute flag of each room that has any (a room left out has `RoomStats()`)."""

    def use_token(self, token_id: str, expires_at: int, now: int) -> bool:
        """Mark a one-time token used: True the first time, False when it was used already."""

    def clear(self) -> int:
        """Delete every room with its stats, durably; keep the secret (tokens stay valid). How many rooms went."""

    def load_secret(self, make: Callable[[], str]) -> str:
        """The deployment's secret, created with `make()` on first use."""

    def close(self) -> None:
        """Release files and connections; the store is not used afterwards."""
