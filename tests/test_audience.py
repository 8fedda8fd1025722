"""The audience simulator: a plan fixed by its seed, the same calls run after run, and counters that
match the plan, against our server (in this process, on a clock the audience moves) and against
servers that lack heartbeat or the SPEC 11 calls."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import livekit_demo
from livekit_demo.audience import MAX_LIKES_PER_CALL, Audience, Sample, Step, plan, simulate, viewer_name
from livekit_demo.client import ApiError
from livekit_demo.clock import FixedClock
from livekit_demo.passwords import hash_password
from livekit_demo.runner import ServerHandle, start_server

START = "2026-11-28T10:15:00Z"


class Recorder(httpx.HTTPTransport):
    """Passes requests on and records each (path, body); answers the calls in `drop` as an unknown path."""

    def __init__(self, drop: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.drop = drop
        self.sent: list[tuple[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.url.path, body))
        if request.url.path.rsplit("/", 1)[-1] in self.drop:
            status = {"code": 404, "message": f"no such path: {request.url.path}", "details": None}
            return httpx.Response(404, json=status, request=request)
        return super().handle_request(request)

    def calls(self, room_id: str) -> list[str]:
        """The calls as text, with the room's id written <room> so that runs on two servers compare."""
        return [f"{path} {json.dumps(body, sort_keys=True)}".replace(room_id, "<room>") for path, body in self.sent]


class Room:
    """A server of ours on a clock that only the audience moves, and a live room of ann's on it."""

    def __init__(self) -> None:
        self.clock = FixedClock(START)
        self.server: ServerHandle = start_server(storage="memory", env={}, keep=True, clock=self.clock)
        with livekit_demo.connect(self.server, username="ann") as ann:
            self.id = ann.create("Crowded")["id"]
            ann.start(self.id)

    def run(self, recorder: Recorder | None = None, **options: Any) -> Audience:
        options = {"viewers": 20, "duration": 60, "seed": 7} | options
        return simulate(self.server, self.id, clock=self.clock, transport=recorder, **options)


@pytest.fixture
def room() -> Iterator[Room]:
    made = Room()
    yield made
    made.server.stop()


@pytest.fixture
def recorder() -> Iterator[Callable[..., Recorder]]:
    """Recorders (see `Recorder`), closed after the test: an audience leaves a transport it was given open."""
    made: list[Recorder] = []

    def make(drop: tuple[str, ...] = ()) -> Recorder:
        made.append(Recorder(drop))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.fixture
def other_room() -> Iterator[Room]:
    made = Room()
    yield made
    made.server.stop()


def expected_online(steps: list[Step], t: float, window: float = 30.0) -> int:
    """Viewers whose last beat (an arrival beats too) was less than `window` seconds before `t`."""
    last: dict[int, float] = {}
    for step in steps:
        if step.t <= t and step.action in ("arrive", "heartbeat"):
            last[step.viewer] = step.t
    return sum(t - beat < window for beat in last.values())


# -- the plan ----------------------------------------------------------------------------------


def test_the_plan_is_fixed_by_its_seed() -> None:
    first = plan(50, 60, seed=1)
    assert plan(50, 60, seed=1) == first
    assert plan(50, 60, seed=2) != first
    assert first == sorted(first, key=lambda s: s.t) and all(0 <= s.t <= 60 for s in first)
    arrivals = [s for s in first if s.action == "arrive"]
    assert {s.viewer for s in arrivals} == set(range(50))  # everyone comes
    assert len(arrivals) > 50  # and some come back: pv > uv
    assert [s.t for s in first if s.action == "sample"] == [float(i) for i in range(61)]
    likes = [s.likes for s in first if s.action == "like"]
    assert likes and all(1 <= n <= MAX_LIKES_PER_CALL for n in likes)
    assert viewer_name(1, 0) == "aud1-001" and viewer_name(42, 49) == "aud42-050"


