"""The background server of notebooks: start, answer, stop, restart, the second-call rule, failures."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import livekit_demo
from livekit_demo import SettingsError
from livekit_demo.runner import (
    ServerHandle,
    current_server,
    running_servers,
    start_server,
    stop_all,
)
from livekit_demo.settings import Settings


@pytest.fixture(autouse=True)
def _no_server_left() -> Iterator[None]:
    """Every test ends with no server of ours running and no thread of ours alive."""
    yield
    stop_all()
    assert not [t for t in threading.enumerate() if t.name.startswith("livekit_demo-server")]


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("livekit_demo-server")]


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _login(url: str) -> dict:
    with httpx.Client(base_url=url, trust_env=False) as http:
        return http.post("/login", json={"username": "ann", "password": "ann"}).json()


def test_start_answers_and_stop_frees_port_and_thread() -> None:
    before = set(threading.enumerate())
    server = start_server(storage="memory", env={})
    assert server.running and server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.settings.server.port == server.port
    assert _login(server.url)["code"] == 200
    server.stop()
    assert not server.running
    assert set(threading.enumerate()) == before
    assert _port_is_free(server.port)
    server.stop()  # twice is harmless


def test_start_stop_start_leaves_no_extra_thread() -> None:
    before = set(threading.enumerate())
    first = start_server(storage="memory", env={})
    first.stop()
    second = start_server(storage="memory", env={})
    assert len(_server_threads()) == 1
    second.stop()
    assert set(threading.enumerate()) == before


def test_second_start_stops_the_first_unless_keep() -> None:
    first = start_server(storage="memory", env={})
    second = start_server(storage="memory", env={})
    assert not first.running and second.running
    assert _port_is_free(first.port)
    assert current_server() is second
    third = start_server(storage="memory", env={}, keep=True)
    assert second.running and third.running
    assert running_servers() == [second, third]
    assert current_server() is third
    assert len(_server_threads()) == 2
    stop_all()
    assert not second.running and not third.running
    assert current_server() is None and running_servers() == []


def test_requested_port_and_restart_on_it(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        wanted = probe.getsockname()[1]
    server = start_server(storage=str(tmp_path / "rooms.json"), env={}, port=wanted)
    assert server.port == wanted
    token = _login(server.url)["token"]
    with httpx.Client(base_url=server.url, trust_env=False, headers={"Authorization": f"Bearer {token}"}) as http:
        created = http.post("/api/v1/live/create", json={"title": "kept", "anchor": "ann"}).json()
    server.restart()
    assert server.running and server.port == wanted and current_server() is server
    # TinyDB data and its JWT secret survive the restart, as they would a process restart.
    with httpx.Client(base_url=server.url, trust_env=False, headers={"Authorization": f"Bearer {token}"}) as http:
        again = http.post("/api/v1/live/get", json={"id": created["id"], "user_id": "ann"})
    assert again.status_code == 200 and again.json()["title"] == "kept"
    server.stop()


def test_taken_port_is_a_clear_oserror_quickly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = set(threading.enumerate())
        started = time.monotonic()
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            start_server(storage="memory", env={}, port=port)
        assert time.monotonic() - started < 3
        assert set(threading.enumerate()) == before
    assert running_servers() == []


def test_bad_settings_fail_before_any_thread() -> None:
    before = set(threading.enumerate())
    with pytest.raises(SettingsError, match=r"auth\.token_ttl"):
        start_server(storage="memory", env={}, auth={"token_ttl": 0})
    with pytest.raises(SettingsError, match="nonsense"):
        start_server(storage="memory", env={}, nonsense={})
    assert set(threading.enumerate()) == before


def test_default_storage_is_tinydb_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with start_server(env={}) as server:
        assert server.settings.storage.type == "tinydb"
        assert server.storage == "tinydb (livekit_demo.json)"
        assert _login(server.url)["code"] == 200
    assert not server.running
    assert (tmp_path / "livekit_demo.json").exists()


def test_environment_settings_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_DEMO_LIVE_STREAM_PUSH_URL", "push.env.example")
    with start_server(storage="memory") as server:
        assert server.settings.live_stream.push_url == "push.env.example"
        assert server.app_server is not None and server.app_server.settings.live_stream.push_url == "push.env.example"


def test_death_while_starting_raises_the_real_cause() -> None:
    server = ServerHandle(Settings.build(env={}, storage="memory", server={"port": 0}))

    def broken_run(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the event loop exploded")

    import uvicorn

    original = uvicorn.Server.run
    uvicorn.Server.run = broken_run  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="the event loop exploded"):
            server.start()
        assert time.monotonic() - started < 3
    finally:
        uvicorn.Server.run = original  # type: ignore[method-assign]
    assert not server.running and not _server_threads()


def test_startup_failure_names_the_logged_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit_demo import api

    real_create_app = api.create_app

    def failing_startup_app(app_server: object, **options: object) -> object:
        app = real_create_app(app_server, **options)  # type: ignore[arg-type]

        async def refuse(scope: dict, receive: object, send: object) -> None:
            if scope["type"] == "lifespan":
                await receive()  # type: ignore[operator]
                await send({"type": "lifespan.startup.failed", "message": "no database today"})  # type: ignore[operator]
                return
            await app(scope, receive, send)

        return refuse

    monkeypatch.setattr(api, "create_app", failing_startup_app)
    with pytest.raises(RuntimeError, match="no database today"):
        start_server(storage="memory", env={})
    assert not _server_threads()


def test_nothing_written_to_stdout_or_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with start_server(storage="memory", env={}) as server:
        _login(server.url)
        with httpx.Client(base_url=server.url, trust_env=False) as http:
            assert http.post("/api/v1/live/create", json={}).status_code == 401
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_uvicorn_records_go_to_our_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="uvicorn"), caplog.at_level(logging.INFO, logger="livekit_demo.server"):
        server = start_server(storage="memory", env={}, server={"log_level": "info"})
        server.stop()
    names = {r.name for r in caplog.records}
    assert "uvicorn.error" in names  # handed to livekit_demo.server, which pytest captures
    assert logging.getLogger("uvicorn").propagate is False


def test_reprs() -> None:
    server = start_server(storage="memory", env={})
    assert repr(server) == f"<ServerHandle {server.url} storage=memory running>"
    page = server._repr_html_()
    assert f"href='{server.url}/'" in page and "running" in page and "memory" in page
    server.stop()
    assert "stopped" in repr(server) and "stopped" in server._repr_html_()


def test_benchmark_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    path = Path(__file__).parent.parent / "benchmarks" / "startup.py"
    spec = importlib.util.spec_from_file_location("startup_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "startup.json"
    assert module.main(["--runs", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["runs"] == 2 and 0 < result["median_s"] <= result["max_s"]
    assert "median" in capsys.readouterr().out


def test_listening_socket_is_tcp_so_replies_are_not_delayed() -> None:
    # asyncio sets TCP_NODELAY on accepted connections only when the listening socket's proto says
    # TCP; a socket made with proto 0 left Nagle on, and each keep-alive request waited ~40 ms.
    # What matters is the accepted connection's option, read on the server's side of a live one
    # (on uvloop, which sets it itself, the listening socket's proto reads 0 whatever it is).
    with start_server(storage="memory", env={}) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        assert server._uvicorn is not None
        assert http.get("/").status_code == 200  # the connection stays open (keep-alive)
        connections = list(server._uvicorn.server_state.connections)
        assert connections
        for connection in connections:
            sock = connection.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_reset_clears_rooms_and_keeps_users_logged_in() -> None:
    with start_server(storage="memory", keep=True) as server:
        ann = livekit_demo.connect(server, username="ann")
        for title in ("one", "two"):
            ann.create(title=title)
        token = ann.jwt
        assert server.reset() == 2
        assert ann.list() == [] and ann.jwt == token  # no new login was needed
        assert ann.create(title="after")["title"] == "after"
        ann.close()
    with pytest.raises(RuntimeError, match="is not running; run start_server"):
        server.reset()


def test_lan_mode_shows_the_lan_url_a_qr_code_and_the_demo_rule(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from livekit_demo import serving
    from livekit_demo.widgets import ControlPanel

    monkeypatch.setattr(serving, "local_addresses", lambda: ["192.0.2.7"])
    with start_server(storage="memory", host="0.0.0.0", keep=True) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"  # this machine's clients use loopback
        assert server.lan_urls == [f"http://192.0.2.7:{server.port}"]  # no trailing slash
        printed = capsys.readouterr().out.splitlines()
        assert printed[0] == f"LAN: phones on this network enter http://192.0.2.7:{server.port}"
        assert printed[1].startswith("warning: the demo login rule is on")
        shown = server._repr_html_()
        assert f"http://192.0.2.7:{server.port}" in shown and "<svg" in shown and "demo login rule" in shown
        with livekit_demo.connect(server, username="ann") as ann:
            assert ann.list() == []
        panel = ControlPanel(server=server)
        assert f"LAN <code>http://192.0.2.7:{server.port}</code>" in panel.header.value
        panel.close()
    with start_server(storage="memory", keep=True) as local:
        assert local.lan_urls == [] and "LAN" not in local._repr_html_()
