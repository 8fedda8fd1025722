"""What CPython's garbage collector costs a server that keeps its rooms in memory, as rooms pile up.

A full collection walks every object the collector tracks, so its pause grows with what the
process keeps. This creates rooms through the whole app in-process (ASGI calls on one event loop,
memory store, request log off), the way a busy `serve --storage memory` does, and reports from
`gc.callbacks`: collections per generation, the time they took (in all and per create), the
longest pause, and how many tracked objects each stored room adds (the cause: with none, a full
collection neither comes often nor takes long).

    python benchmarks/gc_pauses.py                       # 1,000,000 rooms (about a minute, ~3 GB)
    python benchmarks/gc_pauses.py --rooms 300000 --json out.json
    python benchmarks/gc_pauses.py --quick               # 20,000 rooms: a smoke run

Times vary with the machine; the collection counts and tracked objects per room do not. Compare two
checkouts by running this script of each, one after the other, on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from livekit_demo import __version__
from livekit_demo.api import create_app

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CHECKPOINTS = 10  # rows in the table: collections and pauses per tenth of the run


class CollectorWatch:
    """Counts and times every collection, per generation, from `gc.callbacks`."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        generation = info["generation"]
        self.collections[generation] += 1
        self.seconds[generation] += took
        self.longest = max(self.longest, took)

    def snapshot(self) -> dict[str, Any]:
        return {"collections": list(self.collections), "seconds": list(self.seconds), "longest_ms": self.longest * 1000}


def _tracked_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


async def _create_rooms(rooms: int, watch: CollectorWatch) -> dict[str, Any]:
    app = create_app(storage="memory", rooms={"max_per_user": rooms + 10})
    token = await _call(app, "/api/v1/live/login", {"username": "bench", "password": "bench"})
    headers = [(b"authorization", f"Bearer {json.loads(token)['token']}".encode())]
    body = {"title": "a benchmark room", "anchor": "bench"}
    await _call(app, "/api/v1/live/create", body, headers)  # first call: imports, caches
    tracked_before = _tracked_objects()
    gc.callbacks.append(watch)
    checkpoints = []
    started = time.perf_counter()
    try:
        step = max(1, rooms // CHECKPOINTS)
        made = 0
        while made < rooms:
            batch = min(step, rooms - made)
            before, batch_started = watch.snapshot(), time.perf_counter()
            for _ in range(batch):
                await _call(app, "/api/v1/live/create", body, headers)
            made += batch
            after = watch.snapshot()
            checkpoints.append({
                "rooms": made,
                "us_per_create": (time.perf_counter() - batch_started) / batch * 1e6,
                "full_collections": after["collections"][2] - before["collections"][2],
                "gc_us_per_create": (sum(after["seconds"]) - sum(before["seconds"])) / batch * 1e6,
            })  # fmt: skip
    finally:
        gc.callbacks.remove(watch)
    elapsed = time.perf_counter() - started
    tracked_after = _tracked_objects()
    spent = watch.snapshot()
    return {
        "rooms": rooms,
        "seconds": elapsed,
        "us_per_create": elapsed / rooms * 1e6,
        "collections": spent["collections"],
        "gc_seconds": spent["seconds"],
        "gc_us_per_create": sum(spent["seconds"]) / rooms * 1e6,
        "gc_share": sum(spent["seconds"]) / elapsed,
        "longest_pause_ms": spent["longest_ms"],
        "tracked_objects_per_room": (tracked_after - tracked_before) / rooms,
        "checkpoints": checkpoints,
    }


async def _call(app: Any, path: str, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """One POST through the ASGI app; the answer's body (anything but a 200 is an error here)."""
    raw = json.dumps(body).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *headers],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        answer[message["type"]] = message

    await app(scope, receive, send)
    if answer["http.response.start"]["status"] != 200:
        raise RuntimeError(f"{path} answered {answer['http.response.start']['status']}: {answer['http.response.body']['body']!r}")
    return bytes(answer["http.response.body"]["body"])


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def print_report(result: dict[str, Any]) -> None:
    print(f"{result['rooms']:,} creates in {result['seconds']:.1f} s ({result['us_per_create']:.1f} us each)")
    print(f"collections per generation: {result['collections']}; time in them: {result['gc_us_per_create']:.2f} us per create, {result['gc_share']:.1%} of the run")
    print(f"longest pause: {result['longest_pause_ms']:.0f} ms; tracked objects per stored room: {result['tracked_objects_per_room']:.2f}")
    print(f"{'rooms':>10} {'us/create':>10} {'full GCs':>9} {'GC us/create':>13}")
    for row in result["checkpoints"]:
        print(f"{row['rooms']:>10,} {row['us_per_create']:>10.1f} {row['full_collections']:>9} {row['gc_us_per_create']:>13.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=1_000_000, help="rooms to create (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="20,000 rooms: a smoke run")
    parser.add_argument("--json", type=Path, help="write the result here (default benchmarks/results/gc-pauses.json)")
    args = parser.parse_args(argv)
    rooms = 20_000 if args.quick else args.rooms
    logging.getLogger("livekit_demo").setLevel(logging.WARNING)  # the request log is not what is measured
    loadavg_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    watch = CollectorWatch()
    result = asyncio.run(_create_rooms(rooms, watch))
    result["meta"] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": _commit(),
        "version": __version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "gc_thresholds": gc.get_threshold(),
        "loadavg_before": loadavg_before,
    }
    print_report(result)
    out = args.json or RESULTS / "gc-pauses.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
