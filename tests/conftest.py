"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from livekit_demo.settings import Settings
from livekit_demo.storage import RoomStore, open_store

from sql_databases import fresh_database_url

# -- storage: `store` runs every test that takes it once per engine ---------------------------------
#
# To add an engine: a branch in storage_setting (given a fresh tmp_path; skip with a reason when
# the engine's server is unreachable) and a param in STORE_PARAMS, marked for servers, e.g.
#     pytest.param("mysql", marks=pytest.mark.mysql)
# A shared server must hand back an empty store.


def storage_setting(engine: str, tmp_path: Path) -> str:
    """The `storage` setting for a fresh, empty store of `engine` (skips when its server is away)."""
    if engine == "memory":
        return "memory"
    if engine == "tinydb":
        return str(tmp_path / "rooms.json")
    # fresh_database_url drops our tables first, and skips (or fails) when a server is unreachable.
    return fresh_database_url(engine, tmp_path)


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
    opened = open_store(Settings.build(env={}, storage=storage_setting(request.param, tmp_path)))
    try:
        yield opened
    finally:
        opened.close()
