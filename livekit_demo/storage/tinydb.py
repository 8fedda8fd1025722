"""The TinyDB room store: a real TinyDB file, made fast and crash-safe by a journal beside it.

Layout, for a data file ``rooms.json``:

- ``rooms.json``: the snapshot, a TinyDB database (``TinyDB("rooms.json")`` opens it) whose table
  ``room_infos`` holds one document per room, the record's `to_row()`. Two tables of ours sit beside
  it: ``livekit_demo_room_stats`` (a room's like total and chat-mute flag, SPEC 11: never inside a
  room document) and ``livekit_demo_used_tokens`` (one-time hand-off tokens already traded, SPEC 12).
  Other tables in the file are kept as they are.
- ``rooms.json.journal``: one JSON line per write since the snapshot (``put`` a row, ``del`` an id,
  ``stats`` of a room, ``used`` a token), with the same fsync per line as the rooms.
- ``rooms.json.secret``: the deployment's secret, owner-only.

Why a journal: TinyDB rewrites its whole file on every write, so a plain TinyDB `create` costs
O(rooms), and a durable one (temporary file, fsync, `os.replace`) costs that plus two fsyncs. An
appended, fsynced journal line costs the same at 10,000 rooms as at 100, and still keeps the
promise that a write acknowledged to a client survives `kill -9`. The snapshot is rewritten
(atomically) and the journal emptied when the journal grows past max(`compact_after`, rooms)
entries, so rewriting stays O(1) per write on average, and on `close()` and open, so the file left
behind is a complete TinyDB database. Replay is idempotent (a ``put`` replaces, a ``del`` of a
missing room is nothing), so a crash between writing a snapshot and emptying the journal is harmless.

Reads never touch the files: the rooms live in a `RoomIndex` in memory, loaded once at open.
TinyDB is not thread-safe, and neither is a journal: one lock covers every whole operation, and
one process holds one store per file (a second open in the process is refused; another process
is refused by a lock on the journal).
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO

from tinydb import TinyDB
from tinydb.storages import Storage

from ..exceptions import StorageError
from ..models import RoomRecord
from ..types import JSONDict, RoomId
from ._files import os_storage_error, write_atomic_with
from ._index import IndexedStore
from ._journal import Entry, Journal
from .base import RoomStats

__all__ = ["TinyDBStore", "TABLE", "STATS_TABLE", "USED_TOKENS_TABLE"]

TABLE = "room_infos"
"""The TinyDB table that holds the rooms, named after the original's SQL table."""
STATS_TABLE = "livekit_demo_room_stats"
"""Our table of likes and mute flags: ``{"room_id", "like_count", "mute"}`` per room that has any."""
USED_TOKENS_TABLE = "livekit_demo_used_tokens"
"""Our table of used one-time tokens: ``{"token_id", "expires_at"}``."""

_log = logging.getLogger("livekit_demo.storage")
_OPEN: dict[Path, TinyDBStore] = {}
_OPEN_LOCK = threading.Lock()


