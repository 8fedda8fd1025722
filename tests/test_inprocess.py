"""The in-process server: no thread, no socket, the same answers; what a browser tab (Pyodide) runs."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import livekit_demo
from livekit_demo.api import create_app
from livekit_demo.client import ApiError, ServerUnavailable, connect
from livekit_demo.inprocess import AppAwaitedIO, InProcessServer, InProcessTransport, is_inprocess_url
from livekit_demo.passwords import hash_password
from livekit_demo.runner import current_server, running_servers, start_server, stop_all


@pytest.fixture(autouse=True)
def _no_servers_left() -> Iterator[None]:
    yield
    stop_all()


def test_start_server_inprocess_gives_a_handle_with_the_same_api(tmp_path: Path) -> None:
    threads_before = threading.active_count()
    server = start_server(storage=str(tmp_path / "rooms.json"), env={}, inprocess=True)
    assert isinstance(server, InProcessServer) and server.running
    assert server.url.startswith("inprocess://") and is_inprocess_url(server.url)
    assert threading.active_count() == threads_before  # no server thread
    assert current_server() is server and running_servers() == [server]
    assert repr(server).startswith("<InProcessServer inprocess://") and "running" in repr(server)
    assert f"<code>{server.url}</code>" in server._repr_html_() and "<a href" not in server._repr_html_()

    client = livekit_demo.connect(username="ann")  # the latest start_server(), as in a notebook
    room = client.create("Morning show")
    assert client.start(room["id"])["status"] == 1
    assert client.raw("/", method="GET").text.startswith("livekit_demo AppServer")

    server.restart()  # TinyDB data survives a restart, and the client made before it keeps working
    assert [r["id"] for r in client.list()] == [room["id"]]
    server.stop()
    assert not server.running and running_servers() == []
    with pytest.raises(ServerUnavailable, match=f"the server at {server.url} was stopped"):
        client.list()
    server.stop()  # twice is harmless


def test_memory_storage_starts_empty_after_restart_and_the_context_manager_stops() -> None:
    with start_server(storage="memory", env={}, inprocess=True) as server:
        client = connect(server, "ann")
        client.create("gone after restart")
        server.restart()
        assert client.list() == []
    assert not server.running


def test_a_second_start_server_stops_the_first_and_keep_runs_both() -> None:
    first = start_server(storage="memory", env={}, inprocess=True)
    second = start_server(storage="memory", env={}, inprocess=True)
    assert not first.running and second.running and first.url != second.url
    third = start_server(storage="memory", env={}, inprocess=True, keep=True)
    assert running_servers() == [second, third]
    connect(second, "ann").create("only in the second")
    assert connect(third, "ann").list() == []


def test_stop_closes_the_store_so_the_file_can_be_opened_again(tmp_path: Path) -> None:
    path = str(tmp_path / "rooms.json")
    start_server(storage=path, env={}, inprocess=True).stop()
    # The TinyDB store holds its file exclusively while open: a second server would fail if the first leaked it.
    with start_server(storage=path, env={}, inprocess=True, keep=True) as again:
        assert connect(again, "ann").list() == []


def test_blocking_calls_run_inline_configured_passwords_and_sql(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    users = {"boss": hash_password("s3cret")}
    url = f"sqlite:///{tmp_path / 'rooms.db'}"
    with start_server(storage=url, env={}, inprocess=True, auth={"users": users}) as server:
        client = connect(server, "boss", "s3cret")  # a password hash: a blocking operation, run inline here
        assert client.create("on sqlite")["anchor_id"] == "boss"
        with pytest.raises(ApiError) as refused:
            connect(server, "boss", "wrong")
        assert refused.value.status == 401


def test_start_server_is_in_process_by_itself_where_threads_are_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "emscripten")
    server = start_server(storage="memory", env={})
    assert isinstance(server, InProcessServer)
    assert connect(username="ann").list() == []


def test_the_app_runs_blocking_handlers_inline_where_threads_are_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_threads(*args: object, **kwargs: object) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr("livekit_demo.api.run_in_thread", no_threads)
    settings = {"storage": "memory", "env": {}, "auth": {"users": {"boss": hash_password("pw")}}}
    with httpx.Client(base_url="inprocess://t", transport=InProcessTransport(create_app(**settings, inline=True))) as http:
        assert http.post("/login", json={"username": "boss", "password": "pw"}).status_code == 200
    # The default follows the platform: off a thread where there are threads...
    with httpx.Client(base_url="inprocess://t", transport=InProcessTransport(create_app(**settings))) as http:
        assert http.post("/login", json={"username": "boss", "password": "pw"}).status_code == 500
    # ...and inline in Pyodide.
    monkeypatch.setattr(sys, "platform", "emscripten")
    with httpx.Client(base_url="inprocess://t", transport=InProcessTransport(create_app(**settings))) as http:
        assert http.post("/login", json={"username": "boss", "password": "pw"}).status_code == 200


def test_the_transport_hands_over_the_request_and_reads_the_whole_answer() -> None:
    seen: dict[str, object] = {}

    async def echo(scope, receive, send):  # type: ignore[no-untyped-def]
        message = await receive()
        seen.update(scope=scope, body=message["body"], after=(await receive())["type"])
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-one", b"1")]})
        await send({"type": "http.response.body", "body": b"part ", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})

    with httpx.Client(base_url="inprocess://echo", transport=InProcessTransport(echo)) as http:
        answer = http.post("/a%20b/c?x=1", content=b"hello", headers={"X-Test": "yes"})
    assert (answer.status_code, answer.text, answer.headers["x-one"]) == (201, "part two", "1")
    scope = seen["scope"]
    assert isinstance(scope, dict)
    assert (scope["method"], scope["path"], scope["query_string"], scope["scheme"]) == ("POST", "/a b/c", b"x=1", "inprocess")
    assert (b"x-test", b"yes") in scope["headers"] and scope["client"] == ("127.0.0.1", 0)
    assert seen["body"] == b"hello" and seen["after"] == "http.disconnect"


def test_an_app_that_awaits_real_io_fails_clearly() -> None:
    loop = asyncio.new_event_loop()

    async def waits_for_a_thread(scope, receive, send):  # type: ignore[no-untyped-def]
        await loop.create_future()  # what awaiting a worker thread comes down to

    try:
        with httpx.Client(base_url="inprocess://slow", transport=InProcessTransport(waits_for_a_thread)) as http:
            with pytest.raises(AppAwaitedIO, match=r"awaited Future .*real I/O"):
                http.get("/")
    finally:
        loop.close()


def test_a_failing_startup_is_raised_and_leaves_nothing_running(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    with pytest.raises((OSError, livekit_demo.StorageError)):
        start_server(storage=str(blocker / "rooms.json"), env={}, inprocess=True)
    assert running_servers() == []
