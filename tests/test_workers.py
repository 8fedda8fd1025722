"""Several server processes on one SQL database: one another's rooms at once, one JWT secret, safe lifecycle."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from server_process import ServerProcess, login_headers, serve_process
from sql_databases import fresh_database_url

pytestmark = pytest.mark.mysql


@pytest.fixture
def database(tmp_path: Path) -> str:
    """An empty MariaDB database (skips, or fails under LIVEKIT_DEMO_REQUIRE_DATABASES=1, when away)."""
    return fresh_database_url("mysql", tmp_path)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended while we looked
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _stop_gracefully(server: ServerProcess) -> None:
    """SIGTERM, so uvicorn's supervisor stops its workers too (a SIGKILL would orphan them)."""
    workers = _children(server.pid)
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=20)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)  # only if one outlived its supervisor
        except ProcessLookupError:
            pass


def test_two_processes_share_rooms_and_tokens(tmp_path: Path, database: str) -> None:
    with serve_process(tmp_path, "--storage", database, name="a") as a, serve_process(tmp_path, "--storage", database, name="b") as b:
        with httpx.Client(base_url=a.url, timeout=10) as via_a, httpx.Client(base_url=b.url, timeout=10) as via_b:
            auth = login_headers(via_a, "ann")  # issued by A ...
            room = via_a.post("/api/v1/live/create", json={"title": "shared", "anchor": "ann"}, headers=auth).json()
            listed = via_b.post("/api/v1/live/list", json={"user_id": "ann", "page_num": 1, "page_size": 10}, headers=auth)
            assert listed.status_code == 200, listed.text  # ... accepted by B: one secret, kept in the database
            assert [r["id"] for r in listed.json()] == [room["id"]]
            body = {"id": room["id"], "user_id": "ann"}
            assert via_b.post("/api/v1/live/start", json=body, headers=auth).json()["status"] == 1
            assert via_a.post("/api/v1/live/get", json=body, headers=auth).json()["status"] == 1
            assert via_b.post("/api/v1/live/stop", json=body, headers=auth).json()["status"] == 2
            assert via_a.post("/api/v1/live/get", json=body, headers=auth).json()["stopped_at"] != "0001-01-01T00:00:00Z"


def test_concurrent_lifecycle_through_two_processes_ends_in_an_allowed_state(tmp_path: Path, database: str) -> None:
    with serve_process(tmp_path, "--storage", database, name="a") as a, serve_process(tmp_path, "--storage", database, name="b") as b:
        with httpx.Client(base_url=a.url, timeout=10) as setup:
            auth = login_headers(setup, "ann")
            room = setup.post("/api/v1/live/create", json={"title": "contended", "anchor": "ann"}, headers=auth).json()
        body = {"id": room["id"], "user_id": "ann"}
        answers: Counter[tuple[str, int]] = Counter()
        lock = threading.Lock()

        def hammer(url: str, calls: list[str]) -> None:
            with httpx.Client(base_url=url, timeout=10) as http:
                for call in calls:
                    status = http.post(f"/api/v1/live/{call}", json=body, headers=auth).status_code
                    with lock:
                        answers[(call, status)] += 1

        plan = ["start", "pause", "start", "stop"] * 10
        threads = [threading.Thread(target=hammer, args=(url, plan[i:] + plan[:i])) for i, url in enumerate([a.url, b.url, a.url, b.url])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        # Every answer is one the lifecycle table allows: 200, or 409 for a pause from prepared/ended.
        assert {status for _, status in answers} <= {200, 409}, answers
        assert all(call == "pause" for (call, status) in answers if status == 409), answers
        assert sum(answers.values()) == 4 * len(plan)
        with httpx.Client(base_url=a.url, timeout=10) as via_a, httpx.Client(base_url=b.url, timeout=10) as via_b:
            seen_a = via_a.post("/api/v1/live/get", json=body, headers=auth).json()
            seen_b = via_b.post("/api/v1/live/get", json=body, headers=auth).json()
        for key in ("status", "started_at", "stopped_at", "updated_at"):
            assert seen_a[key] == seen_b[key]
        # The rows never hold a torn combination: an ended room has its stop time, a live one has none.
        assert seen_a["status"] in (1, 2, 3)
        assert (seen_a["stopped_at"] != "0001-01-01T00:00:00Z") is (seen_a["status"] == 2)


def test_workers_flag_runs_several_processes_on_one_database(tmp_path: Path, database: str) -> None:
    with serve_process(tmp_path, "--storage", database, "--workers", "2", name="workers") as server:
        try:
            # The URL is printed as soon as the socket listens; the workers are forked right after.
            deadline = time.monotonic() + 15
            while len(_children(server.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(_children(server.pid)) >= 2
            ids = set()
            for n in range(12):
                # A new connection each time, so the kernel hands them to either worker.
                with httpx.Client(base_url=server.url, timeout=10) as http:
                    auth = login_headers(http, "ann")
                    ids.add(http.post("/api/v1/live/create", json={"title": f"r{n}", "anchor": "ann"}, headers=auth).json()["id"])
                    listed = http.post("/api/v1/live/list", json={"user_id": "ann", "page_num": 1, "page_size": 100}, headers=auth)
                    assert ids <= {r["id"] for r in listed.json()}
        finally:
            _stop_gracefully(server)
