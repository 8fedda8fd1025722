"""The HTTP face of the AppServer: Starlette routes for every call of the contract.

Every API request goes through one pipeline, so each bad request gets one predictable answer
(SPEC section 1's order): 413 size -> 415 content type -> 401 token -> 400 body and fields ->
then the rooms layer's 403 / 404 / 403 / 409. Errors of the `AppServerError` tree become the
contract's Status body here and only here; anything else is logged and answered with a one-line 500.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
from anyio.lowlevel import RunVar
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request, cookie_parser
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

try:
    import orjson
except ImportError:  # a browser tab (Pyodide) has no orjson wheel: json does the same, slower
    orjson = None  # type: ignore[assignment]

from . import __version__
from ._platform import threads_available
from .app_server import AppServer
from .auth import find_token
from .callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER, check_signature, parse_push_event
from .exceptions import (
    AppServerError,
    BadRequest,
    InsufficientStorage,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    StorageFull,
    StorageUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)
from .jsonbytes import dumps
from .openapi import build_openapi
from .operations import ANONYMOUS, OPERATIONS, PUSH_CALLBACK, STORE_FREE, CallContext, Operation, callback_paths, served_operations
from .request_log import log_call, write_waiting
from .schemas import REQUESTS
from .types import JSONDict
from .validation import Schema

if TYPE_CHECKING:
    from .live_edge import LiveEdge

__all__ = ["create_app", "error_response"]

log = logging.getLogger("livekit_demo.api")
CORS_HEADERS = ["Origin", "Content-Length", "Content-Type", "Authorization", "x-live-env"]


def _token_of(request: Request) -> str | None:
    return find_token(request.headers, request.query_params, request.cookies)


def _call_context(request: Request) -> CallContext:
    return CallContext(
        client=request.client.host if request.client else "",
        token=_token_of(request),
        base_url=str(request.base_url).rstrip("/"),
        host=request.url.hostname or "",
    )


async def _read_body(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    """The body, refusing (413) as soon as it passes `limit`, before reading the rest."""
    declared = headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if too_big:
            raise PayloadTooLarge(f"request body of {declared} bytes is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.disconnect":
            raise ClientDisconnect()
        if kind != "http.request":
            continue
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
        if not message.get("more_body", False):
            return b"".join([*chunks, chunk]) if chunks else chunk  # commonly the whole body in one message
        chunks.append(chunk)


def _check_content_type(headers: Mapping[str, str], body: bytes) -> None:
    if not body:
        return
    content_type = headers.get("content-type")
    if content_type is None or content_type == "application/json":
        return  # none at all is read as JSON too, as the clients expect
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {media or 'empty'!r}")


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest("request body is empty; send a JSON object", details=[{"field": "body", "problem": "is empty"}])
    try:
        value = _loads(body)
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8 text", details=[{"field": "body", "problem": "is not UTF-8"}]) from None
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", details=[{"field": "body", "problem": str(exc)}]) from None
    except RecursionError:
        # `[[[[...` a few thousand deep exhausts the decoder's stack: a bad body, not a server fault.
        problem = "is nested too deeply"
        raise BadRequest(f"request body {problem}", details=[{"field": "body", "problem": problem}]) from None
    # Only a \uD800-\uDFFF escape can smuggle a lone surrogate past the UTF-8 check above; such a
    # string cannot be encoded again, so storing it would make every later answer that shows it a 500.
    if _SURROGATE_ESCAPE.search(body) and (where := _lone_surrogate_at(value)) is not None:
        problem = "contains a lone UTF-16 surrogate escape, which is not text"
        raise BadRequest(f"invalid request: {where}: {problem}", details=[{"field": where, "problem": problem}])
    return value


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _validated(schema: Schema, body: bytes, *, remember: bool = True) -> JSONDict:
    """`schema.validate(_parse_json(body))`, remembered (when `remember`) for small bodies of plain fields.

    Both steps depend on the bytes alone, and clients repeat themselves: a viewer polls `get` with
    one body, a lobby pages `list` with another. A body seen before skips reading and checking;
    each call gets its own copy (of text, numbers and flags only: nothing a handler could change
    in place). Refused bodies are not remembered: every one is read and refused anew. The calls
    that need no token are never remembered: their bodies carry passwords and hand-off tokens.
    """
    if not remember or len(body) > _REMEMBERED_BODY_SIZE:
        return schema.validate(_parse_json(body))
    key = (schema.name, body)
    fields = _VALIDATED.get(key)
    if fields is None:
        fields = schema.validate(_parse_json(body))
        if all(value is None or type(value) in _PLAIN for value in fields.values()):
            if len(_VALIDATED) >= _REMEMBERED_BODIES:
                _VALIDATED.clear()
            _VALIDATED[key] = fields
    return dict(fields)


_PLAIN = (str, int, bool)
_REMEMBERED_BODY_SIZE = 1024  # bytes: a get, list or create body is well under it
_REMEMBERED_BODIES = 1024
_VALIDATED: dict[tuple[str, bytes], JSONDict] = {}


def _loads(body: bytes) -> Any:
    """What `json.loads(body, parse_constant=_refuse_constant)` answers, by orjson (several times
    faster) wherever the two agree.

    They agree on every document orjson accepts, except integers beyond 64 bits, which orjson
    reads as floats (a run of 19 digits sends the body to `json`), and nesting deeper than `json`
    can go, which orjson reads and `json` refuses (a body with many brackets goes to `json`).
    Whatever orjson refuses goes to `json` too, which words the errors (and accepts what it
    accepts: a BOM, UTF-16).
    """
    if orjson is not None and body.count(b"[") + body.count(b"{") < _FEW_BRACKETS and _LONG_DIGITS.search(body) is None:
        try:
            return orjson.loads(body)
        except (orjson.JSONDecodeError, RecursionError):
            pass
    return json.loads(body, parse_constant=_refuse_constant)


_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_FEW_BRACKETS = 400  # nesting this deep is far from json's limit (the recursion limit, 1000)


def _refuse_constant(name: str) -> Any:
    # Python's decoder accepts NaN and Infinity, which are not JSON (RFC 8259) and which no
    # engine stores alike: a ValueError here becomes the 400 for a body that is not JSON.
    raise ValueError(f"{name} is not a JSON number")


def _lone_surrogate_at(value: Any) -> str | None:
    """The path of the first string (key or value) holding a lone surrogate; iterative, as bodies nest deep."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return path or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                if _LONE_SURROGATE.search(key):
                    return f"{path}.{key!r}" if path else "body"
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]" if path else f"body[{i}]", child) for i, child in enumerate(item))
    return None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]
