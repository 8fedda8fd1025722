"""Fan-out of the media edge: one ~2 Mbit/s stream relayed to many HTTP-FLV viewers on loopback.

SPEC 13 / issue 13: 50 concurrent HTTP-FLV viewers of one 2 Mbit/s stream for 30 s, none more than
2 s behind, and a stalled viewer dropped without hurting the others. The edge runs in a child
process (MediaEdge + uvicorn, as the AppServer serves it), so its CPU time is its own; ffmpeg
publishes the test pattern to it; this process plays the viewers.

Lag: every video tag's arrival time minus its FLV timestamp, relative to the smallest such value
any viewer ever saw (the fastest path from the publisher; a publisher falling behind real time on a
loaded machine counts too). A viewer's lag is its worst after its first 3 s (the GOP cache starts
every viewer up to one GOP, 2 s, in the past on purpose). Fan-out lag: how much later a viewer got a
tag than the first viewer that got it (the edge's own share).
CPU: the edge's process CPU time while the viewers watch, minus its time with the publisher alone,
per viewer and per second (% of one core).

    python benchmarks/edge_fanout.py                  # 50 viewers, 30 s
    python benchmarks/edge_fanout.py --quick          # 3 viewers, a few seconds (a smoke run)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from livekit_demo.edge.pusher import TestPattern
from livekit_demo.signing import sign_url

PUSH_KEY, PULL_KEY = "bench-push", "bench-pull"
LAG_TARGET_S = 2.0
WARMUP_S = 3.0


# -- the edge, in a child process ----------------------------------------------------------------


def serve(queue_bytes: int) -> None:
    """Run a MediaEdge and its HTTP app; print the ports; answer `stats` lines on stdin until EOF."""
    import uvicorn

    from livekit_demo.edge import MediaEdge

    async def main() -> None:
        edge = MediaEdge(push_auth_key=PUSH_KEY, pull_auth_key=PULL_KEY, rtmp_port=0, max_viewers=1000, viewer_queue_bytes=queue_bytes)
        await edge.start()
        server = uvicorn.Server(uvicorn.Config(edge.http_app, host="127.0.0.1", port=0, lifespan="off", log_level="critical"))
        serving = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(json.dumps({"rtmp": edge.rtmp_port, "http": port}), flush=True)
        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "stats":
            print(json.dumps({"cpu": time.process_time(), "viewers": edge.viewers("bench")}), flush=True)
        await edge.stop()  # first: it ends the live responses uvicorn would wait for
        server.should_exit = True
        await serving

    asyncio.run(main())


class EdgeProcess:
    """The child process serving the edge."""

    def __init__(self, queue_bytes: int) -> None:
        command = [sys.executable, os.path.abspath(__file__), "--serve", "--queue-bytes", str(queue_bytes)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        ports = json.loads(self.process.stdout.readline())
        self.rtmp_port, self.http_port = ports["rtmp"], ports["http"]

    def stats(self) -> dict[str, Any]:
        """The edge's CPU seconds so far and its viewers of the stream."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        """Let the edge stop cleanly (killed after 10 s)."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


# -- the viewers ---------------------------------------------------------------------------------


@dataclass
class ViewerStats:
    """What one HTTP-FLV viewer saw."""

    started: float = 0.0
    bytes: int = 0
    arrivals: list[tuple[float, float]] = field(default_factory=list)  # (arrival, tag timestamp), video tags
    watched_to_the_end: bool = False  # False: the edge closed the connection before the run ended


