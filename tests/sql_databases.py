"""The test databases: where they are, whether they answer, and a clean slate for each test.

MariaDB/MySQL and PostgreSQL are servers shared by the whole run, reached at the URLs below (or
``LIVEKIT_DEMO_TEST_MYSQL_URL`` / ``LIVEKIT_DEMO_TEST_POSTGRESQL_URL``). When one does not answer,
its tests skip with the reason, unless ``LIVEKIT_DEMO_REQUIRE_DATABASES=1`` makes that a failure
(for CI, where a skipped database would hide a broken engine). SQLite needs no server.

Each test run works in its own database (MySQL) or schema (PostgreSQL) on those servers, named after
its process and dropped when it ends, so two runs at once (two developers, one checkout) never
drop each other's tables; each test then starts with none of our tables in it.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SERVER_URLS = {
    "mysql": os.environ.get("LIVEKIT_DEMO_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
    "postgresql": os.environ.get("LIVEKIT_DEMO_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test"),
}
SQL_KINDS = ("sqlite", "mysql", "postgresql")
REQUIRE_ENV = "LIVEKIT_DEMO_REQUIRE_DATABASES"
OUR_TABLES = ("room_infos", "livekit_demo_meta", "livekit_demo_room_stats", "livekit_demo_used_tokens")
RUN_NAME = f"livekit_demo_test_{os.getpid()}"


def fresh_database_url(kind: str, tmp_path: Path) -> str:
    """A database URL of `kind` holding none of our tables; skips (or fails) when its server is away."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'rooms.db'}"
    url = SERVER_URLS[kind]
    problem = _unreachable(url)
    if problem is not None:
        message = f"the {kind} test database at {_safe(url)} cannot be reached: {problem}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1 requires it)")
        pytest.skip(message)
    url = _run_database(kind)
    drop_tables(url)
    return url


def drop_tables(url: str) -> None:
    """Drop our tables from a server database, so the next store starts from nothing."""
    with connect(url) as conn:
        for table in OUR_TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.commit()


@contextmanager
def connect(url: str) -> Iterator[Any]:
    """A raw SQLAlchemy connection to `url` (a URL or the Go DSN), its engine disposed on exit."""
    import sqlalchemy as sa  # imported here so collecting tests never needs the optional extra

    from livekit_demo.storage.sql import database_url

    engine = sa.create_engine(database_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


@cache
def _run_database(kind: str) -> str:
    """The URL of this run's own database (MySQL) or schema (PostgreSQL), made on first use."""
    from livekit_demo.storage.sql import database_url

    server = SERVER_URLS[kind]
    with connect(server) as conn:
        if kind == "mysql":
            conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {RUN_NAME} CHARACTER SET utf8mb4")
        else:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {RUN_NAME}")
        conn.commit()
    atexit.register(_drop_run_database, kind, server)
    url = database_url(server)
    if kind == "mysql":
        url = url.set(database=RUN_NAME)
    else:
        url = url.update_query_dict({"options": f"-csearch_path={RUN_NAME}"})
    return url.render_as_string(hide_password=False)


def _drop_run_database(kind: str, server: str) -> None:
    with connect(server) as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {RUN_NAME}" if kind == "mysql" else f"DROP SCHEMA IF EXISTS {RUN_NAME} CASCADE")
        conn.commit()


@cache
def _unreachable(url: str) -> str | None:
    """Why the server cannot be used, or None; asked once per run."""
    try:
        with connect(url) as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # any failure to connect means "not here": say which, then skip
        return f"{type(exc).__name__}: {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}"
    return None


def _safe(url: str) -> str:
    from livekit_demo.storage.sql import database_url

    return database_url(url).render_as_string(hide_password=True)
