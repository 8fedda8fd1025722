"""Requests per second of our `get`, `list` and `create` against a bare Starlette JSON endpoint.

SPEC section 10: `get` throughput at least half of a bare Starlette JSON endpoint's, on the same
uvicorn, in the same run. Two server processes start with identical uvicorn settings (one worker,
access log off, log level warning; see `_servers.py`): (a) a bare Starlette endpoint answering a
small JSON object, (b) our AppServer on memory storage with a valid token and stored rooms. A load
generator in a third process (wrk when installed, else `_loadgen.py`) drives each in turn on
127.0.0.1 with the same request, alternating (a) and (b) for several rounds, so that a noisy
neighbour slows both alike. The figure per side is the median over rounds.

    python benchmarks/throughput.py                      # 5 rounds of 5 s per side and call
    python benchmarks/throughput.py --quick              # 1 round of 0.5 s: a smoke run
    python benchmarks/throughput.py --load-generator python --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGET_RATIO = 0.5
OPERATIONS = ("get", "list", "create")
SIDES = ("bare", "app")


@dataclass(frozen=True)
class Server:
    """A running server process: its port and what it printed (token, room id)."""

    process: subprocess.Popen[str]
    port: int
    info: dict[str, Any]


@contextmanager
def run_server(kind: str, cpu: int | None) -> Iterator[Server]:
    """Start `_servers.py kind`, wait for its line, and stop it (SIGTERM, then SIGKILL) on exit."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "_servers.py"), kind],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if cpu is not None:
            # Before uvicorn starts its threads (they inherit it): the child is still importing.
            os.sched_setaffinity(process.pid, {cpu})
        assert process.stdout is not None
        line = process.stdout.readline()  # the child prints it right after binding
        if not line:
            raise RuntimeError(f"the {kind} server exited before it was ready (code {process.wait(10)})")
        info = json.loads(line)
        _wait_until_answering(int(info["port"]))
        yield Server(process, int(info["port"]), info)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


def _wait_until_answering(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answers on 127.0.0.1:{port} after {timeout} s") from None
            time.sleep(0.05)


def request_for(operation: str, app_info: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """(path, body, headers) of one call; both sides get exactly this request."""
    user = app_info["user"]
    bodies = {
        "get": {"id": app_info["room"], "user_id": user},
        "list": {"user_id": user, "page_num": 1, "page_size": 10},
        "create": {"title": "a benchmark room", "anchor": user},
    }
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {app_info['token']}"}
    return f"/api/v1/live/{operation}", json.dumps(bodies[operation]), headers


class LoadGenerator:
    """Drives one server for a while and answers requests/s; wrk or the Python one."""

    def __init__(self, kind: str, connections: int, cpu: int | None) -> None:
        self.kind = kind
        self.connections = connections
        self.cpu = cpu

    def run(self, port: int, path: str, body: str, headers: dict[str, str], seconds: float) -> dict[str, float]:
        """{"rps", "requests", "errors"}; bounded by `seconds` plus a margin."""
        if self.kind == "wrk":
            return self._wrk(port, path, body, headers, seconds)
        return self._python(port, path, body, headers, seconds)

    def _wrk(self, port: int, path: str, body: str, headers: dict[str, str], seconds: float) -> dict[str, float]:
        lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body)}"]
        lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write("\n".join(lines) + "\n")
        try:
            duration = max(1, round(seconds))  # wrk takes whole seconds
            command = ["wrk", "-t1", f"-c{self.connections}", f"-d{duration}s", "-s", script.name]
            if self.cpu is not None and shutil.which("taskset"):
                command = ["taskset", "-c", str(self.cpu), *command]  # pinned from its first thread on
            completed = subprocess.run(
                [*command, f"http://127.0.0.1:{port}{path}"],
                capture_output=True, text=True, timeout=duration + 30, check=True,
            )  # fmt: skip
        finally:
            os.unlink(script.name)
        return parse_wrk(completed.stdout)

    def _python(self, port: int, path: str, body: str, headers: dict[str, str], seconds: float) -> dict[str, float]:
        spec = {
            "host": "127.0.0.1", "port": port, "path": path, "body": body, "headers": headers,
            "connections": self.connections, "duration": seconds, "cpu": self.cpu,
        }  # fmt: skip
        completed = subprocess.run(
            [sys.executable, str(HERE / "_loadgen.py"), json.dumps(spec)],
            capture_output=True, text=True, timeout=seconds + 30, check=True,
        )  # fmt: skip
        counts = json.loads(completed.stdout)
        return {"rps": counts["requests"] / counts["seconds"], "requests": counts["requests"], "errors": counts["errors"]}


