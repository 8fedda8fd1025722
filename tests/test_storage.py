"""The room store contract, run on every engine; then what only the TinyDB store promises; then open_store."""

from __future__ import annotations

import gc
import json
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from tinydb import TinyDB

from livekit_demo.exceptions import StorageError
from livekit_demo.models import Mode, RoomRecord, RoomStatus
from livekit_demo.settings import Settings
from livekit_demo.storage import DuplicateRoom, MemoryStore, RoomStore, TinyDBStore, open_store
from livekit_demo.storage.base import RoomStats

T0 = datetime(2026, 11, 28, 10, 15, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parents[1]


def room(n: int, *, age: int | None = None, status: int = 0, **columns: object) -> RoomRecord:
    """Room number `n`, created `age` seconds after T0 (default: `n`)."""
    created = T0 + timedelta(seconds=n if age is None else age)
    values: dict[str, object] = {"title": f"room {n}", "created_at": created, "updated_at": created, "status": status}
    return RoomRecord(id=f"{n:032x}", **{**values, **columns})  # type: ignore[arg-type]


def ids(records: list[RoomRecord]) -> list[int]:
    return [int(r.id, 16) for r in records]


# -- the contract ----------------------------------------------------------------------------------


def test_store_satisfies_the_protocol(store: RoomStore) -> None:
    assert isinstance(store, RoomStore)
    assert store.kind in ("memory", "tinydb", "sqlite", "mysql", "postgresql")


def test_insert_then_get_keeps_every_column(store: RoomStore) -> None:
    record = RoomRecord(
        id="0190f1a2b3c4d5e6f708192a3b4c5d6e", created_at=T0, updated_at=T0 + timedelta(seconds=5),
        title="Évening show 直播", anchor="ann", extends='{"userNick":"Ann"}', status=3, mode=1,
        chat_id="0190f1a2b3c4d5e6f708192a3b4c5d6e", pk_id="pk", notice="hi", meeting_id="m-1",
        cover_url="https://example.com/c.png", anchor_id="ann", anchor_nick="Ann", vod_id="v",
        meeting_info='{"members":[]}', started_at=T0 + timedelta(seconds=9), stopped_at=None,
    )  # fmt: skip
    store.insert(record)
    assert store.get(record.id) == record
    assert store.get("no-such-room") is None


def test_insert_of_an_existing_id_is_refused_and_keeps_the_first(store: RoomStore) -> None:
    store.insert(room(1))
    with pytest.raises(DuplicateRoom):
        store.insert(room(1, title="impostor"))
    assert store.get(room(1).id) == room(1)
    assert store.count() == 1


def test_delete_answers_the_room_as_it_was_then_it_is_gone(store: RoomStore) -> None:
    store.insert(room(1))
    store.insert(room(2))
    assert store.delete(room(1).id) == room(1)
    assert store.get(room(1).id) is None
    assert store.delete(room(1).id) is None
    assert ids(store.list()) == [2]
    assert store.count() == 1


def test_clear_removes_every_room_and_its_stats_and_keeps_the_secret(store: RoomStore) -> None:
    secret = store.load_secret(lambda: "s" * 40)
    for n in (1, 2, 3):
        store.insert(room(n))
    store.add_likes(room(1).id, 5)
    assert store.clear() == 3
    assert store.count() == 0 and store.list() == [] and store.get(room(2).id) is None
    assert store.stats([room(1).id]) == {}
    assert store.load_secret(lambda: "other" * 10) == secret
    assert store.clear() == 0
    store.insert(room(2))  # the store is still usable
    assert ids(store.list()) == [2]


def test_clear_is_durable(path: Path) -> None:
    with TinyDBStore(path) as store:
        store.insert(room(1))
        store.insert(room(2))
        store.clear()
        store.insert(room(3))
    with TinyDBStore(path) as store:
        assert ids(store.list()) == [3]


def test_records_handed_in_and_out_are_copies(store: RoomStore) -> None:
    original = room(1)
    store.insert(original)
    original.title = "changed after insert"
    fetched = store.get(original.id)
    assert fetched is not None
    fetched.title = "changed after get"
    store.list()[0].title = "changed after list"
    seen: list[RoomRecord] = []

    def change(record: RoomRecord) -> RoomRecord:
        seen.append(record)
        return record.copy(notice="new")

    updated = store.update(original.id, change)
    assert updated is not None
    updated.title = "changed after update"
    seen[0].title = "changed the record given to change"
    assert store.get(original.id) == room(1, notice="new")


def test_update_applies_the_change_and_answers_the_new_record(store: RoomStore) -> None:
    store.insert(room(1))
    later = T0 + timedelta(minutes=1)
    updated = store.update(room(1).id, lambda r: r.copy(status=1, started_at=later, updated_at=later))
    assert updated == room(1, status=1, started_at=later, updated_at=later)
    assert store.get(room(1).id) == updated


def test_update_of_an_unknown_room_answers_none_without_calling_change(store: RoomStore) -> None:
    calls: list[RoomRecord] = []
    assert store.update("no-such-room", lambda r: calls.append(r) or r) is None  # type: ignore[func-returns-value]
    assert calls == []


def test_update_whose_change_raises_changes_nothing(store: RoomStore) -> None:
    store.insert(room(1))

    def change(record: RoomRecord) -> RoomRecord:
        record.title = "half done"
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        store.update(room(1).id, change)
    assert store.get(room(1).id) == room(1)


def test_update_answering_the_same_object_writes_nothing(store: RoomStore) -> None:
    store.insert(room(1))

    def change(record: RoomRecord) -> RoomRecord:
        record.title = "mutated in place"  # same object back means "no change", mutation or not
        return record

    assert store.update(room(1).id, change) == room(1)
    assert store.get(room(1).id) == room(1)


def test_the_revision_moves_with_every_change_of_a_room_and_only_then(store: RoomStore) -> None:
    revision = store.revision()
    if store.kind in ("sqlite", "mysql", "postgresql"):
        store.insert(room(1))
        assert revision is None and store.revision() is None  # other processes write there: it cannot tell
        return
    seen = [revision]

    def moved() -> bool:
        seen.append(store.revision())
        return seen[-1] != seen[-2]

    store.insert(room(1))
    assert moved()
    store.add_likes(room(1).id, 3)
    store.set_muted(room(1).id, True)
    store.update(room(1).id, lambda record: record)  # no change
    assert store.get(room(1).id) is not None and store.list() and not moved()
    store.update(room(1).id, lambda record: record.copy(title="new"))
    assert moved()
    store.delete(room(1).id)
    assert moved()
    store.insert(room(2))
    assert moved() and store.clear() == 1 and moved()


def test_list_is_newest_first_and_ids_break_ties(store: RoomStore) -> None:
    for n, age in [(1, 10), (5, 20), (3, 20), (4, 20), (2, 5), (6, 30)]:
        store.insert(room(n, age=age))
    assert ids(store.list(limit=100)) == [6, 5, 4, 3, 1, 2]


def test_list_follows_updates_of_created_at_and_status(store: RoomStore) -> None:
    for n in (1, 2, 3):
        store.insert(room(n))
    store.update(room(1).id, lambda r: r.copy(created_at=T0 + timedelta(hours=1), status=2))
    assert ids(store.list()) == [1, 3, 2]
    assert ids(store.list(status=2)) == [1]
    assert ids(store.list(status=0)) == [3, 2]


def test_list_filters_by_status(store: RoomStore) -> None:
    statuses = {1: 0, 2: 1, 3: 2, 4: 1, 5: 3, 6: 1}
    for n, status in statuses.items():
        store.insert(room(n, status=status))
    assert ids(store.list(status=1)) == [6, 4, 2]
    assert ids(store.list(status=3)) == [5]
    assert store.list(status=0) == [room(1)]
    assert ids(store.list(status=None)) == [6, 5, 4, 3, 2, 1]


def test_list_pages_by_offset_and_limit(store: RoomStore) -> None:
    for n in range(1, 8):
        store.insert(room(n, status=n % 2))
    assert ids(store.list(offset=0, limit=3)) == [7, 6, 5]
    assert ids(store.list(offset=3, limit=3)) == [4, 3, 2]
    assert ids(store.list(offset=6, limit=3)) == [1]
    assert store.list(offset=7, limit=3) == []
    assert store.list(offset=100, limit=3) == []
    assert store.list(offset=10**30, limit=3) == []  # past any real table, and past a 64-bit OFFSET
    assert ids(store.list(status=1, offset=1, limit=2)) == [5, 3]
    assert store.list(status=1, offset=4, limit=2) == []


def test_count_counts_all_or_one_status(store: RoomStore) -> None:
    assert store.count() == 0
    for n in range(1, 6):
        store.insert(room(n, status=1 if n <= 2 else 0))
    assert store.count() == 5
    assert store.count(status=1) == 2
    assert store.count(status=0) == 3
    assert store.count(status=3) == 0


def test_load_secret_makes_one_and_keeps_it(store: RoomStore) -> None:
    made: list[str] = []

    def make() -> str:
        made.append(f"secret-{len(made)}-" + "x" * 40)
        return made[-1]

    first = store.load_secret(make)
    assert first == made[0]
    assert store.load_secret(make) == first
    assert len(made) == 1


def _in_threads(threads: int, body: Callable[[], None]) -> None:
    """Run `body` in `threads` threads released at once; every exception they raise fails the test."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            body()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []


def test_concurrent_updates_lose_nothing(store: RoomStore) -> None:
    store.insert(room(1, title="0"))
    threads, rounds = 8, 25

    def increment(record: RoomRecord) -> RoomRecord:
        value = int(record.title)
        time.sleep(0)  # invite a thread switch between read and write
        return record.copy(title=str(value + 1))

    def body() -> None:
        for _ in range(rounds):
            store.update(room(1).id, increment)

    _in_threads(threads, body)
    assert store.get(room(1).id).title == str(threads * rounds)  # type: ignore[union-attr]


def test_likes_and_mute_are_kept_beside_the_room_never_in_it(store: RoomStore) -> None:
    store.insert(room(1))
    store.insert(room(2))
    assert store.stats([room(1).id, room(2).id]) == {}  # nothing kept until a like or a mute
    assert store.add_likes(room(1).id, 3) == 3
    assert store.add_likes(room(1).id, 1000) == 1003
    assert store.set_muted(room(2).id, True) is True
    assert store.set_muted(room(2).id, True) is True  # muting a muted room is fine
    assert store.stats([room(1).id, room(2).id, "no-such-room"]) == {
        room(1).id: RoomStats(likes=1003, muted=False),
        room(2).id: RoomStats(likes=0, muted=True),
    }
    assert store.set_muted(room(2).id, False) is True
    assert store.stats([room(2).id]) == {room(2).id: RoomStats(0, False)}
    assert store.get(room(1).id) == room(1) and store.get(room(2).id) == room(2)  # the records are untouched
    # An unknown room keeps nothing.
    assert store.add_likes("no-such-room", 5) is None
    assert store.set_muted("no-such-room", True) is False
    assert store.stats(["no-such-room"]) == {}


def test_delete_forgets_likes_and_mute(store: RoomStore) -> None:
    store.insert(room(1))
    store.add_likes(room(1).id, 7)
    store.set_muted(room(1).id, True)
    store.delete(room(1).id)
    assert store.stats([room(1).id]) == {}
    store.insert(room(1))  # the same id again starts from nothing
    assert store.stats([room(1).id]) == {}
    assert store.add_likes(room(1).id, 1) == 1


def test_concurrent_likes_lose_nothing(store: RoomStore) -> None:
    store.insert(room(1))
    threads, rounds = 6, 15
    totals: list[int] = []
    _in_threads(threads, lambda: totals.extend(store.add_likes(room(1).id, 2) or 0 for _ in range(rounds)))
    assert store.stats([room(1).id])[room(1).id].likes == threads * rounds * 2
    assert sorted(totals) == list(range(2, threads * rounds * 2 + 1, 2))  # every caller saw its own total


def test_a_one_time_token_is_used_once(store: RoomStore) -> None:
    assert store.use_token("jti-a", expires_at=1000, now=500) is True
    assert store.use_token("jti-a", expires_at=1000, now=600) is False
    assert store.use_token("jti-b", expires_at=1000, now=600) is True
    # Past its expiry an entry may be forgotten; one that is still valid never is.
    assert store.use_token("jti-c", expires_at=3000, now=2000) is True
    assert store.use_token("jti-c", expires_at=3000, now=2001) is False


# -- what the stores that keep rooms in memory promise ----------------------------------------------


@pytest.mark.parametrize("engine", ["memory", "tinydb"])
def test_rooms_kept_in_memory_leave_the_garbage_collector_nothing_to_walk(engine: str, tmp_path: Path) -> None:
    """Every stored room used to be objects CPython's collector walks on each full collection (a
    server with a million rooms paused for half a second); rows of plain values are not tracked."""
    store = MemoryStore() if engine == "memory" else TinyDBStore(tmp_path / "rooms.json")
    with store:
        gc.collect()
        before = len(gc.get_objects())
        for n in range(500):
            # The enums too, as a caller may hand them in: the store keeps them as plain ints.
            store.insert(room(n, status=RoomStatus.LIVE, mode=Mode.LINK))
        for n in range(0, 500, 2):
            store.update(f"{n:032x}", lambda r: r.copy(status=RoomStatus.ENDED, title="ended"))
        store.delete(f"{499:032x}")
        gc.collect()
        assert len(gc.get_objects()) - before < 50  # not one or more per room
        assert store.get(f"{2:032x}") == room(2, status=2, mode=1, title="ended")
        assert [(r.status, type(r.status)) for r in store.list(status=RoomStatus.LIVE, limit=2)] == [(1, int), (1, int)]
        assert store.count(status=RoomStatus.ENDED) == 250 and store.count(anchor="", status=1) == 249


# -- what only the TinyDB store promises ------------------------------------------------------------

CRASHING_WRITER = """
import os, signal, sys
from datetime import datetime, timedelta, timezone
from livekit_demo.models import RoomRecord
from livekit_demo.storage import TinyDBStore

