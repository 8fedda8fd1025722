"""What a hostile tester broke (issue 15), each case kept fixed: one test per finding, on every engine it concerns.

Tests that need a real process (slow clients, a hung database, start-up errors) run `livekit-demo
serve` through tests/server_process.py, on loopback, bounded in count and time.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import test_api
from starlette.testclient import TestClient
from test_api import ADMIN_HASH, Api, assert_error

from livekit_demo.api import create_app
from livekit_demo.app_server import AppServer
from livekit_demo.exceptions import AppServerError, StorageError
from livekit_demo.settings import Settings

from conftest import STORE_PARAMS, storage_setting
from sql_databases import connect

API = "/api/v1/live"
api = test_api.api  # the every-engine fixture
CONTRACT_DDL = (Path(__file__).parents[1] / "livekit_demo" / "storage" / "room_infos.sql").read_text(encoding="utf-8")


# -- engine-independent answers (rows 4 and 13) ----------------------------------------------------


@pytest.mark.parametrize(
    ("call", "body", "field"),
    [
        ("create", {"title": "a\u0000b", "anchor": "ann"}, "title"),
        ("create", {"title": "t", "anchor": "ann", "extends": "{\u0000}"}, "extends"),
        ("update", {"id": "ROOM", "notice": "\u0000"}, "notice"),
        ("updateMeetingInfo", {"id": "ROOM", "user_id": "ann", "members": [{"user_id": "g1", "user_nick": "n\u0000"}]}, "members[0].user_nick"),
    ],
    ids=["create-title", "create-extends", "update-notice", "member-nick"],
)
def test_nul_in_text_is_a_400_naming_the_field_on_every_engine(api: Api, call: str, body: dict[str, object], field: str) -> None:
    room = api.create(mode=1)["id"]
    body = {k: (room if v == "ROOM" else v) for k, v in body.items()}
    before = api.stored()
    result = assert_error(api.call(call, body), 400, field, "NUL")
    assert [d["field"] for d in result["details"]] == [field]
    assert api.stored() == before


def test_a_huge_bad_value_is_not_echoed_back_whole(api: Api) -> None:
    huge = "x" * 100_000
    r = api.call("token", {"user_id": "ann", "device_id": "d", "device_type": huge})
    assert_error(r, 400, "device_type")
    assert len(r.content) < 2_000, len(r.content)
    assert "100000 characters" in r.json()["message"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    api = Api()
    body = f'{{"user_id": "ann", "page_num": 1, "page_size": 10, "status": {constant}}}'.encode()
    r = api.http.post(f"{API}/list", content=body, headers={"Authorization": f"Bearer {api.token('ann')}", "Content-Type": "application/json"})
    assert_error(r, 400, "not valid JSON", constant)
    r = api.http.post("/login", content=json.dumps({"username": "ann", "password": "ann"}).replace('"ann"}', constant + "}").encode())
    assert_error(r, 400, "JSON")


# -- removed users (row 12) -------------------------------------------------------------------------


def _rebuilt(api: Api, **auth: object) -> Api:
    """The same store and secret under new auth settings: what a restart with an edited config gives."""
    from livekit_demo.app_server import AppServer

    settings = api.server.settings.replace(auth=auth)
    again = Api.__new__(Api)
    again.clock = api.clock
    again.server = AppServer(settings, clock=api.clock, store=api.server.store)
    again.http = TestClient(create_app(again.server))
    again.tokens = {}
    return again


def test_a_removed_users_token_is_refused_and_the_name_is_not_a_demo_login() -> None:
    api = Api(auth={"users": {"boss": ADMIN_HASH, "carl": ADMIN_HASH}, "admins": ["boss"]})
    carl = api.token("carl", "s3cret-admin")
    assert api.call("list", {"user_id": "carl", "page_num": 1, "page_size": 1}, "carl").status_code == 200
    # carl is removed from auth.users (and, as the README says to, listed in auth.reserved).
    later = _rebuilt(api, users={"boss": ADMIN_HASH}, admins=["boss"], reserved=["carl"])
    bearer = {"Authorization": f"Bearer {carl}"}
    assert_error(later.http.post(f"{API}/list", json={"user_id": "carl", "page_num": 1, "page_size": 1}, headers=bearer), 401, "no longer configured")
    assert_error(later.http.post(f"{API}/refresh_token", headers=bearer), 401, "no longer configured")
    assert_error(later.http.post("/login", json={"username": "carl", "password": "carl"}), 401)
    # Even without auth.reserved, the configured user's token is refused (the token says it was one).
    unlisted = _rebuilt(api, users={"boss": ADMIN_HASH}, admins=["boss"])
    assert_error(unlisted.http.post(f"{API}/list", json={"user_id": "carl", "page_num": 1, "page_size": 1}, headers=bearer), 401, "no longer configured")


def test_a_demo_token_lapses_when_the_name_becomes_configured_or_demo_login_is_off() -> None:
    api = Api()
    dave = {"Authorization": f"Bearer {api.token('dave')}"}
    body = {"user_id": "dave", "page_num": 1, "page_size": 1}
    assert api.http.post(f"{API}/list", json=body, headers=dave).status_code == 200
    configured = _rebuilt(api, users={"boss": ADMIN_HASH, "dave": ADMIN_HASH}, admins=["boss"])
    assert_error(configured.http.post(f"{API}/list", json=body, headers=dave), 401, "no longer allowed")
    assert configured.http.post("/login", json={"username": "dave", "password": "s3cret-admin"}).status_code == 200
    off = _rebuilt(api, users={"boss": ADMIN_HASH}, admins=["boss"], demo_login=False)
    assert_error(off.http.post(f"{API}/list", json=body, headers=dave), 401, "no longer allowed")


# -- login throttle (rows 3 and 13) -----------------------------------------------------------------


class _CountingHashes:
    """Counts password checks, and the most that ran at once (each made slow enough to overlap)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import livekit_demo.auth as auth_module

        self.calls = 0
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()
        real = auth_module.verify_password

        def counting(password: str, stored: str) -> bool:
            with self._lock:
                self.calls += 1
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                time.sleep(0.02)  # let other threads pile in; nothing asserts on time
                return real(password, stored)
            finally:
                with self._lock:
                    self.running -= 1

        monkeypatch.setattr(auth_module, "verify_password", counting)