def _sibling(name: str) -> Any:
    """A helper module next to this script (benchmarks/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"livekit_demo_benchmarks.{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_wrk(output: str) -> dict[str, float]:
    """requests/s, requests and errors (non-2xx answers plus socket errors) from wrk's report."""
    rps = requests = errors = 0.0
    for line in output.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(words[1])
        elif "requests in" in line:
            requests = float(words[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            errors += float(words[-1])
        elif line.strip().startswith("Socket errors:"):
            errors += sum(float(part.split()[-1]) for part in line.split(":", 1)[1].split(","))
    if not rps:
        raise RuntimeError(f"wrk reported no requests/s:\n{output}")
    return {"rps": rps, "requests": requests, "errors": errors}


def choose_generator(wanted: str) -> str:
    if wanted == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if wanted == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk), use --load-generator python")
    return wanted


def measure(rounds: int, seconds: float, warmup: float, generator: LoadGenerator, server_cpu: int | None) -> dict[str, Any]:
    """Per operation, per side: requests/s of every round; sides alternate within each round."""
    samples: dict[str, dict[str, list[float]]] = {op: {side: [] for side in SIDES} for op in OPERATIONS}
    errors: dict[str, dict[str, float]] = {op: {side: 0.0 for side in SIDES} for op in OPERATIONS}
    with ExitStack() as stack:
        servers = {side: stack.enter_context(run_server(side, server_cpu)) for side in SIDES}
        app_info = servers["app"].info
        for op in OPERATIONS:
            path, body, headers = request_for(op, app_info)
            for side in SIDES if warmup > 0 else ():  # warm both: first connections, imports, caches
                generator.run(servers[side].port, path, body, headers, warmup)
            for round_number in range(rounds):
                # Alternate which side goes first, so neither always follows the other.
                order = SIDES if round_number % 2 == 0 else SIDES[::-1]
                for side in order:
                    result = generator.run(servers[side].port, path, body, headers, seconds)
                    samples[op][side].append(result["rps"])
                    errors[op][side] += result["errors"]
    return {"samples": samples, "errors": errors}


def summarize(measured: dict[str, Any]) -> dict[str, Any]:
    """Median requests/s per side, their ratio (app / bare), and the per-round ratios."""
    ops: dict[str, Any] = {}
    for op in OPERATIONS:
        bare, app = measured["samples"][op]["bare"], measured["samples"][op]["app"]
        ratio = statistics.median(app) / statistics.median(bare)
        ops[op] = {
            "bare_rps": statistics.median(bare),
            "app_rps": statistics.median(app),
            "ratio": ratio,
            "round_ratios": [a / b for a, b in zip(app, bare, strict=True)],
            "bare_rps_rounds": bare,
            "app_rps_rounds": app,
            "errors": measured["errors"][op],
            "target_ratio": TARGET_RATIO,
            "meets_target": ratio >= TARGET_RATIO,
        }
    return ops


def print_table(result: dict[str, Any]) -> None:
    meta = result["meta"]
    print(
        f"throughput: {meta['rounds']} round(s) of {meta['seconds']} s per side, load generator {meta['load_generator']} "
        f"({meta['connections']} connections), uvicorn {meta['uvicorn']} with {meta['http']} and {meta['loop']} "
        f"({meta['uvicorn_settings']})"
    )
    print(f"{'call':8}{'bare req/s':>12}{'ours req/s':>12}{'ours/bare':>11}{'min..max round':>17}  target >= {TARGET_RATIO}")
    for op, row in result["operations"].items():
        rounds = row["round_ratios"]
        spread = f"{min(rounds):.2f}..{max(rounds):.2f}"
        verdict = "meets" if row["meets_target"] else "MISSES"
        errors = sum(row["errors"].values())
        note = f"  ({errors:.0f} errors!)" if errors else ""
        print(f"{op:8}{row['bare_rps']:>12.0f}{row['app_rps']:>12.0f}{row['ratio']:>11.2f}{spread:>17}  {verdict}{note}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per call (default 5)")
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per side and round (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured load per side before the rounds (default 1)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "python"), default="auto", help="default: wrk when installed")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the servers to CPU 0 and the load generator to CPU 1")
    parser.add_argument("--quick", action="store_true", help="1 round of 0.5 s (wrk: 1 s), no warm-up: a smoke run")
    parser.add_argument("--json", metavar="PATH", help=f"where to write the figures (default {RESULTS.name}/throughput-<time>.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.warmup = 1, 0.5, 0.0
    if args.rounds < 1 or args.seconds <= 0 or args.connections < 1 or args.warmup < 0:
        parser.error("--rounds, --seconds and --connections must be positive, --warmup not negative")
    kind = choose_generator(args.load_generator)
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, load_cpu = (cpus[0], cpus[1]) if pin else (None, None)
    generator = LoadGenerator(kind, args.connections, load_cpu)

    import uvicorn

    measured = measure(args.rounds, args.seconds, args.warmup, generator, server_cpu)
    result = {
        "meta": {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rounds": args.rounds,
            "seconds": args.seconds,
            "connections": args.connections,
            "load_generator": kind,
            "pinned": {"server_cpu": server_cpu, "load_cpu": load_cpu},
            "uvicorn": uvicorn.__version__,
            "uvicorn_settings": _sibling("_servers").UVICORN_SETTINGS,
            # What uvicorn's "auto" picks here: httptools and uvloop when installed, else h11 and asyncio.
            "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
            "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        },
        "operations": summarize(measured),
    }
    print_table(result)
    path = Path(args.json) if args.json else RESULTS / f"throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
