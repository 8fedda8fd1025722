"""Who is watching: viewers that said so through `heartbeat` within the last 30 seconds (SPEC 14).

Kept in memory, per process: presence is about the last half minute, so there is nothing worth
surviving a restart, and with several `serve` workers each counts the heartbeats it received (a
client that keeps its connection heartbeats to one worker). `Presence` is an online source of the
room metrics (`RoomService.metrics.add_online_source`): `online_count` adds it to the edge's viewers.
"""

from __future__ import annotations

import threading

from .clock import Clock
from .types import RoomId, UserId

__all__ = ["Presence", "ONLINE_WINDOW"]

ONLINE_WINDOW = 30.0
"""Seconds a viewer stays online after its last heartbeat."""


class Presence:
    """Last heartbeat per viewer and room; counts who beat within `window` seconds of the clock's now."""

    def __init__(self, clock: Clock, window: float = ONLINE_WINDOW) -> None:
        self.clock = clock
        self.window = window
        self._lock = threading.Lock()
        self._seen: dict[RoomId, dict[UserId, float]] = {}  # room -> viewer -> time of its last heartbeat
        self._next_sweep = 0.0

    def beat(self, room_id: RoomId, user_id: UserId) -> None:
        """`user_id` is watching `room_id` now."""
        now = self.clock.now().timestamp()
        with self._lock:
            self._seen.setdefault(room_id, {})[user_id] = now
            # Rooms nobody reads again would keep their departed viewers forever: sweep them all
            # once per window, which keeps the cost of a beat constant on average.
            if now >= self._next_sweep:
                self._next_sweep = now + self.window
                for room in list(self._seen):
                    self._drop_expired(room, now)

    def __call__(self, room_id: RoomId) -> int:
        """How many viewers of `room_id` are online (the online-source interface)."""
        if room_id not in self._seen:  # most rooms have no heartbeating viewer: no clock, no lock
            return 0
        now = self.clock.now().timestamp()
        with self._lock:
            return self._drop_expired(room_id, now)

    def forget(self, room_id: RoomId) -> None:
        """Drop a room's viewers (the room was deleted)."""
        with self._lock:
            self._seen.pop(room_id, None)

    def _drop_expired(self, room_id: RoomId, now: float) -> int:
        viewers = self._seen.get(room_id)
        if not viewers:
            return 0
        gone = [user for user, seen in viewers.items() if now - seen >= self.window]
        for user in gone:
            del viewers[user]
        if not viewers:
            del self._seen[room_id]
        return len(viewers)

    def __repr__(self) -> str:
        with self._lock:
            rooms = len(self._seen)
        return f"Presence(window={self.window:g}s, rooms={rooms})"
