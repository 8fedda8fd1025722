"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sql_databases import fresh_database_url

from livekit_demo.settings import Settings
from livekit_demo.storage import RoomStore, open_store

# -- storage: `store` runs every test that takes it once per engine ---------------------------------
#
# To add an engine: a factory below (given a fresh tmp_path; call pytest.skip("reason") in it when
# the engine's server is unreachable) and a param in STORE_PARAMS, marked for servers, e.g.
#     pytest.param("mysql", marks=pytest.mark.mysql)
# A factory for a shared server must hand back an empty store.


def _open(storage: str) -> RoomStore:
    return open_store(Settings.build(env={}, storage=storage))


STORE_FACTORIES: dict[str, Callable[[Path], RoomStore]] = {
    "memory": lambda tmp_path: _open("memory"),
    "tinydb": lambda tmp_path: _open(str(tmp_path / "data" / "rooms.json")),
    # fresh_database_url drops our tables first, and skips (or fails) when a server is unreachable.
    "sqlite": lambda tmp_path: _open(fresh_database_url("sqlite", tmp_path)),
    "mysql": lambda tmp_path: _open(fresh_database_url("mysql", tmp_path)),
    "postgresql": lambda tmp_path: _open(fresh_database_url("postgresql", tmp_path)),
}

STORE_PARAMS = [
    pytest.param("memory"),
    pytest.param("tinydb"),
    pytest.param("sqlite"),
    pytest.param("mysql", marks=pytest.mark.mysql),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
]


@pytest.fixture(params=STORE_PARAMS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RoomStore]:
    """An empty room store of each engine, closed afterwards."""
    opened = STORE_FACTORIES[request.param](tmp_path)
    try:
        yield opened
    finally:
        opened.close()
