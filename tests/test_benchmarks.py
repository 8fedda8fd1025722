"""Smoke runs of the benchmarks in their tiny `--quick` mode: they run and write what they promise.

No timing is asserted here (a shared machine makes any bound flaky); the figures are for people,
in README's Performance section.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

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
    assert _load("throughput").main(["--quick", "--load-generator", generator, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "ours/bare" in table and all(op in table for op in OPERATIONS)
    result = json.loads(out.read_text())
    assert result["meta"]["load_generator"] == generator
    assert result["meta"]["uvicorn_settings"] == {"workers": 1, "access_log": False, "log_level": "warning", "lifespan": "on"}
    assert set(result["operations"]) == OPERATIONS
    for row in result["operations"].values():
        assert {"bare_rps", "app_rps", "ratio", "round_ratios", "meets_target", "errors"} <= set(row)
        assert row["bare_rps"] > 0 and row["app_rps"] > 0
        assert row["errors"] == {"bare": 0, "app": 0}  # every call of ours answered 200


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
            assert set(level) == OPERATIONS
            for row in level.values():
                assert {"median_ratio", "p99_ratio", "target_ratio", "meets_target"} <= set(row)
                assert set(row["sizes"]) == {"10", "100"}
                assert row["sizes"]["10"]["median_ratio"] == 1.0
                assert row["sizes"]["100"]["calls"] == 20
    assert set(result["stores"]["tinydb"]["compaction_ms"]) == {"10", "100"}
    assert result["stores"]["memory"]["compaction_ms"] is None
    assert png.read_bytes().startswith(b"\x89PNG")


def test_scaling_reports_an_unreachable_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    scaling = _load("scaling")
    # Port 9 (discard) on loopback: nothing listens, so the engine is skipped with the reason.
    monkeypatch.setitem(scaling.SERVER_URLS, "mysql", "mysql://root@127.0.0.1:9/test")
    out = tmp_path / "scaling.json"
    assert scaling.main(["--quick", "--stores", "mysql", "--levels", "service", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["stores"] == {} and "mysql" in result["skipped"]
    assert "mysql: skipped" in capsys.readouterr().out


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
