"""The AppServer without threads or sockets: called in-process through a synchronous httpx transport.

A browser tab running Python (JupyterLite's Pyodide kernel) has no threads and cannot listen on a
port, so uvicorn cannot serve there. It does not need to: with memory or TinyDB storage nothing in a
request ever waits for I/O, so the ASGI app's coroutine runs to its end in one ``send(None)``.
`InProcessTransport` does exactly that for each request, with a ``receive`` that hands over the body
and a ``send`` that collects the answer. Same app, same rules, same answers as over HTTP.

An in-process server has a URL of its own, ``inprocess://<name>`` (e.g. ``inprocess://appserver-1``).
It names a server of this Python process, not a host: `connect()`, the widgets and
`run_checks` see the scheme and route their requests through `transport_for(url)`; nothing else
can reach it (a browser's address bar cannot).

    >>> import livekit_demo
    >>> server = livekit_demo.start_server(storage="memory", inprocess=True)   # doctest: +SKIP
    >>> server.url                                                              # doctest: +SKIP
    'inprocess://appserver-1'
    >>> livekit_demo.connect(server).create("Morning show")["status"]          # doctest: +SKIP
    0
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from ._platform import threads_available
from .runner import ServerHandle

if TYPE_CHECKING:
    from .clock import Clock
    from .settings import Settings

__all__ = ["SCHEME", "InProcessTransport", "InProcessServer", "AppAwaitedIO", "threads_available", "transport_for", "is_inprocess_url"]

SCHEME = "inprocess"
Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class AppAwaitedIO(RuntimeError):
    """The app waited for something (a thread, a socket, a timer): it cannot be driven in one pass."""


class _Wait:
    """An awaitable that suspends the app's coroutine once, handing `_WAITING` to whoever drives it.

    Only the lifespan's ``receive`` uses it: between startup and shutdown the app legitimately waits,
    and the driver tells that pause apart from any other one (real I/O) by this marker.
    """

    def __await__(self) -> Generator[Any, None, None]:
        yield _WAITING


_WAITING = object()


def _drive(coroutine: Any) -> bool:
    """Advance `coroutine` until it ends (True) or pauses on `_Wait` (False); fail on any other pause."""
    try:
        yielded = coroutine.send(None)
    except StopIteration:
        return True
    if yielded is _WAITING:
        return False
    coroutine.close()
    raise AppAwaitedIO(
        f"the app awaited {type(yielded).__name__} (real I/O: a thread, a socket or a timer); the in-process "
        "transport runs apps that never wait, such as the AppServer with memory or TinyDB storage"
    )


class InProcessTransport(httpx.BaseTransport):
    """Runs each request through an ASGI `app` synchronously, in the calling thread, in one pass.

    `client` is the address the app sees as the caller's (this process: loopback). Exceptions the
    app raises reach the caller, as with `httpx.ASGITransport`; our app answers every error itself.
    """

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.app = app
        self.client = client
        # One request at a time, as on a server's one event loop: the app's inline handlers count on
        # that, and on CPython a widget's or an audience's thread may call while a cell does.
        self._one_at_a_time = threading.RLock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._one_at_a_time:
            return self._handle(request)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        url = request.url
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(key.lower(), value) for key, value in request.headers.raw],
            "client": self.client,
            "server": (url.host, url.port),
            "state": {},
        }
        delivered = False
        start: Message = {}
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal delivered
            if delivered:
                # The answer is written by now (nothing here waits): the client has gone.
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        if not _drive(self.app(scope, receive, send)):
            raise AppAwaitedIO("the app waited for more of the request; the in-process transport sends each body whole")
        if not start:
            raise AppAwaitedIO(f"the app ended without answering {request.method} {url.path}")
        headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
        return httpx.Response(start["status"], headers=headers, stream=httpx.ByteStream(b"".join(chunks)), request=request)


class _Lifespan:
    """The ASGI lifespan protocol, driven by hand: `startup()` runs the app up to its first pause, `shutdown()` to its end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._coroutine: Any = None
        self._sent: list[Message] = []
        self._inbox = ["lifespan.startup", "lifespan.shutdown"]

    def _run(self, expected: str) -> None:
        assert self._coroutine is not None
        ended = _drive(self._coroutine)
        reply = self._sent[-1]["type"] if self._sent else ""
        if reply.endswith(".failed"):
            raise RuntimeError(f"the AppServer's {expected.split('.')[1]} failed: {self._sent[-1].get('message', '')}")
        if ended and not reply:
            return  # an app without lifespan support: nothing to start or stop
        if reply != f"{expected}.complete":
            raise RuntimeError(f"the AppServer did not complete its {expected.split('.')[1]}")

    def startup(self) -> None:
        async def receive() -> Message:
            if len(self._inbox) == 1:
                await _Wait()  # between startup and shutdown: the server is up
            return {"type": self._inbox.pop(0)}

        async def send(message: Message) -> None:
            self._sent.append(message)

        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self._coroutine = self.app(scope, receive, send)
        self._run("lifespan.startup")

    def shutdown(self) -> None:
        if self._coroutine is not None:
            self._run("lifespan.shutdown")
            self._coroutine = None


