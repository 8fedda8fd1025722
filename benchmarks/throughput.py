"""Requests per second of `livekit-demo serve` against a bare Starlette JSON endpoint, as ratios.

SPEC section 10: with wrk, `serve` as users run it against a bare Starlette endpoint on the same
uvicorn, in the same run: `get` >= 0.75x, `list` (page of 10) >= 0.6x, `create` >= 0.5x, on the
default stack (h11 + asyncio) and on the `fast` one (httptools + uvloop, `pip install
"livekit_demo[fast]"`) when it is installed.

Per stack, three server processes: (a) `_servers.py bare`, a Starlette endpoint answering
`{"code":200,"message":"ok"}`, bound with `serving.bind_socket` and run with `serving.uvicorn_options`,
exactly what `serve` uses; (b) `python -m livekit_demo serve --storage memory --port 0`, the
command users type, filled over HTTP (a demo login, 100 rooms); (c) a twin of (a) (below). For the
default column while the fast stack is installed, every process hides httptools and uvloop (`_servers.py --no-fast`), as if
the extra were not installed. Which stack each process really runs is read from the libraries it
has mapped (/proc/PID/maps) and recorded.

Before any load, a sanity check: one keep-alive connection calls each bare server one call at a
time. A sound server answers on loopback in well under a millisecond; one whose socket lacks
TCP_NODELAY waits ~40 ms a call on the client's delayed ACK, and then every server is capped alike
and every ratio reads ~1. Above 5 ms a call (median) the benchmark refuses to report.

A load generator in another process (wrk when installed, else `_loadgen.py`) drives each server in
turn with the same request, alternating sides for several rounds (both stacks in each round), so
that a noisy neighbour slows both alike; servers are pinned to one CPU, the load generator to
another. The figure per side is the median over rounds; the ratio is of the medians.

Each round also drives (c), a twin of the bare server (the same command, another process), and the
twin's ratio to the bare server is the run's noise: two identical servers read 1.00 on a steady
machine. A shared VM's speed can move by tens of percent within seconds (one bare server under wrk,
second by second, on one such machine: 3,550 to 6,250 requests/s), and alternating rounds cancel
only part of that; a verdict nearer its target than the twin was to 1 is marked as not decided.

    python benchmarks/throughput.py                      # 5 rounds of 5 s per side, call and stack
    python benchmarks/throughput.py --quick              # 1 short round, no warm-up: a smoke run
    python benchmarks/throughput.py --load-generator python --json out.json
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGETS = {"get": 0.75, "list": 0.6, "create": 0.5}
OPERATIONS = tuple(TARGETS)
SIDES = ("bare", "app", "twin")
"""Each round drives all three: the bare endpoint, ours, and the bare endpoint's twin (the noise)."""
BARE_SIDES = ("bare", "twin")
"""The sides that run the bare endpoint (the same command twice)."""
COMPARED = ("bare", "app")
"""The sides the sanity check calls: the twin is the bare server again."""
STACKS = ("default", "fast")
SANITY_LIMIT_MS = 5.0
"""Median milliseconds a call on one keep-alive connection to the bare server may take, or no report."""
FAST_MODULES = ("httptools", "uvloop")
BENCH_USER = "bench"
LIST_ROOMS = 100  # rooms stored before measuring, so a list page of 10 is full
_URL_LINE = "Enter this base URL in a client:"
SERVE_ENV = {"LIVEKIT_DEMO_ROOMS_MAX_PER_USER": str(10**9)}
"""The one setting the served app gets beyond its defaults (in its environment)."""


def fast_stack_installed() -> bool:
    """Whether httptools and uvloop (the `fast` extra) import here."""
    return all(importlib.util.find_spec(name) is not None for name in FAST_MODULES)


