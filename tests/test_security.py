"""Security, by trying to break it: tokens, identity and ownership, limits, login throttling, secrets in logs.

Token cases already in test_api.py (malformed, alg none, HS512, another secret, no exp, expired,
tampered payload, refresh window) are not repeated; these are the ones it lacks.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from starlette.testclient import TestClient
from test_api import ADMIN_HASH, Api, assert_error

from livekit_demo.api import create_app
from livekit_demo.app_server import AppServer
from livekit_demo.clock import FixedClock
from livekit_demo.runner import start_server
from livekit_demo.settings import Settings

from server_process import login_headers, peak_rss_kib, rss_kib, serve_process

API = "/api/v1/live"
LIST = {"user_id": "ann", "page_num": 1, "page_size": 1}


@pytest.fixture
def api() -> Api:
    return Api()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- tokens ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"id": 42, "iat": 1, "exp": 2**40}, "'id' claim"),
        ({"id": "", "iat": 1, "exp": 2**40}, "'id' claim"),
        ({"id": ["ann"], "iat": 1, "exp": 2**40}, "'id' claim"),
        ({"iat": 1, "exp": 2**40, "sub": "ann"}, "'id'"),
        ({"id": "ann", "exp": 2**40}, "'iat'"),
        ({"id": "ann", "iat": 1, "exp": "99999999999"}, "'exp' claim"),
        ({"id": "ann", "iat": 1, "exp": True}, "'exp' claim"),
    ],
    ids=["id-number", "id-empty", "id-list", "no-id", "no-iat", "exp-string", "exp-bool"],
)
def test_tokens_with_bad_claims_are_401_saying_which(api: Api, claims: dict[str, object], words: str) -> None:
    token = jwt.encode(claims, api.server.auth._secret, algorithm="HS256")
    assert_error(api.call("list", LIST, None, headers=_bearer(token)), 401, words)
    # Refresh reads tokens through the same checks, so it refuses them too.
    assert_error(api.http.post(f"{API}/refresh_token", headers=_bearer(token)), 401)


@pytest.mark.parametrize("alg", ["hs256", "RS256", "HS384"])
def test_other_algorithm_names_are_401(api: Api, alg: str) -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": alg, "typ": "JWT"}).encode()).rstrip(b"=").decode()
    _, payload, signature = api.token("ann").split(".")
    assert_error(api.call("list", LIST, None, headers=_bearer(f"{header}.{payload}.{signature}")), 401, repr(alg))


def test_refresh_refuses_alg_none_and_tokens_without_a_usable_orig_iat(api: Api) -> None:
    secret = api.server.auth._secret
    none = jwt.encode({"id": "ann", "iat": 1, "exp": 2**40, "orig_iat": api.clock.timestamp()}, None, algorithm="none")
    assert_error(api.http.post(f"{API}/refresh_token", headers=_bearer(none)), 401, "'none'")
    no_orig = jwt.encode({"id": "ann", "iat": 1, "exp": 2**40}, secret, algorithm="HS256")
    assert_error(api.http.post(f"{API}/refresh_token", headers=_bearer(no_orig)), 401, "orig_iat")
    text_orig = jwt.encode({"id": "ann", "iat": 1, "exp": 2**40, "orig_iat": str(api.clock.timestamp())}, secret, algorithm="HS256")
    assert_error(api.http.post(f"{API}/refresh_token", headers=_bearer(text_orig)), 401, "orig_iat")


def test_an_im_token_is_not_an_api_token(api: Api) -> None:
    # The local IM stand-in signs its inner JWT with the same secret: it must not open the API.
    im = api.ok("token", {"user_id": "ann", "device_id": "d", "device_type": "web"})
    for key in ("access_token", "refresh_token"):
        inner = json.loads(base64.b64decode(im[key]))["token"]
        assert_error(api.call("list", LIST, None, headers=_bearer(inner)), 401, "'id'")
        assert_error(api.http.post(f"{API}/refresh_token", headers=_bearer(inner)), 401)


def test_token_places_in_order_and_a_bad_earlier_one_is_not_skipped(api: Api) -> None:
    good, other = api.token("ann"), api.token("bob")
    bad = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    url = f"{API}/list"
    # Query string alone, cookie alone.
    assert api.http.post(url, json=LIST, params={"token": good}).status_code == 200
    api.http.cookies.set("jwt", good)
    assert api.http.post(url, json=LIST).status_code == 200
    # A bad token in an earlier place is the token: it is refused, not passed over for a good later one.
    assert_error(api.http.post(url, json=LIST, params={"token": bad}), 401, "signature")
    assert_error(api.http.post(url, json=LIST, headers=_bearer(bad), params={"token": good}), 401, "signature")
    api.http.cookies.set("jwt", bad)
    assert api.http.post(url, json=LIST, params={"token": good}).status_code == 200
    # The header wins over the query string: bob's header, ann's query token, acting as ann is 403.
    api.http.cookies.clear()
    assert_error(api.http.post(url, json=LIST, headers=_bearer(other), params={"token": good}), 403, "not you")


# -- identity and ownership -------------------------------------------------------------------------


def _rooms(api: Api) -> dict[str, str]:
    """A prepared co-streaming room and a live one, both ann's."""
    prepared = api.create(mode=1)["id"]
    live = api.create()["id"]
    api.ok("start", {"id": live, "user_id": "ann"})
    return {"prepared": prepared, "live": live}


