"""What `get`, `list` and `create` cost as the stored rooms grow: 100, 1,000 and 10,000 rooms.

SPEC section 10: `get` and `list` at 10,000 rooms within 1.5x of their time at 100 rooms; `create`
within 3x. For each storage engine (memory, TinyDB, and MySQL / PostgreSQL when they answer on
127.0.0.1), one store per size is filled directly (not through the API: 10,000 fsync'd creates
would take minutes), and the calls are timed one at a time at two levels:

- ``http``: through the whole app in-process (httpx's ASGITransport): token check, body parsing
  and validation, the thread hop, the rooms layer, storage, JSON. What a client waits for, minus
  the network; a constant per-call overhead that dilutes any growth with the room count.
- ``service``: `RoomService` alone (rules, storage, building the RoomInfo): the growth undiluted.

Sizes are measured interleaved (a batch at each size in turn, several rounds) so that a noisy
neighbour slows every size alike. `get` reads a random stored room; `get_watched` reads a random
one of the same number of rooms at every size (`WATCHED`, drawn once per store: the rooms people
are watching); `list` reads page 1 of 10, newest first; `create` adds rooms, which are deleted
again (untimed) after each batch so that the count stays near its size. The figures are the
median and p99 of all calls, and their ratio to the smallest size's.

TinyDB rewrites its snapshot (O(rooms)) once the journal passes max(1000, rooms) entries. So that
this cost is seen at every size, each TinyDB store's journal counter is set to that bound before
the first `create` batch: the first timed create of each size pays for one compaction (the
table's `max` column), and the median cost of one compaction is reported per size.

    python benchmarks/scaling.py                         # 100 / 1,000 / 10,000 rooms
    python benchmarks/scaling.py --quick                 # 10 / 100 rooms, few calls: a smoke run
    python benchmarks/scaling.py --stores memory,tinydb --levels http --json out.json --png out.png
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from livekit_demo.api import create_app
from livekit_demo.app_server import AppServer
from livekit_demo.models import RoomRecord, RoomStatus
from livekit_demo.settings import Settings
from livekit_demo.storage import RoomStore, TinyDBStore, open_store

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OPERATIONS = ("get", "get_watched", "list", "create")
TARGETS = {"get": 1.5, "get_watched": 1.5, "list": 1.5, "create": 3.0}
WATCHED = 100
"""How many rooms `get_watched` reads from at every size.