@dataclass
class Server:
    """A running server process: its port, the command that started it, and what it runs on."""

    process: subprocess.Popen[str]
    port: int
    command: list[str]
    stack: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def server_command(side: str, stack: str) -> list[str]:
    """How each side starts: `serve` as users type it, unless the fast stack must be hidden."""
    hide = ["--no-fast"] if stack == "default" and fast_stack_installed() else []
    if side in BARE_SIDES:
        return [sys.executable, str(HERE / "_servers.py"), *hide, "bare"]
    serve = ["serve", "--storage", "memory", "--host", "127.0.0.1", "--port", "0"]
    if hide:
        return [sys.executable, str(HERE / "_servers.py"), *hide, *serve]
    return [sys.executable, "-m", "livekit_demo", *serve]


@contextmanager
def run_server(side: str, stack: str, cpu: int | None) -> Iterator[Server]:
    """Start one side on one stack, wait until it answers, and stop it (SIGTERM, then SIGKILL) on exit."""
    command = server_command(side, stack)
    # The server's settings come from its arguments only, not from this shell's environment; but
    # `create` adds thousands of rooms for one anchor, past the default cap on rooms per user.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_DEMO_", "SPF_"))} | SERVE_ENV
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
            # Pinned before it runs a line, so uvicorn's threads inherit the CPU.
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
        )  # fmt: skip
        try:
            port = _read_port(process, side)
            if port is None:
                stderr.seek(0)
                raise RuntimeError(f"the {side} server ({' '.join(command)}) exited before it was ready:\n{stderr.read()[-2000:]}")
            _wait_until_answering(port)
            yield Server(process, port, command)
        finally:
            _stop(process)