def test_a_viewer_beats_while_it_stays_and_not_after() -> None:
    steps = plan(30, 90, seed=3, heartbeat_every=10)
    for viewer in range(30):
        mine = [s for s in steps if s.viewer == viewer]
        present = False
        last_beat = 0.0
        for step in mine:
            if step.action == "arrive":
                assert not present
                present, last_beat = True, step.t
            elif step.action in ("heartbeat", "like"):
                assert present, step
                if step.action == "heartbeat":
                    assert step.t - last_beat == pytest.approx(10)
                    last_beat = step.t
            elif step.action == "leave":
                present = False


def test_bad_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="duration"):
        plan(10, 0)
    with pytest.raises(ValueError, match="time_scale"):
        Audience("http://127.0.0.1:1", "room", time_scale=-1)


# -- against our server ------------------------------------------------------------------------


def test_same_seed_same_calls_and_another_seed_others(room: Room, other_room: Room, recorder: Callable[..., Recorder]) -> None:
    first, second, third = recorder(), recorder(), recorder()
    room.run(first)
    other_room.run(second)
    assert first.calls(room.id) == second.calls(other_room.id)
    assert len(first.sent) > 100
    # each viewer logs in as itself with the demo rule
    logins = [body for path, body in first.sent if path == "/login"]
    assert {"username": "aud7-001", "password": "aud7-001"} in logins
    third_room = Room()
    try:
        third_room.run(third, seed=8)
    finally:
        third_room.server.stop()
    assert third.calls(third_room.id) != first.calls(room.id)


def test_the_counters_follow_the_plan(room: Room) -> None:
    audience = room.run(viewers=25, duration=90, seed=11)
    steps = audience.steps
    arrivals = [s for s in steps if s.action == "arrive"]
    assert len(audience.timeline) == 91
    last = audience.timeline[-1]
    assert (last.pv, last.uv) == (len(arrivals), 25)
    for sample in audience.timeline:
        assert sample.online == expected_online(steps, sample.t), sample
        arrived = [s for s in arrivals if s.t <= sample.t]
        assert sample.pv == len(arrived) and sample.uv == len({s.viewer for s in arrived})
    # someone left and was still counted for a while: presence lags by up to 30 s
    assert any(s.online is not None and s.online > s.present for s in audience.timeline)
    assert audience.heartbeat_available is True
    assert audience.calls["heartbeat"] == sum(s.action in ("arrive", "heartbeat") for s in steps)
    assert "audience of 25 (seed 11) done at 90/90 s" in repr(audience)


def test_likes_reach_the_room_in_the_planned_batches(room: Room, recorder: Callable[..., Recorder]) -> None:
    sent = recorder()
    audience = room.run(sent)
    assert audience.likes_available is True and not audience.notes  # getStatistics and sendLikeMessage both served
    batches = [body["like_count"] for path, body in sent.sent if path.endswith("/sendLikeMessage")]
    assert batches == [s.likes for s in audience.steps if s.action == "like"]
    planned = sum(s.likes for s in audience.steps if s.action == "like")
    assert audience.timeline[-1].sent_likes == planned == audience.timeline[-1].likes


def test_a_server_without_heartbeat_still_gets_visits_and_says_online_is_unavailable(room: Room, recorder: Callable[..., Recorder]) -> None:
    without = recorder(("heartbeat",))
    audience = room.run(without)
    assert audience.heartbeat_available is False
    assert "online counts are not available on this server: heartbeat answered 404" in audience.notes
    assert all(sample.online is None for sample in audience.timeline)
    assert sum(path.endswith("/heartbeat") for path, _ in without.sent) == 1  # asked once, then no more
    arrivals = [s for s in audience.steps if s.action == "arrive"]
    assert (audience.timeline[-1].pv, audience.timeline[-1].uv) == (len(arrivals), 20)


