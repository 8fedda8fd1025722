"""A room store in a SQL database through SQLAlchemy: MySQL/MariaDB, PostgreSQL or SQLite.

    >>> store = SqlStore("sqlite:///rooms.db")          # doctest: +SKIP
    >>> store = SqlStore("root:pw@tcp(127.0.0.1:3306)/live?charset=utf8mb4&parseTime=True&loc=Local")  # doctest: +SKIP

The table is `room_infos`, created when missing: on MySQL/MariaDB with exactly the DDL of
`contract/room_infos.sql` (shipped here as `room_infos.sql`), elsewhere with the equivalent types. A table that exists already (one the
original Go server made, say) is used as it is: never dropped, never altered. Our own tables sit
beside it: `livekit_demo_meta` keeps the deployment's secret; `livekit_demo_room_stats` a room's like
total and chat-mute flag (SPEC 11: never extra columns in `room_infos`); `livekit_demo_used_tokens` the
one-time hand-off tokens already traded (SPEC 12), so every process on the database refuses a reuse.

Likes are added in SQL (`like_count = like_count + n`) while the room's row is locked, so processes
adding likes to one room at once lose none, and a room deleted meanwhile keeps no stats row.

Indexes: the contract's `idx_create_at` serves the list order on MySQL/MariaDB because InnoDB
secondary indexes end with the primary key (`created_at, id`). PostgreSQL and SQLite do not work
that way, so when *we* create the table there we add `idx_create_at_id` on `(created_at, id)` in the
list's order as well.

This is the only module that imports SQLAlchemy; without it (or without the database's driver)
opening a store raises a `StorageError` naming the extra to install.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..exceptions import StorageError, StorageFull, StorageUnavailable
from ..models import ROOM_COLUMNS, RoomRecord
from ..settings import Settings, StorageSettings
from ..types import RoomId
from ._dsn import ACCEPTED_FORMS, is_url, parse_go_dsn, rejected, safe_url
from .base import DuplicateRoom, RoomChange, RoomStats

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql as sa_mysql
except ImportError:  # pragma: no cover - SqlStore explains which extra to install
    sa = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine


__all__ = ["SqlStore", "ROOM_TABLE", "META_TABLE", "STATS_TABLE", "USED_TOKENS_TABLE", "ACCEPTED_FORMS"]

ROOM_TABLE = "room_infos"
META_TABLE = "livekit_demo_meta"
STATS_TABLE = "livekit_demo_room_stats"
USED_TOKENS_TABLE = "livekit_demo_used_tokens"
_SECRET_NAME = "secret"
_EXTRAS = {"mysql": "mysql", "postgresql": "postgresql", "sqlite": "sqlite"}
_DRIVERS = {"mysql": "mysql+pymysql", "postgresql": "postgresql+psycopg", "sqlite": "sqlite"}
_BACKENDS = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgresql", "postgres": "postgresql", "sqlite": "sqlite"}
_KNOWN_DRIVERS = {"mysql": ("", "pymysql"), "postgresql": ("", "psycopg"), "sqlite": ("", "pysqlite")}
_TEXT_COLUMNS = ("extends", "meeting_info")
_NUMBER_COLUMNS = ("status", "mode")
_TIME_COLUMNS = ("created_at", "updated_at", "started_at", "stopped_at")
_MAX_OFFSET = 2**63 - 1  # the largest OFFSET + LIMIT every engine accepts (a signed 64-bit integer)

_SECRET_PARAM = re.compile(r"pass|secret|key|token", re.IGNORECASE)  # query parameters that hold credentials

# One arbitrary constant: PostgreSQL serialises our schema creation on it (see _create_tables).
_PG_SCHEMA_LOCK = 0x4C4B_4445_4D4F


class SqlStore:
    """A `RoomStore` in a SQL database; `url` a SQLAlchemy URL or the original's Go MySQL DSN."""

    kind: str
    blocking = True  # every call is a round trip to the database

    def __init__(self, url: str, *, connect_timeout: float = 5, read_timeout: float = 10, pool_timeout: float = 5) -> None:
        self._url = database_url(url)
        self.kind = _BACKENDS[self._url.get_backend_name()]
        self.timeouts = {"connect_timeout": connect_timeout, "read_timeout": read_timeout, "pool_timeout": pool_timeout}
        self._engine = _create_engine(self._url, self.kind, self.timeouts)
        # Writers ask SQLite for its write lock up front (BEGIN IMMEDIATE, see _sqlite_transactions).
        self._writer = self._engine.execution_options(livekit_demo_write=True)
        # An in-memory SQLite database is one shared connection: serialise whole operations on it.
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if _is_sqlite_memory(self._url) else contextlib.nullcontext()
        )
        self._rooms, self._meta, self._stats, self._used = _tables(self.kind)
        try:
            self._create_tables()
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def from_settings(cls, settings: Settings | StorageSettings) -> SqlStore:
        """The store the storage settings name (``Settings`` or its ``storage`` section)."""
        storage = settings if isinstance(settings, StorageSettings) else settings.storage
        kind = _BACKENDS[database_url(storage.url).get_backend_name()]
        if storage.type not in ("sql", kind):  # checked before connecting: a wrong type touches nothing
            raise StorageError(f"storage type {storage.type!r} does not match its url, which names a {kind} database")
        return cls(storage.url, connect_timeout=storage.connect_timeout, read_timeout=storage.read_timeout, pool_timeout=storage.pool_timeout)

    def __repr__(self) -> str:
        return f"SqlStore({safe_url(self._url.render_as_string(hide_password=True))!r})"

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the RoomStore contract --------------------------------------------------------------

    def insert(self, record: RoomRecord) -> None:
        """Store a new room; `DuplicateRoom` if its id exists."""
        with self._transaction(write=True) as conn:
            try:
                conn.execute(sa.insert(self._rooms).values(**_to_values(record)))
            except sa.exc.IntegrityError:
                raise DuplicateRoom(record.id) from None

    def get(self, room_id: RoomId) -> RoomRecord | None:
        """The room, or None."""
        with self._transaction(write=False) as conn:
            row = conn.execute(sa.select(self._rooms).where(self._exactly(self._rooms.c.id, room_id))).mappings().first()
        return _from_row(row) if row is not None else None

    def get_by_meeting(self, meeting_id: str) -> RoomRecord | None:
        """The room whose `meeting_id` is exactly `meeting_id` (never for ""), or None."""
        if not meeting_id:
            return None
        query = sa.select(self._rooms).where(self._rooms.c.meeting_id == meeting_id).order_by(self._rooms.c.id).limit(16)
        with self._transaction(write=False) as conn:
            rows = conn.execute(query).mappings().all()
        # MySQL's default collation compares case- and trailing-space-insensitively: keep the exact one.
        return next((_from_row(row) for row in rows if row["meeting_id"] == meeting_id), None)

    def update(self, room_id: RoomId, change: RoomChange) -> RoomRecord | None:
        """Atomically apply `change` under a row lock; the new record, or None when there is no such room."""
        with self._transaction(write=True) as conn:
            current = self._locked_row(conn, room_id)
            if current is None:
                return None
            handed = current.copy()  # a copy: a change that mutates it and hands it back changed nothing
            new = change(handed)
            if new is handed:  # "no change": nothing to write, answer what is stored
                return current
            if new.id != room_id:
                raise ValueError(f"a change may not alter the room id ({room_id!r} -> {new.id!r})")
            values = _to_values(new)
            conn.execute(sa.update(self._rooms).where(self._exactly(self._rooms.c.id, room_id)).values(**values))
        # Answer what is now stored (times cut to whole seconds), so it equals a later `get`.
        return RoomRecord.from_row(values)

    def delete(self, room_id: RoomId) -> RoomRecord | None:
        """Remove the room; the record as it was, or None when there was none."""
        with self._transaction(write=True) as conn:
            current = self._locked_row(conn, room_id)
            if current is not None:
                conn.execute(sa.delete(self._rooms).where(self._exactly(self._rooms.c.id, room_id)))
                conn.execute(sa.delete(self._stats).where(self._stats.c.room_id == room_id))
        return current

    def clear(self) -> int:
        """Delete every room and its stats in one transaction; the secret and used-token rows stay."""
        with self._transaction(write=True) as conn:
            deleted = conn.execute(sa.delete(self._rooms)).rowcount
            conn.execute(sa.delete(self._stats))
        return int(deleted or 0)

    def list(self, *, status: int | None = None, offset: int = 0, limit: int = 10) -> list[RoomRecord]:
        """Rooms newest first (created_at desc, id desc), only `status` when given; ordered and paged in SQL."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        if offset + limit > _MAX_OFFSET:
            # A page past any real table (page_num 10**30): databases reject an OFFSET beyond a
            # 64-bit integer, and the contract's answer for a page past the end is [].
            return []
        created_at, room_id = self._rooms.c.created_at, self._rooms.c.id
        # Rooms without a creation time count as oldest. MySQL and SQLite sort NULL last when
        # descending already; PostgreSQL needs telling (and its list index is built that way).
        newest = created_at.desc().nulls_last() if self.kind == "postgresql" else created_at.desc()
        query = (
            sa.select(self._rooms)
            .where(*self._status_filter(status))
            .order_by(newest, room_id.desc())
            .offset(offset)
            .limit(limit)
        )
        with self._transaction(write=False) as conn:
            rows = conn.execute(query).mappings().all()
        return [_from_row(row) for row in rows]

    def revision(self) -> int | None:
        """None: other processes (workers, other servers, a person with a SQL prompt) change the tables."""
        return None

    def count(self, *, status: int | None = None, anchor: str | None = None) -> int:
        """How many rooms (with `status`, and of `anchor_id` `anchor`, when given)."""
        where = self._status_filter(status)
        if anchor is not None:
            where += (self._exactly(self._rooms.c.anchor_id, anchor),)
        query = sa.select(sa.func.count()).select_from(self._rooms).where(*where)
        with self._transaction(write=False) as conn:
            return int(conn.execute(query).scalar_one())

    def add_likes(self, room_id: RoomId, count: int) -> int | None:
        """Add `count` likes in SQL under the room's row lock; the new total, or None when there is no such room."""
        stats = self._stats.c
        with self._transaction(write=True) as conn:
            if not self._lock_room(conn, room_id):
                return None
            # The room's lock serialises every stats write of this room, so this read decides
            # between UPDATE and INSERT safely; the addition itself happens in the database.
            if self._has_stats(conn, room_id):
                conn.execute(sa.update(self._stats).where(stats.room_id == room_id).values(like_count=stats.like_count + count))
            else:
                conn.execute(sa.insert(self._stats).values(room_id=room_id, like_count=count, muted=False))
            return int(conn.execute(sa.select(stats.like_count).where(stats.room_id == room_id)).scalar_one())

    def set_muted(self, room_id: RoomId, muted: bool) -> bool:
        """Set the room's chat-mute flag; False when there is no such room."""
        with self._transaction(write=True) as conn:
            if not self._lock_room(conn, room_id):
                return False
            if self._has_stats(conn, room_id):
                conn.execute(sa.update(self._stats).where(self._stats.c.room_id == room_id).values(muted=muted))
            else:
                conn.execute(sa.insert(self._stats).values(room_id=room_id, like_count=0, muted=muted))
            return True

    def stats(self, room_ids: Iterable[RoomId]) -> dict[RoomId, RoomStats]:
        """Likes and mute flag of each room that has a stats row, in one query."""
        wanted = list(dict.fromkeys(room_ids))
        if not wanted:
            return {}
        stats = self._stats.c
        query = sa.select(stats.room_id, stats.like_count, stats.muted).where(stats.room_id.in_(wanted))
        with self._transaction(write=False) as conn:
            rows = conn.execute(query).all()
        return {str(room_id): RoomStats(int(likes or 0), bool(muted)) for room_id, likes, muted in rows}

    def use_token(self, token_id: str, expires_at: int, now: int) -> bool:
        """Mark a one-time token used; the primary key decides between processes racing with one token."""
        try:
            with self._transaction(write=True) as conn:
                conn.execute(sa.delete(self._used).where(self._used.c.expires_at < now))  # keep the table small
                conn.execute(sa.insert(self._used).values(token_id=token_id, expires_at=expires_at))
        except StorageError as exc:
            if isinstance(exc.__cause__, sa.exc.IntegrityError):
                return False  # used already, here or by another process
            raise
        return True

    def load_secret(self, make: Callable[[], str]) -> str:
        """The deployment's secret: the stored one, or `make()` stored first (the primary key settles races)."""
        stored = self._read_secret()
        if stored is not None:
            return stored
        candidate = make()
        try:
            with self._transaction(write=True) as conn:
                conn.execute(sa.insert(self._meta).values(name=_SECRET_NAME, value=candidate))
        except StorageError as exc:
            # Another process stored its secret between our read and our insert: theirs wins.
            if not isinstance(exc.__cause__, sa.exc.IntegrityError):
                raise
        stored = self._read_secret()
        if stored is None:  # pragma: no cover - the row was committed by us or by the winner
            raise StorageError("the secret vanished right after it was stored")
        return stored

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    # -- internals ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        """One transaction, committed when the block ends and rolled back if it raises.

        Database faults become `StorageError` (their messages carry SQL and driver text, never the
        URL); any other exception, such as one raised by an update's `change`, passes unchanged.
        """
        engine = self._writer if write else self._engine
        try:
            with self._lock, engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise self._classify(exc) from exc

    def _classify(self, exc: sa.exc.SQLAlchemyError) -> StorageError:
        """The StorageError for a database fault: full (507), unreachable or hung (503), or other (500)."""
        message = f"{self.kind} database error: {_describe(exc, self._url)}"
        if _is_full(exc):
            return StorageFull(f"{message} (the database's disk is full; nothing was written)")
        if isinstance(exc, sa.exc.TimeoutError):
            return StorageUnavailable(
                f"the {self.kind} database had no free connection within {self.timeouts['pool_timeout']} s (storage.pool_timeout)"
            )
        if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) and not _is_sqlite_lock(exc):
            return StorageUnavailable(f"{message} (storage.connect_timeout {self.timeouts['connect_timeout']} s, read_timeout {self.timeouts['read_timeout']} s)")
        return StorageError(message)

    def _locked_row(self, conn: Connection, room_id: RoomId) -> RoomRecord | None:
        """The room's row, locked until the transaction ends (FOR UPDATE; SQLite holds its write lock)."""
        query = sa.select(self._rooms).where(self._exactly(self._rooms.c.id, room_id)).with_for_update()
        row = conn.execute(query).mappings().first()
        return _from_row(row) if row is not None else None

    def _lock_room(self, conn: Connection, room_id: RoomId) -> bool:
        """Lock the room's row until the transaction ends; False when there is no such room."""
        query = sa.select(self._rooms.c.id).where(self._exactly(self._rooms.c.id, room_id)).with_for_update()
        return conn.execute(query).first() is not None

    def _has_stats(self, conn: Connection, room_id: RoomId) -> bool:
        return conn.execute(sa.select(self._stats.c.room_id).where(self._stats.c.room_id == room_id)).first() is not None

    def _exactly(self, column: Any, value: str) -> Any:
        """`column = value`, compared byte for byte on every engine.

        MySQL/MariaDB compare text by the column's collation: usually case-insensitive and blind to
        trailing spaces, so `ABC` would find room `abc` (and an update would then hit the wrong id).
        The plain comparison still picks the index; the binary one makes it exact.
        """
        if self.kind != "mysql":
            return column == value
        binary = sa_mysql.BINARY()
        return sa.and_(column == value, sa.cast(column, binary) == sa.cast(sa.literal(value, sa.String()), binary))

    def _status_filter(self, status: int | None) -> tuple[Any, ...]:
        if status is None:
            return ()
        column = self._rooms.c.status
        if int(status) == 0:  # a NULL status reads back as 0 (prepared), so it must match 0 too
            return (sa.or_(column == 0, column.is_(None)),)
        return (column == int(status),)

    def _read_secret(self) -> str | None:
        query = sa.select(self._meta.c.value).where(self._meta.c.name == _SECRET_NAME)
        with self._transaction(write=False) as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else str(value)

    def _create_tables(self) -> None:
        """Create our tables when missing, safely when several processes start at once."""
        with self._transaction(write=True) as conn:
            if self.kind == "mysql":
                conn.exec_driver_sql(_mysql_room_ddl())
            else:
                if self.kind == "postgresql":
                    # Concurrent CREATE ... IF NOT EXISTS can still collide in PostgreSQL's catalog;
                    # a transaction-scoped advisory lock makes the second process wait, then see the table.
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
                conn.execute(sa.schema.CreateTable(self._rooms, if_not_exists=True))
                for index in sorted(self._rooms.indexes, key=lambda i: str(i.name)):
                    conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
            for table in (self._meta, self._stats, self._used):
                conn.execute(sa.schema.CreateTable(table, if_not_exists=True))
            if self.kind == "mysql":
                _check_mysql_charsets(conn)


