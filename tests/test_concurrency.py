"""8 client threads x 100 mixed operations against one real `serve` process on TinyDB: nothing lost, nothing 5xx.

Each thread is its own user with its own rooms (so the last acknowledged state of each is known
exactly) and also, as `ann`, fights over a few shared rooms with every other thread. A lost update
on a shared room would leave a combination of fields that no acknowledged answer ever showed.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tinydb import TinyDB

from livekit_demo.passwords import hash_password
from livekit_demo.storage.tinydb import TABLE

from server_process import ServerProcess, login_headers, serve_process

API = "/api/v1/live"
THREADS = 8
OPERATIONS = 100
SHARED_ROOMS = 3
STATE = ("title", "notice", "status", "started_at", "stopped_at", "updated_at", "meeting_info")
NEXT_STATUS = {  # the lifecycle table, for predicting own rooms: (status, call) -> new status or 409
    (0, "start"): 1, (0, "pause"): 409, (0, "stop"): 2,
    (1, "start"): 1, (1, "pause"): 3, (1, "stop"): 2,
    (3, "start"): 1, (3, "pause"): 3, (3, "stop"): 2,
    (2, "start"): 1, (2, "pause"): 409, (2, "stop"): 2,
}  # fmt: skip


@dataclass
class Client:
    user: str
    rng: random.Random
    own: dict[str, dict[str, Any]] = field(default_factory=dict)  # room id -> last acknowledged answer
    deleted: set[str] = field(default_factory=set)
    shared_answers: list[dict[str, Any]] = field(default_factory=list)
    gets: Counter[str] = field(default_factory=Counter)
    creates: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def run(self, url: str, shared: list[str], start: threading.Barrier) -> None:
        try:
            with httpx.Client(base_url=url, timeout=60) as http:
                me, ann = login_headers(http, self.user), login_headers(http, "ann")
                start.wait()
                for n in range(OPERATIONS):
                    self._one(http, me, ann, shared, n)
        except Exception as exc:
            self.errors.append(f"{self.user}: {exc!r}")

    def _post(self, http: httpx.Client, call: str, body: dict[str, Any], auth: dict[str, str]) -> httpx.Response:
        r = http.post(f"{API}/{call}", json=body, headers=auth)
        self.statuses[r.status_code] += 1
        return r

    def _one(self, http: httpx.Client, me: dict[str, str], ann: dict[str, str], shared: list[str], n: int) -> None:
        mine = [room for room in self.own if room not in self.deleted]
        op = self.rng.choice(["create", "update", "lifecycle", "meeting", "get", "list", "shared", "shared", "get-shared", "delete"])
        if op == "create" or not mine:
            r = self._post(http, "create", {"title": f"{self.user}-{n}", "anchor": self.user, "mode": n % 2}, me)
            assert r.status_code == 200, r.text
            self.own[r.json()["id"]] = r.json()
            self.creates += 1
        elif op == "update":
            room = self.rng.choice(mine)
            r = self._post(http, "update", {"id": room, "title": f"{self.user}-t{n}", "notice": f"n{n}"}, me)
            assert r.status_code == 200, r.text
            self.own[room] = r.json()
        elif op == "lifecycle":
            room, call = self.rng.choice(mine), self.rng.choice(["start", "pause", "stop"])
            expected = NEXT_STATUS[(self.own[room]["status"], call)]
            r = self._post(http, call, {"id": room, "user_id": self.user}, me)
            assert r.status_code == (200 if expected != 409 else 409), r.text
            if expected != 409:
                assert r.json()["status"] == expected
                self.own[room] = r.json()
        elif op == "meeting":
            room = self.rng.choice(mine)
            members = [{"user_id": self.user, "mic_opened": n % 2 == 0}, {"user_id": f"guest{n}"}]
            r = self._post(http, "updateMeetingInfo", {"id": room, "members": members}, me)
            if self.own[room]["mode"] == 1:
                assert r.status_code == 200, r.text
                self.own[room] = self._get(http, room, me)  # the answer is the members; read the room back
            else:
                assert r.status_code == 409, r.text
        elif op == "get":
            room = self.rng.choice(mine)
            got = self._get(http, room, me)
            assert {k: got[k] for k in STATE} == {k: self.own[room][k] for k in STATE}
        elif op == "list":
            r = self._post(http, "list", {"user_id": self.user, "page_num": 1, "page_size": 20}, me)
            assert r.status_code == 200 and isinstance(r.json(), list), r.text
        elif op == "shared":
            room = self.rng.choice(shared)
            call = self.rng.choice(["update", "start", "pause", "stop"])
            body = {"id": room, "title": f"{self.user}-shared-{n}"} if call == "update" else {"id": room, "user_id": "ann"}
            r = self._post(http, call, body, ann)
            assert r.status_code in (200, 409), r.text  # pause may meet a prepared or ended room
            if r.status_code == 200:
                self.shared_answers.append(r.json())
        elif op == "get-shared":
            self._get(http, self.rng.choice(shared), me)
        else:  # delete
            room = self.rng.choice(mine)
            r = self._post(http, "delete", {"id": room, "user_id": self.user}, me)
            assert r.status_code == 200, r.text
            self.deleted.add(room)

    def _get(self, http: httpx.Client, room: str, auth: dict[str, str]) -> dict[str, Any]:
        r = self._post(http, "get", {"id": room, "user_id": self.user}, auth)
        assert r.status_code == 200, r.text
        self.gets[room] += 1
        return r.json()


def _all_rooms(http: httpx.Client, auth: dict[str, str]) -> list[dict[str, Any]]:
    rooms: list[dict[str, Any]] = []
    page = 1
    while batch := http.post(f"{API}/list", json={"user_id": "boss", "page_num": page, "page_size": 100}, headers=auth).json():
        rooms += batch
        page += 1
    return rooms


@pytest.mark.slow
def test_eight_threads_of_mixed_operations_lose_nothing(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    data = tmp_path / "rooms.json"
    config = {"auth": {"users": {"boss": hash_password("boss-password")}, "admins": ["boss"]}}
    with serve_process(tmp_path, "--storage", str(data), config=config) as server:
        _run(server, rng, seed, data)
        server.proc.terminate()  # a clean stop folds the journal into the snapshot
        assert server.proc.wait(timeout=30) in (0, -15)  # uvicorn re-raises SIGTERM after a graceful shutdown
    assert data.with_name(data.name + ".journal").stat().st_size == 0, "the shutdown did not fold the journal in"
    # The file is valid JSON, a TinyDB database, and holds exactly the rooms the server listed.
    doc = json.loads(data.read_text(encoding="utf-8"))
    assert isinstance(doc[TABLE], dict)
    with TinyDB(data, access_mode="r") as db:
        stored = {row["id"]: row for row in db.table(TABLE).all()}
    assert set(stored) == _run.listed_ids  # type: ignore[attr-defined]


def _run(server: ServerProcess, rng: random.Random, seed: int, data: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        ann, boss = login_headers(http, "ann"), login_headers(http, "boss", "boss-password")
        shared = [http.post(f"{API}/create", json={"title": f"shared {i}", "anchor": "ann"}, headers=ann).json()["id"] for i in range(SHARED_ROOMS)]
        clients = [Client(f"user{i}", random.Random(rng.random())) for i in range(THREADS)]
        barrier = threading.Barrier(THREADS)
        threads = [threading.Thread(target=c.run, args=(server.url, shared, barrier), daemon=True) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
            assert not thread.is_alive(), f"a client hung (seed {seed})"
        errors = [e for c in clients for e in c.errors]
        assert not errors, f"seed {seed}: {errors}"
        statuses = sum((c.statuses for c in clients), Counter())
        assert not [s for s in statuses if s >= 500], f"seed {seed}: {statuses}"
        assert sum(statuses.values()) >= THREADS * OPERATIONS

        rooms = {room["id"]: room for room in _all_rooms(http, boss)}
        _run.listed_ids = set(rooms)  # type: ignore[attr-defined]
        # Creates versus what is listed: every acknowledged create is there, every acknowledged delete gone.
        created = sum(c.creates for c in clients)
        gone = sum(len(c.deleted) for c in clients)
        assert len(rooms) == SHARED_ROOMS + created - gone, f"seed {seed}"
        for client in clients:
            for room_id, answer in client.own.items():
                if room_id in client.deleted:
                    assert room_id not in rooms
                    continue
                # Own rooms: exactly the last acknowledged state.
                assert {k: rooms[room_id][k] for k in STATE} == {k: answer[k] for k in STATE}, f"seed {seed}: {room_id}"
        # Shared rooms: the final state is one that some acknowledged answer showed whole.
        answers = [a for c in clients for a in c.shared_answers]
        for room_id in shared:
            final = {k: rooms[room_id][k] for k in STATE}
            seen = [{k: a[k] for k in STATE} for a in answers if a["id"] == room_id]
            if seen:
                assert final in seen, f"seed {seed}: shared room {room_id} ended in a state no answer showed: {final}"
        # Metrics add up: pv per room is exactly the number of acknowledged gets of it.
        gets = sum((c.gets for c in clients), Counter())
        for room_id, count in gets.items():
            if room_id in rooms:
                assert rooms[room_id]["metrics"]["pv"] == count, f"seed {seed}: {room_id}"
