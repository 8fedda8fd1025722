"""The request log: one line per API call (method, path, status, milliseconds, user), never a token or a body.

Lines are records of the logger ``livekit_demo.requests``, so whatever a host attaches to
`logging` (pytest's caplog, a notebook's handler, a logging config) sees every one of them.
`configure` puts the one handler `serve` shows them with on the ``livekit_demo`` logger.

When that handler is the only one a line would reach (the usual `serve` process), `log_call`
writes the line itself, exactly as the handler's formatter would: `logging`'s per-record work
(a LogRecord, the caller's frame, a formatter, the time zone looked up for the time stamp) costs
about 25 us, as much as answering a cheap call; and on an event loop the lines of one pass of the
loop leave in one write (a write per line cost a busy server as much again). Any other handler,
filter or formatter on the way sends the line through `logging` as usual. On a loop, the loggers
are looked at once per pass: a handler or filter added takes part from the next pass on.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import TextIO

__all__ = ["LOGGER", "RequestLogHandler", "configure", "log_call"]

LOGGER = logging.getLogger("livekit_demo.requests")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_DATE_FORMAT = "%H:%M:%S"
_MESSAGE = "%s %s %d %.1f ms user=%s"


class RequestLogHandler(logging.StreamHandler[TextIO]):
    """The handler `configure` installs: a stream handler with the request log's format."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self._own_formatter = logging.Formatter(_FORMAT, _DATE_FORMAT)
        self.setFormatter(self._own_formatter)
        self._second = -1
        self._prefix = ""
        self._pending: list[str] = []  # lines written by `write_call`, not yet on the stream
        # The loop a flush is waiting on, and the thread it was running in (see `waits_on_running_loop`).
        self._flush_on: tuple[asyncio.AbstractEventLoop, int] | None = None

    def writes_directly(self) -> bool:
        """Whether `write_call` writes what `emit` would: nobody replaced the format or added a filter."""
        return self.formatter is self._own_formatter and not self.filters and self.level <= logging.INFO

    def waits_on_running_loop(self) -> bool:
        """Whether lines wait for the end of the running loop's current pass (see `write_call`).

        Told without asking asyncio which loop runs: on Python 3.11 `get_running_loop` makes a
        system call (getpid, a check against fork), twice a request here. A loop runs in one thread
        at a time and a thread runs one loop at a time, so the loop a flush waits on, running, in
        the thread it was scheduled from, is the running loop of that thread.
        """
        flush = self._flush_on
        return flush is not None and flush[1] == threading.get_ident() and flush[0].is_running()

    def write_call(self, method: str, path: str, status: int, elapsed_ms: float, user: str) -> None:
        """The line `emit` would write for this call's record, written without making the record.

        On an event loop, lines wait for the end of the loop's current pass and leave in one write:
        a write per call to a terminal or a file costs more than answering a cheap call, and a busy
        server finishes many calls per pass. Elsewhere (no loop) each line is written at once.
        """
        now = time.time()
        second = int(now)
        if second != self._second:  # the time stamp changes once a second: format it once a second
            self._prefix = f"{time.strftime(_DATE_FORMAT, time.localtime(now))} INFO {LOGGER.name}: "
            self._second = second
        line = f"{self._prefix}{method} {path} {status:d} {elapsed_ms:.1f} ms user={user}{self.terminator}"
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
            if self.waits_on_running_loop():
                return  # that pass's flush takes this line too
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            self._flush_on = (loop, threading.get_ident()) if loop is not None else None
        if loop is None:
            self._write_pending()
        else:
            loop.call_soon(self._write_pending)

    def flush(self) -> None:
        """Write the lines still waiting (see `write_call`), then flush the stream as
        `StreamHandler.flush` does; `logging.shutdown` calls it at exit, so no line is left behind."""
        self._write_pending()
        super().flush()

    def _write_pending(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._flush_on = None
            if not self._pending:
                return
            text = "".join(self._pending)
            self._pending.clear()
            try:
                self.stream.write(text)
                super().flush()
            except Exception:  # as `emit` does: a broken stream must not fail the calls it reports
                self.handleError(logging.makeLogRecord({"msg": text.rstrip("\n")}))

    def emit(self, record: logging.LogRecord) -> None:
        """As `StreamHandler.emit`, after the lines still waiting, so the log keeps its order."""
        self._write_pending()
        super().emit(record)


def configure(level: str, stream: TextIO | None = None) -> RequestLogHandler:
    """Show our records (one line per request at INFO) on `stream` (default stderr).

    On by default: the request lines show at the default level ``warning`` and at ``info``;
    ``debug`` adds more, ``error``/``critical`` hide them. A host watching the terminal sees each
    phone arrive. Idempotent: a second call replaces the handler the first one added.
    """
    package = logging.getLogger("livekit_demo")
    for old in [h for h in package.handlers if isinstance(h, RequestLogHandler)]:
        old._write_pending()  # its waiting lines, before it goes
        package.removeHandler(old)
    handler = RequestLogHandler(stream)
    package.addHandler(handler)
    package.setLevel(min(logging.INFO, logging.getLevelName(level.upper())) if level in ("warning", "info", "debug") else level.upper())
    return handler


def log_call(method: str, path: str, status: int, elapsed_ms: float, user: str) -> None:
    """Log one answered call (the path only: a ``?token=`` query string never reaches the log)."""
    global _direct
    if not LOGGER.isEnabledFor(logging.INFO):
        return
    handler = _direct
    if handler is None or not handler.waits_on_running_loop():
        # The walk, once per pass of a busy loop: the calls a pass finishes find what its first found.
        handler = _direct = _only_handler()
    if handler is not None:
        handler.write_call(method, path, status, elapsed_ms, user)
    else:
        LOGGER.info(_MESSAGE, method, path, status, elapsed_ms, user)


_direct: RequestLogHandler | None = None  # what `_only_handler` last found (see `log_call`)


def _only_handler() -> RequestLogHandler | None:
    """Our handler when it is the only one an INFO record of `LOGGER` reaches, and nothing filters on the way."""
    found: RequestLogHandler | None = None
    logger: logging.Logger | None = LOGGER
    while logger is not None:
        if logger.filters:
            return None
        for handler in logger.handlers:
            if found is not None or not isinstance(handler, RequestLogHandler) or not handler.writes_directly():
                return None
            found = handler
        if not logger.propagate:
            break
        logger = logger.parent
    return found
