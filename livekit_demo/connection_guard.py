"""Connection hygiene for `serve`: what uvicorn's HTTP/1.1 protocol leaves to the application.

uvicorn closes a kept-alive connection after `timeout_keep_alive`, but a connection that never
finishes sending a request (silent, or headers and body trickling in) is kept forever, and when
the process runs out of file descriptors asyncio logs every failed `accept()`, many times a second.
So with the common limit of 1,024 files, a couple of thousand idle sockets starve every real client.

`GuardedHttpProtocol` (uvicorn's httptools protocol when installed, the `fast` extra, else its h11
one) adds three rules:

- a request must arrive whole (headers and body) within `read_timeout` seconds of the connection
  opening or of the previous answer, or the connection is closed;
- when the process holds `max_connections` connections, or `accept()` fails for lack of
  descriptors, the oldest connections that have no request in progress are closed to make room,
  so a new client gets in rather than waiting behind idle sockets;
- accept errors are logged once per `LOG_INTERVAL` seconds with a count, not once per attempt.

The settings are class attributes, set by `configure` before the server starts (in each worker
process too: uvicorn's config names the class by its import path, `PROTOCOL`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

try:  # what uvicorn's http="auto" picks: httptools when installed, else h11
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

__all__ = ["GuardedHttpProtocol", "PROTOCOL", "configure", "guard_app", "LOG_INTERVAL"]

PROTOCOL = "livekit_demo.connection_guard:GuardedHttpProtocol"
"""The protocol as uvicorn's `http` option takes it (a string travels to worker processes)."""

log = logging.getLogger("livekit_demo.serving")
LOG_INTERVAL = 10.0  # seconds between two reports of accept errors
_ACCEPT_ERROR = "socket.accept() out of system resource"


def configure(*, read_timeout: float, max_connections: int) -> None:
    """Set the limits every `GuardedHttpProtocol` of this process applies."""
    GuardedHttpProtocol.read_timeout = read_timeout
    GuardedHttpProtocol.max_connections = max_connections


def guard_app(app: Any) -> Any:
    """`app` (ASGI), installing the accept-error handler on the event loop as the server starts.

    It must be in place before the first burst of connections: asyncio accepts up to a backlog's
    worth of sockets at once, and runs out of descriptors before any of them reaches the protocol.
    """

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            _install(asyncio.get_running_loop())
        await app(scope, receive, send)

    return guarded


def _install(loop: asyncio.AbstractEventLoop) -> None:
    if not isinstance(loop.get_exception_handler(), _AcceptErrors):
        loop.set_exception_handler(_AcceptErrors(loop))


class _AcceptErrors:
    """The event loop's exception handler: accept errors summarised per interval and relieved by eviction."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._previous = loop.get_exception_handler()
        self._reported_at = -LOG_INTERVAL
        self._unreported = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != _ACCEPT_ERROR:
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        GuardedHttpProtocol.make_room(loop)
        self._unreported += 1
        now = time.monotonic()
        if now - self._reported_at >= LOG_INTERVAL:
            log.warning(
                "cannot accept connections: %s (%d failed accepts in the last %.0f s); closing idle connections to make room",
                context.get("exception"), self._unreported, min(LOG_INTERVAL, now - self._reported_at),
            )  # fmt: skip
            self._reported_at = now
            self._unreported = 0


class GuardedHttpProtocol(_Base):
    """uvicorn's HTTP/1.1 protocol with a whole-request deadline and room made by closing idle connections."""

    read_timeout: float = 20.0
    max_connections: int = 1000
    _open: ClassVar[dict[asyncio.AbstractEventLoop, dict[GuardedHttpProtocol, None]]] = {}  # per loop, oldest first

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        opened = self._open.get(self.loop)
        if opened is None:
            opened = self._open[self.loop] = {}
            _install(self.loop)  # in case the app was not wrapped by guard_app
        opened[self] = None
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()
        if len(self.connections) > self.max_connections:
            self.make_room(self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._open.get(self.loop, {}).pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._received_whole_request():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._received_whole_request():
            self._arm()  # the next request on this connection gets the same deadline

    # -- internals --

    def _received_whole_request(self) -> bool:
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and not cycle.more_body

    def _idle(self) -> bool:
        """No request in progress: nothing received yet, or only part of a request's head."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout, self._expire)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._received_whole_request():
            return
        if self.cycle is not None and self.cycle.response_started:
            return  # the application is answering (it stopped reading the body early, say): let it finish
        log.debug("closing a connection from %s: no whole request within %s s", self.client, self.read_timeout)
        self.transport.close()

    @classmethod
    def make_room(cls, loop: asyncio.AbstractEventLoop) -> None:
        """Close the oldest idle connections: a tenth of those open (at least 16), or down to the limit."""
        opened = cls._open.get(loop, {})
        excess = max(len(opened) - cls.max_connections + 1, 0)
        wanted = max(excess, 16, len(opened) // 10)
        closed = 0
        for protocol in list(opened):
            if closed >= wanted:
                break
            if protocol._idle() and not protocol.transport.is_closing():
                protocol.transport.close()
                opened.pop(protocol, None)
                closed += 1
        if closed:
            log.debug("closed %d idle connections to make room for new ones", closed)
