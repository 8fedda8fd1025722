"""The AppServer in a background thread, for notebooks: start, wait until it answers, stop, restart.

    >>> import livekit_demo
    >>> server = livekit_demo.start_server(storage="memory")   # doctest: +SKIP
    >>> server.url                                              # doctest: +SKIP
    'http://127.0.0.1:53127'
    >>> server.stop()                                           # doctest: +SKIP

**The second-call rule.** Re-running a notebook cell must not pile up servers. Every server that
`start_server` starts is tracked in this module; a new `start_server()` first stops every server
still running from earlier calls, unless it is given ``keep=True`` (to run several side by side).
`stop_all()` stops them all, `current_server()` is the most recent one still running (what
`livekit_demo.connect()` talks to by default), and `running_servers()` lists them.

The server writes nothing into cells: uvicorn gets no logging config of its own, no access log,
and its records are passed to the ``livekit_demo.server`` logger, which is quiet unless the
notebook configures logging (``logging.basicConfig(level="INFO")`` shows them).
"""

from __future__ import annotations

import asyncio
import html
import http.client
import logging
import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._platform import threads_available
from .clock import Clock
from .exceptions import SettingsError
from .serving import DEMO_RULE_WARNING, base_urls, bind_socket, import_uvicorn, is_loopback
from .settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from .app_server import AppServer
    from .live_edge import LiveEdge
    from .rooms import StreamEvent

__all__ = ["ServerHandle", "start_server", "stop_all", "current_server", "running_servers", "was_stopped", "threads_available"]

log = logging.getLogger("livekit_demo.server")

LOOPBACK = "127.0.0.1"
_WILDCARDS = ("0.0.0.0", "::", "")
START_TIMEOUT = 10.0
"""Seconds `start_server` waits for the first answer before giving up."""
_POLL = 0.005  # seconds between readiness checks: short, since a start takes some 50 ms

_registry_lock = threading.Lock()
_running: list[ServerHandle] = []  # oldest first; the last one is `current_server()`
_stopped_urls: set[str] = set()  # where a server of ours served and no longer does: for clear client errors



