"""The request log: one line per API call (method, path, status, milliseconds, user), never a token or a body.

Lines are records of the logger ``livekit_demo.requests``, so whatever a host attaches to
`logging` (pytest's caplog, a notebook's handler, a logging config) sees every one of them.
`configure` puts the one handler `serve` shows them with on the ``livekit_demo`` logger.

When that handler is the only one a line would reach (the usual `serve` process), `log_call`
writes the line itself, exactly as the handler's formatter would: `logging`'s per-record work
(a LogRecord, the caller's frame, a formatter, the time zone looked up for the time stamp) costs
about 25 us, as much as answering a cheap call. Any other handler, filter or formatter on the way
sends the line through `logging` as usual.

On an event loop, lines leave together: the first line after a quiet spell at the end of the
loop's pass, the lines after it at most every `WRITE_INTERVAL` seconds. A write to a terminal or
a file costs more than answering a cheap call, and a busy server answers hundreds of calls in that
time; a person watching the terminal sees no delay. The loggers are looked at again for the first
line after each write: a handler or filter added takes part from then on. Lines still waiting when
a loop stops are written by the next line, by a record through `logging`, by `write_waiting` (the
app's lifespan calls it as it ends) and at exit.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import deque
from typing import TextIO

__all__ = ["LOGGER", "RequestLogHandler", "WRITE_INTERVAL", "configure", "log_call", "write_waiting"]

LOGGER = logging.getLogger("livekit_demo.requests")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_DATE_FORMAT = "%H:%M:%S"
_MESSAGE = "%s %s %d %.1f ms user=%s"
WRITE_INTERVAL = 0.05
"""Seconds between two writes of a loop's lines, while calls keep coming (see the module's docstring)."""


class RequestLogHandler(logging.StreamHandler[TextIO]):
    """The handler `configure` installs: a stream handler with the request log's format."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self._own_formatter = logging.Formatter(_FORMAT, _DATE_FORMAT)
        self.setFormatter(self._own_formatter)
        self._next_second = 0.0  # when the time stamp `_prefix` goes stale
        self._prefix = ""
        # Lines `add`ed, not yet on the stream. A deque: `add` appends without taking the
        # lock, and a write in another thread takes only the lines that are there (see `_write_pending`).
        self._pending: deque[str] = deque()
        self._written_at = -WRITE_INTERVAL  # time.monotonic() of the last write
        # The loop a write is waiting on, and the thread it was running in (see `waits_on_running_loop`).
        self._flush_on: tuple[asyncio.AbstractEventLoop, int] | None = None

    def writes_directly(self) -> bool:
        """Whether `write_call` writes what `emit` would: nobody replaced the format or added a filter."""
        return self.formatter is self._own_formatter and not self.filters and self.level <= logging.INFO

    def waits_on_running_loop(self) -> bool:
        """Whether a write is waiting on the running loop, so that a line `add`ed now leaves with it.

        Told without asking asyncio which loop runs: on Python 3.11 `get_running_loop` makes a
        system call (getpid, a check against fork). A loop runs in one thread at a time and a
        thread runs one loop at a time, so the loop a write waits on, running, in the thread it
        was scheduled from, is the running loop of that thread.
        """
        flush = self._flush_on
        return flush is not None and flush[1] == threading.get_ident() and flush[0].is_running()

    def add(self, method: str, path: str, status: int, elapsed_ms: float, user: str) -> None:
        """Add the line `emit` would write for this call's record to the lines waiting to be written."""
        now = time.time()
        if not 0.0 < self._next_second - now <= 1.0:  # a new second (or the clock was set back)
            self._prefix = f"{time.strftime(_DATE_FORMAT, time.localtime(now))} INFO {LOGGER.name}: "
            self._next_second = float(int(now) + 1)
        self._pending.append(f"{self._prefix}{method} {path} {status:d} {elapsed_ms:.1f} ms user={user}{self.terminator}")

    def write_call(self, method: str, path: str, status: int, elapsed_ms: float, user: str) -> None:
        """`add` this call's line, and see that it is written: at once where no loop runs, else
        when the running loop's pass ends, or `WRITE_INTERVAL` after the last write if that is later."""
        self.add(method, path, status, elapsed_ms, user)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_pending()
            return
        with self.lock:  # type: ignore[union-attr]
            if self.waits_on_running_loop():
                return  # that write takes this line too
            self._flush_on = (loop, threading.get_ident())
            wait = self._written_at + WRITE_INTERVAL - time.monotonic()
        if wait > 0:
            loop.call_later(wait, self._write_from_loop)
        else:
            loop.call_soon(self._write_from_loop)

    def _write_from_loop(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._flush_on = None  # the next line schedules the next write
            self._write_pending()

    def flush(self) -> None:
        """Write the lines still waiting (see `write_call`), then flush the stream as
        `StreamHandler.flush` does; `logging.shutdown` calls it at exit, so no line is left behind."""
        self._write_pending()
        super().flush()

    def _write_pending(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            pending = self._pending
            if not pending:
                return
            # Only the lines there now: one `add`ed meanwhile, in another thread, waits for its own write.
            text = "".join([pending.popleft() for _ in range(len(pending))])
            self._written_at = time.monotonic()
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
    global _direct
    package = logging.getLogger("livekit_demo")
    for old in [h for h in package.handlers if isinstance(h, RequestLogHandler)]:
        old._write_pending()  # its waiting lines, before it goes
        package.removeHandler(old)
    _direct = None  # lines go to the new handler from now on, not to the old one's waiting write
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
    if handler is not None and handler.waits_on_running_loop():
        handler.add(method, path, status, elapsed_ms, user)  # the common call on a busy loop
        return
    # The walk, once per write on a busy loop: the calls until that write find what its first found.
    handler = _direct = _only_handler()
    if handler is not None:
        handler.write_call(method, path, status, elapsed_ms, user)
    else:
        LOGGER.info(_MESSAGE, method, path, status, elapsed_ms, user)


def write_waiting() -> None:
    """Write the lines waiting for their loop's next write now (for a loop about to stop)."""
    handler = _direct
    if handler is not None:
        handler._write_pending()


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