"""A call's HTTP status, JSON body and headers beyond Content-Length and Content-Type."""


async def _answer(
    op: Operation,
    inline: bool,
    server: AppServer,
    headers: Mapping[str, str],
    receive: Receive,
    token_of: Callable[[], str | None],
    context: Callable[[str | None], CallContext],
    where: tuple[str, str],
) -> Answer:
    """One API call through SPEC 1's order of checks, whichever way the request came in."""
    schema = REQUESTS[op.schema] if op.schema else None
    started = time.perf_counter()
    user = "-"
    try:
        body = await _read_body(headers, receive, server.settings.server.max_body)
        _check_content_type(headers, body)
        actor = ANONYMOUS
        token = token_of()
        if op.authenticated:
            if token is None:
                raise Unauthorized("no token: send 'Authorization: Bearer <jwt>' (get one from /login)")
            actor = server.auth.verify(token)
            user = actor.user_id
        fields = _validated(schema, body, remember=op.authenticated) if schema is not None else {}
        if not op.authenticated and isinstance(fields.get("username"), str):
            user = fields["username"]  # /login: who is trying, shown even when it fails
        call = context(token)
        if _runs_on_loop(op, server, inline):  # the common call: no coroutine to make for it
            result = op.handler(server, actor, fields, call)
        else:
            result = await _run(op, server, actor, fields, call)
        answer: Answer = (200, dumps(result), [])
    except AppServerError as exc:
        answer = _error_answer(exc)
    except (StorageFull, StorageUnavailable) as exc:
        answer = _error_answer(_storage_error(where, exc))
    except ClientDisconnect:
        # The client went away mid-body: nobody reads this answer, and it is not our fault.
        log.debug("%s %s: the client disconnected before sending the whole body", *where)
        answer = (400, b"", [])
    except Exception:
        log.exception("internal error in %s %s", *where)
        answer = _error_answer(InternalError("internal server error; the server log has the details"))
    log_call(where[0], where[1], answer[0], (time.perf_counter() - started) * 1000, user)
    return answer


def _error_answer(exc: AppServerError) -> Answer:
    headers = [(b"retry-after", str(exc.retry_after).encode())] if isinstance(exc, (TooManyRequests, ServiceUnavailable)) else []
    return exc.status, dumps(exc.to_json()), headers


