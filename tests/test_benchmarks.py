"""Smoke runs of the benchmarks in their tiny `--quick` mode: they run and write what they promise.

No timing is asserted here (a shared machine makes any bound flaky); the figures are for people,
in README's Performance section.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from livekit_demo.serving import uvicorn_options
from livekit_demo.settings import Settings

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
OPERATIONS = {"get", "list", "create"}


def _load(name: str) -> ModuleType:
    """A benchmark script as a module (benchmarks/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_throughput_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The Python load generator: what a machine without wrk (CI) runs. wrk's side is its parser, below.
    generator = "python"
    out = tmp_path / "throughput.json"
    throughput = _load("throughput")
    assert throughput.main(["--quick", "--load-generator", generator, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "ours/bare" in table and all(op in table for op in OPERATIONS)
    result = json.loads(out.read_text())
    assert result["meta"]["load_generator"] == generator
    # Both sides run with what `serve` runs with (one process: serve passes no `workers`).
    assert {k: result["meta"]["uvicorn_settings"][k] for k in ("access_log", "log_level", "lifespan")} == {"access_log": False, "log_level": "warning", "lifespan": "on"}
    assert result["meta"]["uvicorn_settings"] == uvicorn_options(Settings.build(env={}))
    # Ours is the command users type, on memory storage.
    assert result["meta"]["commands"]["default/app"][-7:] == ["serve", "--storage", "memory", "--host", "127.0.0.1", "--port", "0"]
    # The sanity check ran before the load, on every stack measured, and reported its figures;
    # that main() answered 0 at all means it passed (it refuses otherwise: see the test below).
    sanity = result["sanity"]
    assert sanity["limit_ms"] == 5.0 and sanity["calls"] == 50 and sanity["passed"] is True
    assert set(sanity["stacks"]) == set(result["stacks"])
    for sides in sanity["stacks"].values():
        for side in ("bare", "app"):
            assert sides[side]["calls"] == 50 and 0 < sides[side]["median_ms"] <= sides[side]["max_ms"]
    assert "sanity check, median of 50 calls on one keep-alive connection (limit 5 ms)" in table
    # The default column is h11 + asyncio on both sides, as the processes' mapped libraries show.
    assert result["stacks"]["default"]["http"] == "h11" and result["stacks"]["default"]["loop"] == "asyncio"
    assert set(result["stacks"]) | set(result["skipped"]) == {"default", "fast"}
    if "fast" in result["stacks"]:
        assert (result["stacks"]["fast"]["http"], result["stacks"]["fast"]["loop"]) == ("httptools", "uvloop")
    else:
        assert "livekit_demo[fast]" in result["skipped"]["fast"] and "fast stack not measured" in table
    for stack in result["stacks"].values():
        assert set(stack["operations"]) == OPERATIONS
        for op, row in stack["operations"].items():
            assert {"bare_rps", "app_rps", "ratio", "round_ratios", "meets_target", "errors", "noise", "decided"} <= set(row)
            assert row["target_ratio"] == {"get": 0.75, "list": 0.6, "create": 0.5}[op]
            assert row["bare_rps"] > 0 and row["app_rps"] > 0 and row["twin_rps"] > 0
            assert row["errors"] == {"bare": 0, "app": 0, "twin": 0}  # every call of ours answered 200
            # The noise is the twin measured against the bare server in the same rounds.
            assert row["noise"] == pytest.approx(row["twin_rps"] / row["bare_rps"])
            assert len(row["twin_rps_rounds"]) == len(row["bare_rps_rounds"]) == 1
    # The twin runs the bare server's command, on the same stack.
    for name in result["stacks"]:
        assert result["meta"]["commands"][f"{name}/twin"] == result["meta"]["commands"][f"{name}/bare"]
    assert "twin/bare" in table


def test_a_verdict_nearer_its_target_than_the_noise_is_not_decided() -> None:
    decided = _load("throughput").decided
    assert decided(0.80, 0.75, 1.02)  # 6.7% above the target, identical servers 2% apart
    assert decided(0.70, 0.75, 0.98)  # 6.7% under it
    assert not decided(0.74, 0.75, 1.02)  # 1.3% under: identical servers differed by more
    assert not decided(0.80, 0.75, 0.90)  # identical servers 10% apart: 6.7% tells nothing
    assert decided(0.80, 0.75, 1.0)  # a steady machine decides anything off the target


class _SlowHandler(BaseHTTPRequestHandler):
    """Answers every POST after 20 ms on a keep-alive connection: a server the benchmark must not trust."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(0.02)
        body = b'{"code":200,"message":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_sanity_check_refuses_a_slow_server() -> None:
    throughput = _load("throughput")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        figures = throughput.single_connection(server.server_address[1], "/x", "{}", {"Content-Type": "application/json"}, 5)
    finally:
        server.shutdown()
        server.server_close()
    assert figures["calls"] == 5 and figures["median_ms"] >= 20  # it slept 20 ms: a floor, not a timing bound
    why = throughput.refusal({"default": {"bare": figures, "app": figures}}, 5.0)
    assert why is not None and "refusing to report" in why and "default: " in why
    sound = dict(figures, median_ms=0.3)
    assert throughput.refusal({"default": {"bare": sound, "app": figures}}, 5.0) is None  # only the bare side gates


def test_throughput_refuses_to_report_when_the_check_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    throughput = _load("throughput")
    monkeypatch.setattr(throughput, "SANITY_LIMIT_MS", 0.0)  # no real call is that fast: the check must fail
    out = tmp_path / "throughput.json"
    assert throughput.main(["--quick", "--load-generator", "python", "--stacks", "default", "--json", str(out)]) == 3
    captured = capsys.readouterr()
    assert "refusing to report" in captured.err and "TOO SLOW" in captured.out
    assert not out.exists()


WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:41234/api/v1/live/get
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    45.10ms    5.02ms  80.00ms   90.00%
    Req/Sec   710.00     40.00   800.00     70.00%
  3552 requests in 5.01s, 1.20MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:    708.98
Transfer/sec:    245.10KB
"""


def test_wrk_report_is_read() -> None:
    assert _load("throughput").parse_wrk(WRK_OUTPUT) == {"rps": 708.98, "requests": 3552, "errors": 7}


def test_scaling_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, png = tmp_path / "scaling.json", tmp_path / "scaling.png"
    assert _load("scaling").main(["--quick", "--json", str(out), "--png", str(png)]) == 0
    table = capsys.readouterr().out
    assert "median" in table and "p99" in table and "snapshot compaction" in table
    result = json.loads(out.read_text())
    assert result["meta"]["sizes"] == [10, 100]
    assert set(result["stores"]) == {"memory", "tinydb"}
    for store in result["stores"].values():
        assert set(store["levels"]) == {"http", "service"}
        for level in store["levels"].values():
            assert set(level) == OPERATIONS | {"get_watched"}
            for row in level.values():
                assert {"median_ratio", "p99_ratio", "target_ratio", "meets_target"} <= set(row)
                assert set(row["sizes"]) == {"10", "100"}
                assert row["sizes"]["10"]["median_ratio"] == 1.0
                assert row["sizes"]["100"]["calls"] == 20
    assert set(result["stores"]["tinydb"]["compaction_ms"]) == {"10", "100"}
    assert "get_watched" in table
    assert result["stores"]["memory"]["compaction_ms"] is None
    assert png.read_bytes().startswith(b"\x89PNG")


def test_the_watched_rooms_are_as_many_at_every_size() -> None:
    scaling = _load("scaling")
    small, large = (scaling.open_subject(scaling.memory_engine(), size) for size in (scaling.WATCHED, 10 * scaling.WATCHED))
    try:
        assert len(small.watched) == len(large.watched) == scaling.WATCHED
        assert set(small.watched) == set(small.room_ids) and set(large.watched) < set(large.room_ids)
        rng = scaling.random.Random(1)
        # `get_watched` reads only the watched rooms; `get` reads from all of them.
        assert {b["id"] for b in scaling._bodies("get_watched", large, rng, 2000)} <= set(large.watched)
        assert len({b["id"] for b in scaling._bodies("get", large, rng, 2000)} - set(large.watched)) > 0
    finally:
        small.server.close()
        large.server.close()


def test_scaling_reports_an_unreachable_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    scaling = _load("scaling")
    # Port 9 (discard) on loopback: nothing listens, so the engine is skipped with the reason.
    monkeypatch.setitem(scaling.SERVER_URLS, "mysql", "mysql://root@127.0.0.1:9/test")
    out = tmp_path / "scaling.json"
    assert scaling.main(["--quick", "--stores", "mysql", "--levels", "service", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["stores"] == {} and "mysql" in result["skipped"]
    assert "mysql: skipped" in capsys.readouterr().out


def test_gc_pauses_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gc.json"
    assert _load("gc_pauses").main(["--quick", "--json", str(out)]) == 0
    assert "longest pause" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["rooms"] == 20_000 and len(result["checkpoints"]) == 10
    assert [row["rooms"] for row in result["checkpoints"]][::9] == [2_000, 20_000]
    assert result["collections"][0] > 0  # the watch saw the collections a run of creates makes
    # Not a time: what makes the pauses. A stored room is a row the collector does not track.
    assert result["tracked_objects_per_room"] < 0.05


@pytest.mark.media
@pytest.mark.slow
def test_edge_fanout_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_harness import require_media

    require_media()
    out = tmp_path / "edge.json"
    assert _load("edge_fanout").main(["--quick", "--json", str(out)]) == 0
    assert "edge_cpu_per_viewer_pct" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["viewers"] == 3 and result["viewers_cut_early"] == 0 and result["publisher_kept_running"]
    assert result["lag_max_s"] is not None  # every viewer received video after its warm-up
    assert result["received_mbit_s_median"] > 0