T0 = datetime(2026, 11, 28, 10, 15, tzinfo=timezone.utc)

def room(n, **columns):
    created = T0 + timedelta(seconds=n)
    values = {"title": f"room {n}", "created_at": created, "updated_at": created, **columns}
    return RoomRecord(id=f"{n:032x}", **values)

store = TinyDBStore(sys.argv[1])
"""


def run_python(script: str, path: Path) -> subprocess.CompletedProcess[str]:
    """`script` in another process, with `path` as its argument."""
    return subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO, capture_output=True, text=True, timeout=60)


def run_then_kill(path: Path, writes: str) -> None:
    """Run `writes` (with `store` and `room` at hand) in another process, then kill it without closing."""
    done = run_python(CRASHING_WRITER + textwrap.dedent(writes) + "\nos.kill(os.getpid(), signal.SIGKILL)\n", path)
    assert done.returncode == -signal.SIGKILL, done.stderr


def journal_of(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def rooms_in_file(path: Path) -> dict[str, dict[str, object]]:
    """The rooms as plain TinyDB reads them, by room id."""
    with TinyDB(path, access_mode="r") as db:
        return {doc["id"]: dict(doc) for doc in db.table("room_infos").all()}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "rooms.json"


def test_reopen_after_close_keeps_everything(path: Path) -> None:
    with TinyDBStore(path) as store:
        for n in (1, 2, 3):
            store.insert(room(n))
        store.update(room(2).id, lambda r: r.copy(status=1, title="live now"))
        store.delete(room(3).id)
        secret = store.load_secret(lambda: "s" * 40)
    with TinyDBStore(path) as store:
        assert store.list() == [room(2, status=1, title="live now"), room(1)]
        assert store.load_secret(lambda: "another") == secret


def test_acknowledged_writes_survive_kill_9(path: Path) -> None:
    run_then_kill(
        path,
        """
        for n in (1, 2, 3):
            store.insert(room(n))
        store.update(room(1).id, lambda r: r.copy(title="renamed"))
        store.delete(room(2).id)
        """,
    )
    assert journal_of(path).read_text().count("\n") == 5
    with TinyDBStore(path) as store:
        assert store.list() == [room(3), room(1, title="renamed")]
        assert journal_of(path).stat().st_size == 0, "replayed entries are folded into the snapshot at open"
    assert set(rooms_in_file(path)) == {room(1).id, room(3).id}


def test_likes_mute_and_used_tokens_survive_kill_9_and_compaction(path: Path) -> None:
    run_then_kill(
        path,
        """
        for n in (1, 2):
            store.insert(room(n))
        store.add_likes(room(1).id, 4)
        store.add_likes(room(1).id, 5)
        store.set_muted(room(2).id, True)
        store.use_token("jti-1", 10**10, 0)
        store.add_likes(room(2).id, 1)
        store.delete(room(2).id)
        """,
    )
    with TinyDBStore(path) as store:
        assert store.stats([room(1).id, room(2).id]) == {room(1).id: RoomStats(9, False)}
        assert store.use_token("jti-1", 10**10, 0) is False
    # Folded into the snapshot: tables of ours beside room_infos, rooms' documents untouched.
    with TinyDB(path, access_mode="r") as db:
        assert [dict(d) for d in db.table("livekit_demo_room_stats").all()] == [{"room_id": room(1).id, "like_count": 9, "mute": False}]
        assert [d["token_id"] for d in db.table("livekit_demo_used_tokens").all()] == ["jti-1"]
        assert all(set(d) == set(room(1).to_row()) for d in db.table("room_infos").all())
    with TinyDBStore(path, compact_after=1) as store:
        store.set_muted(room(1).id, True)  # a compaction right after the journal line keeps it
        store.add_likes(room(1).id, 1)
    with TinyDBStore(path) as store:
        assert store.stats([room(1).id]) == {room(1).id: RoomStats(10, True)}


def test_a_torn_last_journal_line_is_ignored(path: Path) -> None:
    torn = '{"op":"put","doc":9,"row":{"id":"torn'  # a crash in the middle of a write
    run_then_kill(path, "store.insert(room(1))")
    with journal_of(path).open("a") as journal:
        journal.write(torn)
    TinyDBStore(path).close()
    journal_of(path).write_text(torn)  # torn alone: a crash in the first write after a snapshot
    with TinyDBStore(path) as store:
        assert store.list() == [room(1)]
        store.insert(room(2))
        entries = [json.loads(line) for line in journal_of(path).read_text().splitlines()]
        assert [e["row"]["id"] for e in entries] == [room(2).id], "the fragment is cut off, not written after"
    with TinyDBStore(path) as store:
        assert ids(store.list()) == [2, 1]


def test_a_damaged_journal_line_before_the_last_is_an_error(path: Path) -> None:
    run_then_kill(path, "store.insert(room(1)); store.insert(room(2))")
    lines = journal_of(path).read_text().splitlines(keepends=True)
    journal_of(path).write_text("garbage\n" + lines[1])
    with pytest.raises(StorageError, match=r"journal .*line 1"):
        TinyDBStore(path)


def test_the_journal_is_folded_into_the_snapshot_as_it_grows(path: Path) -> None:
    with TinyDBStore(path, compact_after=5) as store:
        for n in (1, 2, 3):
            store.insert(room(n))
        for step in range(10):
            store.update(room(1).id, lambda r, step=step: r.copy(title=f"take {step}"))
        assert journal_of(path).read_text().count("\n") <= 5
        assert rooms_in_file(path)[room(1).id]["title"] in {f"take {s}" for s in range(5, 10)}
    assert rooms_in_file(path)[room(1).id]["title"] == "take 9"


def test_the_file_is_a_tinydb_database_of_rows(path: Path) -> None:
    with TinyDBStore(path) as store:
        assert rooms_in_file(path) == {}, "a new store leaves a valid, empty database at once"
        store.insert(room(1, extends='{"userNick":"Ann"}'))
        store.insert(room(2, status=1))
    assert rooms_in_file(path) == {room(1).id: room(1, extends='{"userNick":"Ann"}').to_row(), room(2).id: room(2, status=1).to_row()}
    assert not list(path.parent.glob("*.tmp")), "no temporary file is left behind"


def test_a_file_made_by_plain_tinydb_loads_and_keeps_its_other_tables(path: Path) -> None:
    with TinyDB(path) as db:
        db.table("room_infos").insert(room(1).to_row())
        db.table("room_infos").insert(room(2).to_row())
        db.insert({"note": "not ours"})
    with TinyDBStore(path) as store:
        assert ids(store.list()) == [2, 1]
        store.insert(room(3))
    with TinyDB(path, access_mode="r") as db:
        assert db.all() == [{"note": "not ours"}]
        assert len(db.table("room_infos")) == 3


def test_a_corrupt_file_is_an_error_and_stays_as_it_was(path: Path) -> None:
    path.write_text('{"room_infos": {"1": {"id": "abc"')
    with pytest.raises(StorageError, match="does not parse") as caught:
        TinyDBStore(path)
    assert str(path) in str(caught.value)
    assert path.read_text() == '{"room_infos": {"1": {"id": "abc"'
    TinyDBStore(path.with_name("other.json")).close()  # the failed open left nothing locked behind


def test_a_second_open_in_the_process_is_refused_until_close(path: Path) -> None:
    store = TinyDBStore(path)
    with pytest.raises(StorageError, match="already open in this process"):
        TinyDBStore(path.parent / "." / path.name)
    store.close()
    TinyDBStore(path).close()


def test_another_process_is_refused(path: Path) -> None:
    with TinyDBStore(path):
        done = run_python("import sys\nfrom livekit_demo.storage import TinyDBStore\nTinyDBStore(sys.argv[1])", path)
    assert done.returncode == 1
    assert "in use by another process" in done.stderr


def test_an_update_that_changes_nothing_writes_no_journal_line(path: Path) -> None:
    with TinyDBStore(path) as store:
        store.insert(room(1))
        size = journal_of(path).stat().st_size
        store.update(room(1).id, lambda r: r)
        assert journal_of(path).stat().st_size == size
        store.update(room(1).id, lambda r: r.copy(title="x"))
        assert journal_of(path).stat().st_size > size


def test_reads_never_touch_the_files(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    with TinyDBStore(path) as store:
        for n in (1, 2):
            store.insert(room(n))

        def no_file(*args: object, **kwargs: object) -> None:
            raise AssertionError("a read opened a file")

        with monkeypatch.context() as patched:
            patched.setattr(builtins, "open", no_file)
            patched.setattr(Path, "read_text", no_file)
            patched.setattr(Path, "read_bytes", no_file)
            patched.setattr("json.loads", no_file)
            assert store.get(room(1).id) == room(1)
            assert ids(store.list()) == [2, 1] and store.count() == 2


def test_the_snapshot_is_written_to_a_temporary_file_fsynced_then_replaced(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from livekit_demo.storage import _files

    steps: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(_files.os, "fsync", lambda fd: (steps.append(("fsync", fd)), real_fsync(fd))[1])
    monkeypatch.setattr(_files.os, "replace", lambda src, dst: (steps.append(("replace", (Path(src), Path(dst)))), real_replace(src, dst))[1])
    with TinyDBStore(path) as store:
        steps.clear()
        store.insert(room(1))
    # close() folds the journal into a new snapshot: fsync of the temporary file, then os.replace onto the file
    kinds = [kind for kind, _ in steps]
    assert "replace" in kinds and "fsync" in kinds[: kinds.index("replace")]
    src, dst = next(arg for kind, arg in steps if kind == "replace")  # type: ignore[misc]
    assert dst == path and src != path and src.parent == path.parent and not src.exists()
    assert set(rooms_in_file(path)) == {room(1).id}


def test_the_secret_file_is_owner_only_and_kept(path: Path) -> None:
    with TinyDBStore(path) as store:
        secret = store.load_secret(lambda: "k" * 40)
    secret_file = path.with_name("rooms.json.secret")
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret_file.read_text() == secret == "k" * 40


# -- open_store -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "none"])
def test_open_store_memory(kind: str) -> None:
    store = open_store(Settings.build(env={}, storage=kind))
    assert isinstance(store, MemoryStore)
    store.close()


def test_open_store_tinydb_refuses_a_missing_folder_and_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "rooms.json"
    with pytest.raises(StorageError, match=r"the folder .*/a/b does not exist \(create it first"):
        open_store(Settings.build(env={}, storage=str(target)))
    assert list(tmp_path.iterdir()) == []  # no folder, no journal, no secret


def test_open_store_tinydb_in_an_unusable_folder_says_so_in_one_line() -> None:
    with pytest.raises(StorageError, match=r"^cannot keep rooms in /proc/x/rooms.json: the folder /proc/x does not exist"):
        open_store(Settings.build(env={}, storage="/proc/x/rooms.json"))


def test_open_store_tinydb_honours_secret_file(tmp_path: Path) -> None:
    target = tmp_path / "rooms.json"
    secret_file = tmp_path / "keys" / "jwt.secret"
    store = open_store(Settings.build(env={}, storage=str(target), auth={"secret_file": str(secret_file)}))
    try:
        assert isinstance(store, TinyDBStore)
        assert target.exists()
        assert store.load_secret(lambda: "z" * 40) == secret_file.read_text()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("kind", "url", "extra"),
    [
        ("mysql", "user:pass@tcp(127.0.0.1:3306)/live?charset=utf8mb4&parseTime=True&loc=Local", "mysql"),
        ("postgresql", "postgresql://user@127.0.0.1/live", "postgresql"),
        ("sqlite", "sqlite:///rooms.db", "sqlite"),
        ("sql", "postgres://user@127.0.0.1/live", "postgresql"),
    ],
)
def test_open_store_sql_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch, kind: str, url: str, extra: str) -> None:
    monkeypatch.setitem(sys.modules, "livekit_demo.storage.sql", None)  # as if the SQL side were missing
    with pytest.raises(StorageError, match=rf'pip install "livekit_demo\[{extra}\]"'):
        open_store(Settings.build(env={}, storage={"type": kind, "url": url}))


def test_get_by_meeting_matches_the_meeting_id_exactly(store: RoomStore) -> None:
    store.insert(room(1, meeting_id="Mtg-1", mode=1))
    store.insert(room(2, meeting_id="mtg-12", mode=1))
    store.insert(room(3))  # mode 0: meeting_id ""
    found = store.get_by_meeting("Mtg-1")
    assert found is not None and found.id == room(1).id
    assert store.get_by_meeting("mtg-1") is None  # not case-folded, even where the collation would
    assert store.get_by_meeting("Mtg-1 ") is None
    assert store.get_by_meeting("Mtg") is None
    assert store.get_by_meeting("") is None  # every mode 0 room has "": it names none of them
    found.title = "changed"
    assert store.get_by_meeting("Mtg-1").title == "room 1"  # a copy, as get hands out