def _read_port(process: subprocess.Popen[str], side: str) -> int | None:
    assert process.stdout is not None
    for line in process.stdout:
        if side in BARE_SIDES:  # the bare endpoint prints its port as JSON
            return int(json.loads(line)["port"])
        if _URL_LINE in line:
            url = line.split(_URL_LINE, 1)[1].strip()
            return int(url.rstrip("/").rsplit(":", 1)[1])
    return None


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
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answers on 127.0.0.1:{port} after {timeout} s") from None
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def running_stack(pid: int) -> dict[str, str]:
    """The HTTP parser and event loop a server process runs, from the libraries it has mapped (Linux)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return {"http": "unknown", "loop": "unknown"}
    return {
        "http": "httptools" if "/httptools/" in maps else "h11",
        "loop": "uvloop" if "/uvloop/" in maps else "asyncio",
    }


def _post(port: int, path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, json.dumps(body), headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"POST {path} answered {response.status}: {answer}")
    return answer


def fill(port: int) -> dict[str, Any]:
    """Log in as `BENCH_USER` (demo rule) and create `LIST_ROOMS` rooms over HTTP; the token and a room id."""
    token = _post(port, "/login", {"username": BENCH_USER, "password": BENCH_USER})["token"]
    room = ""
    for number in range(LIST_ROOMS):
        room = _post(port, "/api/v1/live/create", {"title": f"room {number}", "anchor": BENCH_USER}, token)["id"]
    return {"token": token, "room": room, "user": BENCH_USER}


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


def single_connection(port: int, path: str, body: str, headers: dict[str, str], calls: int) -> dict[str, float]:
    """Milliseconds per call on one keep-alive connection, one call at a time (median, mean, max)."""
    loadgen = _sibling("_loadgen")
    request = loadgen.encode_request("127.0.0.1", port, path, body, headers)
    times: list[float] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # Our side must not be the one that delays: the request leaves in one write, at once.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        for number in range(calls + 5):  # the first few warm the connection up, unmeasured
            began = time.perf_counter()
            sock.sendall(request)
            status = _read_answer(reader)
            if number >= 5:
                times.append((time.perf_counter() - began) * 1000)
            if not 200 <= status < 300:
                raise RuntimeError(f"the sanity check's call to port {port} answered {status}")
    return {"median_ms": statistics.median(times), "mean_ms": statistics.fmean(times), "max_ms": max(times), "calls": calls}


def _read_answer(reader: IO[bytes]) -> int:
    status_line = reader.readline()
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    reader.read(length)
    return int(status_line.split()[1])


def refusal(sanity: dict[str, Any], limit_ms: float) -> str | None:
    """Why the figures must not be reported (a bare server too slow on one connection), or None."""
    slow = [f"{stack}: {row['bare']['median_ms']:.1f} ms" for stack, row in sanity.items() if row["bare"]["median_ms"] > limit_ms]
    if not slow:
        return None
    return (
        f"refusing to report: one keep-alive connection to the bare server takes more than {limit_ms:g} ms a call "
        f"({', '.join(slow)}). A sound server answers in well under that on loopback; this measures the socket "
        "(TCP_NODELAY? a saturated machine?), not the apps."
    )


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


def measure(
    stacks: Sequence[str], calls: Sequence[str], rounds: int, seconds: float, warmup: float, sanity_calls: int,
    generator: LoadGenerator, server_cpu: int | None,
) -> dict[str, Any]:  # fmt: skip
    """Start every server, run the sanity check, then per call and round, requests/s of each side and stack."""
    samples = {stack: {op: {side: [] for side in SIDES} for op in calls} for stack in stacks}
    cpu = {stack: {op: {side: [] for side in SIDES} for op in calls} for stack in stacks}  # server CPU ms per call
    errors = {stack: {op: {side: 0.0 for side in SIDES} for op in calls} for stack in stacks}
    with ExitStack() as stack_of_servers:
        servers = {
            (stack, side): stack_of_servers.enter_context(run_server(side, stack, server_cpu)) for stack in stacks for side in SIDES
        }
        for stack in stacks:
            servers[stack, "app"].info = fill(servers[stack, "app"].port)
        app_info = {stack: servers[stack, "app"].info for stack in stacks}
        sanity: dict[str, Any] = {}
        for stack in stacks:
            path, body, headers = request_for("get", app_info[stack])
            sanity[stack] = {side: single_connection(servers[stack, side].port, path, body, headers, sanity_calls) for side in COMPARED}
        # Read after the first calls: uvicorn loads its protocol and loop when it starts serving.
        for server in servers.values():
            server.stack = running_stack(server.process.pid)
        commands = {f"{stack}/{side}": server.command for (stack, side), server in servers.items()}
        running = {f"{stack}/{side}": server.stack for (stack, side), server in servers.items()}
        measured = {"sanity": sanity, "samples": samples, "cpu": cpu, "errors": errors, "commands": commands, "running": running}
        if refusal(sanity, SANITY_LIMIT_MS):
            return measured  # no load: the figures would not mean anything
        for op in calls:
            requests = {stack: request_for(op, app_info[stack]) for stack in stacks}
            for stack in stacks if warmup > 0 else ():  # warm both: first connections, caches
                for side in SIDES:
                    generator.run(servers[stack, side].port, *requests[stack], warmup)
            for round_number in range(rounds):
                for stack in stacks:
                    # Ours always between the bare server and its twin, which swap places each round,
                    # so that neither bare side always comes first.
                    for side in SIDES if round_number % 2 == 0 else SIDES[::-1]:
                        pid = servers[stack, side].process.pid
                        cpu_before = cpu_seconds(pid)
                        result = generator.run(servers[stack, side].port, *requests[stack], seconds)
                        cpu_after = cpu_seconds(pid)
                        samples[stack][op][side].append(result["rps"])
                        if cpu_before is not None and cpu_after is not None and result["requests"]:
                            cpu[stack][op][side].append((cpu_after - cpu_before) * 1000 / result["requests"])
                        errors[stack][op][side] += result["errors"]
    return measured


def summarize(
    samples: dict[str, dict[str, list[float]]], cpu: dict[str, dict[str, list[float]]], errors: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """Per call: median requests/s per side, their ratio (app / bare), and the per-round ratios; the
    twin's ratio to the bare server (the run's noise; see `decided`); and the servers' CPU time per
    call, whose ratio (bare / app) a busy machine disturbs less."""
    ops: dict[str, Any] = {}
    for op in samples:
        bare, app, twin = samples[op]["bare"], samples[op]["app"], samples[op]["twin"]
        ratio = statistics.median(app) / statistics.median(bare)
        noise = statistics.median(twin) / statistics.median(bare)
        ops[op] = {
            "bare_rps": statistics.median(bare),
            "app_rps": statistics.median(app),
            "ratio": ratio,
            "round_ratios": [a / b for a, b in zip(app, bare, strict=True)],
            "bare_rps_rounds": bare,
            "app_rps_rounds": app,
            "twin_rps": statistics.median(twin),
            "twin_rps_rounds": twin,
            "noise": noise,
            "errors": errors[op],
            "bare_cpu_ms_per_call": statistics.median(cpu[op]["bare"]) if cpu[op]["bare"] else None,
            "app_cpu_ms_per_call": statistics.median(cpu[op]["app"]) if cpu[op]["app"] else None,
            "cpu_ratio": statistics.median(cpu[op]["bare"]) / statistics.median(cpu[op]["app"]) if cpu[op]["bare"] and cpu[op]["app"] else None,
            "target_ratio": TARGETS[op],
            "meets_target": ratio >= TARGETS[op],
            "decided": decided(ratio, TARGETS[op], noise),
        }
    return ops


def decided(ratio: float, target: float, noise: float) -> bool:
    """Whether `ratio` is farther from `target` than this run can tell apart: two identical servers
    read `noise` (1.00 on a steady machine), so a ratio within that fraction of its target could
    have fallen on either side of it."""
    return abs(ratio / target - 1) > abs(noise - 1)


def print_sanity(result: dict[str, Any]) -> None:
    sanity = result["sanity"]
    figures = ", ".join(
        f"{stack}: bare {row['bare']['median_ms']:.2f} ms, ours {row['app']['median_ms']:.2f} ms" for stack, row in sanity["stacks"].items()
    )
    verdict = "ok" if sanity["passed"] else "TOO SLOW"
    print(f"sanity check, median of {sanity['calls']} calls on one keep-alive connection (limit {sanity['limit_ms']:g} ms): {figures}: {verdict}")


def print_table(result: dict[str, Any]) -> None:
    meta = result["meta"]
    print(
        f"throughput: {meta['rounds']} round(s) of {meta['seconds']} s per side, load generator {meta['load_generator']} "
        f"({meta['connections']} connections), uvicorn {meta['uvicorn']} ({meta['uvicorn_settings']}), "
        f"load average {meta['loadavg_before'][0]:.2f} before, {meta['loadavg_after'][0]:.2f} after"
    )
    print_sanity(result)
    print(
        f"{'call':8}{'stack':26}{'bare req/s':>12}{'ours req/s':>12}{'ours/bare':>11}{'min..max round':>17}{'by CPU':>8}"
        f"{'twin/bare':>11}  target"
    )
    for op in OPERATIONS:
        for stack, measured in result["stacks"].items():
            if op not in measured["operations"]:
                continue
            row = measured["operations"][op]
            rounds = row["round_ratios"]
            spread = f"{min(rounds):.2f}..{max(rounds):.2f}"
            verdict = "meets" if row["meets_target"] else "MISSES"
            if not row["decided"]:
                verdict += f" (within the noise: twin/bare {row['noise']:.2f})"
            errors = sum(row["errors"].values())
            note = f"  ({errors:.0f} errors!)" if errors else ""
            name = f"{stack} ({measured['http']}+{measured['loop']})"
            by_cpu = f"{row['cpu_ratio']:.2f}" if row["cpu_ratio"] is not None else "-"
            print(
                f"{op:8}{name:26}{row['bare_rps']:>12.0f}{row['app_rps']:>12.0f}{row['ratio']:>11.2f}{spread:>17}{by_cpu:>8}"
                f"{row['noise']:>11.2f}  >= {row['target_ratio']} {verdict}{note}"
            )
    for stack, reason in result["skipped"].items():
        print(f"{stack} stack not measured: {reason}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per call, each side once a round (default 5)")
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per side and round (default 5; wrk: whole seconds)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured load per side before the rounds (default 1)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "python"), default="auto", help="default: wrk when installed")
    parser.add_argument("--calls", default=",".join(OPERATIONS), help=f"comma-separated: {', '.join(OPERATIONS)} (default all)")
    parser.add_argument("--stacks", default="default,fast", help="comma-separated: default (h11+asyncio), fast (httptools+uvloop)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the servers to one CPU and the load generator to another")
    parser.add_argument("--quick", action="store_true", help="1 round of 0.5 s (wrk: 1 s), no warm-up: a smoke run")
    parser.add_argument("--json", metavar="PATH", help=f"where to write the figures (default {RESULTS.name}/throughput-<time>.json)")
    args = parser.parse_args(argv)
    sanity_calls = 200
    if args.quick:
        args.rounds, args.seconds, args.warmup, sanity_calls = 1, 0.5, 0.0, 50
    if args.rounds < 1 or args.seconds <= 0 or args.connections < 1 or args.warmup < 0:
        parser.error("--rounds, --seconds and --connections must be positive, --warmup not negative")
    wanted = [s.strip() for s in args.stacks.split(",") if s.strip()]
    if not wanted or set(wanted) - set(STACKS):
        parser.error(f"--stacks takes a comma-separated choice of {', '.join(STACKS)}")
    calls = [c.strip() for c in args.calls.split(",") if c.strip()]
    if not calls or set(calls) - set(OPERATIONS):
        parser.error(f"--calls takes a comma-separated choice of {', '.join(OPERATIONS)}")
    skipped: dict[str, str] = {}
    if "fast" in wanted and not fast_stack_installed():
        skipped["fast"] = "httptools and uvloop are not installed (pip install 'livekit_demo[fast]')"
    stacks = [s for s in STACKS if s in wanted and s not in skipped]
    kind = choose_generator(args.load_generator)
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, load_cpu = (cpus[0], cpus[1]) if pin else (None, None)
    generator = LoadGenerator(kind, args.connections, load_cpu)

    import uvicorn

    from livekit_demo.serving import uvicorn_options
    from livekit_demo.settings import Settings

    loadavg_before = os.getloadavg()
    measured = measure(stacks, calls, args.rounds, args.seconds, args.warmup, sanity_calls, generator, server_cpu)
    sanity = {"limit_ms": SANITY_LIMIT_MS, "calls": sanity_calls, "stacks": measured["sanity"]}
    refused = refusal(measured["sanity"], SANITY_LIMIT_MS)
    sanity["passed"] = refused is None
    if refused:
        print_sanity({"sanity": sanity})
        print(refused, file=sys.stderr)
        return 3
    result = {
        "meta": {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rounds": args.rounds,
            "seconds": args.seconds,
            "connections": args.connections,
            "load_generator": kind,
            "pinned": {"server_cpu": server_cpu, "load_cpu": load_cpu},
            "uvicorn": uvicorn.__version__,
            "uvicorn_settings": uvicorn_options(Settings.build(env={})),
            "commands": measured["commands"],
            "serve_environment": SERVE_ENV,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "loadavg_before": loadavg_before,
            "loadavg_after": os.getloadavg(),
        },
        "sanity": sanity,
        "stacks": {
            stack: {
                **_agreed_stack(measured["running"], stack),
                "operations": summarize(measured["samples"][stack], measured["cpu"][stack], measured["errors"][stack]),
            }
            for stack in stacks
        },
        "skipped": skipped,
    }
    print_table(result)
    path = Path(args.json) if args.json else RESULTS / f"throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {path}")
    return 0


def _agreed_stack(running: dict[str, dict[str, str]], stack: str) -> dict[str, str]:
    """The parser and loop every side of `stack` ran; they must agree, or the comparison is unfair."""
    ran = {side: running[f"{stack}/{side}"] for side in SIDES}
    if any(each != ran["bare"] for each in ran.values()):
        raise RuntimeError(f"the {stack} stack's sides run on different stacks: {ran}")
    return ran["bare"]


if __name__ == "__main__":
    sys.exit(main())
