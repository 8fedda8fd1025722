"""A small HTTP/1.1 load generator for loopback, used when wrk is not installed.

    python benchmarks/_loadgen.py SPEC_JSON

SPEC_JSON is an object: ``host``, ``port``, ``path``, ``body`` (text), ``headers`` (object),
``connections``, ``duration`` (seconds), optionally ``cpu`` (run pinned to that CPU). Each connection is kept alive and sends the same POST as
soon as the previous answer is complete (closed loop, like wrk). It prints one JSON line:
``{"requests": n, "errors": non-2xx answers or broken connections, "seconds": measured time}``.

It is written against asyncio's Protocol API with the request pre-encoded, because the load
generator must not become the bottleneck before the server does; it is still slower than wrk, so
a bare endpoint's figure may be capped by it (the table says which generator ran).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["encode_request", "main", "run_load"]


def encode_request(host: str, port: int, path: str, body: str, headers: dict[str, str]) -> bytes:
    """The request's bytes, once: every send reuses them."""
    data = body.encode("utf-8")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(data)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends the next request when an answer is complete."""

    def __init__(self, request: bytes, deadline: float, done: asyncio.Future[None]) -> None:
        self.request = request
        self.deadline = deadline
        self.done = done
        self.buffer = b""
        self.requests = 0
        self.errors = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                    break
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            status = head[9:12]
            self.requests += 1
            if not status.startswith(b"2"):
                self.errors += 1
            self.buffer = self.buffer[end:]
            if time.perf_counter() >= self.deadline:
                self._finish()
                return
            assert self.transport is not None
            self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.errors += 1  # the server hung up before the deadline
            self.done.set_result(None)

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
        if self.transport is not None:
            self.transport.close()


async def _drive(spec: dict[str, Any]) -> dict[str, float | int]:
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {int(spec["cpu"])})  # off the server's CPU
    loop = asyncio.get_running_loop()
    host, port = spec["host"], int(spec["port"])
    request = encode_request(host, port, spec["path"], spec["body"], spec["headers"])
    began = time.perf_counter()
    deadline = began + float(spec["duration"])
    connections: list[_Connection] = []
    waits: list[asyncio.Future[None]] = []
    for _ in range(int(spec["connections"])):
        done: asyncio.Future[None] = loop.create_future()
        protocol = _Connection(request, deadline, done)
        await loop.create_connection(lambda p=protocol: p, host, port)  # type: ignore[misc]
        connections.append(protocol)
        waits.append(done)
    # Bounded in time: a connection that never answers does not keep us past the deadline + 5 s.
    await asyncio.wait(waits, timeout=float(spec["duration"]) + 5)
    elapsed = time.perf_counter() - began
    for protocol in connections:
        protocol._finish()
    return {
        "requests": sum(c.requests for c in connections),
        "errors": sum(c.errors for c in connections),
        "seconds": elapsed,
    }


def run_load(spec: dict[str, Any]) -> dict[str, float | int]:
    """Drive the server as `spec` says, in this process; the counts and the time taken."""
    return asyncio.run(_drive(spec))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: _loadgen.py SPEC_JSON", file=sys.stderr)
        return 2
    print(json.dumps(run_load(json.loads(args[0]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