def _endpoint(op: Operation, inline: bool) -> Callable[[Request], Any]:
    """The Starlette endpoint of `op`: the way in for the requests the direct path leaves to Starlette
    (a path with repeated slashes, an app mounted under a prefix)."""

    async def endpoint(request: Request) -> Response:
        server: AppServer = request.app.state.server
        started = time.perf_counter()

        def context(token: str | None) -> CallContext:
            return dataclasses.replace(_call_context(request), token=token)

        where = (request.method, request.url.path)
        status, body, headers = await _answer(op, inline, server, request.headers, request.receive, lambda: _token_of(request), context, where)
        response = Response(body, status_code=status, media_type="application/json")
        response.raw_headers[:0] = headers  # before Content-Length and Content-Type, as JSONResponse puts them
        log.debug("%s %s -> %d in %.1f ms", *where, status, (time.perf_counter() - started) * 1000)
        return response

    endpoint.__name__ = op.name
    return endpoint


_RETRY_AFTER = 5  # seconds a client is asked to wait when the database is not answering
_LIMITERS: RunVar[dict[int, tuple[anyio.CapacityLimiter, anyio.CapacityLimiter]]] = RunVar("livekit_demo_limiters")


def _limiters(server: AppServer) -> tuple[anyio.CapacityLimiter, anyio.CapacityLimiter]:
    """This event loop's thread limiters for `server`: (database calls, password hashing)."""
    try:
        per_server = _LIMITERS.get()
    except LookupError:
        per_server = {}
        _LIMITERS.set(per_server)
    found = per_server.get(id(server))
    if found is None:
        # Separate pools: calls stuck on a hung database can fill theirs, never the logins' one.
        hashing = server.settings.auth.max_concurrent_hashes
        found = per_server[id(server)] = (anyio.CapacityLimiter(_DB_THREADS), anyio.CapacityLimiter(hashing + 2))
    return found


_DB_THREADS = 15  # SQLAlchemy's default pool: 5 connections plus 10 overflow
run_in_thread = anyio.to_thread.run_sync  # one name for every hand-off to a thread (tests replace it)


def _runs_on_loop(op: Operation, server: AppServer, inline: bool) -> bool:
    """Whether `op` runs on the caller's stack: everything `inline` (no threads, as in Pyodide), and
    whatever neither hashes a password nor waits for a store that blocks."""
    return inline or (not op.blocking and (not server.store.blocking or op.name in STORE_FREE))


async def _run(op: Operation, server: AppServer, actor: Any, fields: Any, call: CallContext, *, inline: bool = False) -> Any:
    """Run a handler: inline on the loop, or in the thread pool its kind of blocking work gets."""
    if _runs_on_loop(op, server, inline):
        return op.handler(server, actor, fields, call)
    db_limiter, hash_limiter = _limiters(server)
    if op.blocking:
        # Password hashing would stall every other request: off the loop, in its own bounded pool.
        return await run_in_thread(op.handler, server, actor, fields, call, limiter=hash_limiter)
    # A database call: off the loop, and answered within a bound even when the database hangs
    # (the thread is left to finish on the driver's own timeouts; its pool slot stays taken until then).
    storage = server.settings.storage
    deadline = storage.connect_timeout + storage.read_timeout + storage.pool_timeout
    try:
        with anyio.fail_after(deadline):
            return await run_in_thread(op.handler, server, actor, fields, call, limiter=db_limiter, abandon_on_cancel=True)
    except TimeoutError:
        raise ServiceUnavailable(f"the database did not answer within {deadline} s; try again shortly", retry_after=_RETRY_AFTER) from None


Direct = Callable[[Scope, Receive, Send], Awaitable[None]]
_CONTEXTS = 4096  # call contexts a direct path keeps