def test_concurrent_wrong_passwords_check_at_most_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = _CountingHashes(monkeypatch)
    settings = Settings.build(env={}, storage="memory", auth={"users": {"boss": ADMIN_HASH}, "login_max_failures": 5})
    auth = AppServer(settings).auth
    answers: list[int] = []

    def guess(i: int) -> None:
        try:
            auth.login("boss", f"wrong{i}", f"10.0.{i // 250}.{i % 250}")
            answers.append(200)
        except AppServerError as exc:
            answers.append(exc.status)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(set(answers)) == [401, 429] and len(answers) == 200
    assert answers.count(401) <= 5 and hashes.calls <= 5, (answers.count(401), hashes.calls)


def test_password_checks_at_once_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = _CountingHashes(monkeypatch)
    users = {f"u{i}": ADMIN_HASH for i in range(40)}
    settings = Settings.build(env={}, storage="memory", auth={"users": users, "max_concurrent_hashes": 3})
    auth = AppServer(settings).auth
    threads = [threading.Thread(target=auth.login, args=(f"u{i}", "s3cret-admin")) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert hashes.calls == 40 and hashes.most <= 3, (hashes.calls, hashes.most)


def test_an_unknown_username_costs_a_password_check_when_users_are_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = _CountingHashes(monkeypatch)
    api = Api()  # boss is configured
    assert api.http.post("/login", json={"username": "nobody", "password": "guess"}).status_code == 401
    assert api.http.post("/login", json={"username": "ann", "password": "ann"}).status_code == 200
    assert hashes.calls == 2  # each checked against a hash as costly as boss's, so time tells nothing
    bare = Api(auth={})  # nobody configured: nothing to hide, no hash to pay for
    assert bare.http.post("/login", json={"username": "ann", "password": "ann"}).status_code == 200
    assert hashes.calls == 2


# -- a per-user room cap (row 13) and exact room ids (row 5) ----------------------------------------


@pytest.mark.parametrize("engine", STORE_PARAMS)
def test_rooms_per_user_are_capped_on_every_engine(engine: str, tmp_path: Path) -> None:
    api = Api(storage=storage_setting(engine, tmp_path), rooms={"max_per_user": 3})
    try:
        made = [api.create()["id"] for _ in range(3)]
        api.create("bob")  # another user's rooms are their own
        before = api.stored()
        assert_error(api.call("create", {"title": "one more", "anchor": "ann"}), 409, "3 rooms", "rooms.max_per_user")
        assert api.stored() == before
        assert api.server.store.count(anchor="ann") == 3 and api.server.store.count(anchor="ANN") == 0
        api.ok("delete", {"id": made[0], "user_id": "ann"})
        api.create()  # room again
    finally:
        api.server.close()


def test_room_ids_are_compared_exactly_on_every_engine(api: Api) -> None:
    room = api.create()["id"]
    for variant in (room.upper(), room + " "):
        assert_error(api.call("get", {"id": variant, "user_id": "ann"}), 404, "room not found")
        assert_error(api.call("update", {"id": variant, "title": "other"}), 404)
        for call in ("start", "stop", "delete"):
            assert_error(api.call(call, {"id": variant, "user_id": "ann"}), 404)
    assert [r["title"] for r in api.stored()] == ["room"]


@pytest.mark.mysql
def test_mysql_tables_are_utf8mb4_and_a_latin1_table_is_refused_at_start(tmp_path: Path) -> None:
    from livekit_demo.storage.sql import database_url

    server = storage_setting("mysql", tmp_path)
    name = f"livekit_demo_latin1_{os.getpid()}"
    with connect(server) as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET latin1")
    latin1 = database_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        # A latin1 database: the table we create is utf8mb4 anyway, so any script is stored.
        api = Api(storage=latin1)
        title = "直播 🎥 بث"
        room = api.create(title=title)["id"]
        assert api.ok("get", {"id": room, "user_id": "ann"})["title"] == title
        api.server.close()
        with connect(latin1) as conn:
            charsets = {row[0] for row in conn.exec_driver_sql(
                f"SELECT character_set_name FROM information_schema.columns WHERE table_schema = '{name}' AND character_set_name IS NOT NULL"
            )}  # fmt: skip
            assert charsets == {"utf8mb4"}
            # A table the old server made in that database, with the contract's DDL and no charset: latin1.
            conn.exec_driver_sql("DROP TABLE room_infos")
            conn.exec_driver_sql(CONTRACT_DDL)
            conn.commit()
        with pytest.raises(StorageError, match=r"latin1.*CONVERT TO CHARACTER SET utf8mb4"):
            Api(storage=latin1)
        with pytest.raises(StorageError, match="charset=utf8mb4"):
            Api(storage=database_url(latin1).update_query_dict({"charset": "latin1"}).render_as_string(hide_password=False))
    finally:
        with connect(server) as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
