"""kill -9 during sustained writes, repeated: the TinyDB file always loads and every acknowledged write is there.

Two client threads create rooms and change them (title, notice, lifecycle, delete) through a real
`serve` process, each on its own rooms so that "the last acknowledged value" is well defined. The
process is killed with SIGKILL at a random moment, then restarted on the same file, several times.
A request in flight at the kill may or may not have landed (it was never acknowledged): both
outcomes are allowed for it, and nothing else.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tinydb import TinyDB

from livekit_demo.storage import TinyDBStore
from livekit_demo.storage.tinydb import TABLE

from server_process import login_headers, serve_process

API = "/api/v1/live"
KILLS = 6


@dataclass
class Writer:
    """One client thread's acknowledged view of its rooms."""

    user: str
    rng: random.Random
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)  # room id -> field -> last acknowledged value
    deleted: set[str] = field(default_factory=set)
    pending: tuple[str, str | None, dict[str, Any]] | None = None  # (call, room id, what it would set)
    writes: int = 0

    def run(self, url: str, stop: threading.Event) -> None:
        counter = 0
        try:
            with httpx.Client(base_url=url, timeout=30) as http:
                auth = login_headers(http, self.user)
                while not stop.is_set():
                    counter += 1
                    self._one(http, auth, counter)
        except httpx.TransportError:
            pass  # the server was killed under us; `pending` says what was in flight

    def _one(self, http: httpx.Client, auth: dict[str, str], n: int) -> None:
        live = [room for room in self.acked if room not in self.deleted]
        roll = self.rng.random()
        if not live or roll < 0.3:
            title = f"{self.user} room {n}"
            self.pending = ("create", None, {"title": title, "status": 0})
            r = http.post(f"{API}/create", json={"title": title, "anchor": self.user}, headers=auth)
            assert r.status_code == 200, r.text
            self.acked[r.json()["id"]] = {"title": title, "notice": "", "status": 0}
        else:
            room = self.rng.choice(live)
            if roll < 0.6:
                change = {"title": f"title {n}"} if roll < 0.45 else {"notice": f"notice {n}"}
                self.pending = ("update", room, change)
                r = http.post(f"{API}/update", json={"id": room, **change}, headers=auth)
            elif roll < 0.95:
                call = self.rng.choice(["start", "stop"])
                change = {"status": 1 if call == "start" else 2}
                self.pending = (call, room, change)
                r = http.post(f"{API}/{call}", json={"id": room, "user_id": self.user}, headers=auth)
            else:
                change = {}
                self.pending = ("delete", room, change)
                r = http.post(f"{API}/delete", json={"id": room, "user_id": self.user}, headers=auth)
            assert r.status_code == 200, r.text
            if self.pending[0] == "delete":
                self.deleted.add(room)
            else:
                self.acked[room].update(change)
                assert {k: r.json()[k] for k in self.acked[room]} == self.acked[room]
        self.pending = None
        self.writes += 1

    def check(self, rooms: dict[str, dict[str, Any]]) -> None:
        """Every acknowledged write is in `rooms` (id -> stored row); only the pending one may differ."""
        in_flight_room = self.pending[1] if self.pending else None
        for room, expected in self.acked.items():
            stored = rooms.get(room)
            if room in self.deleted:
                assert stored is None, f"room {room} was deleted (acknowledged) but is back"
                continue
            if room == in_flight_room and self.pending is not None and self.pending[0] == "delete":
                continue  # the delete in flight may have landed
            assert stored is not None, f"room {room} was acknowledged but is lost"
            actual = {k: stored[k] for k in expected}
            if actual != expected:
                assert room == in_flight_room, f"room {room}: acknowledged {expected}, stored {actual}"
                assert actual == {**expected, **self.pending[2]}, f"room {room}: neither acknowledged nor in flight: {actual}"


def _load_plain_tinydb(path: Path) -> dict[str, Any]:
    """The snapshot through plain TinyDB (read only): a kill must never leave it torn."""
    json.loads(path.read_text(encoding="utf-8"))  # valid JSON, first of all
    with TinyDB(path, access_mode="r") as db:
        return {doc["id"]: doc for doc in db.table(TABLE).all()}


def _load_store(path: Path) -> dict[str, dict[str, Any]]:
    """Everything the store recovers (snapshot plus journal), as rows by id."""
    with TinyDBStore(path) as store:
        return {r.id: r.to_row() for r in store.list(offset=0, limit=10**6)}


@pytest.mark.slow
def test_acknowledged_writes_survive_repeated_kill_9(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    data = tmp_path / "rooms.json"
    writers = [Writer("ann", random.Random(rng.random())), Writer("bob", random.Random(rng.random()))]
    for round_number in range(KILLS):
        with serve_process(tmp_path, "--storage", str(data), name=f"round{round_number}") as server:
            stop = threading.Event()
            threads = [threading.Thread(target=w.run, args=(server.url, stop), daemon=True) for w in writers]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.3, 1.5))  # a random moment in the stream of writes
            server.kill9()
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
                assert not thread.is_alive(), f"a writer hung (seed {seed})"
        # The snapshot alone is a loadable TinyDB file; with the journal, nothing acknowledged is missing.
        _load_plain_tinydb(data)
        recovered = _load_store(data)
        for writer in writers:
            writer.check(recovered)
        # What the next round builds on is what was recovered: settle the in-flight write's outcome.
        for writer in writers:
            if writer.pending is not None:
                call, room, _ = writer.pending
                if room is not None and room in recovered:
                    if call == "delete":
                        pass
                    else:
                        writer.acked[room] = {k: recovered[room][k] for k in writer.acked[room]}
                elif room is not None and call == "delete":
                    writer.deleted.add(room)
                writer.pending = None
    assert sum(w.writes for w in writers) > 50, f"too few writes to mean anything (seed {seed})"
    # After a clean close the snapshot holds everything by itself.
    final = _load_plain_tinydb(data)
    for writer in writers:
        writer.check(final)
    assert len(final) == len(_load_store(data))
