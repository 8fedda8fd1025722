"""The processes the throughput benchmark measures, started on a chosen HTTP stack.

    python benchmarks/_servers.py bare                  # a bare Starlette JSON endpoint
    python benchmarks/_servers.py --no-fast bare        # the same on h11 + asyncio, even if httptools/uvloop are installed
    python benchmarks/_servers.py --no-fast serve ...   # `livekit-demo serve ...` on h11 + asyncio

`bare` binds a loopback socket on a free port with `livekit_demo.serving.bind_socket` (as `serve`
does: IPPROTO_TCP, so asyncio sets TCP_NODELAY on every connection), prints one JSON line with the
port and serves with `serving.uvicorn_options` (what `serve` runs with) until SIGTERM.

`serve ARGS` runs the `livekit-demo` command itself (`livekit_demo.cli.main`, what the console
script calls). It exists only for `--no-fast`: the benchmark starts `python -m livekit_demo serve`
directly whenever it does not need to hide the fast stack.

`--no-fast` makes `import httptools` and `import uvloop` fail in this process before uvicorn looks
for them, which is exactly the situation of a user without the `fast` extra: uvicorn's "auto"
then picks h11 and asyncio.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["FAST_MODULES", "bare_app", "main"]

FAST_MODULES = ("httptools", "uvloop")
"""What the `fast` extra adds; uvicorn's "auto" uses them when they import."""


def bare_app() -> Any:
    """A Starlette app whose every POST path answers one small JSON object without reading the body."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"code": 200, "message": "ok"})

    return Starlette(routes=[Route("/{path:path}", hello, methods=["POST"])])


def hide_fast_stack() -> None:
    """Make the fast stack's imports fail in this process (a None entry in sys.modules does that)."""
    for name in FAST_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]


def run_bare() -> int:
    import uvicorn

    from livekit_demo.serving import bind_socket, uvicorn_options
    from livekit_demo.settings import Settings

    sock = bind_socket("127.0.0.1", 0)
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    options = uvicorn_options(Settings.build(env={}))
    uvicorn.Server(uvicorn.Config(bare_app(), **options)).run(sockets=[sock])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--no-fast"]:
        hide_fast_stack()
        args = args[1:]
    if args == ["bare"]:
        return run_bare()
    if args[:1] == ["serve"]:
        from livekit_demo.cli import main as livekit_demo

        return livekit_demo(args)
    print("usage: _servers.py [--no-fast] bare | serve ARGS...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
