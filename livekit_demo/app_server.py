"""One AppServer: its settings, clock, room store, and the services built on them.

This is the seam between configuration and behaviour: the api layer serves an `AppServer`, the
notebook runner and the command line make one. Building it opens the store and settles the JWT secret.
"""

from __future__ import annotations

from typing import Any

from .auth import Authenticator, resolve_secret
from .clock import Clock, SystemClock
from .handoff import HandOff
from .im import ImTokens
from .rooms import RoomService
from .settings import Settings
from .storage import RoomStore, open_store
from .streams import StreamUrls

__all__ = ["AppServer"]


class AppServer:
    """Everything one server needs, wired together; `close()` releases the store."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None, store: RoomStore | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.store = store if store is not None else open_store(settings)
        secret = resolve_secret(settings.auth, self.store.load_secret)
        self.auth = Authenticator(settings.auth, secret, self.clock)
        self.streams = StreamUrls(settings.live_stream, settings.live_mic, self.clock)
        self.rooms = RoomService(self.store, self.streams, self.clock, max_per_user=settings.rooms.max_per_user)
        self.im = ImTokens(settings.live_im, settings.gateway, secret, self.clock)
        self.handoff = HandOff(secret, self.clock, self.store, self.auth, settings.live_mic)

    @classmethod
    def from_settings(
        cls, config_file: str | None = None, *, clock: Clock | None = None, store: RoomStore | None = None, **settings: Any
    ) -> AppServer:
        """Build settings (see `Settings.build`) and the server on them."""
        return cls(Settings.build(config_file, **settings), clock=clock, store=store)

    def reset(self) -> int:
        """Clear every room for a new class; users, the secret and so every login token stay. How many rooms went."""
        return self.store.clear()

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"AppServer(storage={self.store.kind!r})"
