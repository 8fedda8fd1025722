"""What a hostile tester broke (issue 15), each case kept fixed: one test per finding, on every engine it concerns.

Tests that need a real process (slow clients, a hung database, start-up errors) run `livekit-demo
serve` through tests/server_process.py, on loopback, bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import resource
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient
from test_api import ADMIN_HASH, Api, assert_error

from livekit_demo.api import create_app
from livekit_demo.app_server import AppServer
from livekit_demo.exceptions import AppServerError, SettingsError, StorageError
from livekit_demo.models import RoomRecord
from livekit_demo.settings import Settings
from livekit_demo.storage import TinyDBStore
from livekit_demo.storage.sql import SqlStore

from conftest import STORE_PARAMS, storage_setting
from server_process import login_headers, serve_process
from sql_databases import connect

API = "/api/v1/live"


@pytest.fixture(params=STORE_PARAMS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """An `Api` on each storage engine in turn."""
    made = Api(storage=storage_setting(request.param, tmp_path))
    try:
        yield made
    finally:
        made.server.close()


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
def test_nul_in_text_is_a_400_naming_the_field_on_every_engine(served: Api, call: str, body: dict[str, object], field: str) -> None:
    api = served
    room = api.create(mode=1)["id"]
    body = {k: (room if v == "ROOM" else v) for k, v in body.items()}
    before = api.stored()
    result = assert_error(api.call(call, body), 400, field, "NUL")
    assert [d["field"] for d in result["details"]] == [field]
    assert api.stored() == before


def test_a_huge_bad_value_is_not_echoed_back_whole(served: Api) -> None:
    api = served
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


def test_room_ids_are_compared_exactly_on_every_engine(served: Api) -> None:
    api = served
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


# -- TinyDB leftovers (rows 9 and 13) ---------------------------------------------------------------


def test_tinydb_sweeps_stale_snapshot_temp_files_and_keeps_its_journal_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "rooms.json"
    TinyDBStore(data).close()
    leftovers = [tmp_path / f".rooms.json.{tag}.tmp" for tag in ("k9abc", "x1")]
    for leftover in leftovers:
        leftover.write_bytes(b'{"room_infos": {"1": ')  # a snapshot cut short by kill -9
    unrelated = tmp_path / ".other.json.k9abc.tmp"
    unrelated.write_bytes(b"")
    old_umask = os.umask(0)
    try:
        (tmp_path / "rooms.json.journal").unlink()
        with TinyDBStore(data) as store:
            assert store.count() == 0
    finally:
        os.umask(old_umask)
    assert not any(p.exists() for p in leftovers) and unrelated.exists()
    assert stat.S_IMODE((tmp_path / "rooms.json.journal").stat().st_mode) == 0o600
    (tmp_path / "rooms.json.journal").chmod(0o644)  # one made by an older version
    TinyDBStore(data).close()
    assert stat.S_IMODE((tmp_path / "rooms.json.journal").stat().st_mode) == 0o600


def test_tinydb_refuses_an_empty_snapshot_whose_journal_holds_writes(tmp_path: Path) -> None:
    data = tmp_path / "rooms.json"
    store = TinyDBStore(data, compact_after=1000)
    for i in range(3):
        store.insert(RoomRecord(id=f"r{i}", title=f"room {i}"))
    store._journal.close()  # a crash: no compaction at close
    store._release()
    journal = (tmp_path / "rooms.json.journal").read_bytes()
    assert journal
    for damaged in (b"", b"   \n"):
        data.write_bytes(damaged)
        with pytest.raises(StorageError, match=r"empty but its journal.*Nothing was changed"):
            TinyDBStore(data)
        assert data.read_bytes() == damaged and (tmp_path / "rooms.json.journal").read_bytes() == journal
    data.write_bytes(b'{"room_infos": {')
    with pytest.raises(StorageError, match="does not parse"):
        TinyDBStore(data)
    assert (tmp_path / "rooms.json.journal").read_bytes() == journal


# -- stored rows that break the contract (row 10) ---------------------------------------------------


def test_broken_stored_rows_never_break_list_and_are_a_clear_500_alone(served: Api, caplog: pytest.LogCaptureFixture) -> None:
    api = served
    good = api.create(title="good")["id"]
    api.server.store.insert(RoomRecord(id="bad-status", title="nine", anchor="ann", anchor_id="ann", status=9))
    api.server.store.insert(RoomRecord(id="", title="no id", anchor="ann", anchor_id="ann"))
    body = {"user_id": "ann", "page_num": 1, "page_size": 50}
    with caplog.at_level(logging.WARNING, logger="livekit_demo"):
        assert [r["id"] for r in api.ok("list", body)] == [good]
        assert [r["id"] for r in api.ok("list", body)] == [good]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and any("status 9" in w for w in warnings) and any("no id" in w for w in warnings)
    for call in ("get", "start", "stop"):
        assert_error(api.call(call, {"id": "bad-status", "user_id": "ann"}), 500, "'bad-status'", "status 9")
    assert_error(api.call("update", {"id": "bad-status", "title": "x"}), 500, "status 9")
    assert api.ok("get", {"id": good, "user_id": "ann"})["title"] == "good"
    api.ok("delete", {"id": "bad-status", "user_id": "ann"})  # its anchor can still remove it
    assert api.server.store.get("bad-status") is None


# -- secrets and start-up errors (rows 7 and 8) -----------------------------------------------------


def test_secret_values_never_appear_in_settings_errors_or_shown_addresses() -> None:
    from livekit_demo.storage._dsn import safe_url

    with pytest.raises(SettingsError) as caught:
        Settings.build(env={}, live_stream={"push_auth_key": ["Pa55-Secret-Value"]})
    assert "Pa55-Secret-Value" not in str(caught.value) and "push_auth_key" in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        Settings.build(env={}, auth={"jwt_secret": 12345678901234567890})
    assert "12345678901234567890" not in str(caught.value)
    with pytest.raises(StorageError) as refused:
        SqlStore("mysql://root:p@ss:1@127.0.0.1/db")
    assert "ss:1" not in str(refused.value) and "does not parse" in str(refused.value)
    assert safe_url("postgresql://u@h/db?password=Sekr1t&sslmode=require") == "postgresql://u@h/db?password=***&sslmode=require"
    assert safe_url("root:pa@ss:wd@tcp(h:3306)/live?charset=utf8mb4") == "root:***@tcp(h:3306)/live?charset=utf8mb4"


def _serve_fails(tmp_path: Path, *args: str, timeout: float = 30) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_DEMO_", "SPF_"))}
    done = subprocess.run(
        [sys.executable, "-m", "livekit_demo", "serve", "--port", "0", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: "), done.stderr
    return done.stderr


def test_bad_files_and_addresses_at_start_are_one_line_errors(tmp_path: Path) -> None:
    deep = tmp_path / "deep" / "rooms.json"
    deep.parent.mkdir()
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in _serve_fails(tmp_path, "--storage", str(deep))
    assert deep.read_text().startswith("[[[")  # nothing rewritten
    config = tmp_path / "bad-secret.json"
    (tmp_path / "jwt.secret").write_bytes(b"\xff\xfe not text")
    config.write_text(json.dumps({"auth": {"secret_file": str(tmp_path / "jwt.secret")}}))
    assert "not UTF-8" in _serve_fails(tmp_path, "--storage", "memory", "--config", str(config))
    (tmp_path / "latin1.json").write_bytes(b'{"auth": {"admins": ["\xe9"]}}')
    assert "not UTF-8" in _serve_fails(tmp_path, "--config", str(tmp_path / "latin1.json"))
    (tmp_path / "deep-config.json").write_text('{"auth": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nested too deeply" in _serve_fails(tmp_path, "--config", str(tmp_path / "deep-config.json"))
    said = _serve_fails(tmp_path, "--storage", "mysql://root:p@ss:1@127.0.0.1/db")
    assert "ss:1" not in said and "does not parse" in said
    typed = tmp_path / "typed.json"
    typed.write_text(json.dumps({"live_im": {"app_sign": {"v": "Very-Secret-Sign"}}}))
    said = _serve_fails(tmp_path, "--config", str(typed))
    assert "Very-Secret-Sign" not in said and "live_im.app_sign" in said


# -- disk full (row 13) -----------------------------------------------------------------------------


class _FullDisk:
    """os.write for the journal failing with ENOSPC, as on a full disk."""

    def __init__(self) -> None:
        self.full = True

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def write(self, fd: int, data: object) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)  # type: ignore[arg-type]


def test_a_full_disk_is_a_507_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import livekit_demo.storage._journal as journal_module

    api = Api(storage=str(tmp_path / "rooms.json"))
    room = api.create()["id"]
    before = api.stored()
    disk = _FullDisk()
    monkeypatch.setattr(journal_module, "os", disk)
    assert_error(api.call("create", {"title": "t", "anchor": "ann"}), 507, "disk is full")
    assert_error(api.call("start", {"id": room, "user_id": "ann"}), 507, "disk is full")
    assert api.stored() == before
    disk.full = False
    api.ok("start", {"id": room, "user_id": "ann"})
    api.server.close()


def test_a_full_sqlite_database_is_a_507(tmp_path: Path) -> None:
    import sqlalchemy as sa

    api = Api(storage=f"sqlite:///{tmp_path / 'rooms.db'}")
    engine = api.server.store._engine  # type: ignore[attr-defined]
    engine.dispose()

    @sa.event.listens_for(engine, "connect")
    def _small(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute("PRAGMA max_page_count = 20")  # type: ignore[attr-defined]

    api.create()
    r = None
    for _ in range(40):
        r = api.call("create", {"title": "t", "anchor": "ann", "extends": "x" * 60_000})
        if r.status_code != 200:
            break
    assert r is not None
    assert_error(r, 507, "full")
    api.server.close()


def test_openapi_lists_503_and_507_where_they_can_happen() -> None:
    doc = Api().http.get("/openapi.json").json()["paths"]
    assert {"503", "507"} <= set(doc[f"{API}/create"]["post"]["responses"])
    assert "Retry-After" in doc[f"{API}/list"]["post"]["responses"]["503"]["headers"]
    assert "507" not in doc[f"{API}/list"]["post"]["responses"]
    assert "503" not in doc["/login"]["post"]["responses"]


# -- connection hygiene in `serve` (row 1) ----------------------------------------------------------


@contextmanager
def _serve_limited(tmp_path: Path, nofile: int, config: dict[str, object] | None = None, *args: str) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    """`serve` (memory storage) under an open-file limit of `nofile`; yields its URL, process and stderr file."""
    command = [sys.executable, "-m", "livekit_demo", "serve", "--port", "0", "--storage", "memory", *args]
    if config is not None:
        (tmp_path / "limited.json").write_text(json.dumps(config))
        command += ["--config", str(tmp_path / "limited.json")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_DEMO_", "SPF_"))}
    stderr = tmp_path / "limited.stderr.log"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with stderr.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=env, preexec_fn=limit)
    try:
        assert proc.stdout is not None
        url = next(line.split("client:", 1)[1].strip() for line in proc.stdout if "Enter this base URL" in line)
        yield url, proc, stderr
    finally:
        proc.kill()
        proc.wait(timeout=15)
        assert proc.stdout is not None
        proc.stdout.close()


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


def test_idle_and_half_sent_sockets_do_not_starve_normal_clients(tmp_path: Path) -> None:
    # The case scaled down: 2,000 idle sockets under a 1,024-file limit becomes 600 under 256.
    with _serve_limited(tmp_path, 256) as (url, proc, stderr):
        address = _address(url)
        hogs: list[socket.socket] = []
        try:
            for i in range(600):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(address)
                if i % 3 == 0:
                    with contextlib.suppress(OSError):
                        sock.send(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Le")  # a head that never ends
                hogs.append(sock)
            answered = 0
            with httpx.Client(base_url=url, timeout=10) as http:
                for _ in range(6):
                    r = http.post("/login", json={"username": "ann", "password": "ann"}, headers={"Connection": "close"})
                    answered += r.status_code == 200
            assert answered == 6
        finally:
            for sock in hogs:
                sock.close()
        assert proc.poll() is None
    log = stderr.read_text()
    assert log.count("accept") <= 5, log[-2000:]


def test_a_request_that_never_finishes_arriving_is_cut_off(tmp_path: Path) -> None:
    with _serve_limited(tmp_path, 1024, {"server": {"read_timeout": 2, "keep_alive": 1}}) as (url, _proc, _):
        address = _address(url)
        silent = socket.create_connection(address, timeout=20)
        trickle = socket.create_connection(address, timeout=20)
        body = socket.create_connection(address, timeout=20)
        try:
            trickle.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\n")
            body.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            started = time.monotonic()
            for sock in (silent, trickle, body):
                while True:  # keep trickling; the server must still close the connection
                    with contextlib.suppress(OSError):
                        sock.send(b" ") if sock is not silent else None
                    sock.settimeout(0.5)
                    try:
                        if sock.recv(4096) == b"":
                            break
                    except TimeoutError:
                        pass
                    except ConnectionResetError:
                        break
                    assert time.monotonic() - started < 30, "a slow request was never cut off"
        finally:
            for sock in (silent, trickle, body):
                sock.close()
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.post("/login", json={"username": "ann", "password": "ann"}).status_code == 200


def test_accept_errors_are_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    from livekit_demo.connection_guard import _AcceptErrors

    loop = asyncio.new_event_loop()
    try:
        handler = _AcceptErrors(loop)
        with caplog.at_level(logging.WARNING, logger="livekit_demo.serving"):
            for _ in range(1000):
                handler(loop, {"message": "socket.accept() out of system resource", "exception": OSError(errno.EMFILE, "Too many open files")})
        assert len([r for r in caplog.records if "cannot accept" in r.getMessage()]) == 1
    finally:
        loop.close()


# -- a database that is down or hung (row 2) --------------------------------------------------------


class _Proxy:
    """A loopback TCP relay to a database that can be made to hang (accept, never answer) and recover."""

    def __init__(self, target: tuple[str, int] | None) -> None:
        self.target = target  # None: a database that accepts and never answers, from the start
        self.hung = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closed = False
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._socks.append(client)
            if self.target is None or self.hung.is_set():
                continue  # held open, never answered
            upstream = socket.create_connection(self.target)
            self._socks.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(a, b), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self._closed:
                if self.hung.is_set():
                    time.sleep(0.05)  # stop relaying: whatever is sent waits, unanswered
                    continue
                source.settimeout(0.2)
                try:
                    data = source.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        for sock in self._socks:
            sock.close()


_SQL_TIMEOUTS = {"connect_timeout": 1, "read_timeout": 2, "pool_timeout": 1}


@pytest.mark.parametrize("kind", [pytest.param("mysql", marks=pytest.mark.mysql), pytest.param("postgresql", marks=pytest.mark.postgresql)])
def test_a_hung_database_is_a_quick_503_starves_nothing_and_recovers(tmp_path: Path, kind: str) -> None:
    import sqlalchemy as sa

    real = sa.engine.make_url(storage_setting(kind, tmp_path))
    proxy = _Proxy((real.host or "127.0.0.1", real.port or (3306 if kind == "mysql" else 5432)))
    try:
        url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        config = {"storage": {"type": kind, "url": url, **_SQL_TIMEOUTS}}
        with serve_process(tmp_path, config=config) as server, httpx.Client(base_url=server.url, timeout=20) as http:
            auth = login_headers(http, "ann")
            room = http.post(f"{API}/create", json={"title": "t", "anchor": "ann"}, headers=auth).json()["id"]
            proxy.hung.set()
            results: list[httpx.Response] = []

            def call() -> None:
                with httpx.Client(base_url=server.url, timeout=20) as own:
                    results.append(own.post(f"{API}/get", json={"id": room, "user_id": "ann"}, headers=auth))

            threads = [threading.Thread(target=call) for _ in range(30)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            # Meanwhile, calls that need no database are answered (login hashes in its own pool).
            assert http.post("/login", json={"username": "bob", "password": "bob"}).status_code == 200
            assert http.post(f"{API}/refresh_token", headers=auth).status_code == 200
            for thread in threads:
                thread.join(timeout=30)
            assert len(results) == 30 and {r.status_code for r in results} == {503}, {r.status_code for r in results}
            assert all(int(r.headers["Retry-After"]) > 0 for r in results)
            assert "database" in results[0].json()["message"]
            proxy.hung.clear()  # the database answers again: no restart needed
            deadline = time.monotonic() + 30
            while (r := http.post(f"{API}/get", json={"id": room, "user_id": "ann"}, headers=auth)).status_code != 200:
                assert r.status_code == 503 and time.monotonic() < deadline, r.text
                time.sleep(0.5)
            assert "Traceback" not in server.stderr()
    finally:
        proxy.close()


@pytest.mark.parametrize("scheme", ["mysql", "postgresql"])
def test_serve_refuses_to_start_when_the_database_never_answers(tmp_path: Path, scheme: str) -> None:
    proxy = _Proxy(None)
    try:
        config = tmp_path / "hung.json"
        config.write_text(json.dumps({"storage": {"type": scheme, "url": f"{scheme}://root:pw@127.0.0.1:{proxy.port}/test", **_SQL_TIMEOUTS}}))
        said = _serve_fails(tmp_path, "--config", str(config), timeout=40)
        assert "connect_timeout" in said and "pw" not in said.replace("pw@", ""), said
    finally:
        proxy.close()


# -- client disconnects (row 11) ---------------------------------------------------------------------


def test_a_client_leaving_mid_body_is_not_a_server_error(tmp_path: Path) -> None:
    with serve_process(tmp_path, "--storage", "memory", "--log-level", "info") as server, httpx.Client(base_url=server.url, timeout=10) as http:
        auth = login_headers(http, "ann")
        address = _address(server.url)
        for _ in range(20):
            with socket.create_connection(address, timeout=10) as sock:
                head = f"POST {API}/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
                sock.sendall(f"{head}Authorization: {auth['Authorization']}\r\n\r\n{{\"title\": ".encode())
                time.sleep(0.05)
        assert http.post(f"{API}/list", json={"user_id": "ann", "page_num": 1, "page_size": 1}, headers=auth).json() == []
        time.sleep(0.5)
        log = server.stderr()
    assert "internal error" not in log and "Traceback" not in log, log[-2000:]