_names = itertools.count(1)
_registry_lock = threading.Lock()
_servers: dict[str, InProcessServer] = {}  # by name, while running


class InProcessServer(ServerHandle):
    """A `ServerHandle` whose AppServer is called in-process: no thread, no socket, ``url`` ``inprocess://<name>``.

    Made by ``start_server(inprocess=True)``, and by `start_server()` wherever threads are unavailable.
    """

    def __init__(self, settings: Settings, *, clock: Clock | None = None, name: str | None = None) -> None:
        super().__init__(settings, clock=clock)
        self.name = name or f"appserver-{next(_names)}"
        self.transport: InProcessTransport | None = None
        self._lifespan: _Lifespan | None = None

    @property
    def url(self) -> str:
        """``inprocess://<name>``: reachable from this Python process only (see the module docstring)."""
        return f"{SCHEME}://{self.name}"

    @property
    def running(self) -> bool:
        return self.transport is not None

    def start(self) -> InProcessServer:
        """Open the store and run the app's startup; raises the real cause (a bad store, a taken name)."""
        if self.running:
            return self
        from .api import create_app
        from .app_server import AppServer

        with _registry_lock:
            if self.name in _servers:
                raise ValueError(f"an in-process server named {self.name!r} is already running")
        app_server = AppServer(self.settings, clock=self.clock)
        try:
            # inline: no thread pool for blocking calls (SQL, password hashes); there is no loop to stall here.
            app = create_app(app_server, inline=True)
            lifespan = _Lifespan(app)
            lifespan.startup()
        except BaseException:
            app_server.close()
            raise
        self.app_server, self._lifespan = app_server, lifespan
        self.transport = InProcessTransport(app)
        with _registry_lock:
            _servers[self.name] = self
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Run the app's shutdown (it closes the store) and forget the name. Stopping twice is harmless."""
        self._unregister()
        with _registry_lock:
            if _servers.get(self.name) is self:
                del _servers[self.name]
        lifespan, self._lifespan, self.transport = self._lifespan, None, None
        if lifespan is not None:
            try:
                lifespan.shutdown()
            finally:
                if self.app_server is not None:
                    self.app_server.close()  # closing twice is harmless; a failed shutdown must not leak the store

    def __repr__(self) -> str:
        return super().__repr__().replace("<ServerHandle", "<InProcessServer", 1)


def is_inprocess_url(url: str) -> bool:
    """True for an ``inprocess://<name>`` URL."""
    return urlsplit(url).scheme == SCHEME


def transport_for(url: str) -> httpx.BaseTransport:
    """A transport to the in-process server named in `url` (``inprocess://<name>``), looked up on each request.

    Looking up late means a client made before `restart()` keeps working after it, as a client of a
    restarted HTTP server would; a stopped server answers `httpx.ConnectError`, like a closed port.
    """
    name = urlsplit(url).hostname or ""
    return _ByName(name)


class _ByName(httpx.BaseTransport):
    def __init__(self, name: str) -> None:
        self.name = name

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with _registry_lock:
            server = _servers.get(self.name)
        transport = server.transport if server is not None else None
        if transport is None:
            raise httpx.ConnectError(f"no in-process AppServer named {self.name!r} is running in this process", request=request)
        return transport.handle_request(request)