The app keeps a room's answer (its fields and signed URLs) for the second its URLs are signed in, so
a `get` costs less when its room was read earlier that second. A `get` of any room asks each room
often at 100 rooms and almost never twice at 10,000: its ratio measures that, besides the store. The
same number of rooms at every size holds how often an answer is already made constant, so that its
ratio is the store's size alone."""
PATHS = {"get_watched": "get"}
"""The API call of a measured call named otherwise."""
LEVELS = ("http", "service")
SERVER_URLS = {
    "mysql": os.environ.get("LIVEKIT_DEMO_BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
    "postgresql": os.environ.get("LIVEKIT_DEMO_BENCH_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
}
USER = "bench"
_BASE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)


# -- filling stores -------------------------------------------------------------------------------


def make_records(count: int) -> list[RoomRecord]:
    """`count` rooms of `USER`, one second apart, in every status but paused."""
    records = []
    for number in range(count):
        created = _BASE_TIME + timedelta(seconds=number)
        room_id = uuid.uuid4().hex
        status = (RoomStatus.PREPARED, RoomStatus.LIVE, RoomStatus.ENDED)[number % 3]
        records.append(
            RoomRecord(
                id=room_id, created_at=created, updated_at=created, title=f"room {number}", anchor=USER,
                anchor_id=USER, anchor_nick="Bench", notice="welcome", status=status, chat_id=room_id,
                started_at=created if status != RoomStatus.PREPARED else None,
                stopped_at=created if status == RoomStatus.ENDED else None,
            )
        )  # fmt: skip
    return records


@dataclass
class Engine:
    """How to make a store of one engine filled with given records, and to clean up after."""

    name: str
    open_filled: Callable[[list[RoomRecord], int], RoomStore]
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def cleanup(self) -> None:
        while self.cleanups:
            with contextlib.suppress(Exception):
                self.cleanups.pop()()


def memory_engine() -> Engine:
    def open_filled(records: list[RoomRecord], size: int) -> RoomStore:
        store = open_store(Settings.build(env={}, storage="memory"))
        for record in records:
            store.insert(record)
        return store

    return Engine("memory", open_filled)


def tinydb_engine(workdir: Path) -> Engine:
    def open_filled(records: list[RoomRecord], size: int) -> RoomStore:
        from tinydb import TinyDB

        path = workdir / f"rooms-{size}.json"
        # The data file is a plain TinyDB database: fill it with TinyDB itself, in one write.
        with TinyDB(path) as db:
            db.table("room_infos").insert_multiple(r.to_row() for r in records)
        return TinyDBStore(path)

    return Engine("tinydb", open_filled)


def sql_engine(kind: str) -> Engine:
    """A fresh database per size on the `kind` server (made here, dropped by `cleanup`)."""
    import sqlalchemy as sa

    from livekit_demo.storage.sql import database_url

    server = database_url(SERVER_URLS[kind])
    cleanups: list[Callable[[], None]] = []

    def admin(statement: str) -> None:
        admin_engine = sa.create_engine(server, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        try:
            with admin_engine.connect() as conn:
                conn.exec_driver_sql(statement)
        finally:
            admin_engine.dispose()

    def open_filled(records: list[RoomRecord], size: int) -> RoomStore:
        name = f"livekit_demo_bench_{os.getpid()}_{size}"
        admin(f"DROP DATABASE IF EXISTS {name}")
        admin(f"CREATE DATABASE {name}")
        cleanups.append(lambda: admin(f"DROP DATABASE IF EXISTS {name}"))
        url = server.set(database=name)
        store = open_store(Settings.build(env={}, storage=url.render_as_string(hide_password=False)))
        cleanups.append(store.close)  # runs before the DROP (cleanups run last first)
        # The store made the table; fill it in bulk through a reflected copy of it.
        bulk = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            table = sa.Table("room_infos", sa.MetaData(), autoload_with=bulk)
            rows = [_sql_row(r) for r in records]
            with bulk.begin() as conn:
                for start in range(0, len(rows), 1000):
                    conn.execute(table.insert(), rows[start : start + 1000])
        finally:
            bulk.dispose()
        return store

    return Engine(kind, open_filled, cleanups)


def _sql_row(record: RoomRecord) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, value in vars(record).items():
        if isinstance(value, datetime):
            value = value.astimezone(timezone.utc).replace(tzinfo=None)  # naive UTC, as the column keeps it
        row[name] = int(value) if name in ("status", "mode") else value
    return row


def reachable(kind: str) -> str | None:
    """None when the `kind` server answers, else why not."""
    try:
        import sqlalchemy as sa

        from livekit_demo.storage.sql import database_url

        engine = sa.create_engine(database_url(SERVER_URLS[kind]), poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        finally:
            engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return None


# -- timing ---------------------------------------------------------------------------------------


@dataclass
class Subject:
    """One filled store at one size, served by an AppServer, with what the calls need."""

    size: int
    store: RoomStore
    server: AppServer
    token: str
    room_ids: list[str]
    watched: list[str]
    created: list[str] = field(default_factory=list)


def open_subject(engine: Engine, size: int) -> Subject:
    records = make_records(size)
    store = engine.open_filled(records, size)
    # Every stored room is the benchmark user's: the cap of rooms per user (1,000 by default) is lifted,
    # or `create` would answer 409 from 1,000 rooms on.
    server = AppServer(Settings.build(env={}, storage="memory", rooms={"max_per_user": 10**9}), store=store)
    token, _ = server.auth.issue(USER)
    room_ids = [r.id for r in records]
    watched = random.Random(size).sample(room_ids, min(size, WATCHED))
    return Subject(size, store, server, token, room_ids, watched)


def _bodies(op: str, subject: Subject, rng: random.Random, count: int) -> list[dict[str, Any]]:
    if op in ("get", "get_watched"):
        rooms = subject.room_ids if op == "get" else subject.watched
        return [{"id": rng.choice(rooms), "user_id": USER} for _ in range(count)]
    if op == "list":
        return [{"user_id": USER, "page_num": 1, "page_size": 10}] * count
    return [{"title": "a benchmark room", "anchor": USER, "notice": "hello"} for _ in range(count)]


def time_service(op: str, subject: Subject, bodies: list[dict[str, Any]]) -> list[float]:
    """Seconds per call of `RoomService` for each body."""
    rooms, actor = subject.server.rooms, subject.server.auth.identity(USER)
    calls: dict[str, Callable[[dict[str, Any]], Any]] = {
        "get": lambda b: rooms.get(actor, b["id"], b["user_id"]),
        "list": lambda b: rooms.list(actor, b["user_id"], b["page_num"], b["page_size"], None),
        "create": lambda b: rooms.create(actor, b),
    }
    call = calls[PATHS.get(op, op)]
    times = []
    for body in bodies:
        began = time.perf_counter()
        answer = call(body)
        times.append(time.perf_counter() - began)
        if op == "create":
            subject.created.append(answer["id"])
    return times


async def _time_http(op: str, subject: Subject, client: Any, bodies: list[dict[str, Any]]) -> list[float]:
    headers = {"Authorization": f"Bearer {subject.token}"}
    times = []
    for body in bodies:
        began = time.perf_counter()
        answer = await client.post(f"/api/v1/live/{PATHS.get(op, op)}", json=body, headers=headers)
        times.append(time.perf_counter() - began)
        if answer.status_code != 200:
            raise RuntimeError(f"{op} answered {answer.status_code}: {answer.text[:200]}")
        if op == "create":
            subject.created.append(answer.json()["id"])
    return times


def _forget_created(subject: Subject) -> None:
    """Delete the rooms a create batch made (untimed), so the count stays near the size."""
    for room_id in subject.created:
        subject.store.delete(room_id)
    subject.created.clear()


def _prime_compaction(subject: Subject) -> None:
    """Make a TinyDB store's next write compact (see the module docstring); others are left alone."""
    store = subject.store
    if isinstance(store, TinyDBStore):
        # A benchmark-only reach into the store. It compacts once the journal holds more than
        # max(compact_after, rooms) entries; a create adds one of each, so past 1,000 rooms a stream
        # of creates alone never triggers it (updates and deletes do). Counting the journal up to
        # that bound is what as many earlier updates would have done; the compaction that the next
        # create then runs is the real one, of every room.
        store._journal.entries = max(store._journal.entries, store._compact_after, len(store._docs) + 1)


def compaction_seconds(subject: Subject, runs: int = 3) -> float | None:
    """The median time of one TinyDB snapshot rewrite at this size (None for other engines)."""
    store = subject.store
    if not isinstance(store, TinyDBStore):
        return None
    times = []
    with store._lock:
        for _ in range(runs):
            began = time.perf_counter()
            store._compact()
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure_engine(engine: Engine, sizes: Sequence[int], samples: int, rounds: int, levels: Sequence[str], seed: int) -> dict[str, Any]:
    """{level: {op: {size: [seconds...]}}} and the compaction cost per size."""
    import httpx

    rng = random.Random(seed)
    subjects = [open_subject(engine, size) for size in sizes]
    times: dict[str, dict[str, dict[int, list[float]]]] = {
        level: {op: {size: [] for size in sizes} for op in OPERATIONS} for level in levels
    }
    per_batch = max(1, samples // rounds)

    async def run_http(op: str, subject: Subject, bodies: list[dict[str, Any]]) -> list[float]:
        transport = httpx.ASGITransport(app=apps[subject.size])
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            return await _time_http(op, subject, client, bodies)

    apps = {s.size: create_app(s.server) for s in subjects}
    try:
        for op in OPERATIONS:
            if op == "create":
                for subject in subjects:
                    _prime_compaction(subject)
            for round_number in range(rounds):
                # Rotate the order of sizes, so none always runs first (or right after a compaction).
                shift = round_number % len(subjects)
                for subject in subjects[shift:] + subjects[:shift]:
                    for level in levels:
                        bodies = _bodies(op, subject, rng, per_batch)
                        gc.collect()
                        if level == "service":
                            batch = time_service(op, subject, bodies)
                        else:
                            batch = asyncio.run(run_http(op, subject, bodies))
                        times[level][op][subject.size].extend(batch)
                        _forget_created(subject)
        compaction = {s.size: compaction_seconds(s) for s in subjects}
    finally:
        for subject in subjects:
            subject.server.close()
        engine.cleanup()
    return {"times": times, "compaction_s": compaction}


# -- figures --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: with 1,000 calls p99 is the 990th fastest."""
    ordered = sorted(values)
    rank = max(1, math.ceil(round(len(ordered) * fraction, 9)))
    return ordered[rank - 1]


def stats(values: Sequence[float]) -> dict[str, float | int]:
    return {
        "calls": len(values),
        "median_ms": statistics.median(values) * 1000,
        "p99_ms": percentile(values, 0.99) * 1000,
        "mean_ms": statistics.fmean(values) * 1000,
        "max_ms": max(values) * 1000,
    }


def summarize(measured: dict[str, Any], sizes: Sequence[int]) -> dict[str, Any]:
    """Stats per size, ratios to the smallest size, and the verdict on each target (on the median)."""
    base = sizes[0]
    out: dict[str, Any] = {"levels": {}, "compaction_ms": _compaction_ms(measured["compaction_s"])}
    for level, ops in measured["times"].items():
        out["levels"][level] = {}
        for op, by_size in ops.items():
            figures = {str(size): stats(values) for size, values in by_size.items()}
            first = figures[str(base)]
            for size in sizes:
                row = figures[str(size)]
                row["median_ratio"] = row["median_ms"] / first["median_ms"]
                row["p99_ratio"] = row["p99_ms"] / first["p99_ms"]
            last = figures[str(sizes[-1])]
            out["levels"][level][op] = {
                "sizes": figures,
                "target_ratio": TARGETS[op],
                "median_ratio": last["median_ratio"],
                "p99_ratio": last["p99_ratio"],
                "meets_target": last["median_ratio"] <= TARGETS[op],
            }
    return out


def _compaction_ms(compaction: dict[int, float | None]) -> dict[str, float] | None:
    if all(v is None for v in compaction.values()):
        return None
    return {str(size): seconds * 1000 for size, seconds in compaction.items() if seconds is not None}


def print_table(result: dict[str, Any]) -> None:
    sizes = result["meta"]["sizes"]
    meta = result["meta"]
    print(f"scaling: {meta['samples']} calls per call, size and level, in {meta['rounds']} interleaved rounds; ms per call")
    for skipped, why in result["skipped"].items():
        print(f"  {skipped}: skipped ({why})")
    header = f"{'store':11}{'level':9}{'call':8}{'rooms':>7}{'median':>9}{'p99':>9}{'mean':>9}{'max':>9}{'med x':>7}{'p99 x':>7}"
    print(header)
    for store, figures in result["stores"].items():
        for level, ops in figures["levels"].items():
            for op, row in ops.items():
                for size in sizes:
                    s = row["sizes"][str(size)]
                    print(
                        f"{store:11}{level:9}{op:8}{size:>7}{s['median_ms']:>9.3f}{s['p99_ms']:>9.3f}{s['mean_ms']:>9.3f}"
                        f"{s['max_ms']:>9.2f}{s['median_ratio']:>7.2f}{s['p99_ratio']:>7.2f}"
                    )
                verdict = "meets" if row["meets_target"] else "MISSES"
                print(f"{'':28}{verdict} target: median at {sizes[-1]} within {row['target_ratio']}x of {sizes[0]} ({row['median_ratio']:.2f}x)")
        if figures["compaction_ms"]:
            each = ", ".join(f"{size} rooms {ms:.1f} ms" for size, ms in figures["compaction_ms"].items())
            print(f"{store:11}one snapshot compaction: {each}")


def plot(result: dict[str, Any], path: Path) -> None:
    """Median (solid) and p99 (dashed) latency against rooms, one panel per call, a line per store."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    sizes = result["meta"]["sizes"]
    level = "http" if "http" in result["meta"]["levels"] else result["meta"]["levels"][0]
    figure, axes = plt.subplots(1, len(OPERATIONS), figsize=(5 * len(OPERATIONS), 4), squeeze=False)
    for ax, op in zip(axes[0], OPERATIONS, strict=True):
        for index, (store, figures) in enumerate(result["stores"].items()):
            rows = figures["levels"][level][op]["sizes"]
            colour = f"C{index}"
            ax.plot(sizes, [rows[str(s)]["median_ms"] for s in sizes], "o-", color=colour, label=f"{store} median")
            ax.plot(sizes, [rows[str(s)]["p99_ms"] for s in sizes], "s--", color=colour, label=f"{store} p99")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{op} ({level} level)")
        ax.set_xlabel("stored rooms")
        ax.set_ylabel("ms per call")
        ax.grid(True, which="both", alpha=0.3)
    if result["stores"]:  # (no engine measured: empty panels, and no legend to warn about)
        axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="stored rooms, comma-separated, smallest first (default 100,1000,10000)")
    parser.add_argument("--stores", default=None, help="engines: memory, tinydb, mysql, postgresql (default memory,tinydb,mysql)")
    parser.add_argument("--levels", default=",".join(LEVELS), help="http (in-process ASGI) and/or service (default both)")
    parser.add_argument("--samples", type=int, default=1000, help="timed calls per call, size and level (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the calls are split into (default 5)")
    parser.add_argument("--seed", type=int, default=7, help="random seed for the rooms read (default 7)")
    parser.add_argument("--quick", action="store_true", help="10 and 100 rooms, 20 calls, memory and TinyDB: a smoke run")
    parser.add_argument("--json", metavar="PATH", help=f"where to write the figures (default {RESULTS.name}/scaling-<time>.json)")
    parser.add_argument("--png", metavar="PATH", help="where to draw the plot (default: next to the JSON, .png)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.samples, args.rounds = "10,100", 20, 2
        args.stores = args.stores or "memory,tinydb"
    sizes = [int(s) for s in args.sizes.split(",")]
    stores = [s.strip() for s in (args.stores or "memory,tinydb,mysql").split(",") if s.strip()]
    levels = [s.strip() for s in args.levels.split(",") if s.strip()]
    if sizes != sorted(sizes) or min(sizes) < 1 or len(set(sizes)) != len(sizes):
        parser.error("--sizes must be distinct positive numbers, smallest first")
    if not set(stores) <= {"memory", "tinydb", "mysql", "postgresql"} or not stores:
        parser.error("--stores takes memory, tinydb, mysql, postgresql")
    if not set(levels) <= set(LEVELS) or not levels:
        parser.error("--levels takes http, service")
    if args.samples < 1 or args.rounds < 1:
        parser.error("--samples and --rounds must be positive")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = Path(args.json) if args.json else RESULTS / f"scaling-{stamp}.json"
    png_path = Path(args.png) if args.png else json_path.with_suffix(".png")
    result: dict[str, Any] = {
        "meta": {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sizes": sizes, "samples": args.samples, "rounds": args.rounds, "levels": levels,
            "targets": TARGETS, "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        },
        "skipped": {},
        "stores": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="livekit-bench-") as workdir:
        for name in stores:
            if name in SERVER_URLS:
                problem = reachable(name)
                if problem is not None:
                    result["skipped"][name] = problem
                    continue
                engine = sql_engine(name)
            elif name == "tinydb":
                engine = tinydb_engine(Path(workdir))
            else:
                engine = memory_engine()
            print(f"measuring {name} ...", flush=True)
            measured = measure_engine(engine, sizes, args.samples, args.rounds, levels, args.seed)
            result["stores"][name] = summarize(measured, sizes)
    print_table(result)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    plot(result, png_path)
    print(f"figures written to {json_path}, plot to {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
