"""The conformance kit: every check passes on our server, and each deliberate break is caught by its check.

The servers are real uvicorn servers on loopback sockets in threads: our app, wrapped in an ASGI
middleware (`Breaker`) that can rewrite answers the way a faulty AppServer would.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
import uvicorn

from livekit_demo.api import create_app
from livekit_demo.cli import main
from livekit_demo.conformance import (
    CheckResult,
    Report,
    ServerUnreachable,
    all_checks,
    load_keys,
    run_checks,
)
from livekit_demo.passwords import hash_password
from livekit_demo.settings import Settings

CONFIG: dict[str, Any] = {
    "live_stream": {"push_url": "push.test", "pull_url": "pull.test", "push_auth_key": "push-secret", "pull_auth_key": "pull-secret"},
    "live_mic": {"app_id": "rtc-app", "app_key": "rtc-secret"},
    "live_im": {"app_id": "im-app", "app_key": "im-secret", "app_sign": "im-sign"},
}
# Many runs against one server within a minute: keep the login throttle out of the way.
SERVER_SETTINGS: dict[str, Any] = {**CONFIG, "storage": "memory", "auth": {"login_max_failures": 1000}}

Rewrite = Callable[[str, int, Any], "tuple[int, Any]"]


class Breaker:
    """ASGI middleware that passes JSON answers through `rewrite(path, status, data) -> (status, data)`.

    A rewrite with a true `wants_text` attribute also gets the other answers, as text.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.rewrite: Rewrite | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        rewrite = self.rewrite
        if scope["type"] != "http" or rewrite is None:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            status, body = start["status"], b"".join(chunks)
            try:
                data = json.loads(body)
            except ValueError:
                if getattr(rewrite, "wants_text", False):
                    status, text = rewrite(scope["path"], status, body.decode())
                    body = text.encode()
            else:
                status, data = rewrite(scope["path"], status, data)
                body = json.dumps(data).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


class ThreadServer:
    """Our app (behind a Breaker) on a loopback socket, served by uvicorn in a thread."""

    def __init__(self, **settings: Any) -> None:
        self.breaker = Breaker(create_app(env={}, **settings))
        # An explicit IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections; with proto 0
        # every answer waits ~40 ms for a delayed ACK, and the suite crawls.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.breaker, log_level="warning", lifespan="on", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with ThreadServer(**SERVER_SETTINGS) as running:
        yield running


@pytest.fixture
def breaker(server: ThreadServer) -> Iterator[Breaker]:
    """The server's Breaker, reset after the test."""
    yield server.breaker
    server.breaker.rewrite = None


@pytest.fixture(scope="module")
def keys() -> Settings:
    return Settings.build(env={}, **SERVER_SETTINGS)


@pytest.fixture(scope="module")
def clean_report(server: ThreadServer, keys: Settings) -> Report:
    return run_checks(server.url, "ann", "ann", keys=keys)


def _rooms_of(url: str, user: str) -> set[str]:
    with httpx.Client(base_url=url) as client:
        token = client.post("/login", json={"username": user, "password": user}).json()["token"]
        answer = client.post("/api/v1/live/list", json={"user_id": user, "page_num": 1, "page_size": 100}, headers={"Authorization": f"Bearer {token}"})
        return {room["id"] for room in answer.json()}


