"""The memory room store: rooms live as long as the process (tests, throwaway demos; alias `none`)."""

from __future__ import annotations

from pathlib import Path

from ._index import IndexedStore

__all__ = ["MemoryStore"]


class MemoryStore(IndexedStore):
    """Rooms in memory only; thread-safe, reads and writes in constant time per room.

    The secret lives in the process too, unless `secret_file` names a file to keep it in
    (then tokens survive a restart even though rooms do not).

        >>> store = MemoryStore()
        >>> store.count()
        0
    """

    kind = "memory"
    blocking = False

    def __init__(self, *, secret_file: str | Path | None = None) -> None:
        super().__init__(secret_file=secret_file)