def database_url(text: str) -> URL:
    """The SQLAlchemy URL, with our driver, for a URL or a Go MySQL DSN; `StorageError` otherwise."""
    if sa is None:
        raise StorageError('SQL storage needs SQLAlchemy: pip install "livekit_demo[mysql]" (or [postgresql], [sqlite])')
    text = text.strip()
    if not is_url(text):
        dsn = parse_go_dsn(text)
        return sa.engine.URL.create(
            _DRIVERS["mysql"], username=dsn.user, password=dsn.password, host=dsn.host,
            port=dsn.port, database=dsn.database, query=dsn.query,
        )  # fmt: skip
    try:
        url = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        # Never SQLAlchemy's message: it quotes the URL, or (a bad port) the part of the password
        # after a stray ':' or '@'. Characters like these in a password must be %-encoded in a URL.
        raise rejected("the URL does not parse (is there an unescaped '@', ':' or '/' in the password? write it %-encoded)") from None
    scheme = url.get_backend_name()
    kind = _BACKENDS.get(scheme)
    if kind is None or url.drivername.partition("+")[2] not in _KNOWN_DRIVERS[kind]:
        raise rejected(f"unsupported scheme {url.drivername!r}")
    url = url.set(drivername=_DRIVERS[kind])
    if kind == "mysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})  # the contract's text is Chinese-friendly
    return url


