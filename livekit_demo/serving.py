"""Serving the AppServer standalone: one process, or several sharing one SQL database.

We bind the listening socket ourselves, so the real port is known (also for `--port 0`) before
the base URL is printed, and N worker processes can share it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import sys
from typing import Any, TextIO

from .exceptions import LivekitDemoError, SettingsError
from .settings import Settings
from .storage._dsn import safe_url

__all__ = [
    "serve",
    "import_uvicorn",
    "uvicorn_options",
    "bind_socket",
    "base_urls",
    "is_loopback",
    "local_addresses",
    "app_factory",
    "check_workers",
    "connection_limit",
    "configure_request_log",
]

_SETTINGS_ENV = "LIVEKIT_DEMO__WORKER_SETTINGS"  # settings handed to worker processes
_SINGLE_PROCESS_STORES = ("tinydb", "memory", "none")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (what a phone on the same network could reach)."""
    found: set[str] = set()
    try:
        import fcntl
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            for _, name in socket.if_nameindex():
                try:
                    packed = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
                except OSError:
                    continue  # interface without an IPv4 address
                found.add(socket.inet_ntoa(packed[20:24]))
    except (ImportError, OSError):
        try:
            found.update(str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
        except OSError:
            pass
    return sorted(a for a in found if not ipaddress.ip_address(a).is_loopback)


def base_urls(host: str, port: int) -> list[str]:
    """The base URLs to enter in a client (no trailing slash); one per address for a wildcard host.

    No trailing slash: the web, uni-app and iOS clients build ``base + "/api/..."``, so a pasted
    ``.../`` would make every call ``//api/...``.
    """
    if host in ("0.0.0.0", "::", ""):
        addresses = local_addresses() or ["127.0.0.1"]
        return [f"http://{a}:{port}" for a in addresses]
    shown = f"[{host}]" if ":" in host else host
    return [f"http://{shown}:{port}"]


DEMO_RULE_WARNING = (
    "the demo login rule is on: anyone who can reach this port can log in as any unconfigured username "
    "(set auth.demo_login to false and configure auth.users to stop that)"
)


def check_workers(settings: Settings) -> None:
    """Several processes need a shared database: refuse them on a file or in memory (or with the edge)."""
    if settings.server.workers > 1 and settings.edge.enabled:
        raise SettingsError(
            "server.workers", "the local media edge runs in one process: use 1 worker with --edge (edge.enabled)"
        )
    if settings.server.workers > 1 and settings.storage.type in _SINGLE_PROCESS_STORES:
        raise SettingsError(
            "server.workers",
            f"{settings.server.workers} worker processes need a SQL database (mysql, postgresql or sqlite storage); "
            f"{settings.storage.type} storage belongs to one process",
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0: any free port); an OSError naming host:port if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY only when proto says TCP
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # Listen at once: the URL is printed before uvicorn starts, and a client that connects right
    # away must wait in the backlog, not be refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn settings `serve` runs with (the throughput benchmark gives its bare server the same).

    `loop` stays uvicorn's "auto": uvloop when installed (the `fast` extra), else asyncio; `http` is
    uvicorn's own choice (httptools when installed, else h11) with our connection guard on top.
    """
    from .connection_guard import PROTOCOL

    return {
        "log_level": settings.server.log_level,
        # uvicorn's access log would write ?token=... query strings; our api logs requests without them
        "access_log": False,
        "lifespan": "on",
        # Connection hygiene (see connection_guard): a deadline for whole requests, idle connections
        # closed to make room, and a bound on requests in flight (more get 503).
        "http": PROTOCOL,
        "limit_concurrency": connection_limit(settings.server.max_connections) + 16,
        "timeout_keep_alive": settings.server.keep_alive,
    }


def app_factory() -> Any:
    """Build the app in a worker process from the settings the parent handed over."""
    from .api import create_app
    from .app_server import AppServer

    data = json.loads(os.environ[_SETTINGS_ENV])
    settings = Settings.build(env={}, **data)
    _guard_connections(settings)
    configure_request_log(settings.server.log_level)
    from .connection_guard import guard_app

    return guard_app(create_app(AppServer(settings)))


def connection_limit(wanted: int) -> int:
    """`wanted` connections, or fewer so that they fit the open-file limit with room to spare."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - not on Unix
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    # Files, the database's connections, the log: keep a share of descriptors for them.
    return max(16, min(wanted, soft - max(64, soft // 8)))


def _guard_connections(settings: Settings) -> None:
    from .connection_guard import configure

    configure(read_timeout=settings.server.read_timeout, max_connections=connection_limit(settings.server.max_connections))


def configure_request_log(level: str, stream: TextIO | None = None) -> logging.Handler:
    """Show the request log (one line per call) on `stream` (default stderr): see `request_log.configure`."""
    from .request_log import configure

    return configure(level, stream)


def import_uvicorn() -> Any:
    """The uvicorn module, or a `LivekitDemoError` saying how to get it (a browser tab has none, and no sockets)."""
    try:
        import uvicorn
    except ImportError:
        raise LivekitDemoError(
            "serving over HTTP needs uvicorn (pip install uvicorn); without it, e.g. in a browser tab, "
            "livekit_demo.start_server(inprocess=True) serves in-process"
        ) from None
    return uvicorn


def serve(settings: Settings, *, out: TextIO = sys.stdout) -> None:
    """Run until interrupted; print the base URL(s) first."""
    uvicorn = import_uvicorn()

    from .api import create_app
    from .app_server import AppServer

    check_workers(settings)
    host, workers = settings.server.host, settings.server.workers
    if settings.auth.demo_login and not is_loopback(host):
        print(f"warning: listening on {host}: {DEMO_RULE_WARNING}", file=out)
    sock = bind_socket(host, settings.server.port)
    port = sock.getsockname()[1]
    from .connection_guard import guard_app

    _guard_connections(settings)
    config_args = uvicorn_options(settings)
    configure_request_log(settings.server.log_level, out if out is not sys.stdout else None)
    if workers == 1:
        # Open the store before announcing the URL, so a bad database is an error, not a dead server.
        server = AppServer(settings)
        edge = None
        if settings.edge.enabled:
            from .live_edge import LiveEdge

            if settings.edge.rtmp_port:
                # The edge binds in the app's lifespan, after the banner: a taken RTMP port (another
                # server, OBS's own) is one line naming host:port here instead of a failed startup there.
                try:
                    bind_socket(host, settings.edge.rtmp_port).close()
                except OSError:
                    server.close()
                    sock.close()
                    raise

            def announce(line: str) -> None:
                print(line, file=out, flush=True)

            edge = LiveEdge(server, bind_host=host, http_port=port, announce=announce)
        app = guard_app(create_app(server, edge=edge))
        _announce(settings, port, out)
        uvicorn.Server(uvicorn.Config(app, **config_args)).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    # Settle the shared secret and the table once, before the workers race to do it.
    AppServer(settings).close()
    os.environ[_SETTINGS_ENV] = json.dumps(settings.to_dict())
    config = uvicorn.Config("livekit_demo.serving:app_factory", factory=True, workers=workers, **config_args)
    _announce(settings, port, out)
    Multiprocess(config, sockets=[sock]).run()


def _announce(settings: Settings, port: int, out: TextIO) -> None:
    storage = settings.storage.type if settings.storage.type in ("memory", "none") else f"{settings.storage.type} ({safe_url(settings.storage.url)})"
    workers = settings.server.workers
    print(f"livekit_demo AppServer: storage {storage}, {workers} process{'es' if workers > 1 else ''}", file=out)
    urls = base_urls(settings.server.host, port)
    for url in urls:
        print(f"Enter this base URL in a client: {url}", file=out)
    if not is_loopback(settings.server.host):
        from .qr import qr_code

        # A class: phones scan this into the client's settings instead of typing an address.
        print(f"Scan it on a phone ({urls[0]}):", file=out)
        print(qr_code(urls[0]).terminal(), end="", file=out)
    out.flush()
