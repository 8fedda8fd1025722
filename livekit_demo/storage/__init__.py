"""Room storage: one `RoomStore` contract, several engines, and `open_store` to pick one from settings.

    >>> from livekit_demo.settings import Settings
    >>> store = open_store(Settings.build(env={}, storage="memory"))
    >>> store.kind, store.count()
    ('memory', 0)

| `storage.type` | engine |
|---|---|
| ``memory``, ``none`` | `MemoryStore` |
| ``tinydb`` | `TinyDBStore` at the path `storage.url` |
| ``mysql``, ``postgresql``, ``sqlite``, ``sql`` | ``SqlStore`` (SQLAlchemy, an optional extra) |
"""

from __future__ import annotations

from ..exceptions import SettingsError, StorageError
from ..settings import Settings, parse_storage
from .base import DuplicateRoom, RoomStore
from .memory import MemoryStore
from .tinydb import TinyDBStore

__all__ = ["RoomStore", "open_store", "DuplicateRoom", "MemoryStore", "TinyDBStore"]

_SQL_KINDS = ("mysql", "postgresql", "sqlite")


def open_store(settings: Settings) -> RoomStore:
    """The room store that `settings.storage` names, open; the caller closes it."""
    kind, url = settings.storage.type, settings.storage.url
    secret_file = settings.auth.secret_file or None
    if kind in ("memory", "none"):
        return MemoryStore(secret_file=secret_file)
    if kind == "tinydb":
        return TinyDBStore(url, secret_file=secret_file)
    return _open_sql(settings)


def _open_sql(settings: Settings) -> RoomStore:
    extra = _sql_extra(settings.storage.type, settings.storage.url)
    try:
        from .sql import SqlStore

        return SqlStore.from_settings(settings)
    except ModuleNotFoundError as exc:
        # SQLAlchemy, or the database's driver, is an optional extra.
        install = " or ".join(f'pip install "livekit_demo[{e}]"' for e in ([extra] if extra else _SQL_KINDS))
        raise StorageError(f"storage type {settings.storage.type!r} is not available ({exc}); {install}") from exc


def _sql_extra(kind: str, url: str) -> str:
    if kind in _SQL_KINDS:
        return kind
    try:
        guessed = parse_storage(url)["type"]
    except SettingsError:
        return ""
    return guessed if guessed in _SQL_KINDS else ""