# (call, room to use, body builder given room id and the user id named in the body)
MUTATIONS: list[tuple[str, str, Callable[[str, str], dict[str, object]]]] = [
    ("update", "prepared", lambda room, who: {"id": room, "title": "hijacked", "user_id": who, "anchor": who}),
    ("start", "prepared", lambda room, who: {"id": room, "user_id": who}),
    ("pause", "live", lambda room, who: {"id": room, "user_id": who}),
    ("stop", "live", lambda room, who: {"id": room, "user_id": who}),
    ("delete", "prepared", lambda room, who: {"id": room, "user_id": who}),
    ("updateMeetingInfo", "prepared", lambda room, who: {"id": room, "members": [{"user_id": "bob"}], "user_id": who}),
]


@pytest.mark.parametrize(("call", "which", "body"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
@pytest.mark.parametrize(("named", "words"), [("bob", "anchor"), ("ann", "")], ids=["as-self", "naming-the-anchor"])
def test_a_non_anchor_cannot_mutate_and_changes_nothing(api: Api, call: str, which: str, body: Callable[[str, str], dict[str, object]], named: str, words: str) -> None:
    rooms = _rooms(api)
    before = api.stored()
    r = api.call(call, body(rooms[which], named), "bob")
    assert_error(r, 403, words)
    assert api.stored() == before


@pytest.mark.parametrize(("call", "which", "body"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_an_admin_may_mutate_any_room(api: Api, call: str, which: str, body: Callable[[str, str], dict[str, object]]) -> None:
    rooms = _rooms(api)
    api.token("boss", "s3cret-admin")
    before = api.stored()
    api.ok(call, body(rooms[which], "ann"), "boss")
    assert api.stored() != before


def test_acting_as_someone_else_is_403_for_create_and_im_tokens(api: Api) -> None:
    before = api.stored()
    assert_error(api.call("create", {"title": "t", "anchor": "ann"}, "bob"), 403, "not you")
    assert_error(api.call("token", {"user_id": "ann", "device_id": "d", "device_type": "ios"}, "bob"), 403, "not you")
    assert_error(api.call("token", {"user_id": "ann"}, "bob", version=2), 403, "not you")
    assert_error(api.call("get", {"id": "whatever", "user_id": "ann"}, "bob"), 403, "not you")
    assert_error(api.call("list", LIST, "bob"), 403, "not you")
    assert api.stored() == before
    api.token("boss", "s3cret-admin")
    assert api.ok("token", {"user_id": "ann", "device_id": "d", "device_type": "ios"}, "boss")["access_token"]
    assert api.ok("create", {"title": "t", "anchor": "ann"}, "boss")["anchor_id"] == "ann"


def test_the_demo_rule_never_applies_to_a_name_in_admins() -> None:
    # `admin` is listed as an admin but is not a configured user: the demo rule must not hand the name
    # to whoever asks (it would be nobody special today, and an admin the day the user is configured).
    api = Api(auth={"admins": ["admin"]})
    room = api.create()["id"]
    assert_error(api.http.post("/login", json={"username": "admin", "password": "admin"}), 401, "wrong username or password")
    demo_token, _ = api.server.auth.issue("admin", configured=False)  # as a demo login would have made it
    before = api.stored()
    assert_error(api.call("start", {"id": room, "user_id": "ann"}, None, headers=_bearer(demo_token)), 401, "no longer allowed")
    assert api.stored() == before


# -- limits ----------------------------------------------------------------------------------------


def test_a_declared_content_length_over_the_limit_is_413_before_any_body() -> None:
    api = Api(server={"max_body": 1000})
    r = api.http.post(f"{API}/create", content=b"{}", headers={"Content-Length": "2000000000", "Content-Type": "application/json"})
    assert_error(r, 413, "limit")


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    yield b'{"title": "'
    while sent < total:
        yield b"x" * size
        sent += size


def test_a_streamed_body_over_the_limit_is_413_without_being_kept(tmp_path: Path) -> None:
    total = 50 * 1024 * 1024
    with serve_process(tmp_path, "--storage", "memory") as server, httpx.Client(base_url=server.url, timeout=60) as http:
        auth = login_headers(http, "ann")
        http.post(f"{API}/list", json=LIST, headers=auth)  # warm up: imports and first-request allocations
        before = rss_kib(server.pid)
        # A generator body has no length: httpx sends it chunked, so only counting can stop it.
        try:
            r = http.post(f"{API}/create", content=_chunks(total), headers=auth | {"Content-Type": "application/json"})
            assert r.status_code == 413, r.text
            assert r.json()["code"] == 413
        except httpx.WriteError:
            pass  # the server answered and closed while we were still sending: it stopped reading, which is the point
        grown_mib = (peak_rss_kib(server.pid) - before) / 1024
        assert grown_mib < 16, f"the server's memory peaked {grown_mib:.0f} MiB higher for a {total >> 20} MiB body"
        # It is still serving.
        assert http.post(f"{API}/list", json=LIST, headers=auth).status_code == 200


def test_a_streamed_body_gets_its_413_answer(tmp_path: Path) -> None:
    # With a raw socket we can read the answer while still sending: the 413 comes before the body ends.
    with serve_process(tmp_path, "--storage", "memory") as server:
        host, port = server.url.split("//")[1].rstrip("/").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(f"POST {API}/create HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n".encode())
            answer = b""
            try:
                for _ in range(800):  # 50 MiB in 64 KiB chunks, unless the answer comes first
                    sock.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
                    sock.settimeout(0.001)
                    try:
                        answer += sock.recv(65536)
                    except (TimeoutError, BlockingIOError):
                        pass
                    sock.settimeout(30)
                    if b"\r\n\r\n" in answer:
                        break
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_lying_small_content_length_reads_only_what_it_declares(tmp_path: Path) -> None:
    with serve_process(tmp_path, "--storage", "memory") as server, httpx.Client(base_url=server.url, timeout=30) as http:
        auth = login_headers(http, "ann")
        host, port = server.url.split("//")[1].rstrip("/").split(":")
        before = rss_kib(server.pid)
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            head = f"POST {API}/create HTTP/1.1\r\nHost: {host}\r\nContent-Length: 20\r\nContent-Type: application/json\r\n"
            sock.sendall(f"{head}Authorization: {auth['Authorization']}\r\n\r\n".encode())
            try:
                for _ in range(160):  # 10 MiB beyond the declared 20 bytes
                    sock.sendall(b"x" * 0x10000)
            except (BrokenPipeError, ConnectionResetError):
                pass
            sock.settimeout(5)
            try:
                answer = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                answer = b""
        # The declared 20 bytes are the body (not JSON: 400); the rest is not a request the server accepts.
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert (peak_rss_kib(server.pid) - before) / 1024 < 16
        assert http.post(f"{API}/list", json=LIST, headers=auth).status_code == 200
        assert http.post(f"{API}/list", json={"user_id": "ann", "page_num": 1, "page_size": 100}, headers=auth).json() == []


# -- login throttling -------------------------------------------------------------------------------


class Throttled:
    """One app, one fixed clock, and a client per address."""

    def __init__(self, per_address: int = 5) -> None:
        self.clock = FixedClock("2026-11-28T10:15:00Z")
        auth = {"users": {"boss": ADMIN_HASH}, "login_max_failures": 5, "login_max_failures_per_address": per_address, "login_lockout": 60}
        settings = Settings.build(env={}, storage="memory", auth=auth)
        self.app = create_app(AppServer(settings, clock=self.clock))
        self._clients: dict[str, TestClient] = {}

    def login(self, username: str, password: str, address: str = "10.0.0.1") -> httpx.Response:
        if address not in self._clients:
            self._clients[address] = TestClient(self.app, client=(address, 50000))
        return self._clients[address].post("/login", json={"username": username, "password": password})


def test_failures_per_username_lock_that_username_from_every_address() -> None:
    t = Throttled()
    for i in range(5):
        assert t.login("boss", "wrong", f"10.0.1.{i}").status_code == 401
    r = t.login("boss", "s3cret-admin", "10.0.2.1")  # the right password, from a fresh address
    body = assert_error(r, 429, "this username")
    retry_after = int(r.headers["Retry-After"])
    assert 0 < retry_after <= 60 and str(retry_after) in body["message"]
    assert t.login("carl", "carl", "10.0.2.1").status_code == 200  # other names are not locked
    t.clock.advance(retry_after - 1)
    assert t.login("boss", "s3cret-admin", "10.0.2.2").status_code == 429
    t.clock.advance(1)
    assert t.login("boss", "s3cret-admin", "10.0.2.2").status_code == 200


def test_failures_per_address_lock_that_address_for_every_username() -> None:
    t = Throttled()
    for i in range(5):
        assert t.login(f"user{i}", "wrong", "10.9.9.9").status_code == 401
    r = t.login("dave", "dave", "10.9.9.9")
    assert_error(r, 429, "this address")
    assert int(r.headers["Retry-After"]) == 60
    assert t.login("dave", "dave", "10.9.9.10").status_code == 200  # another address is fine
    t.clock.advance(60)
    assert t.login("dave", "dave", "10.9.9.9").status_code == 200


def test_by_default_one_address_may_fail_more_often_than_one_username() -> None:
    defaults = Settings.build(env={}).auth
    assert defaults.login_max_failures_per_address > defaults.login_max_failures
    t = Throttled(per_address=defaults.login_max_failures_per_address)
    for i in range(defaults.login_max_failures_per_address - 1):
        assert t.login(f"learner{i}", "typo", "10.7.7.7").status_code == 401  # a class behind one NAT
    assert t.login("learner0", "learner0", "10.7.7.7").status_code == 200
    t.login("learner1", "typo", "10.7.7.7")
    assert t.login("learner2", "learner2", "10.7.7.7").status_code == 429


def test_fewer_failures_than_the_limit_and_a_success_do_not_lock() -> None:
    t = Throttled()
    for _ in range(4):
        assert t.login("boss", "wrong", "10.1.1.1").status_code == 401
    assert t.login("boss", "s3cret-admin", "10.1.1.2").status_code == 200
    # The success cleared the username's count: four more failures still do not lock it.
    for _ in range(4):
        assert t.login("boss", "wrong", "10.1.1.3").status_code == 401
    assert t.login("boss", "s3cret-admin", "10.1.1.4").status_code == 200


# -- secrets -------------------------------------------------------------------------------------


def test_a_generated_secret_file_is_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        for settings in (
            {"storage": "memory", "auth": {"secret_file": str(tmp_path / "jwt.secret")}},
            {"storage": str(tmp_path / "rooms.json")},
        ):
            AppServer(Settings.build(env={}, **settings)).close()
    finally:
        os.umask(old_umask)
    for name in ("jwt.secret", "rooms.json.secret"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode & 0o077 == 0, (name, oct(mode))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # the formatted text includes any traceback


_LOGGERS = ("livekit_demo", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
PASSWORDS = ("Adm1n-pa55-word!", "wr0ng-Guess-1", "wr0ng-Guess-2")


def _session(url: str) -> list[str]:
    """Logins (right and wrong), creates, refreshes, a query-string token: every secret handed out."""
    secrets: list[str] = []
    with httpx.Client(base_url=url, timeout=10) as http:
        for password in PASSWORDS[1:]:
            assert http.post("/login", json={"username": "boss", "password": password}).status_code == 401
        assert http.post("/login", json={"username": "ann", "password": PASSWORDS[1]}).status_code == 401
        boss = http.post("/login", json={"username": "boss", "password": PASSWORDS[0]}).json()["token"]
        ann = http.post("/login", json={"username": "ann", "password": "ann"}).json()["token"]
        secrets += [boss, ann]
        room = http.post(f"{API}/create", json={"title": "t", "anchor": "ann"}, headers=_bearer(ann)).json()
        assert http.post(f"{API}/get", json={"id": room["id"], "user_id": "ann"}, params={"token": ann}).status_code == 200
        refreshed = http.post(f"{API}/refresh_token", headers=_bearer(ann)).json()["token"]
        again = http.get("/auth/refresh_token", params={"token": refreshed}).json()["token"]
        secrets += [refreshed, again]
        im = http.post(f"{API}/token", json={"user_id": "ann", "device_id": "d", "device_type": "web"}, headers=_bearer(ann)).json()
        secrets += [im["access_token"], im["refresh_token"], json.loads(base64.b64decode(im["access_token"]))["token"]]
        assert http.post(f"{API}/list", json=LIST, params={"token": "not-a-token-" + ann[-20:]}).status_code == 401
    return secrets


def _assert_nothing_secret(text: str, secrets: list[str], jwt_secret: str) -> None:
    for password in PASSWORDS:
        assert password not in text, f"a password is in the log: {password}"
    assert jwt_secret not in text, "the JWT secret is in the log"
    for token in secrets:
        assert token not in text, f"a token is in the log: {token[:12]}..."
        if token.count(".") == 2:
            assert token.rsplit(".", 1)[1] not in text, "a token's signature is in the log"


def test_no_password_secret_or_token_reaches_the_logs_in_a_thread_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit_demo.passwords import hash_password

    config = {"users": {"boss": hash_password(PASSWORDS[0])}, "admins": ["boss"]}
    handle = start_server(storage="memory", keep=True, env={}, auth=config, server={"log_level": "debug"})
    collect = _Collect()
    levels = {}
    try:
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
            logger.addHandler(collect)
        secrets = _session(handle.url)
        assert handle.app_server is not None

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(handle.app_server.store, "get", broken)
        with httpx.Client(base_url=handle.url, timeout=10) as http:
            token = secrets[1]
            r = http.post(f"{API}/get", json={"id": "x", "user_id": "ann"}, params={"token": token})
            assert r.status_code == 500
        jwt_secret = handle.app_server.auth._secret
    finally:
        for name in _LOGGERS:
            logging.getLogger(name).removeHandler(collect)
            logging.getLogger(name).setLevel(levels.get(name, logging.NOTSET))
        handle.stop()
    text = "\n".join(collect.lines)
    assert "disk on fire" in text and "login refused" in text  # the capture really saw the session
    _assert_nothing_secret(text, secrets, jwt_secret)


def test_no_password_secret_or_token_reaches_a_serve_process_output(tmp_path: Path) -> None:
    from livekit_demo.passwords import hash_password

    config = {"auth": {"users": {"boss": hash_password(PASSWORDS[0])}, "admins": ["boss"]}}
    data = tmp_path / "rooms.json"
    with serve_process(tmp_path, "--storage", str(data), "--log-level", "debug", config=config) as server:
        secrets = _session(server.url)
        server.kill9()
        text = server.stderr()
    assert "uvicorn" in text.lower() or "Started server" in text or "Application startup" in text, text[:500]
    _assert_nothing_secret(text, secrets, (tmp_path / "rooms.json.secret").read_text().strip())


_MEASURE = """
import json, sys
from livekit_demo.auth import Identity
from livekit_demo.app_server import AppServer
from livekit_demo.settings import Settings

def kib(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))

server = AppServer(Settings.build(env={}, storage=sys.argv[1]))
rooms, size = int(sys.argv[2]), 64 * 1024
start = kib("VmRSS:")
for i in range(rooms):
    # A distinct string per room, as separate requests make them.
    server.rooms.create(Identity("ann"), {"title": f"r{i}", "anchor": "ann", "extends": (f"{i:08d}" * (size // 8))[:size]})
created = kib("VmRSS:")
server.close()  # TinyDB folds its journal into a new snapshot here
print(json.dumps({"start": start, "created": created, "peak": kib("VmHWM:")}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["memory", "tinydb"])
def test_rooms_with_the_largest_extends_cost_their_size_once(tmp_path: Path, storage: str) -> None:
    # 1,000 rooms with 64 KiB extends (64 MiB of data) stand in for 10,000 (640 MiB; see README).
    import subprocess
    import sys

    rooms = 1000
    target = "memory" if storage == "memory" else str(tmp_path / "rooms.json")
    out = subprocess.run([sys.executable, "-c", _MEASURE, target, str(rooms)], capture_output=True, text=True, timeout=300, check=True)
    kib = json.loads(out.stdout)
    data_kib = rooms * 64
    # Kept once in memory (the stores answer reads without touching the file) ...
    assert kib["created"] - kib["start"] < 1.3 * data_kib, kib
    # ... and writing the snapshot does not build it a second and third time (json.dumps, then bytes).
    assert kib["peak"] - kib["created"] < 0.3 * data_kib, kib
