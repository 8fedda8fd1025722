"""How long from `start_server(storage="memory")` to the first answered API call (a login).

SPEC section 10: ready in under 0.5 s. Each run starts a server, logs in over HTTP, and stops it;
the time counted is start plus login, not the stop. The first run also imports uvicorn and
Starlette, as the first start in a fresh kernel does: it is the max, and leaves the median alone.

    python benchmarks/startup.py --runs 20 --json startup.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence

import httpx

from livekit_demo.runner import start_server

TARGET_S = 0.5


def measure(runs: int) -> list[float]:
    """Seconds from calling `start_server` to the answer of the first login, once per run."""
    times: list[float] = []
    with httpx.Client(trust_env=False) as http:
        for _ in range(runs):
            began = time.perf_counter()
            server = start_server(storage="memory", env={}, keep=True)
            try:
                answer = http.post(f"{server.url}/login", json={"username": "bench", "password": "bench"})
                elapsed = time.perf_counter() - began
                answer.raise_for_status()
            finally:
                server.stop()
            times.append(elapsed)
    return times


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (no interpolation: with 20 runs p90 is the 18th fastest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without math
    return ordered[int(rank) - 1]


def summarize(times: Sequence[float]) -> dict[str, float | int | bool]:
    median = statistics.median(times)
    return {
        "runs": len(times),
        "min_s": min(times),
        "median_s": median,
        "p90_s": percentile(times, 0.9),
        "max_s": max(times),
        "target_s": TARGET_S,
        "meets_target": median < TARGET_S,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="number of start-login-stop runs (default 20)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    result = summarize(measure(args.runs))
    print(f"start_server(storage='memory') -> first login answered, {result['runs']} runs")
    print(f"{'':8}{'seconds':>10}")
    for name in ("min", "median", "p90", "max"):
        print(f"{name:8}{result[name + '_s']:>10.4f}")
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(f"median {verdict} the target of {TARGET_S} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