def _room_infos(data: Any, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to every RoomInfo in an answer (one object or a list)."""
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict) and "anchor_id" in item:
            change(item)


# -- our own server passes ------------------------------------------------------------------------


def test_every_check_passes_on_our_server(clean_report: Report) -> None:
    failed = {r.id: f"{r.expected} / {r.seen}" for r in clean_report.failures}
    assert failed == {}
    assert clean_report.ok
    assert clean_report.counts["skip"] == 0, [(r.id, r.reason) for r in clean_report.results if r.outcome == "skip"]
    assert len(clean_report.results) == len(all_checks()) >= 120
    assert clean_report.cleanup_problems == []


def test_the_run_deletes_every_room_it_created(server: ThreadServer, keys: Settings) -> None:
    before = _rooms_of(server.url, "ann")
    report = run_checks(server.url, "ann", "ann", keys=keys, only="lifecycle.*,list.*,meeting.*")
    assert report.ok and report.results
    assert _rooms_of(server.url, "ann") == before


def test_check_ids_are_unique_named_and_described() -> None:
    checks = all_checks()
    assert len({c.id for c in checks}) == len(checks)
    for c in checks:
        assert re.fullmatch(r"[a-z0-9]+\.[A-Za-z0-9_]+", c.id), c.id
        assert c.description and "\n" not in c.description
    stricter = {c.id for c in checks if c.is_stricter}
    assert {"errors.unknown_room_404", "errors.wrong_content_type_415", "auth.alg_none_401", "roominfo.srt_url_form",
            "create.stores_nick_and_cover", "identity.get_as_other_403"} <= stricter  # fmt: skip
    assert "roominfo.metrics" not in stricter
    lifecycle = [c.id for c in checks if c.id.startswith("lifecycle.")]
    assert len(lifecycle) == 12 and "lifecycle.pause_from_prepared_409" in lifecycle


def test_only_selects_by_glob(server: ThreadServer) -> None:
    report = run_checks(server.url, "ann", "ann", only="lifecycle.*_409")
    assert [r.id for r in report.results] == ["lifecycle.pause_from_prepared_409", "lifecycle.pause_from_ended_409"]


def test_without_keys_signature_checks_are_skipped_with_the_reason(server: ThreadServer) -> None:
    report = run_checks(server.url, "ann", "ann", only="signing.*,roominfo.pull_url_info")
    assert report.ok
    skipped = [r for r in report.results if r.outcome == "skip"]
    assert {r.id for r in skipped} == {c.id for c in all_checks("signing.*")}
    assert all("--keys" in r.reason for r in skipped)
    assert report["roominfo.pull_url_info"].outcome == "pass"  # the shapes are still checked
    callbacks = run_checks(server.url, "ann", "ann", only="callback.*")
    assert callbacks.counts["skip"] == len(all_checks("callback.*")) == 6
    assert all("callback_auth_key" in r.reason for r in callbacks.results)


def test_keys_from_a_mapping_know_only_the_sections_given() -> None:
    known = load_keys({"live_stream": {"push_auth_key": "k", "pull_auth_key": ""}})
    assert known is not None and known.push_auth_key == "k" and known.pull_auth_key == ""
    assert known.rtc_app_key is None and known.im_app_id is None
    assert known.callback_auth_key == "k" and known.callback_host is None and not known.callback_known
    known = load_keys({"live_stream": {"push_url": "p.test", "push_auth_key": "k", "callback_auth_key": "cb"}})
    assert known is not None and (known.callback_host, known.callback_auth_key) == ("p.test", "cb")


def test_without_a_second_user_the_identity_checks_skip(keys: Settings) -> None:
    users = {"ann": hash_password("ann-pass")}
    with ThreadServer(**{**SERVER_SETTINGS, "auth": {"users": users, "demo_login": False}}) as closed:
        report = run_checks(closed.url, "ann", "ann-pass", keys=keys, only="ownership.*,identity.get_as_other_403")
    assert report.ok
    assert report["identity.get_as_other_403"].outcome == "pass"  # names the other user; needs no login
    skipped = [r for r in report.results if r.id.startswith("ownership.")]
    assert skipped and all(r.outcome == "skip" and "conformance_peer" in r.reason for r in skipped)


def test_a_report_records_requests_with_secrets_redacted(clean_report: Report) -> None:
    text = clean_report.to_json()
    data = json.loads(text)
    assert data["ok"] is True and data["counts"]["fail"] == 0
    result = clean_report["errors.unknown_room_404"]
    request = result.requests[-1]
    assert (request.method, request.path, request.status) == ("POST", "/api/v1/live/get", 404)
    assert request.headers["Authorization"] == "<redacted>"
    assert "404" in result.expected
    assert "Bearer ey" not in text and '"password": "ann"' not in text
    assert '"token": "ey' not in text and "?token=ey" not in text


def test_table_and_html_show_outcomes_and_a_summary(clean_report: Report) -> None:
    table = clean_report.format_table()
    assert table.splitlines()[-1] == clean_report.summary()
    assert clean_report.summary().startswith(f"OK: {len(clean_report.results)} checks")
    html = clean_report._repr_html_()
    assert clean_report.summary() in html and "<table>" in html and "#1a7f37" in html


def test_an_unreachable_server_raises() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ServerUnreachable, match="no answer from"):
        run_checks(f"http://127.0.0.1:{port}", "ann", "ann", timeout=2)


# -- broken servers are caught by the check meant for them ----------------------------------------


def _errors_as_200(path: str, status: int, data: Any) -> tuple[int, Any]:
    return (200 if status >= 400 else status), data


def _members_null(path: str, status: int, data: Any) -> tuple[int, Any]:
    if path.endswith("MeetingInfo") and isinstance(data, dict) and data.get("members") == []:
        data["members"] = None
    return status, data


def _link_info_everywhere(path: str, status: int, data: Any) -> tuple[int, Any]:
    _room_infos(data, lambda info: info.setdefault("link_info", {"rtc_push_url": "", "rtc_pull_url": ""}))
    return status, data


def _strip_signatures(value: Any) -> Any:
    if isinstance(value, str) and "auth_key=" in value:
        return re.sub(r"[?&]auth_key=[^,&]*", "", value)
    if isinstance(value, dict):
        return {k: _strip_signatures(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_signatures(v) for v in value]
    return value


def _unsigned_urls(path: str, status: int, data: Any) -> tuple[int, Any]:
    return status, _strip_signatures(data)


def _no_metrics(path: str, status: int, data: Any) -> tuple[int, Any]:
    _room_infos(data, lambda info: info.pop("metrics", None))
    return status, data


def _500_for_unknown_room(path: str, status: int, data: Any) -> tuple[int, Any]:
    if status == 404 and "room" in str(data.get("message", "")):
        return 500, {"code": 500, "message": "record not found", "details": None}
    return status, data


def _v2_token_extra_key(path: str, status: int, data: Any) -> tuple[int, Any]:
    if path == "/api/v2/live/token" and status == 200:
        data["request_id"] = "abc"
    return status, data


def _null_strings(path: str, status: int, data: Any) -> tuple[int, Any]:
    _room_infos(data, lambda info: info.update({k: None for k in ("anchor_nick", "cover_url") if info.get(k) == ""}))
    return status, data


def _on_callback(path: str) -> bool:
    return path.endswith("/handlePushStreamEventCallback")


def _callback_takes_bad_signatures(path: str, status: int, data: Any) -> tuple[int, Any]:
    if _on_callback(path) and status == 401 and "does not match" in data.get("message", ""):
        return 200, {"code": 200}
    return status, data


def _callback_takes_replays(path: str, status: int, data: Any) -> tuple[int, Any]:
    if _on_callback(path) and status == 401 and "replay" in data.get("message", ""):
        return 200, {"code": 200}
    return status, data


def _callback_missing_headers_401(path: str, status: int, data: Any) -> tuple[int, Any]:
    if _on_callback(path) and status == 400 and "header" in data.get("message", ""):
        return 401, {**data, "code": 401}
    return status, data


def _callback_404s(path: str, status: int, data: Any) -> tuple[int, Any]:
    if _on_callback(path) and status == 200:
        return 404, {"code": 404, "message": "stream not found", "details": None}
    return status, data


def _callback_answers_ok_true(path: str, status: int, data: Any) -> tuple[int, Any]:
    return (status, {"ok": True}) if _on_callback(path) and status == 200 else (status, data)


def _ended_rooms_reopen(path: str, status: int, data: Any) -> tuple[int, Any]:
    # What a server that re-opens an ended room on publish shows: the room live again.
    if path.endswith("/get") and isinstance(data, dict) and data.get("status") == 2:
        data["status"] = 1
    return status, data


BREAKS: list[tuple[str, Rewrite, str, str]] = [
    # name, rewrite, the check meant to catch it, words its message must carry
    ("errors answered with HTTP 200", _errors_as_200, "errors.http_status_not_200", "HTTP 200"),
    ("members: null", _members_null, "meeting.empty_members_list", "never null"),
    ("link_info on mode 0", _link_info_everywhere, "roominfo.no_link_info_on_mode0", "link_info is present on a mode 0 room"),
    ("unsigned push URLs", _unsigned_urls, "signing.push_urls", "unsigned"),
    ("unsigned pull URLs", _unsigned_urls, "signing.pull_urls", "unsigned"),
    ("no metrics object", _no_metrics, "roominfo.metrics", "metrics is missing"),
    ("500 for an unknown room", _500_for_unknown_room, "errors.unknown_room_404", "HTTP 500"),
    ("an extra key in the v2 token", _v2_token_extra_key, "token.v2_exact_keys", "unexpected ['request_id']"),
    ("null strings", _null_strings, "roominfo.strings_never_null", "anchor_nick is None"),
    ("callback takes a wrong signature", _callback_takes_bad_signatures, "callback.wrong_signature_401", "HTTP 401"),
    ("callback takes a replay", _callback_takes_replays, "callback.stale_timestamp_401", "HTTP 401"),
    ("callback without headers is 401", _callback_missing_headers_401, "callback.missing_headers_400", "HTTP 400"),
    ("callback 404 for an unknown stream", _callback_404s, "callback.unknown_stream_200", "HTTP 200"),
    ("callback answers another body", _callback_answers_ok_true, "callback.publish_and_done", '{"code": 200}'),
    ("publish re-opens an ended room", _ended_rooms_reopen, "callback.ended_room_stays_ended", "still 2"),
]


@pytest.mark.parametrize(("name", "rewrite", "check_id", "words"), BREAKS, ids=[b[0] for b in BREAKS])
def test_a_broken_server_is_caught_by_its_check(
    server: ThreadServer, breaker: Breaker, keys: Settings, name: str, rewrite: Rewrite, check_id: str, words: str
) -> None:
    before = _rooms_of(server.url, "ann")
    breaker.rewrite = rewrite
    report = run_checks(server.url, "ann", "ann", keys=keys)
    breaker.rewrite = None
    assert not report.ok
    result = report[check_id]
    assert result.outcome == "fail", f"{name} was not caught by {check_id}"
    assert words in f"{result.expected} {result.seen}", (result.expected, result.seen)
    assert result.requests, "a failure shows the request that revealed it"
    assert _rooms_of(server.url, "ann") == before, "the run cleaned up after itself"


def test_a_stricter_rule_failure_is_labelled_so(server: ThreadServer, breaker: Breaker) -> None:
    breaker.rewrite = _500_for_unknown_room
    report = run_checks(server.url, "ann", "ann", only="errors.*,lifecycle.*")
    result = report["errors.unknown_room_404"]
    assert result.label == "FAIL (our stricter rule)" and "500" in result.stricter
    assert report.counts["stricter_fail"] == report.counts["fail"] >= 1
    assert "our stricter rule" in report.format_table() and "our stricter rules" in report.summary()
    assert all(r.outcome == "pass" for r in report.results if r.id.startswith("lifecycle."))


# -- broken servers for the calls the real clients make beyond rooms (each run only its group) ----------


def _not_served(name: str) -> Rewrite:
    def rewrite(path: str, status: int, data: Any) -> tuple[int, Any]:
        if path.endswith(f"/{name}"):
            return 404, {"code": 404, "message": f"no such path: {path}", "details": None}
        return status, data

    return rewrite


def _root_with_trailing_slash(path: str, status: int, data: Any) -> tuple[int, Any]:
    if path == "/" and isinstance(data, str):
        return status, re.sub(r"(http://\S+)", r"\1/", data)
    return status, data


_root_with_trailing_slash.wants_text = True  # type: ignore[attr-defined]


def _double_slash_404(path: str, status: int, data: Any) -> tuple[int, Any]:
    if "//" in path:  # the raw path, as a router that does not clean paths sees it
        return 404, {"code": 404, "message": f"no such path: {path}", "details": None}
    return status, data


def _meeting_409_on_mode0(path: str, status: int, data: Any) -> tuple[int, Any]:
    if path.endswith("/getMeetingInfo") and data == {"members": []}:
        return 409, {"code": 409, "message": "unsupported live mode: 0", "details": None}
    return status, data


def _likes_not_kept(path: str, status: int, data: Any) -> tuple[int, Any]:
    if path.endswith("/sendLikeMessage") and status == 200:
        data["count"] = 1
    _room_infos(data, lambda info: info.get("metrics", {}).update(like_count=0))
    return status, data


def _mute_not_in_user_status(path: str, status: int, data: Any) -> tuple[int, Any]:
    _room_infos(data, lambda info: info.update(user_status={"mute": False, "mute_source": []}))
    return status, data


def _statistics_off_metrics(path: str, status: int, data: Any) -> tuple[int, Any]:
    if path.endswith("/getStatistics") and status == 200:
        data["pv"] += 1
    return status, data


def _anyone_mutes(path: str, status: int, data: Any) -> tuple[int, Any]:
    if path.endswith("/muteChatroom") and status == 403:
        return 200, {"code": 200, "mute": True}
    return status, data


def _hand_off_as_login(path: str, status: int, data: Any) -> tuple[int, Any]:
    if status == 401 and "hand-off" in str(data.get("message", "")):
        return 200, {}
    return status, data


def _trade_twice(path: str, status: int, data: Any) -> tuple[int, Any]:
    if path.endswith("/verifyAuthToken") and status == 401 and "already" in str(data.get("message", "")):
        return 200, {"login_token": "x"}
    return status, data


def _verify_null(path: str, status: int, data: Any) -> tuple[int, Any]:
    if path.endswith("/verifyAuthToken") and status == 401:
        return 200, {"login_token": None}  # the reference's answer to a token that did not verify
    return status, data


def _jump_url_slash(path: str, status: int, data: Any) -> tuple[int, Any]:
    if path.endswith("/getLiveJumpUrl") and status == 200:
        data["live_jump_url"] = data["live_jump_url"].replace("&token=", "%2F&token=", 1)  # app_server comes first
    return status, data


CLIENT_BREAKS: list[tuple[str, Rewrite, str, str, str]] = [
    # name, rewrite, the checks run, the check meant to catch it, words its message must carry
    ("GET / names a base URL ending in /", _root_with_trailing_slash, "baseurl.*", "baseurl.root_without_trailing_slash", "without a trailing slash"),
    ("//api/... is a 404", _double_slash_404, "baseurl.*", "baseurl.repeated_slashes", "HTTP 404"),
    ("getMeetingInfo on mode 0 is a 409", _meeting_409_on_mode0, "meeting.*", "meeting.get_on_mode0_empty", "HTTP 409"),
    ("no getStatistics", _not_served("getStatistics"), "audience.*", "audience.statistics", "HTTP 404"),
    ("getStatistics off get's metrics", _statistics_off_metrics, "audience.*", "audience.statistics", "the same pv"),
    ("no sendLikeMessage", _not_served("sendLikeMessage"), "audience.*", "audience.likes_add_up", "HTTP 404"),
    ("likes not kept", _likes_not_kept, "audience.*", "audience.likes_add_up", "counts 3 then 5"),
    ("no muteChatroom", _not_served("muteChatroom"), "audience.*", "audience.mute_follows_user_status", "HTTP 404"),
    ("no cancelMuteChatroom", _not_served("cancelMuteChatroom"), "audience.*", "audience.mute_follows_user_status", "HTTP 404"),
    ("no isMuteChatroom", _not_served("isMuteChatroom"), "audience.*", "audience.mute_follows_user_status", "HTTP 404"),
    ("user_status ignores the mute", _mute_not_in_user_status, "audience.*", "audience.mute_follows_user_status", "mute_source"),
    ("anyone mutes", _anyone_mutes, "audience.*", "audience.mute_only_by_the_anchor", "HTTP 403"),
    ("no getRtcAuthToken", _not_served("getRtcAuthToken"), "handoff.*", "handoff.rtc_auth_token", "HTTP 404"),
    ("no getLiveJumpUrl", _not_served("getLiveJumpUrl"), "handoff.*", "handoff.jump_url", "HTTP 404"),
    ("app_server with a trailing slash", _jump_url_slash, "handoff.*", "handoff.jump_url", "app_server="),
    ("no verifyAuthToken", _not_served("verifyAuthToken"), "handoff.*", "handoff.verify_trades_once", "HTTP 404"),
    ("a hand-off token traded twice", _trade_twice, "handoff.*", "handoff.verify_trades_once", "traded already"),
    ("a refused verify answered 200 null", _verify_null, "handoff.*", "handoff.refused_verify_keeps_the_token", "HTTP 401"),
    ("a hand-off token logs in", _hand_off_as_login, "handoff.*", "handoff.not_a_login_token", "HTTP 401"),
]


@pytest.mark.parametrize(("name", "rewrite", "only", "check_id", "words"), CLIENT_BREAKS, ids=[b[0] for b in CLIENT_BREAKS])
def test_a_server_lacking_a_client_call_is_caught_by_its_check(
    server: ThreadServer, breaker: Breaker, keys: Settings, name: str, rewrite: Rewrite, only: str, check_id: str, words: str
) -> None:
    before = _rooms_of(server.url, "ann")
    breaker.rewrite = rewrite
    report = run_checks(server.url, "ann", "ann", keys=keys, only=only)
    breaker.rewrite = None
    result = report[check_id]
    assert result.outcome == "fail", f"{name} was not caught by {check_id}"
    assert words in f"{result.expected} {result.seen}", (result.expected, result.seen)
    assert result.requests, "a failure shows the request that revealed it"
    assert _rooms_of(server.url, "ann") == before, "the run cleaned up after itself"


def test_every_client_call_has_a_check_and_a_break() -> None:
    calls = ("getStatistics", "sendLikeMessage", "muteChatroom", "cancelMuteChatroom", "isMuteChatroom", "getRtcAuthToken", "getLiveJumpUrl", "verifyAuthToken")
    broken = {b[0] for b in CLIENT_BREAKS}
    assert all(f"no {call}" in broken for call in calls)
    assert {"baseurl.root_without_trailing_slash", "baseurl.repeated_slashes", "meeting.get_on_mode0_empty"} <= {c.id for c in all_checks()}


# -- the command ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("conformance") / "config.json"
    path.write_text(json.dumps(CONFIG))
    return path


def test_cli_passes_on_our_server_and_writes_json(server: ThreadServer, config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    code = main(["check", server.url, "--username", "ann", "--password", "ann", "--keys", str(config_file), "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert printed.splitlines()[-1].startswith("OK: ")
    data = json.loads(out.read_text())
    assert data["ok"] is True and data["counts"]["skip"] == 0


def test_cli_fails_on_a_broken_server(server: ThreadServer, breaker: Breaker, capsys: pytest.CaptureFixture[str]) -> None:
    breaker.rewrite = _members_null
    code = main(["check", server.url, "--username", "ann", "--password", "ann", "--only", "meeting.*", "--second-user", "bob:bob"])
    printed = capsys.readouterr().out
    assert code == 1
    assert re.search(r"^FAIL +meeting\.empty_members_list +expected", printed, re.MULTILINE)
    assert printed.splitlines()[-1].startswith("FAILED: ")


def test_cli_connection_refused_is_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = main(["check", f"http://127.0.0.1:{port}", "--username", "ann", "--password", "ann", "--timeout", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: no answer from") and "Traceback" not in err


def test_cli_usage_errors_are_exit_2(server: ThreadServer, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", server.url, "--username", "ann", "--password", "ann", "--second-user", "nopassword"])
    assert exited.value.code == 2
    assert main(["check", server.url, "--username", "ann", "--password", "ann", "--only", "nothing.*"]) == 2
    assert "no check id matches" in capsys.readouterr().err


def test_cli_as_a_process_against_a_served_process(config_file: Path, tmp_path: Path) -> None:
    serve = subprocess.Popen(
        [sys.executable, "-m", "livekit_demo", "serve", "--storage", "memory", "--port", "0", "--config", str(config_file)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        url = ""
        while not url:
            line = serve.stdout.readline()
            assert line, "serve exited before printing its URL"
            found = re.search(r"(http://\S+)", line)
            url = found.group(1) if found else ""
        checked = subprocess.run(
            [sys.executable, "-m", "livekit_demo", "check", url, "--username", "ann", "--password", "ann", "--keys", str(config_file)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        serve.terminate()
        serve.wait(10)
        if serve.stdout is not None:
            serve.stdout.close()
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr
    assert checked.stdout.splitlines()[-1].startswith("OK: ")


def test_cli_with_a_wrong_password_stops_at_login_without_locking_the_user_out(capsys: pytest.CaptureFixture[str]) -> None:
    users = {"ann": hash_password("ann-pass")}
    # The server's own lockout rule (a low limit) is what a table of 137 login attempts tripped.
    with ThreadServer(**{**SERVER_SETTINGS, "auth": {"users": users, "demo_login": False, "login_max_failures": 3}}) as closed:
        code = main(["check", closed.url, "--username", "ann", "--password", "wrong"])
        printed = capsys.readouterr().out
        assert code == 1
        rows = printed.splitlines()
        assert len(rows) == 3 and re.match(r"^FAIL +login +.*cannot log in as 'ann'", rows[1]), printed
        assert rows[-1].startswith("FAILED: 1 checks") and "0 passed, 1 failed" in rows[-1]
        answer = httpx.post(f"{closed.url}/login", json={"username": "ann", "password": "ann-pass"})
        assert answer.status_code == 200  # not locked out


def test_cli_needs_no_user_and_no_scheme_against_a_demo_server(server: ThreadServer, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", server.url.removeprefix("http://"), "--only", "errors.*,lifecycle.*"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert printed.splitlines()[-1].startswith("OK: ") and f"against {server.url}:" in printed


def test_table_details_are_whole() -> None:
    long_seen = "x" * 300
    report = Report("http://h", [CheckResult("a.b", "d", "fail", expected="something", seen=long_seen)])
    assert long_seen in report.format_table()
    assert long_seen not in report.format_table(width=100)


# -- through the in-process transport (a browser tab's server) ----------------------------------


def test_every_check_passes_on_an_in_process_server(keys: Settings) -> None:
    from livekit_demo.runner import start_server

    with start_server(env={}, keep=True, inprocess=True, **SERVER_SETTINGS) as server:
        report = run_checks(server.url, "ann", "ann", keys=keys)
    assert {r.id: f"{r.expected} / {r.seen}" for r in report.failures} == {}
    assert report.counts["skip"] == 0 and len(report.results) == len(all_checks())
    assert report.cleanup_problems == []