class _ForwardToOurLogger(logging.Handler):
    """Hands uvicorn's records to ``livekit_demo.server``, and remembers each thread's errors.

    uvicorn logs through module-level loggers, so this is installed once per process; the errors
    of a server thread are how `start_server` tells *why* a server died while starting.
    """

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[int, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR and record.thread is not None:
            kept = self.errors.setdefault(record.thread, [])
            kept.append(record.getMessage())
            del kept[:-5]  # a long-running server must not grow this: the cause is among the last few
        if log.isEnabledFor(record.levelno):
            log.handle(record)


_forwarder = _ForwardToOurLogger()


def _route_uvicorn_logs() -> None:
    uvicorn_log = logging.getLogger("uvicorn")
    if _forwarder not in uvicorn_log.handlers:
        uvicorn_log.addHandler(_forwarder)
        # Without this, records also reach the root logger, and with no handler configured there
        # Python's last-resort handler prints warnings to stderr: into the notebook cell.
        uvicorn_log.propagate = False
    package_log = logging.getLogger("livekit_demo")
    if not any(isinstance(h, logging.NullHandler) for h in package_log.handlers):
        # Same reason for our own records (a 500's traceback): quiet until logging is configured.
        package_log.addHandler(logging.NullHandler())


class ServerHandle:
    """A running (or stopped) AppServer in a daemon thread of this process.

    Made by `start_server`. `url` is the base URL to give a client; `app_server` is the
    `AppServer` itself (its settings, store, clock) for teaching and tests; `edge` the running
    local media edge (`LiveEdge`) when started with ``edge=True``, else None.
    """

    def __init__(self, settings: Settings, *, clock: Clock | None = None, timeout: float = START_TIMEOUT) -> None:
        self.settings = settings
        self.clock = clock
        self.timeout = timeout
        self.host = settings.server.host
        self.port = settings.server.port
        self.app_server: AppServer | None = None
        self.edge: LiveEdge | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """The base URL for this machine's clients, e.g. ``http://127.0.0.1:53127`` (no trailing slash)."""
        host = LOOPBACK if self.host in _WILDCARDS else self.host
        return f"http://{host}:{self.port}"

    @property
    def lan_urls(self) -> list[str]:
        """The base URLs phones on the network enter (LAN mode, ``host="0.0.0.0"``); empty on loopback."""
        if is_loopback(self.host):
            return []
        return base_urls(self.host, self.port)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ServerHandle:
        """Bind, start the thread and return once the server answers ``GET /``; raise the real cause if not."""
        if self.running:
            return self
        uvicorn = import_uvicorn()

        from .api import create_app
        from .app_server import AppServer

        _route_uvicorn_logs()
        # The store opens here, in the caller's thread: a bad database fails the call, not the thread.
        app_server = AppServer(self.settings, clock=self.clock)
        try:
            # Binding ourselves (port 0 = any free port) means no find-a-port-then-bind race, and a
            # taken port is an OSError naming host:port, raised here.
            sock = bind_socket(self.host, self.port)
        except BaseException:
            app_server.close()
            raise
        self.port = sock.getsockname()[1]
        with _registry_lock:
            _stopped_urls.discard(self.url)
        self.settings = self.settings.replace(server={"host": self.host, "port": self.port})
        self.app_server = app_server
        self.edge = None
        if self.settings.edge.enabled:
            from .live_edge import LiveEdge

            try:
                self.edge = LiveEdge(app_server, bind_host=self.host, http_port=self.port)
            except BaseException:
                sock.close()
                app_server.close()
                raise
        config = uvicorn.Config(
            create_app(app_server, edge=self.edge),
            log_config=None,  # never touch the notebook's logging
            access_log=False,
            log_level=self.settings.server.log_level,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self._uvicorn = uvicorn.Server(config)
        self._failure = None
        self._thread = threading.Thread(
            target=self._serve, args=(self._uvicorn, sock), name=f"livekit_demo-server-{self.port}", daemon=True
        )
        self._thread.start()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        # uvicorn installs no signal handlers outside the main thread; its startup failures end in
        # sys.exit, which a thread would swallow silently: keep it, so start() can tell why.
        try:
            server.run(sockets=[sock])
        except BaseException as exc:
            self._failure = exc
        finally:
            sock.close()

    def _wait_until_ready(self) -> None:
        assert self._thread is not None and self._uvicorn is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise self._death_cause()
            if self._uvicorn.started and self._answers():
                return
            time.sleep(_POLL)
        raise TimeoutError(f"the AppServer on {self.url} did not answer within {self.timeout:g} s")

    def _death_cause(self) -> BaseException:
        assert self._thread is not None
        failure = self._failure
        if failure is not None and not isinstance(failure, SystemExit):
            return failure
        errors = _forwarder.errors.pop(self._thread.ident or 0, None)
        cause = f": {'; '.join(errors)}" if errors else " (see the 'livekit_demo.server' log)"
        return RuntimeError(f"the AppServer on {self.url} stopped while starting{cause}")

    def _answers(self) -> bool:
        """A real request, so 'ready' means the whole app answers, not only that uvicorn is listening."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=1)
        try:
            connection.request("GET", "/")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, wait for the thread to end and free the port. Stopping twice is harmless."""
        self._unregister()
        server, thread = self._uvicorn, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                # Open connections hold the graceful shutdown: stop waiting for them.
                assert server is not None
                server.force_exit = True
                thread.join(timeout)
            _forwarder.errors.pop(thread.ident or 0, None)
            _join_finished_workers(timeout)
        if self.app_server is not None:
            # The app's lifespan closes the store on a clean shutdown; a failed start skips it.
            self.app_server.close()
        self._uvicorn = None
        self._thread = None

    def _unregister(self) -> None:
        """Leave the list of `running_servers()` (the first step of every stop); clients then hear "was stopped"."""
        with _registry_lock:
            if self in _running:
                _running.remove(self)
            _stopped_urls.add(self.url)

    def reset(self) -> int:
        """Clear every room (a new class, the same server): logged-in users stay logged in. How many rooms went."""
        if self.app_server is None or not self.running:
            raise RuntimeError(f"the server at {self.url} is not running; run start_server() again")
        return self.app_server.reset()

    def restart(self) -> ServerHandle:
        """Stop and start again on the same port, like restarting the server process.

        The store is reopened: TinyDB data survives, memory storage starts empty, as it would.
        """
        self.stop()
        self.start()
        with _registry_lock:
            _running.append(self)
        return self

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def events(self) -> list[StreamEvent]:
        """The last push-callback events the server accepted (at most 100), oldest first."""
        return self.app_server.rooms.events if self.app_server is not None else []

    @property
    def rtmp_url(self) -> str | None:
        """Where OBS or ffmpeg push (``rtmp://127.0.0.1:PORT/live``; add ``/<room id>?auth_key=...``), or None without an edge."""
        if self.edge is None or not self.running:
            return None
        return f"rtmp://{self.host}:{self.edge.rtmp_port}/{self.edge.app_name}"

    @property
    def storage(self) -> str:
        """The storage type, with the file for TinyDB (database URLs are not shown: they may hold a password)."""
        kind = self.settings.storage.type
        return f"tinydb ({self.settings.storage.url})" if kind == "tinydb" else kind

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        edge = f" edge={self.rtmp_url}" if self.rtmp_url else ""
        return f"<ServerHandle {self.url} storage={self.settings.storage.type}{edge} {state}>"

    def _repr_html_(self) -> str:
        state = "running" if self.running else "stopped"
        color = "#1a7f37" if self.running else "#888"
        url = html.escape(self.url)
        # An in-process URL is no link: only this process's clients can reach it, not a browser.
        linkable = self.running and self.url.startswith("http")
        link = f"<a href='{url}/' target='_blank'>{url}</a>" if linkable else f"<code>{url}</code>"
        lan = ""
        if self.lan_urls and self.running:
            from .qr import qr_code

            shown = "<br>".join(f"<code>{html.escape(u)}</code>" for u in self.lan_urls)
            lan = (
                f"<tr><th style='text-align:left'>LAN</th><td style='text-align:left'>{shown}<br>"
                f"{qr_code(self.lan_urls[0]).svg()}<br><small>{html.escape(DEMO_RULE_WARNING)}</small></td></tr>"
            )
        return (
            "<table><caption style='text-align:left'><b>livekit_demo AppServer</b></caption>"
            f"<tr><th style='text-align:left'>url</th><td style='text-align:left'>{link}</td></tr>{lan}"
            f"<tr><th style='text-align:left'>storage</th><td style='text-align:left'>{html.escape(self.storage)}</td></tr>"
            f"<tr><th style='text-align:left'>status</th><td style='text-align:left;color:{color}'>{state}</td></tr>"
            + (f"<tr><th style='text-align:left'>RTMP ingest</th><td style='text-align:left'><code>{html.escape(self.rtmp_url)}</code></td></tr>" if self.rtmp_url else "")
            + "</table>"
        )


def _join_finished_workers(timeout: float) -> None:
    """Wait for the worker threads of event loops that have ended.

    Starlette runs our blocking handlers in AnyIO worker threads; when the server's loop ends they
    are told to stop but end a moment later. Waiting for them is what lets `stop()` promise that
    no thread of the server is left.
    """
    for thread in threading.enumerate():
        loop = getattr(thread, "loop", None)
        if thread.name == "AnyIO worker thread" and isinstance(loop, asyncio.AbstractEventLoop) and loop.is_closed():
            thread.join(timeout)


def start_server(
    config_file: str | None = None,
    *,
    port: int = 0,
    keep: bool = False,
    clock: Clock | None = None,
    timeout: float = START_TIMEOUT,
    env: Any = None,
    edge: bool | dict[str, Any] | None = None,
    inprocess: bool | None = None,
    host: str = LOOPBACK,
    **settings: Any,
) -> ServerHandle:
    """Start the AppServer in a daemon thread on 127.0.0.1 and return once it answers.

    `inprocess` true gives an `InProcessServer` instead: no thread, no socket, ``url``
    ``inprocess://<name>``, reached by this process's clients only (see `livekit_demo.inprocess`).
    None (the default) means in-process exactly where threads are unavailable (Pyodide, JupyterLite).

    `settings` are `Settings.build`'s keyword arguments (``storage="memory"``,
    ``auth={"token_ttl": 60}``...), over `config_file` and the environment (`env`, default
    ``os.environ``). The default storage is what settings say: TinyDB ``livekit_demo.json`` in the
    current directory. `port` 0 takes any free port. Earlier servers of this process are stopped
    first unless `keep` is true (see the module docstring). `clock` replaces the system clock
    (tests: a `FixedClock`). `edge=True` also runs the local media edge (SPEC 13) on the server's
    loop, its RTMP listener on any free port (see `ServerHandle.rtmp_url`); ``edge={...}`` gives
    `edge` settings (``{"rtmp_port": 1935}`` for OBS's default port).
    `host` ``"0.0.0.0"`` is LAN mode for a class: phones on the network
    reach the server at `ServerHandle.lan_urls` (printed with the demo-rule warning, and shown with
    a QR code by the handle and the control panel).

        >>> server = start_server(storage="memory")          # doctest: +SKIP
        >>> server                                           # doctest: +SKIP
        <ServerHandle http://127.0.0.1:53127 storage=memory running>
        >>> with start_server(storage="memory", keep=True) as other:   # doctest: +SKIP
        ...     print(other.url)

    Raises `SettingsError` for a bad setting (before any thread starts), `OSError` naming host:port
    when the port is taken, `TimeoutError` when the server does not answer within `timeout` seconds,
    and the server's own error when it dies while starting.
    """
    if isinstance(edge, bool):
        # Like the HTTP port, a notebook's RTMP port is any free one: a second kernel must not collide.
        settings["edge"] = {"enabled": True, "rtmp_port": 0} if edge else {"enabled": False}
    elif edge is not None:
        settings["edge"] = {"enabled": True, **edge}
    built = Settings.build(config_file, env=env, **settings)
    # Loopback unless asked (LAN mode); settings' host and port are the `serve` command's.
    built = built.replace(server={"host": host, "port": port})
    if not keep:
        stop_all()
    if inprocess is None:
        inprocess = not threads_available()
    handle: ServerHandle
    if inprocess and built.edge.enabled:
        raise SettingsError("edge.enabled", "the local media edge needs sockets and threads, which an in-process server has not")
    if inprocess:
        from .inprocess import InProcessServer

        handle = InProcessServer(built, clock=clock).start()
    else:
        handle = ServerHandle(built, clock=clock, timeout=timeout).start()
        for url in handle.lan_urls:
            print(f"LAN: phones on this network enter {url}")
        if handle.lan_urls and built.auth.demo_login:
            print(f"warning: {DEMO_RULE_WARNING}")
    with _registry_lock:
        _running.append(handle)
    return handle


def stop_all() -> None:
    """Stop every server that `start_server` started in this process."""
    with _registry_lock:
        handles = list(_running)
    for handle in reversed(handles):
        handle.stop()


def current_server() -> ServerHandle | None:
    """The most recently started server that is still running, or None."""
    with _registry_lock:
        for handle in reversed(_running):
            if handle.running:
                return handle
    return None


def running_servers() -> list[ServerHandle]:
    """The servers `start_server` started that are still tracked, oldest first."""
    with _registry_lock:
        return list(_running)


def was_stopped(url: str) -> bool:
    """Whether a server that `start_server` started served at `url` and has been stopped since."""
    with _registry_lock:
        return url.rstrip("/") in _stopped_urls