def _create_engine(url: URL, kind: str, timeouts: dict[str, float]) -> Engine:
    options: dict[str, Any] = {}
    if kind == "sqlite":
        if _is_sqlite_memory(url):
            options.update(poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False})
        else:
            options.update(connect_args={"timeout": 30})  # wait for another process's write lock
    else:
        # Database servers close idle connections (MySQL after wait_timeout): test before use,
        # and retire connections before MySQL's default 8 hours are up. A pre-ping that fails
        # also throws away connections to a database that went away, which is how we recover.
        options.update(pool_pre_ping=True, pool_recycle=3600, pool_timeout=timeouts["pool_timeout"])
        options["connect_args"] = _timeout_args(url, kind, timeouts)
    try:
        engine = sa.create_engine(url, **options)
    except ImportError:
        raise StorageError(
            f'the {kind} database driver is not installed: pip install "livekit_demo[{_EXTRAS[kind]}]"'
        ) from None
    if kind == "sqlite":
        _sqlite_transactions(engine)
    return engine


def _timeout_args(url: URL, kind: str, timeouts: dict[str, float]) -> dict[str, Any]:
    """Driver arguments that bound connecting and waiting for an answer (never waiting forever on a hung server)."""
    connect, read = max(1, round(timeouts["connect_timeout"])), max(1, round(timeouts["read_timeout"]))
    if kind == "mysql":
        # PyMySQL applies read_timeout to every socket read, the handshake included; options given
        # in the address (the Go DSN's timeout=, readTimeout=) win.
        args = {"connect_timeout": connect, "read_timeout": read, "write_timeout": read}
        return {k: v for k, v in args.items() if k not in url.query}
    # libpq's connect_timeout bounds the whole connection set-up; statement_timeout makes the server
    # give up on a query that waits (on locks, say) longer than the read timeout.
    args_pg: dict[str, Any] = {} if "connect_timeout" in url.query else {"connect_timeout": max(2, connect)}
    given = url.query.get("options", "")
    given = given if isinstance(given, str) else " ".join(given)
    if "statement_timeout" not in given:  # connect_args replace the address's options: keep them
        args_pg["options"] = f"{given} -c statement_timeout={read * 1000}".strip()
    return args_pg


