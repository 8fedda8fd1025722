"""An append-only journal of JSON lines, one fsync per entry, held by one process at a time.

A line is acknowledged only once it and its newline are on disk, so after a crash the only damage
can be a torn last line: `replay` drops it (and cuts it off the file, or the next entry would be
glued to it). Any other unreadable line means the file was damaged from outside, and is an error.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

from ..exceptions import StorageError
from ._files import fsync_dir, os_storage_error

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, one process is on trust
    fcntl = None  # type: ignore[assignment]

__all__ = ["Journal"]

Entry = dict[str, Any]


class Journal:
    """The journal file at `path`, opened for appending and locked against other processes."""

    def __init__(self, path: Path, *, owner: Path) -> None:
        self.path = path
        self.entries = 0
        created = not path.exists()
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open the journal {path}: {exc.strerror or exc}") from exc
        try:
            _lock(self._fd, owner)
            # Owner-only, as the snapshot and the secret: it holds every room (an older one may be 0644).
            if hasattr(os, "fchmod"):
                os.fchmod(self._fd, 0o600)
            if created:
                fsync_dir(path.parent)
        except BaseException:
            os.close(self._fd)
            raise
        self._size = os.fstat(self._fd).st_size

    def has_entries(self) -> bool:
        """Whether the file holds anything (read before `replay`)."""
        return self._size > 0

    def replay(self) -> list[Entry]:
        """Every acknowledged entry, in order; a torn last line is dropped from the file."""
        data = os.pread(self._fd, self._size, 0) if self._size else b""
        *lines, tail = data.split(b"\n")
        entries: list[Entry] = []
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise StorageError(f"the journal {self.path} is damaged at line {number}: {exc}") from exc
            except RecursionError:
                raise StorageError(f"the journal {self.path} is damaged at line {number}: nested too deeply") from None
            if not isinstance(entry, dict):
                raise StorageError(f"the journal {self.path} is damaged at line {number}: not an object")
            entries.append(entry)
        if tail:
            self._truncate(len(data) - len(tail))
        self.entries = len(entries)
        return entries

    def append(self, entry: Entry) -> None:
        """Write one entry and return once it is on disk."""
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as exc:
            # Cut off whatever part got written, so the next entry starts on a clean line.
            try:
                self._truncate(self._size)
            except OSError:
                pass
            raise os_storage_error(f"cannot write the journal {self.path}", exc) from exc
        self._size += len(line)
        self.entries += 1

    def clear(self) -> None:
        """Empty the journal (its entries are in a snapshot now)."""
        self._truncate(0)
        self.entries = 0

    def close(self) -> None:
        os.close(self._fd)  # also releases the lock

    def _truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        os.fsync(self._fd)
        self._size = size


# A file system that cannot lock: go on unlocked. Pyodide's kernel in a browser has no flock at all
# (or one that fails with ENOSYS): one tab is one process, one writer, and the store's own registry
# of open paths still refuses a second store on the same file in that process.
_NO_LOCKS = {errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}


def _lock(fd: int, owner: Path) -> None:
    flock = getattr(fcntl, "flock", None)
    if flock is None:  # Windows (no fcntl) or Pyodide (no flock): one process is on trust
        return
    try:
        flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _NO_LOCKS:
            return
        if not isinstance(exc, BlockingIOError):
            raise StorageError(f"cannot lock {owner}: {exc.strerror or exc}") from exc
        raise StorageError(
            f"{owner} is in use by another process; TinyDB storage serves one process "
            "(for several workers use a SQL database)"
        ) from None