class FlvViewer(asyncio.Protocol):
    """An HTTP/1.0 FLV viewer that parses tag headers and skips payloads (cheap enough for 50 in one process)."""

    def __init__(self, stats: ViewerStats) -> None:
        self.stats = stats
        self.header_done = False
        self.pending = bytearray()  # the answer's head, until it is whole
        self.chunked = False
        self.chunk_left = 0  # bytes of the current chunk still to come
        self.size_line = bytearray()  # a chunk's size line, until it is whole
        self.tag = bytearray()  # a tag header, until it is whole
        self.skip = 13  # the FLV header and PreviousTagSize0
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.stats.bytes += len(data)
        view = memoryview(data)
        if not self.header_done:
            self.pending += data
            end = self.pending.find(b"\r\n\r\n")
            if end < 0:
                return
            self.header_done = True
            # uvicorn on httptools answers even an HTTP/1.0 request with a chunked body; on h11 it does not
            self.chunked = b"transfer-encoding: chunked" in bytes(self.pending[:end]).lower()
            view = memoryview(bytes(self.pending[end + 4 :]))
            self.pending.clear()
        if not self.chunked:
            self._feed(view, now)
            return
        while view:  # chunked: "<hex size>\r\n<data>\r\n" over and over
            if self.chunk_left:
                step = min(self.chunk_left, len(view))
                self._feed(view[:step], now)
                self.chunk_left -= step
                view = view[step:]
                continue
            self.size_line += view[:1]
            view = view[1:]
            if self.size_line.endswith(b"\r\n"):
                line = bytes(self.size_line).strip()
                self.size_line.clear()
                if line:  # the CRLF after a chunk's data leaves an empty line
                    self.chunk_left = int(line.split(b";")[0], 16)

    def _feed(self, view: memoryview, now: float) -> None:
        """Parse FLV tag headers out of the body bytes, skipping payloads."""
        while view:
            if self.skip:
                step = min(self.skip, len(view))
                self.skip -= step
                view = view[step:]
                continue
            need = 11 - len(self.tag)
            self.tag += view[:need]
            view = view[need:]
            if len(self.tag) < 11:
                return
            tag = self.tag
            size = int.from_bytes(tag[1:4], "big")
            if tag[0] == 9:
                timestamp = (int.from_bytes(tag[4:7], "big") | (tag[7] << 24)) / 1000
                self.stats.arrivals.append((now, timestamp))
            self.skip = size + 4
            self.tag = bytearray()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def watch(port: int, path: str, stats: ViewerStats, until: float) -> None:
    """One viewer from now until `until` (monotonic seconds)."""
    loop = asyncio.get_running_loop()
    stats.started = time.monotonic()
    transport, protocol = await loop.create_connection(lambda: FlvViewer(stats), "127.0.0.1", port)
    transport.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    try:
        await asyncio.wait_for(asyncio.shield(protocol.closed), max(0.0, until - time.monotonic()))
    except asyncio.TimeoutError:
        stats.watched_to_the_end = True
    finally:
        transport.close()