def _is_full(exc: BaseException) -> bool:
    """Whether a database error says the disk (or the table's space) is full."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "53100":  # PostgreSQL disk_full
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in (1021, 1114):  # MySQL: disk full, table is full
        return True
    return "database or disk is full" in str(orig or "")  # SQLite's SQLITE_FULL


def _is_sqlite_lock(exc: BaseException) -> bool:
    # Another process's write lock past the busy timeout is a fault of ours to report, not an outage.
    return "database is locked" in str(getattr(exc, "orig", "") or "")


def _sqlite_transactions(engine: Engine) -> None:
    """Let us issue SQLite's BEGIN ourselves: IMMEDIATE for writers, so read-modify-write is atomic.

    Python's sqlite3 would begin a deferred transaction only at the first write, after our read:
    two processes could then both read the old row. Taking the write lock at BEGIN closes that gap.
    """

    @sa.event.listens_for(engine, "connect")
    def _manual_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("livekit_demo_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _mysql_room_ddl() -> str:
    """contract/room_infos.sql (shipped beside this module, verbatim) as the server runs it.

    IF NOT EXISTS lets two processes starting at once both succeed; keeping the index inside the
    one statement matters because MySQL has no CREATE INDEX IF NOT EXISTS.
    """
    text = resources.files(__package__).joinpath("room_infos.sql").read_text(encoding="utf-8")
    statement = "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip().rstrip(";")
    head = f"CREATE TABLE `{ROOM_TABLE}`"
    if not statement.startswith(head):  # pragma: no cover - guards an edit of the shipped file
        raise StorageError(f"room_infos.sql must start with {head!r}")
    # The contract's columns as written; the table's character set is ours to name. Without it a
    # latin1 database makes a latin1 table, and Chinese, emoji or Arabic titles then fail to store.
    return f"CREATE TABLE IF NOT EXISTS `{ROOM_TABLE}`" + statement[len(head) :] + " DEFAULT CHARSET=utf8mb4"


def _check_mysql_charsets(conn: Connection) -> None:
    """Refuse (at start) a connection or table that cannot hold all of Unicode, rather than 500 on the first emoji."""
    connection = conn.exec_driver_sql("SELECT @@character_set_connection").scalar_one()
    if connection != "utf8mb4":
        raise StorageError(
            f"the MySQL connection uses character set {connection}, which cannot hold every character a room may have; "
            "use charset=utf8mb4 in the database address"
        )
    query = sa.text(
        "SELECT table_name, column_name, character_set_name FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND table_name IN (:rooms, :meta) AND character_set_name IS NOT NULL "
        "AND character_set_name <> 'utf8mb4' ORDER BY table_name, ordinal_position"
    )
    bad = conn.execute(query, {"rooms": ROOM_TABLE, "meta": META_TABLE}).first()
    if bad is not None:
        table, column, charset = bad
        raise StorageError(
            f"the table {table} stores text as {charset} (column {column}), which cannot hold Chinese, emoji and most "
            f"scripts; convert it first: ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4"
        )


def _is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _tables(kind: str) -> tuple[sa.Table, sa.Table, sa.Table, sa.Table]:
    """`room_infos` (as the contract types it) and our tables (meta, room stats, used tokens)."""
    metadata = sa.MetaData()
    text = sa.Text().with_variant(sa_mysql.MEDIUMTEXT(), "mysql", "mariadb")
    number = sa.BigInteger().with_variant(sa_mysql.BIGINT(display_width=20), "mysql", "mariadb")
    columns: list[sa.Column[Any]] = []
    for name in ROOM_COLUMNS:
        if name == "id":
            columns.append(sa.Column(name, sa.String(256), primary_key=True))
        elif name in _TIME_COLUMNS:
            columns.append(sa.Column(name, sa.DateTime()))
        elif name in _TEXT_COLUMNS:
            columns.append(sa.Column(name, text))
        elif name in _NUMBER_COLUMNS:
            columns.append(sa.Column(name, number))
        else:
            columns.append(sa.Column(name, sa.String(256)))
    rooms = sa.Table(ROOM_TABLE, metadata, *columns)
    sa.Index("idx_create_at", rooms.c.created_at)
    if kind == "postgresql":
        sa.Index("idx_create_at_id", rooms.c.created_at.desc().nulls_last(), rooms.c.id.desc())
    elif kind == "sqlite":
        sa.Index("idx_create_at_id", rooms.c.created_at, rooms.c.id)
    meta = sa.Table(
        META_TABLE, metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        mysql_charset="utf8mb4",
    )  # fmt: skip
    stats = sa.Table(
        STATS_TABLE, metadata,
        sa.Column("room_id", sa.String(256), primary_key=True),  # room_infos.id's type
        sa.Column("like_count", sa.BigInteger(), nullable=False, default=0),
        sa.Column("muted", sa.Boolean(create_constraint=False), nullable=False, default=False),
        mysql_charset="utf8mb4",
    )  # fmt: skip
    used = sa.Table(
        USED_TOKENS_TABLE, metadata,
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        mysql_charset="utf8mb4",
    )  # fmt: skip
    return rooms, meta, stats, used


def _to_values(record: RoomRecord) -> dict[str, Any]:
    """Column values: times as naive UTC with whole seconds (what a MySQL datetime keeps)."""
    values = {name: getattr(record, name) for name in ROOM_COLUMNS}
    for name in _TIME_COLUMNS:
        when = values[name]
        if when is not None:
            if when.tzinfo is not None:
                when = when.astimezone(timezone.utc).replace(tzinfo=None)
            values[name] = when.replace(microsecond=0)
    for name in _NUMBER_COLUMNS:
        values[name] = int(values[name])
    return values


def _from_row(row: Any) -> RoomRecord:
    """A record from a row, reading the Go server's "zero time" (0000-00-00 or year 1) as unset."""
    values = dict(row)
    for name in _TIME_COLUMNS:
        value = values.get(name)
        if isinstance(value, str) and value.startswith(("0000-00-00", "0001-01-01")):
            values[name] = None  # PyMySQL hands back dates it cannot represent as text
        elif isinstance(value, datetime) and value.year == 1:
            values[name] = None
    return RoomRecord.from_row(values)


def _describe(exc: BaseException, url: URL) -> str:
    """The driver's message on one line, without SQLAlchemy's SQL dump, and without any password, should one appear."""
    message = str(getattr(exc, "orig", None) or exc).split("\n[SQL:", 1)[0]
    secrets = [str(url.password)] if url.password else []
    secrets += [str(v) for k, v in url.query.items() if _SECRET_PARAM.search(k) and v]
    for secret in secrets:
        message = message.replace(secret, "***")
    return " ".join(message.split())