def test_a_server_without_the_audience_calls_is_read_through_list(room: Room, recorder: Callable[..., Recorder]) -> None:
    without = recorder(("sendLikeMessage", "getStatistics"))
    audience = room.run(without)
    assert audience.likes_available is False
    assert "likes are not available on this server: sendLikeMessage answered 404" in audience.notes
    assert any("read from list" in note for note in audience.notes)
    assert sum(path.endswith("/sendLikeMessage") for path, _ in without.sent) == 1
    last = audience.timeline[-1]
    assert last.sent_likes == 0 and last.likes == 0
    assert last.online == expected_online(audience.steps, 60.0)
    assert last.uv == 20
    # reading the counters counted no visit: pv is the viewers' gets only
    assert last.pv == sum(s.action == "arrive" for s in audience.steps)


def test_an_unknown_room_ends_the_run_with_why(room: Room) -> None:
    with pytest.raises(LookupError, match="no-such-room"):
        simulate(room.server, "no-such-room", viewers=2, duration=5, clock=room.clock)


def test_viewers_refused_at_login_sit_the_run_out() -> None:
    clock = FixedClock(START)
    users = {"ann": hash_password("ann-password")}
    server = start_server(storage="memory", env={}, keep=True, clock=clock, auth={"demo_login": False, "users": users})
    try:
        with livekit_demo.connect(server, "ann", "ann-password") as ann:
            room_id = ann.create("Members only")["id"]
            audience = simulate(ann, room_id, viewers=3, duration=10, clock=clock)
        assert "aud1-001 could not log in: 401 wrong username or password" in audience.notes
        assert audience.timeline[-1][:3] == (10.0, 0, 0)
        with pytest.raises(ApiError, match="401"):
            simulate(server, room_id, viewers=3, duration=10, clock=clock)  # its own observer cannot log in either
    finally:
        server.stop()


def test_a_background_run_stops_when_told(room: Room) -> None:
    audience = Audience(room.server, room.id, viewers=10, duration=3600, time_scale=1.0)
    samples: list[Sample] = []
    audience.on_sample(samples.append)
    audience.on_sample(lambda sample: 1 / 0)  # a broken listener is logged, not fatal
    with pytest.raises(RuntimeError, match="not been started"):
        audience.wait()
    audience.start()
    assert audience.running
    audience.stop()
    assert audience.wait(timeout=30) is audience
    assert not audience.running
    assert audience.timeline and samples == audience.timeline
    assert audience.notes[-1].startswith("stopped at ")
    with pytest.raises(RuntimeError, match="runs once"):
        audience.start()


def test_a_client_given_reads_the_counters_as_its_user_and_stays_open(room: Room) -> None:
    with livekit_demo.connect(room.server, username="ann") as ann:
        audience = simulate(ann, room.id, viewers=5, duration=20, clock=room.clock)
        assert audience.timeline[-1].uv == 5
        assert ann.get(room.id)["metrics"]["uv"] == 6  # the client still works, and ann is a sixth visitor
    rows = audience.rows()
    assert rows[0] == {"t": 0.0, "pv": 0, "uv": 0, "likes": 0, "online": 0, "present": 0, "sent_likes": 0}


def test_an_in_process_server_is_reached_through_its_own_transport() -> None:
    clock = FixedClock(START)
    server = start_server(storage="memory", env={}, keep=True, clock=clock, inprocess=True)
    try:
        assert server.url.startswith("inprocess://")
        with livekit_demo.connect(server, username="ann") as ann:
            room_id = ann.start(ann.create("In a tab")["id"])["id"]
        audience = simulate(server, room_id, viewers=6, duration=30, clock=clock)
        assert audience.error is None and audience.timeline[-1].uv == 6
        assert audience.timeline[-1].online == expected_online(audience.steps, 30.0)
    finally:
        server.stop()


def test_without_threads_a_background_run_says_to_block(room: Room, monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit_demo import audience as module

    monkeypatch.setattr(module, "threads_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"run\(\), which blocks"):
        Audience(room.server, room.id, clock=room.clock).start()