def stalled_viewer(port: int, path: str) -> socket.socket:
    """A viewer that asks and then never reads (a tiny receive buffer, so the edge notices soon)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


# -- the run -------------------------------------------------------------------------------------


def run(viewers: int, seconds: float, bitrate: str, size: str, queue_bytes: int, baseline_s: float) -> dict[str, Any]:
    """Publish, measure the edge alone, then with `viewers` viewers and one stalled one; the figures."""
    edge = EdgeProcess(queue_bytes)
    exp = int(time.time()) + 3600
    push = sign_url(f"rtmp://127.0.0.1:{edge.rtmp_port}/live/bench", PUSH_KEY, exp)
    path = sign_url("/live/bench.flv", PULL_KEY, exp)
    pusher = TestPattern(push, title="edge fan-out", video_bitrate=bitrate, size=size).start()
    stalled: socket.socket | None = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # live once an FLV pull answers 200
            try:
                with socket.create_connection(("127.0.0.1", edge.http_port), timeout=2) as probe:
                    probe.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
                    if probe.recv(16).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError(f"the stream never went live: {pusher.log_tail()}")
        time.sleep(0.5)
        before = edge.stats()
        time.sleep(baseline_s)
        alone = edge.stats()
        stalled = stalled_viewer(edge.http_port, path)
        stats = [ViewerStats() for _ in range(viewers)]

        near_end: dict[str, Any] = {}

        async def all_viewers() -> None:
            until = time.monotonic() + seconds
            watching = asyncio.gather(*(watch(edge.http_port, path, s, until) for s in stats))
            await asyncio.sleep(max(0.0, seconds - 0.5))
            # Still watching: the edge counts exactly these viewers if it dropped the stalled one.
            near_end.update(await asyncio.get_running_loop().run_in_executor(None, edge.stats))
            await watching

        start = edge.stats()
        began = time.monotonic()
        asyncio.run(all_viewers())
        elapsed = time.monotonic() - began
        end = near_end
        publisher_ok = pusher.running
    finally:
        if stalled is not None:
            stalled.close()
        pusher.stop()
        edge.close()
    return summarize(stats, viewers, elapsed, before, alone, start, end, baseline_s, publisher_ok, bitrate)


def summarize(
    stats: Sequence[ViewerStats], viewers: int, elapsed: float, before: dict, alone: dict, start: dict, end: dict,
    baseline_s: float, publisher_ok: bool, bitrate: str,
) -> dict[str, Any]:  # fmt: skip
    """The figures of one run."""
    # Behind the publisher: arrival minus tag time, against the smallest such offset seen (publisher
    # drift under load included). Fan-out: arrival minus the first arrival of the same tag at any viewer.
    reference = min((arrival - ts for s in stats for arrival, ts in s.arrivals), default=0.0)
    first_seen: dict[float, float] = {}
    for s in stats:
        for arrival, ts in s.arrivals:
            first_seen[ts] = min(arrival, first_seen.get(ts, arrival))
    lags, spreads = [], []
    for s in stats:
        steady = [(arrival, ts) for arrival, ts in s.arrivals if arrival - s.started >= WARMUP_S]
        lags.append(max(arrival - ts - reference for arrival, ts in steady) if steady else float("inf"))
        spreads.append(max(arrival - first_seen[ts] for arrival, ts in steady) if steady else float("inf"))
    base_cpu_per_s = (alone["cpu"] - before["cpu"]) / baseline_s
    cpu_per_s = (end["cpu"] - start["cpu"]) / max(0.1, elapsed - 0.5)
    per_viewer = max(0.0, cpu_per_s - base_cpu_per_s) / viewers
    received = [s.bytes * 8 / 1e6 / elapsed for s in stats]
    finite = [lag for lag in lags if lag != float("inf")]
    return {
        "viewers": viewers,
        "seconds": round(elapsed, 1),
        "bitrate_setting": bitrate,
        "received_mbit_s_median": round(statistics.median(received), 2),
        "lag_max_s": round(max(lags), 3) if finite else None,
        "lag_median_s": round(statistics.median(finite), 3) if finite else None,
        "viewers_over_target": sum(1 for lag in lags if lag > LAG_TARGET_S),
        "fanout_lag_max_s": round(max(spreads), 3) if finite else None,
        "lag_target_s": LAG_TARGET_S,
        "viewers_cut_early": sum(1 for s in stats if not s.watched_to_the_end),
        "stalled_viewer_dropped": end["viewers"] == viewers,
        "publisher_kept_running": publisher_ok,
        "edge_cpu_publisher_only_pct": round(base_cpu_per_s * 100, 2),
        "edge_cpu_with_viewers_pct": round(cpu_per_s * 100, 2),
        "edge_cpu_per_viewer_pct": round(per_viewer * 100, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print a table (and write JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--bitrate", default="2000k", help="the test pattern's video bitrate")
    parser.add_argument("--size", default="640x360", help="small: the encoder, not the edge, must keep real time on a busy machine")
    parser.add_argument("--queue-bytes", type=int, default=2 * 1024 * 1024, help="the edge's per-viewer queue bound")
    parser.add_argument("--quick", action="store_true", help="3 viewers, 5 s: a smoke run")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.queue_bytes)
        return 0
    baseline = 3.0
    if args.quick:
        args.viewers, args.seconds, args.size, args.bitrate, args.queue_bytes, baseline = 3, 5.0, "320x180", "500k", 128 * 1024, 1.0
    result = run(args.viewers, args.seconds, args.bitrate, args.size, args.queue_bytes, baseline)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
