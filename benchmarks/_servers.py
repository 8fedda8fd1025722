"""The two servers the throughput benchmark compares, each run in its own process.

    python benchmarks/_servers.py bare   # a bare Starlette endpoint answering a small JSON object
    python benchmarks/_servers.py app    # our AppServer on memory storage, with a stored room

Both bind a loopback socket on a free port, print one JSON line (the port, and for `app` a valid
token and the stored room's id) and then serve with the same uvicorn settings (`UVICORN_SETTINGS`)
until SIGTERM. The parent reads that line, so no port is guessed and nothing races for one.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

__all__ = ["UVICORN_SETTINGS", "bare_app", "main", "our_app"]

UVICORN_SETTINGS: dict[str, Any] = {
    # One worker, no access log, warnings only: what `livekit-demo serve` runs with.
    "workers": 1,
    "access_log": False,
    "log_level": "warning",
    "lifespan": "on",
}
"""The uvicorn settings both servers get, so only the app differs."""

BENCH_USER = "bench"
LIST_ROOMS = 100  # rooms stored before serving, so a list page of 10 is full


def bare_app() -> Any:
    """A Starlette app whose every POST path answers one small JSON object without reading the body."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"code": 200, "message": "ok"})

    return Starlette(routes=[Route("/{path:path}", hello, methods=["POST"])])


def our_app() -> tuple[Any, dict[str, str]]:
    """Our app on memory storage with `LIST_ROOMS` rooms of `BENCH_USER`; and a token and a room id."""
    from livekit_demo.api import create_app
    from livekit_demo.app_server import AppServer

    server = AppServer.from_settings(env={}, storage="memory")
    actor = server.auth.identity(BENCH_USER)
    room_id = ""
    for number in range(LIST_ROOMS):
        room_id = server.rooms.create(actor, {"title": f"room {number}", "anchor": BENCH_USER})["id"]
    token, _ = server.auth.issue(BENCH_USER)
    return create_app(server), {"token": token, "room": room_id, "user": BENCH_USER}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in (["bare"], ["app"]):
        print("usage: _servers.py bare|app", file=sys.stderr)
        return 2
    app, extra = (bare_app(), {}) if args[0] == "bare" else our_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(json.dumps({"port": sock.getsockname()[1], **extra}), flush=True)
    config = uvicorn.Config(app, **UVICORN_SETTINGS)
    # uvicorn listens on the socket we bound (it calls listen itself).
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