def _direct(op: Operation, inline: bool, server: AppServer) -> Direct:
    """`op` on `server` as a bare ASGI app: what `_endpoint` does, without Starlette's routing, middleware and
    Request objects, which cost a cheap call more than the call itself. CORS headers are added as
    `CORSMiddleware` adds them (`create_app` configures both from `_CORS`)."""
    # Call contexts by what they are made of (a CallContext costs more to make than to find); the
    # Host header and the token are the client's to choose, so the table is bounded.
    contexts: dict[tuple[Any, ...], CallContext] = {}

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter() if log.isEnabledFor(logging.DEBUG) else 0.0
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1")
            if name not in headers:  # the first of repeated headers, as Starlette's Headers.get answers
                headers[name] = value.decode("latin-1")

        def token_of() -> str | None:
            query: Mapping[str, str] = QueryParams(scope["query_string"]) if scope.get("query_string") else {}
            cookies: dict[str, str] = {}
            if "cookie" in headers:
                for key, value in scope["headers"]:
                    if key == b"cookie":  # every Cookie header, as Request.cookies reads them
                        cookies.update(cookie_parser(value.decode("latin-1")))
            return find_token(headers, query, cookies)

        def context(token: str | None) -> CallContext:
            client = scope.get("client")
            address = scope.get("server")
            key = (
                client[0] if client else "", token,
                scope.get("scheme"), tuple(address) if address else None, headers.get("host"), scope.get("app_root_path"),
            )  # fmt: skip
            found = contexts.get(key)
            if found is None:
                if len(contexts) >= _CONTEXTS:
                    contexts.clear()
                request = Request(scope)
                base_url, host = str(request.base_url).rstrip("/"), request.url.hostname or ""
                found = contexts[key] = CallContext(client=key[0], token=token, base_url=base_url, host=host)
            return found

        where = (scope["method"], scope["path"])
        status, body, extra = await _answer(op, inline, server, headers, receive, token_of, context, where)
        response_headers = [*extra, (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        if "origin" in headers:
            response_headers += _CORS_ORIGIN_HEADERS
        response_headers += _CORS_VARY
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})
        if started:
            log.debug("%s %s -> %d in %.1f ms", *where, status, (time.perf_counter() - started) * 1000)

    return serve


_CORS: dict[str, Any] = {
    "allow_origins": ["*"],
    "allow_methods": ["POST", "GET", "OPTIONS"],
    "allow_headers": CORS_HEADERS,
    "allow_credentials": False,
}
# What CORSMiddleware adds to a simple (not preflight) answer with these settings: any origin is
# allowed without credentials, so "*" when an Origin was sent, and "Vary: Origin" always.
_CORS_ORIGIN_HEADERS = [(b"access-control-allow-origin", b"*")]
_CORS_VARY = [(b"vary", b"Origin")]


