"""A seeded audience for a room: synthetic viewers that arrive, watch, like and leave (SPEC 14).

    >>> import livekit_demo
    >>> from livekit_demo.audience import simulate
    >>> server = livekit_demo.start_server(storage="memory")                  # doctest: +SKIP
    >>> ann = livekit_demo.connect(server, username="ann")                   # doctest: +SKIP
    >>> room = ann.start(ann.create("Morning show")["id"])                   # doctest: +SKIP
    >>> crowd = simulate(server, room["id"], viewers=50, duration=60, seed=1)   # doctest: +SKIP
    >>> crowd.timeline[-1]                       # a minute later                # doctest: +SKIP
    Sample(t=60.0, pv=60, uv=50, likes=1733, online=34, present=17, sent_likes=1733)

Everything goes through HTTP with `AppServerClient`, like a phone would, so it drives any AppServer.
Each viewer logs in as itself (the demo rule: password = username; names derive from the seed),
``get``s the room when it arrives (pv counts visits, uv distinct viewers), sends its taps in batches
through ``sendLikeMessage`` every `like_every` seconds (clients batch likes on a timer), and calls
``heartbeat`` every `heartbeat_every` seconds while it stays, so it counts in ``online_count``
(a viewer is online for 30 s after its last beat). A server that answers 404 to ``heartbeat`` or
``sendLikeMessage`` still gets the visits; the audience notes what is not available there.

**Same seed, same calls.** The whole run is planned up front from ``random.Random(seed)``
(`plan`): when each viewer arrives (a Poisson process over the first half of the run), how long it
stays (exponential, mean half the run), whether it comes back once, how fast it taps. Then one
thread makes the calls in the plan's order, so two runs with one seed send the same calls.

**Time.** ``time_scale`` is real seconds per simulated second (1: real time, the default; 0.1: ten
times faster; 0: as fast as the server answers). Give the server's `FixedClock` as `clock` and the
audience sets it to each step's time, so the server's 30 s presence window is 30 simulated seconds
however fast the run goes; with a clock, ``time_scale`` defaults to 0 (tests: nothing sleeps).
``run()`` blocks; ``start()`` runs in a thread (a notebook keeps working) with ``stop()`` and
``wait()``. Every `sample_every` seconds the audience reads the room's counters (``getStatistics``;
on a server without it, ``list``, which counts no visit) into `timeline`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import httpx

from ._platform import threads_available
from .client import ApiError, AppServerClient, transport_for_url
from .clock import FixedClock

__all__ = ["Audience", "Sample", "Step", "plan", "simulate", "viewer_name"]

log = logging.getLogger("livekit_demo.audience")

MAX_LIKES_PER_CALL = 1000  # SPEC 11: like_count 1..1000
_NOT_SERVED = (404, 405)  # an unknown path: ours answers 404, some routers 405
_ORDER = {"arrive": 0, "heartbeat": 1, "like": 2, "leave": 3, "sample": 4}  # within one instant: a sample sees the rest


class Step(NamedTuple):
    """One planned action: at `t` seconds, viewer number `viewer` (-1: the observer) does `action`."""

    t: float
    action: str  # arrive | heartbeat | like | leave | sample
    viewer: int
    likes: int = 0  # how many in a `like` batch


class Sample(NamedTuple):
    """The room's counters at `t` seconds, as the server tells them, and what the audience itself knows.

    `online` is None where the server has no `heartbeat` call (its count would not include us);
    `present` is how many synthetic viewers are in the room, `sent_likes` how many likes they sent.
    """

    t: float
    pv: int
    uv: int
    likes: int
    online: int | None
    present: int
    sent_likes: int


def viewer_name(seed: int, number: int) -> str:
    """The username of viewer `number` of the audience seeded with `seed` (the demo rule logs it in)."""
    return f"aud{seed}-{number + 1:03d}"


def plan(
    viewers: int = 50,
    duration: float = 60.0,
    seed: int = 1,
    *,
    like_every: float = 2.0,
    heartbeat_every: float = 10.0,
    sample_every: float = 1.0,
) -> list[Step]:
    """Every step of a run, in the order it happens; a pure function of its arguments."""
    if viewers < 0 or duration <= 0 or like_every <= 0 or heartbeat_every <= 0 or sample_every <= 0:
        raise ValueError("viewers must be >= 0 and duration, like_every, heartbeat_every, sample_every > 0")
    rng = random.Random(seed)
    steps: list[Step] = []
    arrival = 0.0
    for number in range(viewers):
        # Arrivals: a Poisson process that brings the whole audience in over about the first half.
        arrival += rng.expovariate(viewers / (0.5 * duration))
        start = min(arrival, 0.9 * duration)
        taps_per_second = rng.expovariate(1 / 2.0) if rng.random() < 0.6 else 0.0  # 6 in 10 like, some a lot
        end = start + rng.expovariate(1 / (0.5 * duration))  # visits last half the run on average
        steps += _visit(rng, number, start, end, duration, taps_per_second, like_every, heartbeat_every)
        if end < duration and rng.random() < 0.3:  # 3 in 10 of those who leave early come back once
            back = end + rng.expovariate(1 / (0.15 * duration))
            if back < duration:
                stay = rng.expovariate(1 / (0.3 * duration))
                steps += _visit(rng, number, back, back + stay, duration, taps_per_second, like_every, heartbeat_every)
    samples = round(duration / sample_every)
    steps += [Step(min(i * sample_every, duration), "sample", -1) for i in range(samples + 1)]
    return sorted(steps, key=lambda s: (s.t, _ORDER[s.action], s.viewer))


def _visit(
    rng: random.Random,
    number: int,
    start: float,
    end: float,
    duration: float,
    taps_per_second: float,
    like_every: float,
    heartbeat_every: float,
) -> list[Step]:
    """One visit of one viewer: arrive, beat and like while there, leave (unless it stays to the end)."""
    end = min(end, duration)
    steps = [Step(start, "arrive", number)]
    beat = start + heartbeat_every
    while beat < end:
        steps.append(Step(beat, "heartbeat", number))
        beat += heartbeat_every
    if taps_per_second > 0:
        # Taps come at random (exponential gaps); the client sends what it collected every `like_every` s.
        window_end, taps = start + like_every, 0
        tap = start + rng.expovariate(taps_per_second)
        while window_end <= end:
            while tap < window_end:
                taps += 1
                tap += rng.expovariate(taps_per_second)
            if taps:
                steps.append(Step(window_end, "like", number, likes=min(taps, MAX_LIKES_PER_CALL)))
            window_end, taps = window_end + like_every, 0
    if end < duration:
        steps.append(Step(end, "leave", number))
    return steps


Target = str | AppServerClient | Any  # a base URL, a client (its user observes), or a ServerHandle (anything with .url)


@dataclass
class _Viewer:
    name: str
    client: AppServerClient | None = None
    present: bool = False
    refused: bool = False  # login refused: this viewer sits the run out


class Audience:
    """One run of synthetic viewers against one room; see the module docstring.

    `target`: a base URL, a `ServerHandle`, or a logged-in `AppServerClient` (whose user then reads
    the counters; the audience does not close it). `transport` is given to every client it makes.
    """

    def __init__(
        self,
        target: Target,
        room_id: str,
        *,
        viewers: int = 50,
        duration: float = 60.0,
        seed: int = 1,
        time_scale: float | None = None,
        clock: FixedClock | None = None,
        like_every: float = 2.0,
        heartbeat_every: float = 10.0,
        sample_every: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        if time_scale is None:
            time_scale = 0.0 if clock is not None else 1.0
        if time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, not {time_scale!r}")
        self.room_id = room_id
        self.viewers, self.duration, self.seed = viewers, float(duration), seed
        self.time_scale = time_scale
        self.clock = clock
        self.steps = plan(viewers, duration, seed, like_every=like_every, heartbeat_every=heartbeat_every, sample_every=sample_every)
        self.timeline: list[Sample] = []
        self.notes: list[str] = []  # what the server lacks, what went wrong: one line each
        self.calls: Counter[str] = Counter()  # calls made, by name
        self.heartbeat_available: bool | None = None  # None: not tried yet
        self.likes_available: bool | None = None
        self.error: BaseException | None = None  # what ended a run early (the server went away)
        self.url = (target if isinstance(target, str) else target.url).rstrip("/")
        # One connection pool for the whole crowd: a transport of its own per viewer would cost each
        # a TLS context (tens of ms) and a connection; closed at the end unless it was given. An
        # in-process server (inprocess://, a browser tab) comes with its own transport.
        given = transport if transport is not None else transport_for_url(self.url)
        self._transport = given if given is not None else httpx.HTTPTransport()
        self._own_transport = given is None
        self._timeout = timeout
        self._observer: AppServerClient | None = target if isinstance(target, AppServerClient) else None
        self._own_observer = self._observer is None
        self._crowd = [_Viewer(viewer_name(seed, n)) for n in range(viewers)]
        self._read_counters: Callable[[], dict[str, Any]] | None = None
        self._sent_likes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[Sample], object]] = []
        self._end_listeners: list[Callable[[Audience], object]] = []
        self._started = False
        self._done = threading.Event()

    # -- running ---------------------------------------------------------------------------------

    def run(self) -> Audience:
        """Run to the end (or until `stop()`), blocking; raise what ended it early."""
        self._claim()
        self._run()
        if self.error is not None:
            raise self.error
        return self

    def start(self) -> Audience:
        """Run in a background thread; `stop()` ends it early, `wait()` waits for it."""
        if not threads_available():
            raise RuntimeError("no threads here (Python in a browser tab): run the audience with run(), which blocks")
        self._claim()
        self._thread = threading.Thread(target=self._run, name=f"livekit_demo-audience-{self.seed}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the run at the next step (viewers stop calling; their presence expires on its own)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> Audience:
        """Wait for a background run to end; raise what ended it early. Raises TimeoutError after `timeout` s."""
        if not self._started:
            raise RuntimeError("this audience has not been started: call start() or run()")
        if not self._done.wait(timeout):
            raise TimeoutError(f"the audience is still running after {timeout} s")
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self

    @property
    def running(self) -> bool:
        """Started and not ended yet."""
        return self._started and not self._done.is_set()

    def on_sample(self, listener: Callable[[Sample], object]) -> None:
        """Call `listener(sample)` after each sample (from the run's thread); a failing listener is logged, not fatal."""
        self._listeners.append(listener)

    def on_end(self, listener: Callable[[Audience], object]) -> None:
        """Call `listener(audience)` once the run has ended, however it ended (from the run's thread)."""
        self._end_listeners.append(listener)

    def _claim(self) -> None:
        if self._started:
            raise RuntimeError("an Audience runs once; make a new one (same seed: same calls)")
        self._started = True

    def _run(self) -> None:
        try:
            self._open()
            began, at = time.monotonic(), 0.0
            origin = self.clock.now() if self.clock is not None else None
            for step in self.steps:
                if self._stop.is_set():
                    self.notes.append(f"stopped at {at:g} s of {self.duration:g} s")
                    if not self.timeline or self.timeline[-1].t != at:
                        self._sample(at)  # the counters where the run ended, for the chart's last point
                    break
                self._wait_until(began, origin, step.t)
                at = step.t
                self._do(step)
        except (httpx.HTTPError, ApiError, LookupError) as exc:
            self.error = exc
            self.notes.append(f"ended early: {exc}")
        except BaseException as exc:  # a bug: keep it for wait() rather than lose it in a thread
            self.error = exc
            log.exception("audience run failed")
        finally:
            self._close()
            self._done.set()
            for listener in self._end_listeners:
                try:
                    listener(self)
                except Exception:
                    log.exception("an on_end listener failed")

    def _wait_until(self, began: float, origin: datetime | None, t: float) -> None:
        if self.time_scale > 0:
            delay = began + t * self.time_scale - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
        if self.clock is not None and origin is not None:
            self.clock.set(origin + timedelta(seconds=t))  # from the origin: no drift from summed steps

    # -- steps -----------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._observer is None:
            self._observer = self._client(f"aud{self.seed}-watch")
            self._login(self._observer)
        self._read_counters = self._choose_counter_reader()

    def _do(self, step: Step) -> None:
        if step.action == "sample":
            self._sample(step.t)
            return
        viewer = self._crowd[step.viewer]
        if viewer.refused:
            return
        if step.action == "arrive":
            self._arrive(viewer)
        elif step.action == "heartbeat":
            self._heartbeat(viewer)
        elif step.action == "like":
            self._like(viewer, step.likes)
        elif step.action == "leave":
            viewer.present = False

    def _arrive(self, viewer: _Viewer) -> None:
        if viewer.client is None:
            viewer.client = self._client(viewer.name)
            try:
                self._login(viewer.client)
            except ApiError as exc:
                viewer.refused = True
                self._note(f"{viewer.name} could not log in: {exc.status} {exc.message}")
                return
        self.calls["get"] += 1
        try:
            viewer.client.get(self.room_id)
        except ApiError as exc:
            if exc.status == 404:
                raise LookupError(f"room {self.room_id!r} is gone (get answered 404)") from exc
            self._note(f"get by {viewer.name}: {exc.status} {exc.message}")
            return
        viewer.present = True
        self._heartbeat(viewer)

    def _heartbeat(self, viewer: _Viewer) -> None:
        if self.heartbeat_available is False or viewer.client is None or not viewer.present:
            return
        self.calls["heartbeat"] += 1
        try:
            viewer.client.heartbeat(self.room_id)
            self.heartbeat_available = True
        except ApiError as exc:
            if exc.status in _NOT_SERVED and not self.heartbeat_available and self._room_exists():
                self.heartbeat_available = False
                self._note(f"online counts are not available on this server: heartbeat answered {exc.status}")
                # Samples taken before we knew counted no heartbeats of ours either.
                self.timeline[:] = [sample._replace(online=None) for sample in self.timeline]
            else:
                self._note(f"heartbeat by {viewer.name}: {exc.status} {exc.message}")

    def _like(self, viewer: _Viewer, count: int) -> None:
        if self.likes_available is False or viewer.client is None or not viewer.present:
            return
        self.calls["sendLikeMessage"] += 1
        try:
            viewer.client.send_like_message(self.room_id, count)
            self.likes_available = True
            self._sent_likes += count
        except ApiError as exc:
            if exc.status in _NOT_SERVED and not self.likes_available and self._room_exists():
                self.likes_available = False
                self._note(f"likes are not available on this server: sendLikeMessage answered {exc.status}")
            else:
                self._note(f"sendLikeMessage by {viewer.name}: {exc.status} {exc.message}")

    def _sample(self, t: float) -> None:
        assert self._read_counters is not None
        metrics = self._read_counters()
        online = metrics.get("online_count") if self.heartbeat_available is not False else None
        sample = Sample(
            t=t,
            pv=int(metrics.get("pv", 0)),
            uv=int(metrics.get("uv", 0)),
            likes=int(metrics.get("like_count", 0)),
            online=None if online is None else int(online),
            present=sum(v.present for v in self._crowd),
            sent_likes=self._sent_likes,
        )
        self.timeline.append(sample)
        for listener in self._listeners:
            try:
                listener(sample)
            except Exception:
                log.exception("an on_sample listener failed")

    # -- reading the counters --------------------------------------------------------------------

    def _choose_counter_reader(self) -> Callable[[], dict[str, Any]]:
        """getStatistics where served (counts no visit); else the room's metrics as `list` shows them."""
        try:
            self._statistics()
            return self._statistics
        except ApiError as exc:
            if exc.status not in _NOT_SERVED:
                raise
        self._metrics_from_list()  # raises LookupError when the room is not there either
        self._note("getStatistics is not served here: counters are read from list (which counts no visit)")
        return self._metrics_from_list

    def _statistics(self) -> dict[str, Any]:
        assert self._observer is not None
        self.calls["getStatistics"] += 1
        return self._observer.get_statistics(self.room_id)

    def _metrics_from_list(self, pages: int = 10) -> dict[str, Any]:
        assert self._observer is not None
        for page in range(1, pages + 1):
            self.calls["list"] += 1
            rooms = self._observer.list(page, 100)
            for room in rooms:
                if room.get("id") == self.room_id:
                    return dict(room.get("metrics") or {})
            if len(rooms) < 100:
                break
        raise LookupError(f"room {self.room_id!r} is not on this server (not among the {pages * 100} newest rooms)")

    def _room_exists(self) -> bool:
        assert self._read_counters is not None
        try:
            self._read_counters()
        except (ApiError, LookupError):
            return False
        return True

    # -- plumbing --------------------------------------------------------------------------------

    def _client(self, username: str) -> AppServerClient:
        return AppServerClient(self.url, username, timeout=self._timeout, transport=self._transport)

    def _login(self, client: AppServerClient) -> None:
        self.calls["login"] += 1
        client.login()

    def _note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < 50:
            self.notes.append(text)
            log.info("%s", text)

    def _close(self) -> None:
        # The viewers' clients share the transport: closing one would close it under the others.
        for viewer in self._crowd:
            viewer.present = False
            viewer.client = None
        if self._own_observer:
            self._observer = None
        if self._own_transport:
            self._transport.close()

    # -- showing ---------------------------------------------------------------------------------

    def summary(self) -> str:
        """One line: where the run is and the last counters read."""
        state = "running" if self.running else ("done" if self._done.is_set() else "not started")
        last = self.timeline[-1] if self.timeline else None
        counters = (
            f"pv={last.pv} uv={last.uv} likes={last.likes} online={'n/a' if last.online is None else last.online}"
            if last
            else "no sample yet"
        )
        at = f"{last.t:g}/{self.duration:g} s" if last else f"0/{self.duration:g} s"
        return f"audience of {self.viewers} (seed {self.seed}) {state} at {at}: {counters}"

    def __repr__(self) -> str:
        return f"<Audience {self.summary()}>"

    def rows(self) -> list[dict[str, Any]]:
        """The timeline as a list of dicts (for a table, a DataFrame, a CSV)."""
        return [sample._asdict() for sample in self.timeline]


def simulate(
    target: Target,
    room_id: str,
    viewers: int = 50,
    duration: float = 60.0,
    seed: int = 1,
    *,
    background: bool = False,
    **options: Any,
) -> Audience:
    """Run an audience against `room_id` at `target`; see `Audience` for `options`.

    Blocks until the run ends and returns the `Audience` (its `timeline`, `notes`, `calls`);
    with `background` true, returns at once with the run going on in a thread.

        >>> crowd = simulate(server, room_id, viewers=50, duration=60, time_scale=0.1)     # doctest: +SKIP
        >>> crowd = simulate(server, room_id, background=True)   # doctest: +SKIP
        >>> crowd.stop(); crowd.wait()                           # doctest: +SKIP
    """
    audience = Audience(target, room_id, viewers=viewers, duration=duration, seed=seed, **options)
    return audience.start() if background else audience.run()