class _AtomicJSONStorage(Storage):
    """TinyDB's JSON file format, read once and written only by atomic replacement."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StorageError(f"cannot read the TinyDB file {self.path}: {exc}") from exc
        if not text.strip():
            return None  # as TinyDB's own JSONStorage reads an empty file
        try:
            data = json.loads(text)
        except ValueError as exc:
            # Never start empty over it: the next snapshot would destroy what is still in there.
            raise StorageError(f"the TinyDB file {self.path} does not parse: {exc}") from exc
        except RecursionError:
            raise StorageError(f"the TinyDB file {self.path} does not parse: it is nested too deeply") from None
        if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
            raise StorageError(f"the TinyDB file {self.path} is not a TinyDB database (tables of documents)")
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        def dump(file: BinaryIO) -> None:
            # Streamed, not json.dumps(): the text and its bytes would be two more copies of every
            # room in memory (10,000 rooms with 64 KiB `extends` peaked at 3x their 640 MiB).
            text = io.TextIOWrapper(file, encoding="utf-8", write_through=False)
            json.dump(data, text)
            text.flush()
            text.detach()  # leave `file` open for write_atomic_with to fsync and close

        try:
            write_atomic_with(self.path, dump)
        except OSError as exc:
            raise os_storage_error(f"cannot write the TinyDB file {self.path}", exc) from exc


class TinyDBStore(IndexedStore):
    """Rooms in a TinyDB file at `path` (created with its folders when missing).

    `secret_file` defaults to ``<path>.secret``; `compact_after` is the smallest journal length
    that triggers a new snapshot.
    """

    kind = "tinydb"
    blocking = False  # reads from memory; a write is one appended, fsync'd journal line

    def __init__(self, path: str | Path, *, secret_file: str | Path | None = None, compact_after: int = 1000) -> None:
        self.path = Path(path).expanduser().resolve()
        super().__init__(secret_file=secret_file or self.path.with_name(self.path.name + ".secret"))
        self._compact_after = compact_after
        # The snapshot's documents, kept ready, and their TinyDB document ids. Two tables, not a
        # (doc id, document) pair per room: a tuple holding a dict is one more object per room for
        # the garbage collector to walk, and the index keeps rooms free of those (see `_index`).
        self._docs: dict[RoomId, JSONDict] = {}
        self._doc_ids: dict[RoomId, int] = {}
        self._other_tables: dict[str, Any] = {}
        self._next_doc = 1
        with _OPEN_LOCK:
            if self.path in _OPEN:
                raise StorageError(f"{self.path} is already open in this process ({_OPEN[self.path]!r}); close that store first")
            _OPEN[self.path] = self
        try:
            _check_folder(self.path)
            self._journal = Journal(self.path.with_name(self.path.name + ".journal"), owner=self.path)
            self._sweep_temp_files()
        except BaseException:
            self._release()
            raise
        try:
            self._db = TinyDB(self.path, storage=_AtomicJSONStorage)
            self._load()
        except BaseException:
            self._journal.close()
            self._release()
            raise

    def _sweep_temp_files(self) -> None:
        """Remove snapshots a crash left half-written: nobody else can be writing them, we hold the lock."""
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            try:
                leftover.unlink()
                _log.info("removed %s, left behind by an interrupted snapshot", leftover)
            except OSError as exc:
                _log.warning("could not remove the leftover %s: %s", leftover, exc.strerror or exc)

    def _load(self) -> None:
        existed = self.path.exists()
        data = self._db.storage.read()
        if data is None and existed and self._journal.has_entries():
            # We never leave an empty snapshot behind (it is replaced whole), so something else
            # emptied it; the journal holds only the writes since the snapshot was made. Starting
            # would present a fraction of the rooms, and the start-up compaction would make it final.
            raise StorageError(
                f"the TinyDB file {self.path} is empty but its journal {self._journal.path.name} holds writes made after it: "
                "the snapshot was lost, so starting would drop every room not in the journal. Nothing was changed; "
                "restore the file from a backup, or move the journal away to start from the journal's rooms only"
            )
        data = data or {}
        for key, row in data.pop(TABLE, {}).items():
            try:
                doc_id = int(key)
                record = RoomRecord.from_row(row)
            except (ValueError, TypeError, AttributeError) as exc:
                raise StorageError(f"the TinyDB file {self.path} has a bad room document {key!r}: {exc}") from exc
            if record.id in self._docs:
                raise StorageError(f"the TinyDB file {self.path} holds room {record.id!r} twice")
            self._remember(record, doc_id)
        try:
            for doc in data.pop(STATS_TABLE, {}).values():
                self._stats[str(doc["room_id"])] = RoomStats(int(doc["like_count"]), bool(doc["mute"]))
            for doc in data.pop(USED_TOKENS_TABLE, {}).values():
                self._used[str(doc["token_id"])] = int(doc["expires_at"])
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise StorageError(f"the TinyDB file {self.path} has a bad document in our tables: {exc!r}") from exc
        self._other_tables = data
        entries = self._journal.replay()
        for number, entry in enumerate(entries, start=1):
            self._apply(entry, number)
        if entries or not existed:
            self._compact()

    def _apply(self, entry: Entry, number: int) -> None:
        try:
            if entry["op"] == "put":
                self._remember(RoomRecord.from_row(entry["row"]), int(entry["doc"]))
            elif entry["op"] == "del":
                self._docs.pop(entry["id"], None)
                self._doc_ids.pop(entry["id"], None)
                self._index.pop(entry["id"])
                self._stats.pop(entry["id"], None)
            elif entry["op"] == "stats":
                self._stats[str(entry["id"])] = RoomStats(int(entry["likes"]), bool(entry["mute"]))
            elif entry["op"] == "used":
                self._used[str(entry["token"])] = int(entry["exp"])
            else:
                raise ValueError(f"unknown op {entry['op']!r}")
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise StorageError(f"the journal {self._journal.path} has a bad entry at line {number}: {exc!r}") from exc

    def _remember(self, record: RoomRecord, doc_id: int) -> None:
        self._docs[record.id] = record.to_row()
        self._doc_ids[record.id] = doc_id
        self._index.put(record)
        self._next_doc = max(self._next_doc, doc_id + 1)

    # -- durability hooks, called under the store's lock before the index changes --

    def _persist_put(self, record: RoomRecord) -> None:
        doc_id = self._doc_ids.get(record.id, self._next_doc)
        row = record.to_row()
        self._journal.append({"op": "put", "doc": doc_id, "row": row})
        self._docs[record.id] = row
        self._doc_ids[record.id] = doc_id
        self._next_doc = max(self._next_doc, doc_id + 1)
        self._maybe_compact()

    def _persist_delete(self, room_id: RoomId) -> None:
        self._journal.append({"op": "del", "id": room_id})
        del self._docs[room_id]
        del self._doc_ids[room_id]
        self._stats.pop(room_id, None)
        self._maybe_compact()

    def _persist_stats(self, room_id: RoomId, stats: RoomStats) -> None:
        # The whole new value, not the increment: replaying a line twice changes nothing.
        self._journal.append({"op": "stats", "id": room_id, "likes": stats.likes, "mute": stats.muted})
        self._stats[room_id] = stats  # before a compaction, which snapshots memory and empties the journal
        self._maybe_compact()

    def _persist_used(self, token_id: str, expires_at: int) -> None:
        self._journal.append({"op": "used", "token": token_id, "exp": expires_at})
        self._used[token_id] = expires_at
        self._maybe_compact()

    def _maybe_compact(self) -> None:
        if self._journal.entries <= max(self._compact_after, len(self._docs)):
            return
        try:
            self._compact()
        except (StorageError, OSError) as exc:
            # The write itself is already durable in the journal; a later write retries this.
            _log.warning("could not compact %s, the journal keeps growing: %s", self.path, exc)

    def _compact(self) -> None:
        docs = {str(self._doc_ids[room_id]): row for room_id, row in self._docs.items()}
        stats = {
            str(n): {"room_id": room_id, "like_count": s.likes, "mute": s.muted}
            for n, (room_id, s) in enumerate(self._stats.items(), start=1)
        }
        used = {str(n): {"token_id": t, "expires_at": exp} for n, (t, exp) in enumerate(self._used.items(), start=1)}
        self._db.storage.write({**self._other_tables, TABLE: docs, STATS_TABLE: stats, USED_TOKENS_TABLE: used})
        self._journal.clear()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                if self._journal.entries:
                    self._compact()
            finally:
                self._closed = True
                self._journal.close()
                self._db.close()
                self._release()

    def _release(self) -> None:
        with _OPEN_LOCK:
            if _OPEN.get(self.path) is self:
                del _OPEN[self.path]

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"rooms={len(self._index)}"
        return f"TinyDBStore({str(self.path)!r}, {state})"


def _check_folder(path: Path) -> None:
    """Refuse a file whose folder is missing or not writable: a typo in a path must not create folders."""
    folder = path.parent
    if not folder.is_dir():
        raise StorageError(f"cannot keep rooms in {path}: the folder {folder} does not exist (create it first, or use storage='memory')")
    if not os.access(folder, os.W_OK):
        raise StorageError(f"cannot keep rooms in {path}: the folder {folder} is not writable (choose another path, or use storage='memory')")
