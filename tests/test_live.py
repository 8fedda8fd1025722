"""The live loop wired in (SPEC 13): URLs on the caller's host, the edge in the server's lifespan, a real
ffmpeg pushing, the room following by the callback alone, viewers counted online, `serve --edge`, `push`.

The media tests need ffmpeg: skipped with the reason where it is missing, required under
LIVEKIT_DEMO_REQUIRE_MEDIA=1 (CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import livekit_demo
from livekit_demo.api import create_app
from livekit_demo.app_server import AppServer
from livekit_demo.cli import main
from livekit_demo.client import AppServerClient
from livekit_demo.exceptions import SettingsError
from livekit_demo.live_edge import edge_host_for, ingest_lines
from livekit_demo.serving import check_workers
from livekit_demo.settings import Settings
from livekit_demo.signing import explain_url
from livekit_demo.streams import EdgeAddress
from livekit_demo.viewer import FlvViewer

from server_process import serve_process

REQUIRE_ENV = "LIVEKIT_DEMO_REQUIRE_MEDIA"


def require_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"ffmpeg not on PATH ({REQUIRE_ENV}=1 requires it)")
        pytest.skip("ffmpeg not on PATH (apt install ffmpeg; .ci/media does it)")


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


# -- URLs on the host the caller reached us at (no media needed) -----------------------------------


def test_urls_follow_the_host_header_while_the_edge_runs() -> None:
    server = AppServer(Settings.build(env={}, storage="memory"))
    http = TestClient(create_app(server), base_url="http://192.168.1.20:8080")
    token = http.post("/login", json={"username": "ann", "password": "ann"}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    room = http.post("/api/v1/live/create", json={"title": "t", "anchor": "ann"}, headers=auth).json()
    assert room["push_url_info"]["rtmp_url"].startswith("rtmp://push.example.com/live/")  # no edge: the placeholders
    server.streams.edge = EdgeAddress(rtmp_port=1935, http_port=8080)
    for name in ("get", "start", "update", "stop", "delete"):
        body = {"id": room["id"], "user_id": "ann", "title": "t2"}
        info = http.post(f"/api/v1/live/{name}", json=body, headers=auth).json()
        assert info["push_url_info"]["rtmp_url"].startswith(f"rtmp://192.168.1.20:1935/live/{room['id']}?auth_key="), name
        assert info["pull_url_info"]["flv_url"].startswith(f"http://192.168.1.20:8080/live/{room['id']}.flv?auth_key="), name
        assert info["pull_url_info"]["rts_url"].startswith("artc://pull.example.com/"), name
    listed = http.post("/api/v2/live/list", json={"user_id": "ann", "page_num": 1, "page_size": 10}, headers=auth).json()
    assert listed == []  # deleted above
    other = TestClient(create_app(server), base_url="http://127.0.0.1:8080")
    room = other.post("/api/v1/live/create", json={"title": "t", "anchor": "ann"}, headers=auth).json()
    url = room["push_url_info"]["rtmp_url"]
    assert url.startswith("rtmp://127.0.0.1:1935/live/")
    explained = explain_url(url, server.settings.live_stream.push_auth_key, now=server.clock.now())
    assert explained.verdict == "valid" and explained.uri == f"/live/{room['id']}"  # the signed path is SPEC 4's


def test_edge_settings_and_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="one process"):
        check_workers(Settings.build(env={}, storage="sqlite:///x.db", server={"workers": 2}, edge={"enabled": True}))
    assert edge_host_for("0.0.0.0") == "127.0.0.1" and edge_host_for("localhost") == "127.0.0.1"
    assert edge_host_for("10.0.0.5") == "10.0.0.5"
    monkeypatch.setattr("livekit_demo.serving.local_addresses", lambda: ["192.168.1.20", "10.0.0.7"])
    assert [line.split()[4] for line in ingest_lines("0.0.0.0", 1935, "show")] == ["rtmp://192.168.1.20:1935/show", "rtmp://10.0.0.7:1935/show"]
    assert ingest_lines("127.0.0.1", 1935, "live") == [
        "RTMP ingest (OBS server): rtmp://127.0.0.1:1935/live  (stream key: <room id>?auth_key=..., from the room's push URL)"
    ]


# -- the real thing: ffmpeg -> edge -> callback -> room ---------------------------------------------


@pytest.fixture
def live_server() -> Iterator[livekit_demo.ServerHandle]:
    require_ffmpeg()
    server = livekit_demo.start_server(storage="memory", edge=True, keep=True)
    try:
        yield server
    finally:
        server.stop()


def test_a_pushed_stream_takes_the_room_live_by_the_callback_alone(live_server: livekit_demo.ServerHandle) -> None:
    server = live_server
    assert server.edge is not None and server.rtmp_url == f"rtmp://127.0.0.1:{server.edge.rtmp_port}/live"
    assert "edge=rtmp://" in repr(server) and "RTMP ingest" in server._repr_html_()
    with livekit_demo.connect(server, "ann") as ann, livekit_demo.connect(server, "bob") as bob:
        room = ann.create("Go live test")
        assert room["push_url_info"]["rtmp_url"].startswith(f"{server.rtmp_url}/{room['id']}?auth_key=")
        pusher = ann.push_test_pattern(room["id"])
        try:
            wait_for(lambda: ann.get(room["id"])["status"] == 1, "the room to go live")
            assert [(e.action, e.room_id, e.outcome) for e in server.events] == [("publish", room["id"], "0 -> 1")]
            assert bob.get(room["id"])["metrics"]["online_count"] == 0
            flv = bob.get(room["id"])["pull_url_info"]["flv_url"]
            assert flv.startswith(f"{server.url}/live/{room['id']}.flv?auth_key=")
            with FlvViewer(flv) as viewer:
                # the FLV viewer, counted by the edge while its connection is open (and it keeps reading:
                # the edge rightly drops a viewer that stops reading)
                wait_for(lambda: bob.get(room["id"])["metrics"]["online_count"] == 1, "the viewer to be counted", 10)
                wait_for(lambda: viewer.received > 100_000, "video bytes", 20)
                assert viewer.head.startswith(b"FLV") and viewer.status == 200
            wait_for(lambda: bob.get(room["id"])["metrics"]["online_count"] == 0, "the viewer to be gone")
            with FlvViewer(flv.replace("auth_key=", "auth_key=9")) as refused:
                wait_for(lambda: not refused.watching, "the refusal")
            assert refused.status == 403 and refused.received == 0 and "403" in (refused.error or "")
        finally:
            pusher.stop()
        wait_for(lambda: ann.get(room["id"])["status"] == 0, "the room back to 0")
        assert [e.outcome for e in server.events] == ["0 -> 1", "1 -> 0"]


def test_deleting_a_live_room_disconnects_its_publisher(live_server: livekit_demo.ServerHandle) -> None:
    with livekit_demo.connect(live_server, "ann") as ann:
        room = ann.create("Deleted while live")
        pusher = ann.push_test_pattern(room["id"])
        try:
            wait_for(lambda: ann.get(room["id"])["status"] == 1, "the room to go live")
            assert live_server.edge is not None and room["id"] in live_server.edge.media.live_streams()
            ann.delete(room["id"])
            wait_for(lambda: room["id"] not in live_server.edge.media.live_streams(), "the edge to drop the stream")  # type: ignore[union-attr]
            wait_for(lambda: not pusher.running, "ffmpeg to see its connection closed")
        finally:
            pusher.stop()


def test_push_test_pattern_refuses_what_cannot_work() -> None:
    server = livekit_demo.start_server(storage="memory", keep=True)  # no edge: placeholder push URLs
    try:
        with livekit_demo.connect(server, "ann") as ann, livekit_demo.connect(server, "bob") as bob:
            room = ann.create("No edge")
            with pytest.raises(ValueError, match=r"placeholder push\.example\.com.*edge=True"):
                ann.push_test_pattern(room["id"])
            with pytest.raises(ValueError, match="only its anchor"):
                bob.push_test_pattern(room["id"])
    finally:
        server.stop()


def test_the_push_command_streams_until_ctrl_c(live_server: livekit_demo.ServerHandle) -> None:
    with livekit_demo.connect(live_server, "ann") as ann:
        room = ann.create("Pushed from the command line")
        command = [sys.executable, "-m", "livekit_demo", "push", room["id"], "--url", live_server.url, "--username", "ann"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: ann.get(room["id"])["status"] == 1, "the room to go live")
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert f"pushing a test pattern to rtmp://127.0.0.1:{live_server.edge.rtmp_port}/live/{room['id']}" in out  # type: ignore[union-attr]
        assert "stopped" in out
        wait_for(lambda: ann.get(room["id"])["status"] == 0, "the room back to 0")


def test_the_push_command_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    server = livekit_demo.start_server(storage="memory", keep=True)
    try:
        assert main(["push", "no-such-room", "--url", server.url, "--username", "ann"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: 404") and "Traceback" not in err
    finally:
        server.stop()


def test_serve_with_the_edge_prints_the_ingest_and_the_loop_works(tmp_path: Path) -> None:
    require_ffmpeg()
    with serve_process(tmp_path, "--storage", "memory", "--edge", "--rtmp-port", "0") as server:
        url = server.url.rstrip("/")
        assert server.proc.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(server.proc.stdout.readline() for _ in range(1)), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(15)
        assert lines and lines[0].startswith("RTMP ingest (OBS server): rtmp://127.0.0.1:"), lines
        rtmp_base = lines[0].split()[4]
        with AppServerClient(url, "ann") as ann:
            ann.login()
            room = ann.create("served")
            assert room["push_url_info"]["rtmp_url"].startswith(f"{rtmp_base}/{room['id']}?auth_key=")
            pusher = ann.push_test_pattern(room["id"])
            try:
                wait_for(lambda: ann.get(room["id"])["status"] == 1, "the room to go live")
            finally:
                pusher.stop()
            wait_for(lambda: ann.get(room["id"])["status"] == 0, "the room back to 0")


def test_wait_for_polls_until_the_condition_or_times_out() -> None:
    server = livekit_demo.start_server(storage="memory", keep=True)
    try:
        with livekit_demo.connect(server, "ann") as ann:
            room = ann.create("waiting")
            assert ann.wait_for(room["id"], lambda r: r["status"] == 0)["id"] == room["id"]
            with pytest.raises(TimeoutError, match="status 0"):
                ann.wait_for(room["id"], lambda r: r["status"] == 1, timeout=0.3, interval=0.1)
    finally:
        server.stop()


def test_the_contract_holds_with_urls_at_the_edge() -> None:
    from livekit_demo.conformance import run_checks

    server = livekit_demo.start_server(storage="memory", edge=True, keep=True, auth={"login_max_failures": 1000})
    try:
        with livekit_demo.connect(server, "ann") as ann:
            assert ann.create("at the edge")["push_url_info"]["rtmp_url"].startswith(f"{server.rtmp_url}/")
        report = run_checks(server.url, "ann", "ann", keys=server.settings, only="signing.*,roominfo.*,callback.*")
        assert report.ok and report.counts["skip"] == 0, report.format_table()
    finally:
        server.stop()


def test_an_in_process_server_has_no_edge() -> None:
    with pytest.raises(SettingsError, match=r"edge\.enabled"):
        livekit_demo.start_server(storage="memory", edge=True, inprocess=True, keep=True)
