"""The request log writes, without `logging`'s per-record work, exactly the line `logging` would, and
steps aside whenever anything else would see or change that record."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from livekit_demo import request_log
from livekit_demo.api import create_app
from livekit_demo.operations import callback_paths
from livekit_demo.request_log import LOGGER, RequestLogHandler, configure, log_call


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Our handler on a string stream, alone on the request logger's way up, as in a `serve` process.

    The request logger and its parent are fresh ones here, outside the process's logger tree, so
    neither pytest's capture handlers nor what other tests left on the real loggers take part.
    """
    out = io.StringIO()
    package = logging.Logger("livekit_demo")
    package.propagate = False
    requests = logging.Logger("livekit_demo.requests")
    requests.parent = package
    monkeypatch.setattr(request_log, "LOGGER", requests)
    package.addHandler(RequestLogHandler(out))
    package.setLevel(logging.INFO)
    yield out


def _through_logging(handler: logging.Handler, *args: object) -> str:
    """The line `logging` writes for a request record through `handler`'s formatter."""
    record = LOGGER.makeRecord(LOGGER.name, logging.INFO, __file__, 1, "%s %s %d %.1f ms user=%s", args, None)
    return handler.format(record) + "\n"


@pytest.mark.parametrize("args", [("POST", "/api/v1/live/get", 200, 0.04, "ann"), ("GET", "/auth/refresh_token", 401, 12.3456, "-")])
def test_the_direct_line_is_the_line_logging_writes(stream: io.StringIO, args: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = request_log._only_handler()
    assert isinstance(handler, RequestLogHandler)
    made: list[logging.LogRecord] = []
    monkeypatch.setattr(LOGGER, "makeRecord", lambda *a, **k: made.append(a) or logging.Logger.makeRecord(LOGGER, *a, **k))
    log_call(*args)
    assert made == []  # written without a record
    written = stream.getvalue()
    assert written == _through_logging(handler, *args)
    assert written.endswith(f" INFO livekit_demo.requests: {args[0]} {args[1]} {args[2]} {args[3]:.1f} ms user={args[4]}\n")


def test_the_time_stamp_follows_the_clock_across_seconds(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_796_000_000.2]
    monkeypatch.setattr(request_log.time, "time", lambda: now[0])
    log_call("POST", "/login", 200, 1.0, "ann")
    now[0] += 1.0
    log_call("POST", "/login", 200, 1.0, "ann")
    now[0] -= 3600.5  # the clock set back an hour
    log_call("POST", "/login", 200, 1.0, "ann")
    first, second, third = (line.split(" ", 1)[0] for line in stream.getvalue().splitlines())
    assert first != second and third not in (first, second)
    stamp = logging.Formatter("%(asctime)s", "%H:%M:%S")
    assert second == stamp.format(logging.makeLogRecord({"created": now[0] + 3600.5}))
    assert third == stamp.format(logging.makeLogRecord({"created": now[0]}))


def test_another_handler_filter_or_format_gets_the_record_through_logging(stream: io.StringIO) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    requests = request_log.LOGGER
    extra = Keep()
    requests.addHandler(extra)  # a notebook's or a test's handler: it must see every line
    try:
        log_call("POST", "/api/v1/live/get", 200, 1.0, "ann")
    finally:
        requests.removeHandler(extra)
    assert [r.getMessage() for r in seen] == ["POST /api/v1/live/get 200 1.0 ms user=ann"]
    assert stream.getvalue().count("\n") == 1  # and ours still wrote it, once

    requests.addFilter(lambda record: "hidden" not in record.getMessage())
    try:
        log_call("POST", "/hidden", 200, 1.0, "ann")
    finally:
        requests.filters.clear()
    assert "/hidden" not in stream.getvalue()  # a logger's filter ran

    handler = request_log._only_handler()
    assert handler is not None
    handler.addFilter(lambda record: "secret" not in record.getMessage())
    log_call("POST", "/secret", 200, 1.0, "ann")
    assert "/secret" not in stream.getvalue()  # the filter ran
    handler.filters.clear()
    handler.setFormatter(logging.Formatter("%(levelname)s|%(message)s"))
    log_call("POST", "/x", 200, 1.0, "ann")
    assert stream.getvalue().endswith("INFO|POST /x 200 1.0 ms user=ann\n")


def test_levels_still_hide_the_lines(stream: io.StringIO) -> None:
    request_log.LOGGER.parent.setLevel(logging.ERROR)  # what configure("error") sets
    log_call("POST", "/login", 200, 1.0, "ann")
    assert stream.getvalue() == ""


def test_configure_installs_one_handler_and_the_level() -> None:
    package = logging.getLogger("livekit_demo")
    saved = package.handlers[:], package.level
    try:
        first = configure("warning", io.StringIO())
        second = configure("error", io.StringIO())
        assert [h for h in package.handlers if isinstance(h, RequestLogHandler)] == [second] and first is not second
        assert package.level == logging.ERROR
        configure("warning", io.StringIO())
        assert package.level == logging.INFO  # the request lines show at the default level
    finally:
        package.handlers[:], level = saved
        package.setLevel(level)


def test_configured_again_on_a_loop_the_next_line_goes_to_the_new_handler() -> None:
    import asyncio

    package = logging.getLogger("livekit_demo")
    saved = package.handlers[:], package.level, package.propagate
    first, second = io.StringIO(), io.StringIO()
    try:
        package.propagate = False  # our handler alone on the way, as in `serve`
        configure("info", first)

        async def calls() -> None:
            log_call("POST", "/login", 200, 1.0, "ann")  # waits for the end of this pass
            configure("info", second)  # writes ann, and replaces the handler
            log_call("POST", "/login", 200, 1.0, "bob")
            await asyncio.sleep(0)

        asyncio.run(calls())
        request_log.write_waiting()
        assert [line.rsplit("=", 1)[1] for line in first.getvalue().splitlines()] == ["ann"]
        assert [line.rsplit("=", 1)[1] for line in second.getvalue().splitlines()] == ["bob"]
    finally:
        package.handlers[:], level, package.propagate = saved
        package.setLevel(level)


def test_a_broken_stream_does_not_fail_the_call(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = request_log._only_handler()
    assert handler is not None
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    stream.close()  # writing raises ValueError now
    log_call("POST", "/login", 200, 1.0, "ann")
    assert len(reported) == 1


def test_api_calls_write_one_line_each(stream: io.StringIO) -> None:
    with TestClient(create_app(storage="memory")) as client:
        client.post("/login", json={"username": "ann", "password": "ann"})
        client.post("/api/v1/live/get", json={"id": "x", "user_id": "ann"})
        client.get(f"{callback_paths()[0]}?action=publish&app=live&id=nosuchroom&ip=10.0.0.9")  # the CDN's push callback
    lines = stream.getvalue().splitlines()
    calls = [line.split(": ", 1)[1].rsplit(" ", 3)[0] for line in lines]
    assert calls[:2] == ["POST /login 200", "POST /api/v1/live/get 401"]
    assert len(calls) == 3 and calls[2].startswith(f"GET {callback_paths()[0]} ") and "nosuchroom" not in lines[2]
    assert lines[0].endswith("user=ann") and lines[1].endswith("user=-") and lines[2].endswith("user=-")


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_on_a_loop_the_lines_of_one_pass_leave_in_one_write(stream: io.StringIO) -> None:
    import asyncio

    out = _CountingStream()
    package = request_log.LOGGER.parent
    package.handlers[:] = [RequestLogHandler(out)]

    async def three_calls_then_a_pass() -> tuple[str, str]:
        for user in ("ann", "bob", "cy"):
            log_call("POST", "/api/v1/live/get", 200, 1.0, user)
        during = out.getvalue()
        await asyncio.sleep(0)  # the loop's next pass
        await asyncio.sleep(0)
        return during, out.getvalue()

    during, after = asyncio.run(three_calls_then_a_pass())
    assert during == "" and out.writes == 1
    assert [line.rsplit("=", 1)[1] for line in after.splitlines()] == ["ann", "bob", "cy"]
    log_call("POST", "/login", 200, 1.0, "dee")  # no loop here: written at once
    assert out.getvalue().endswith("user=dee\n") and out.writes == 2


def test_waiting_lines_are_written_before_a_record_and_at_shutdown(stream: io.StringIO) -> None:
    import asyncio

    async def a_line_then_a_record() -> None:
        log_call("POST", "/api/v1/live/get", 200, 1.0, "ann")
        request_log.LOGGER.warning("after the call")  # through logging, same handler

    asyncio.run(a_line_then_a_record())
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("user=ann") and lines[1].endswith("after the call")

    loop = asyncio.new_event_loop()
    loop.call_soon(log_call, "POST", "/login", 200, 1.0, "bob")
    loop.call_soon(loop.stop)  # the same pass stops the loop: the pass that would write the line never comes
    loop.run_forever()
    loop.close()
    assert "user=bob" not in stream.getvalue()
    logging.shutdown()  # what the interpreter does at exit
    assert stream.getvalue().endswith("user=bob\n")
    log_call("POST", "/login", 200, 1.0, "cy")  # a closed loop's flush does not hold back later lines
    assert stream.getvalue().endswith("user=cy\n")


def test_on_a_loop_the_handlers_are_looked_up_once_a_pass(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    walks: list[RequestLogHandler | None] = []
    real = request_log._only_handler
    monkeypatch.setattr(request_log, "_only_handler", lambda: walks.append(real()) or walks[-1])
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    async def two_passes() -> None:
        for user in ("ann", "bob", "cy"):  # one pass: one walk
            log_call("POST", "/api/v1/live/get", 200, 1.0, user)
        assert len(walks) == 1 and walks[0] is not None
        await asyncio.sleep(0)  # the next pass: the lines were written, the next call walks again
        request_log.LOGGER.addHandler(Keep())  # and so finds a handler added in between
        log_call("POST", "/api/v1/live/get", 200, 1.0, "dee")

    asyncio.run(two_passes())
    assert walks[1:] == [None] and seen == ["POST /api/v1/live/get 200 1.0 ms user=dee"]
    assert [line.rsplit("=", 1)[1] for line in stream.getvalue().splitlines()] == ["ann", "bob", "cy", "dee"]


def test_on_a_loop_the_running_loop_is_asked_for_once_a_pass(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    # On Python 3.11 every `asyncio.get_running_loop()` is a getpid system call: the calls a pass
    # finishes after its first tell the waiting flush by its loop and thread instead.
    import asyncio

    asked: list[asyncio.AbstractEventLoop] = []

    def counting() -> asyncio.AbstractEventLoop:
        asked.append(asyncio.events.get_running_loop())
        return asked[-1]

    async def two_passes() -> None:
        for user in ("ann", "bob", "cy"):
            log_call("POST", "/api/v1/live/get", 200, 1.0, user)
        assert len(asked) == 1 and stream.getvalue() == ""
        await asyncio.sleep(0)
        assert stream.getvalue().count("\n") == 3
        log_call("POST", "/api/v1/live/get", 200, 1.0, "dee")  # a new pass: asked again
        assert len(asked) == 2

    monkeypatch.setattr(request_log.asyncio, "get_running_loop", counting)
    try:
        asyncio.run(two_passes())
    finally:
        monkeypatch.undo()
    # The loop stopped before the write "dee" waited for (it came within WRITE_INTERVAL of the last one).
    assert "user=dee" not in stream.getvalue()
    request_log.write_waiting()
    assert stream.getvalue().endswith("user=dee\n")


def test_a_busy_loop_writes_at_most_once_an_interval(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import time

    interval = 0.5
    monkeypatch.setattr(request_log, "WRITE_INTERVAL", interval)
    out = _CountingStream()
    request_log.LOGGER.parent.handlers[:] = [RequestLogHandler(out)]

    async def calls_in_several_passes() -> None:
        log_call("POST", "/api/v1/live/get", 200, 1.0, "ann")  # the first line after a quiet spell
        await asyncio.sleep(0)
        assert out.writes == 1 and out.getvalue().endswith("user=ann\n")  # at the end of its pass
        written = time.monotonic()
        for user in ("bob", "cy"):
            log_call("POST", "/api/v1/live/get", 200, 1.0, user)
            await asyncio.sleep(0)
        if time.monotonic() - written < interval:  # (a machine that stalled longer than that may write them)
            assert out.writes == 1 and "user=bob" not in out.getvalue()
        await asyncio.sleep(interval * 1.2)
        assert [line.rsplit("=", 1)[1] for line in out.getvalue().splitlines()] == ["ann", "bob", "cy"]
        assert out.writes == 2  # bob's and cy's lines left together

    asyncio.run(calls_in_several_passes())


def test_a_line_waits_only_for_a_running_loop_in_its_own_thread(stream: io.StringIO) -> None:
    import asyncio
    import threading

    # A loop stopped in the pass that wrote a line never runs that line's flush: a line from the
    # next loop on the same thread gets a flush of its own, and is written with the first.
    loop = asyncio.new_event_loop()
    loop.call_soon(log_call, "POST", "/login", 200, 1.0, "ann")
    loop.call_soon(loop.stop)
    loop.run_forever()

    async def one_pass() -> str:
        log_call("POST", "/login", 200, 1.0, "bob")
        await asyncio.sleep(0)
        return stream.getvalue()

    assert [line.rsplit("=", 1)[1] for line in asyncio.run(one_pass()).splitlines()] == ["ann", "bob"]
    loop.close()

    # While a loop's pass holds lines back, another thread's line (no loop there) is written at once, with them.
    async def a_line_then_another_thread() -> str:
        log_call("POST", "/login", 200, 1.0, "cy")
        worker = threading.Thread(target=log_call, args=("POST", "/login", 200, 1.0, "dee"))
        worker.start()
        worker.join()
        return stream.getvalue()

    during = asyncio.run(a_line_then_another_thread())
    assert [line.rsplit("=", 1)[1] for line in during.splitlines()][2:] == ["cy", "dee"]
