"""What only the SQL store promises: addresses (URLs and the Go DSN), the contract's DDL, tables the
Go server made, and agreement between separate engines and separate processes on one database.

The behaviour every engine shares is in test_storage.py; this file runs against the real servers
(see sql_databases.py for where they are and when their tests skip).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import traceback
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pytest

from livekit_demo.exceptions import StorageError
from livekit_demo.models import RoomRecord
from livekit_demo.settings import Settings, StorageSettings
from livekit_demo.storage import sql as sql_module
from livekit_demo.storage.sql import ACCEPTED_FORMS, SqlStore, database_url

from sql_databases import SQL_KINDS, connect, fresh_database_url

# contract/room_infos.sql, which the package ships verbatim; run as an operator would run it.
CONTRACT_DDL = resources.files("livekit_demo.storage").joinpath("room_infos.sql").read_text(encoding="utf-8")
SECRET = "Pa$$:w@rd/?#%"  # a password with every character a DSN or URL treats specially
# Every SQL engine; the servers' params carry their marker (-m "not mysql" leaves MariaDB out).
SERVERS = [pytest.param(k, marks=getattr(pytest.mark, k)) if k != "sqlite" else k for k in SQL_KINDS]


def _rendered(address: str) -> str:
    return database_url(address).render_as_string(hide_password=False)


def _whole_error(exc: BaseException) -> str:
    """The error as a traceback would show it, causes included: nothing in it may leak the password."""
    return "".join(traceback.format_exception(exc))


# -- addresses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "url"),
    [
        (
            "root:pw@tcp(db.local:3306)/live?charset=utf8mb4&parseTime=True&loc=Local",
            "mysql+pymysql://root:pw@db.local:3306/live?charset=utf8mb4",
        ),
        ("root@tcp(db.local:3306)/live", "mysql+pymysql://root@db.local:3306/live?charset=utf8mb4"),
        ("root:pw@tcp(db.local)/live", "mysql+pymysql://root:pw@db.local:3306/live?charset=utf8mb4"),
        ("root:pw@tcp/live", "mysql+pymysql://root:pw@127.0.0.1:3306/live?charset=utf8mb4"),
        ("/live", "mysql+pymysql://127.0.0.1:3306/live?charset=utf8mb4"),
        ("root:pw@tcp([::1]:3307)/live", "mysql+pymysql://root:pw@[::1]:3307/live?charset=utf8mb4"),
        (
            "root:pw@unix(/run/mysqld/mysqld.sock)/live",
            "mysql+pymysql://root:pw@localhost/live?charset=utf8mb4&unix_socket=%2Frun%2Fmysqld%2Fmysqld.sock",
        ),
        (
            "root:pw@tcp(h:3306)/live?charset=utf8mb4,utf8&timeout=1m30s&readTimeout=500ms",
            "mysql+pymysql://root:pw@h:3306/live?charset=utf8mb4&connect_timeout=90&read_timeout=1",
        ),
        # The Go driver takes the password raw, up to the last '@' before the last '/': we escape it.
        (f"root:{SECRET}@tcp(h:3306)/live", "mysql+pymysql://root:Pa%24%24%3Aw%40rd%2F%3F%23%25@h:3306/live?charset=utf8mb4"),
    ],
)
def test_the_original_go_dsn_is_accepted_as_is(dsn: str, url: str) -> None:
    assert _rendered(dsn) == url


def test_an_escaped_password_reaches_the_driver_unchanged() -> None:
    assert database_url(f"root:{SECRET}@tcp(h:3306)/live").password == SECRET
    assert database_url(f"user:{SECRET}@tcp(h)/live").username == "user"


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("mysql://u:p@h:3306/db", "mysql+pymysql://u:p@h:3306/db?charset=utf8mb4"),
        ("mysql+pymysql://u:p@h/db?charset=latin1", "mysql+pymysql://u:p@h/db?charset=latin1"),
        ("mariadb://u@h/db", "mysql+pymysql://u@h/db?charset=utf8mb4"),
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///rooms.db", "sqlite:///rooms.db"),
        ("sqlite:////var/lib/rooms.db", "sqlite:////var/lib/rooms.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_sqlalchemy_urls_get_our_drivers(given: str, url: str) -> None:
    assert _rendered(given) == url


@pytest.mark.parametrize(
    "address",
    [
        f"oracle://scott:{SECRET}@h/db",
        f"mysql+mysqldb://root:{SECRET}@h/db",
        f"postgresql+psycopg2://root:{SECRET}@h/db",
        f"http://root:{SECRET}@h/db",
        f"root:{SECRET}@tcp(h:99999)/db",
        f"root:{SECRET}@tcp(h:3306)/",
        f"root:{SECRET}@udp(h:3306)/db",
        f"root:{SECRET}@tcp(h:3306)/db?tls=true",
        f"root:{SECRET}@tcp(h:3306)/db?timeout=soon",
        f"root:{SECRET}@tcp(h:3306)",
        "rooms.json",
    ],
)
def test_other_addresses_are_refused_with_the_accepted_forms_and_no_password(address: str) -> None:
    with pytest.raises(StorageError) as caught:
        SqlStore(address)
    for form in ACCEPTED_FORMS:
        assert form in str(caught.value)
    assert SECRET not in _whole_error(caught.value)
    assert "Pa$$" not in _whole_error(caught.value)


@pytest.mark.parametrize("address", [f"mysql://root:{SECRET}@127.0.0.1:1/test", f"postgresql://root:{SECRET}@127.0.0.1:1/test"])
def test_an_unreachable_server_is_a_storage_error_without_the_password(address: str) -> None:
    with pytest.raises(StorageError) as caught:
        SqlStore(address)
    assert "database error" in str(caught.value)
    assert "Pa$$" not in _whole_error(caught.value)
    assert "Pa%24%24" not in _whole_error(caught.value)


@pytest.mark.parametrize(("address", "extra", "driver"), [("mysql://u@h/db", "mysql", "pymysql"), ("postgresql://u@h/db", "postgresql", "psycopg")])
def test_a_missing_driver_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, address: str, extra: str, driver: str
) -> None:
    monkeypatch.setitem(sys.modules, driver, None)  # makes `import driver` fail as if not installed
    with pytest.raises(StorageError, match=rf'pip install "livekit_demo\[{extra}\]"'):
        SqlStore(address)


def test_missing_sqlalchemy_names_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_module, "sa", None)
    with pytest.raises(StorageError, match=r'pip install "livekit_demo\[mysql\]"'):
        SqlStore("sqlite://")


def test_from_settings_opens_the_url_and_checks_the_type(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rooms.db'}"
    with SqlStore.from_settings(Settings.build(env={}, storage=url)) as store:
        assert store.kind == "sqlite"
        assert repr(store) == f"SqlStore({url!r})"
    with pytest.raises(StorageError, match="does not match"):
        SqlStore.from_settings(StorageSettings(type="postgresql", url=url))


def test_repr_hides_the_password(tmp_path: Path) -> None:
    assert "Pa$$" not in repr(database_url(f"root:{SECRET}@tcp(h)/db"))


# -- the table -------------------------------------------------------------------------------------


def _show_create(conn: object) -> str:
    return str(conn.exec_driver_sql("SHOW CREATE TABLE room_infos").one()[1])  # type: ignore[attr-defined]


@pytest.mark.mysql
def test_mysql_table_is_exactly_the_contract_ddl(tmp_path: Path) -> None:
    url = fresh_database_url("mysql", tmp_path)
    SqlStore(url).close()
    with connect(url) as conn:
        ours = _show_create(conn)
        conn.exec_driver_sql("DROP TABLE room_infos")
        conn.exec_driver_sql(CONTRACT_DDL)
        contract = _show_create(conn)
        columns = conn.exec_driver_sql(
            "SELECT column_name, column_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema = DATABASE() AND table_name = 'room_infos' ORDER BY ordinal_position"
        ).all()
        keys = conn.exec_driver_sql(
            "SELECT index_name, column_name FROM information_schema.statistics"
            " WHERE table_schema = DATABASE() AND table_name = 'room_infos' ORDER BY index_name, seq_in_index"
        ).all()
    assert ours == contract
    assert [tuple(c) for c in columns][:7] == [
        ("id", "varchar(256)", "NO"),
        ("created_at", "datetime", "YES"),
        ("updated_at", "datetime", "YES"),
        ("title", "varchar(256)", "YES"),
        ("anchor", "varchar(256)", "YES"),
        ("extends", "mediumtext", "YES"),
        ("status", "bigint(20)", "YES"),
    ]
    assert len(columns) == 19
    assert [tuple(k) for k in keys] == [("idx_create_at", "created_at"), ("PRIMARY", "id")]


@pytest.mark.postgresql
def test_postgresql_table_has_the_equivalent_types_and_indexes(tmp_path: Path) -> None:
    url = fresh_database_url("postgresql", tmp_path)
    SqlStore(url).close()
    with connect(url) as conn:
        types = dict(
            conn.exec_driver_sql(
                "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns"
                " JOIN pg_attribute ON attrelid = 'room_infos'::regclass AND attname = column_name"
                " WHERE table_schema = current_schema() AND table_name = 'room_infos'"
            ).all()
        )
        indexes = dict(conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'room_infos'").all())
    assert types["id"] == types["title"] == "character varying(256)"
    assert types["created_at"] == "timestamp without time zone"
    assert types["extends"] == types["meeting_info"] == "text"
    assert types["status"] == types["mode"] == "bigint"
    assert len(types) == 19
    assert "(id)" in indexes["room_infos_pkey"]
    assert indexes["idx_create_at"].endswith("(created_at)")
    assert indexes["idx_create_at_id"].endswith("(created_at DESC NULLS LAST, id DESC)")


def test_sqlite_table_has_the_equivalent_types_and_indexes(tmp_path: Path) -> None:
    url = fresh_database_url("sqlite", tmp_path)
    SqlStore(url).close()
    with connect(url) as conn:
        columns = {row[1]: (row[2], row[5]) for row in conn.exec_driver_sql("PRAGMA table_info(room_infos)")}
        indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list(room_infos)")}
    assert columns["id"] == ("VARCHAR(256)", 1)
    assert columns["created_at"] == ("DATETIME", 0)
    assert columns["status"] == ("BIGINT", 0)
    assert {"idx_create_at", "idx_create_at_id"} <= indexes


@pytest.mark.mysql
def test_a_table_the_go_server_made_is_used_as_it_is(tmp_path: Path) -> None:
    url = fresh_database_url("mysql", tmp_path)
    with connect(url) as conn:
        conn.exec_driver_sql(CONTRACT_DDL)
        before = _show_create(conn)
        conn.exec_driver_sql("INSERT INTO room_infos (id) VALUES ('all-null')")
        # The Go driver writes an unset time.Time as the zero date; only a lax sql_mode accepts it.
        conn.exec_driver_sql("SET SESSION sql_mode = ''")
        conn.exec_driver_sql(
            "INSERT INTO room_infos (id, created_at, title, status, started_at, stopped_at)"
            " VALUES ('go-room', '2024-05-01 08:00:00', '直播', 1, '0000-00-00 00:00:00', '0000-00-00 00:00:00')"
        )
        conn.commit()
    with SqlStore(url) as store:
        assert store.get("all-null") == RoomRecord(id="all-null")
        go_room = store.get("go-room")
        assert go_room == RoomRecord(
            id="go-room", created_at=datetime(2024, 5, 1, 8, tzinfo=timezone.utc), title="直播", status=1
        )
        assert [r.id for r in store.list()] == ["go-room", "all-null"]
        assert store.count(status=0) == 1  # a NULL status reads as 0 (prepared) and filters as 0
        updated = store.update("all-null", lambda r: r.copy(title="named"))
        assert updated is not None and store.get("all-null") == updated
    with connect(url) as conn:
        assert _show_create(conn) == before


@pytest.mark.parametrize("kind", SERVERS)
def test_null_columns_read_back_sanely_and_sort_oldest(kind: str, tmp_path: Path) -> None:
    url = fresh_database_url(kind, tmp_path)
    with SqlStore(url) as store:
        with connect(url) as conn:
            conn.exec_driver_sql("INSERT INTO room_infos (id) VALUES ('zz-null')")
            conn.commit()
        store.insert(RoomRecord(id="a", created_at=datetime(2024, 1, 1, tzinfo=timezone.utc)))
        assert store.get("zz-null") == RoomRecord(id="zz-null")
        # Without a creation time a room counts as oldest, even where NULL sorts high (PostgreSQL).
        assert [r.id for r in store.list()] == ["a", "zz-null"]
        assert [r.id for r in store.list(status=0, offset=1)] == ["zz-null"]


def test_times_are_stored_as_utc_whole_seconds(tmp_path: Path) -> None:
    url = fresh_database_url("sqlite", tmp_path)
    local = timezone(timedelta(hours=8))
    with SqlStore(url) as store:
        store.insert(RoomRecord(id="r", created_at=datetime(2024, 1, 1, 8, 0, 0, 999_999, tzinfo=local)))
        assert store.get("r").created_at == datetime(2024, 1, 1, 0, 0, 0, tzinfo=timezone.utc)  # type: ignore[union-attr]
        with connect(url) as conn:
            assert conn.exec_driver_sql("SELECT created_at FROM room_infos").scalar_one() == "2024-01-01 00:00:00.000000"


# -- several stores, several processes -------------------------------------------------------------

ROUNDS = 25


def _increment(record: RoomRecord) -> RoomRecord:
    # The pause widens the read-modify-write window: without the row lock, updates would be lost.
    time.sleep(0.002)
    return record.copy(title=str(int(record.title) + 1))


@pytest.mark.parametrize("kind", SERVERS)
def test_two_stores_updating_one_room_lose_nothing(kind: str, tmp_path: Path) -> None:
    url = fresh_database_url(kind, tmp_path)
    with SqlStore(url) as first, SqlStore(url) as second:
        first.insert(RoomRecord(id="room", title="0"))
        errors: list[BaseException] = []

        def work(store: SqlStore) -> None:
            try:
                for _ in range(ROUNDS):
                    store.update("room", _increment)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(s,)) for s in (first, second, first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert second.get("room").title == str(4 * ROUNDS)  # type: ignore[union-attr]


WORKER = textwrap.dedent(
    """
    import secrets, sys, time
    from livekit_demo.storage.base import DuplicateRoom
    from livekit_demo.models import RoomRecord
    from livekit_demo.storage.sql import SqlStore

    def bump(record):
        time.sleep(0.002)
        return record.copy(title=str(int(record.title) + 1))

    url, rounds = sys.argv[1], int(sys.argv[2])
    with SqlStore(url) as store:
        secret = store.load_secret(lambda: secrets.token_hex(16))
        try:
            store.insert(RoomRecord(id="room", title="0"))
        except DuplicateRoom:
            pass
        for _ in range(rounds):
            store.update("room", bump)
            store.add_likes("room", 1)
        used = store.use_token("one-hand-off", 2**40, 0)
        print(secret, used)
    """
)


@pytest.mark.parametrize("kind", SERVERS)
def test_processes_starting_at_once_agree_and_lose_no_update(kind: str, tmp_path: Path) -> None:
    # From no tables at all: the processes race to create them, to make the secret, to insert the
    # room, then to update it.
    url = fresh_database_url(kind, tmp_path)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(ROUNDS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0], [err for _, err in results]
    secrets = {out.split()[0] for out, _ in results}
    with SqlStore(url) as store:
        assert store.get("room").title == str(3 * ROUNDS)  # type: ignore[union-attr]
        assert secrets == {store.load_secret(lambda: "never used")}
        # Likes added in SQL by three processes at once: none lost; one token traded by exactly one.
        assert store.stats(["room"])["room"].likes == 3 * ROUNDS
        assert sorted(out.split()[1] for out, _ in results) == ["False", "False", "True"]


@pytest.mark.parametrize("kind", SERVERS)
def test_two_stores_making_the_secret_at_once_agree(kind: str, tmp_path: Path) -> None:
    url = fresh_database_url(kind, tmp_path)
    with SqlStore(url) as first, SqlStore(url) as second:
        barrier = threading.Barrier(2)
        answers: dict[str, str] = {}

        def make(name: str) -> str:
            barrier.wait(timeout=10)  # both have found no secret: both insert
            return f"secret-of-{name}"

        def load(store: SqlStore, name: str) -> None:
            answers[name] = store.load_secret(lambda: make(name))

        threads = [threading.Thread(target=load, args=(s, n)) for s, n in ((first, "first"), (second, "second"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers["first"] == answers["second"] in ("secret-of-first", "secret-of-second")
        assert first.load_secret(lambda: "other") == answers["first"]