class _App(Starlette):
    """Starlette, with the API calls answered directly (see `_direct`) when method and path are exact."""

    def __init__(self, *args: Any, direct: dict[tuple[str, str], Direct], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            direct = self.direct.get((scope["method"], scope["path"]))
            if direct is not None:
                scope["app"] = self
                await direct(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


_FORM = "application/x-www-form-urlencoded"


def _callback_params(request: Request, body: bytes) -> dict[str, Any]:
    """The push callback's parameters: the query string, then a POSTed form or JSON object over it."""
    params: dict[str, Any] = dict(request.query_params)
    if request.method != "POST" or not body.strip():
        return params
    content_type = request.headers.get("content-type")
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media == _FORM:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("request body is not UTF-8 text", details=[{"field": "body", "problem": "is not UTF-8"}]) from None
        from urllib.parse import parse_qsl

        params.update(parse_qsl(text, keep_blank_values=True))
        return params
    if media != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json or {_FORM}, not {media or 'empty'!r}")
    value = _parse_json(body)
    if not isinstance(value, dict):
        raise BadRequest("request body must be a JSON object", details=[{"field": "body", "problem": "is not an object"}])
    params.update(value)
    return params


async def _push_callback(request: Request) -> Response:
    """The CDN's push callback: GET query or POST form/JSON, signed with ALI-LIVE-* headers, no JWT (SPEC 13)."""
    server: AppServer = request.app.state.server
    inline: bool = request.app.state.inline
    started = time.perf_counter()
    try:
        body = await _read_body(request.headers, request.receive, server.settings.server.max_body)
        params = _callback_params(request, body)
        ls = server.settings.live_stream
        check_signature(
            request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER),
            host=ls.callback_signing_host, key=ls.callback_signing_key, now=server.clock.timestamp(),
        )  # fmt: skip
        fields = dataclasses.asdict(parse_push_event(params))
        call = _call_context(request)
        result = await _run(PUSH_CALLBACK, server, ANONYMOUS, fields, call, inline=inline)
        response: Response = JSONResponse(result)
    except AppServerError as exc:
        response = error_response(exc)
    except (StorageFull, StorageUnavailable) as exc:
        response = error_response(_storage_error((request.method, request.url.path), exc))
    except Exception:
        log.exception("internal error in %s %s", request.method, request.url.path)
        response = error_response(InternalError("internal server error; the server log has the details"))
    # One line as for an API call; the CDN is nobody's login, so no user.
    log_call(request.method, request.url.path, response.status_code, (time.perf_counter() - started) * 1000, "-")
    return response


def _storage_error(where: tuple[str, str], exc: StorageFull | StorageUnavailable) -> AppServerError:
    """507 for a full disk, 503 + Retry-After for a database that does not answer; logged without a traceback."""
    log.warning("%s %s: %s", *where, exc)
    if isinstance(exc, StorageFull):
        return InsufficientStorage(str(exc))
    return ServiceUnavailable(f"the database is not answering; try again shortly ({exc})", retry_after=_RETRY_AFTER)


def error_response(exc: AppServerError) -> JSONResponse:
    """The contract's Status body with the same HTTP status."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, (TooManyRequests, ServiceUnavailable)) else None
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


async def _root(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return PlainTextResponse(f"livekit_demo AppServer {__version__}. Enter this base URL in a client: {base}\n")


async def _openapi(request: Request) -> Response:
    server: AppServer = request.app.state.server
    return JSONResponse(build_openapi(served_operations(), server.settings.server.max_body))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"no such path: {request.url.path}"))
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "POST")
        error = MethodNotAllowed(f"method {request.method} is not allowed on {request.url.path}; use {allowed}")
        response = error_response(error)
        response.headers["Allow"] = allowed
        return response
    return JSONResponse({"code": exc.status_code, "message": str(exc.detail), "details": None}, status_code=exc.status_code)


class _SingleSlashes:
    """ASGI middleware: a path with repeated slashes (``//api/v1/live/login``) is served as the single-slash path.

    The web, uni-app and iOS clients build ``base + "/api/..."``, so a base URL pasted with a trailing
    slash made every call ``//api/...`` (SPEC 1 "Base URLs"). Normalised before routing, so every
    route, 404 and 405 sees the one path.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = dict(scope)
            scope["path"] = _REPEATED_SLASHES.sub("/", scope["path"])
            if "raw_path" in scope and scope["raw_path"] is not None:
                scope["raw_path"] = _REPEATED_SLASHES_BYTES.sub(b"/", scope["raw_path"])
        await self.app(scope, receive, send)


_REPEATED_SLASHES = re.compile(r"/{2,}")
_REPEATED_SLASHES_BYTES = re.compile(rb"/{2,}")


class _RedactQueryToken(logging.Filter):
    """Hide `?token=<jwt>` in uvicorn's access log lines.

    `access_log=False` is not enough: uvicorn logs access lines again as soon as anyone adds a
    handler to "uvicorn.access" (a notebook showing requests, a logging config), and clients may
    send their token in the query string.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]*")


def _guard_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactQueryToken) for f in access.filters):
        access.addFilter(_RedactQueryToken())


def create_app(server: AppServer | None = None, *, inline: bool | None = None, edge: LiveEdge | None = None, **settings: Any) -> Starlette:
    """The Starlette app for an `AppServer` (made from `settings` when not given).

    `inline` true runs every handler on the caller's stack, also the blocking ones (SQL, password
    hashing) that otherwise go to the thread pool: for in-process serving, where no loop is there to
    stall. None means inline exactly where threads are unavailable (Pyodide). With `edge` (a
    `LiveEdge` of that server), the app's lifespan starts and stops the media edge on the serving
    event loop, and its HTTP pulls are served at ``/{app_name}/...``.

        >>> from starlette.testclient import TestClient
        >>> app = create_app(storage="memory")
        >>> TestClient(app).post("/login", json={"username": "ann", "password": "ann"}).json()["code"]
        200
    """
    if server is None:
        server = AppServer.from_settings(**settings)
    if inline is None:
        inline = not threads_available()
    _guard_access_log()
    served = served_operations()
    routes: list[BaseRoute] = [Route(path, _endpoint(op, inline), methods=["POST"]) for path, op in served]
    refresh = next(op for op in OPERATIONS if op.name == "refresh_token")
    direct = {("POST", path): _direct(op, inline, server) for path, op in served}
    direct["GET", "/auth/refresh_token"] = _direct(refresh, inline, server)
    routes += [Route(path, _push_callback, methods=["GET", "POST"]) for path in callback_paths()]
    routes += [
        Route("/auth/refresh_token", _endpoint(refresh, inline), methods=["GET"]),
        Route("/", _root, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/swagger.json", _openapi, methods=["GET"]),
    ]
    if edge is not None:
        routes.append(Mount(f"/{edge.app_name}", app=edge.http_app))
    middleware = [
        Middleware(_SingleSlashes),
        Middleware(CORSMiddleware, **_CORS),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if edge is not None:
            await edge.start()  # on this loop: the edge shares the server's thread
        try:
            yield
        finally:
            if edge is not None:
                await edge.stop()
            server.close()
            write_waiting()  # the last calls' lines, before this loop stops

    app = _App(
        direct=direct,
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.inline = inline
    app.state.edge = edge
    return app
