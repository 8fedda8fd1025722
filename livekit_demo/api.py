"""The HTTP face of the AppServer: Starlette routes for every call of the contract.

Every API request goes through one pipeline, so each bad request gets one predictable answer
(SPEC section 1's order): 413 size -> 415 content type -> 401 token -> 400 body and fields ->
then the rooms layer's 403 / 404 / 403 / 409. Errors of the `AppServerError` tree become the
contract's Status body here and only here; anything else is logged and answered with a one-line 500.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request, cookie_parser
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import __version__
from .app_server import AppServer
from .auth import find_token
from .exceptions import (
    AppServerError,
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)
from .openapi import build_openapi
from .operations import ANONYMOUS, OPERATIONS, CallContext, Operation, served_operations
from .schemas import REQUESTS

__all__ = ["create_app", "error_response"]

log = logging.getLogger("livekit_demo.api")
CORS_HEADERS = ["Origin", "Content-Length", "Content-Type", "Authorization", "x-live-env"]


def _token_of(request: Request) -> str | None:
    return find_token(request.headers, request.query_params, request.cookies)


async def _read_body(headers: Mapping[str, str], stream: AsyncIterator[bytes], limit: int) -> bytes:
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
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_content_type(headers: Mapping[str, str], body: bytes) -> None:
    if not body:
        return
    content_type = headers.get("content-type")
    if content_type is None:
        return  # no Content-Type at all: read as JSON, as the clients expect
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


def _loads(body: bytes) -> Any:
    """What `json.loads(body)` answers, by orjson (several times faster) wherever the two agree.

    They agree on every document orjson accepts, except integers beyond 64 bits, which orjson
    reads as floats (a run of 19 digits sends the body to `json`), and nesting deeper than `json`
    can go, which orjson reads and `json` refuses (a body with many brackets goes to `json`).
    Whatever orjson refuses goes to `json` too, which accepts what it accepts (NaN, a BOM, UTF-16)
    and words the errors.
    """
    if body.count(b"[") + body.count(b"{") < _FEW_BRACKETS and _LONG_DIGITS.search(body) is None:
        try:
            return orjson.loads(body)
        except (orjson.JSONDecodeError, RecursionError):
            pass
    return json.loads(body)


_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_FEW_BRACKETS = 400  # nesting this deep is far from json's limit (the recursion limit, 1000)


def _dumps(value: Any) -> bytes:
    """The bytes Starlette's JSONResponse renders (UTF-8, no ASCII escapes, compact), by orjson when it can.

    orjson writes the same bytes for every string, integer, bool, null, list and dict (answers
    hold no floats: every field is typed and unknown ones are dropped). What it cannot write (a key
    that is not a string, an integer beyond 64 bits, a datetime, a lone surrogate, deep nesting)
    goes to `json`, which writes it or fails exactly as before.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


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
    server: AppServer,
    headers: Mapping[str, str],
    chunks: AsyncIterator[bytes],
    token_of: Callable[[], str | None],
    context: Callable[[str | None], CallContext],
    where: tuple[str, str],
) -> Answer:
    """One API call through SPEC 1's order of checks, whichever way the request came in."""
    schema = REQUESTS[op.schema] if op.schema else None
    try:
        body = await _read_body(headers, chunks, server.settings.server.max_body)
        _check_content_type(headers, body)
        token = token_of()
        actor = ANONYMOUS
        if op.authenticated:
            if token is None:
                raise Unauthorized("no token: send 'Authorization: Bearer <jwt>' (get one from /login)")
            actor = server.auth.verify(token)
        fields = schema.validate(_parse_json(body)) if schema is not None else {}
        call = context(token)
        if op.blocking or server.store.blocking:
            # A database call or password hashing would stall every other request: off the loop.
            result = await run_in_threadpool(op.handler, server, actor, fields, call)
        else:
            result = op.handler(server, actor, fields, call)
        return 200, _dumps(result), []
    except AppServerError as exc:
        return _error_answer(exc)
    except Exception:
        log.exception("internal error in %s %s", *where)
        return _error_answer(InternalError("internal server error; the server log has the details"))


def _error_answer(exc: AppServerError) -> Answer:
    headers = [(b"retry-after", str(exc.retry_after).encode())] if isinstance(exc, TooManyRequests) else []
    return exc.status, _dumps(exc.to_json()), headers


def _endpoint(op: Operation) -> Callable[[Request], Any]:
    """The Starlette endpoint of `op`: the way in for requests the direct path leaves to Starlette."""

    async def endpoint(request: Request) -> Response:
        server: AppServer = request.app.state.server
        started = time.perf_counter()

        def context(token: str | None) -> CallContext:
            client = request.client.host if request.client else ""
            return CallContext(client=client, token=token, base_url=str(request.base_url).rstrip("/"))

        where = (request.method, request.url.path)
        status, body, headers = await _answer(op, server, request.headers, request.stream(), lambda: _token_of(request), context, where)
        response = Response(body, status_code=status, media_type="application/json")
        response.raw_headers[:0] = headers  # before Content-Length and Content-Type, as JSONResponse puts them
        log.debug("%s %s -> %d in %.1f ms", *where, status, (time.perf_counter() - started) * 1000)
        return response

    endpoint.__name__ = op.name
    return endpoint


def _direct(op: Operation) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """`op` as a bare ASGI app: what `_endpoint` does, without Starlette's routing, middleware and
    Request objects, which cost a cheap call more than the call itself. CORS headers are added as
    `CORSMiddleware` adds them (`_app` configures both from `_CORS`)."""
    base_urls: dict[tuple[Any, ...], str] = {}

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter() if log.isEnabledFor(logging.DEBUG) else 0.0
        server: AppServer = scope["app"].state.server
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1")
            if name not in headers:  # the first of repeated headers, as Starlette's Headers.get answers
                headers[name] = value.decode("latin-1")

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                if message["type"] == "http.request":
                    if chunk := message.get("body", b""):
                        yield chunk
                    if not message.get("more_body", False):
                        return

        def token_of() -> str | None:
            query: Mapping[str, str] = QueryParams(scope["query_string"]) if scope.get("query_string") else {}
            cookies: dict[str, str] = {}
            if "cookie" in headers:
                for key, value in scope["headers"]:
                    if key == b"cookie":
                        cookies.update(cookie_parser(value.decode("latin-1")))
            return find_token(headers, query, cookies)

        def context(token: str | None) -> CallContext:
            client = scope.get("client")
            server_address = scope.get("server")
            key = (scope.get("scheme"), tuple(server_address) if server_address else None, headers.get("host"), scope.get("app_root_path"))
            base_url = base_urls.get(key)
            if base_url is None:
                if len(base_urls) >= 64:
                    base_urls.clear()  # the Host header is the client's to choose: stay bounded
                base_url = base_urls[key] = str(Request(scope).base_url).rstrip("/")
            return CallContext(client=client[0] if client else "", token=token, base_url=base_url)

        where = (scope["method"], scope["path"])
        status, body, extra = await _answer(op, server, headers, chunks(), token_of, context, where)
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
    """Starlette, with the API calls answered directly (see `_direct`) when the path is exact."""

    def __init__(self, *args: Any, direct: dict[tuple[str, str], Callable[[Scope, Receive, Send], Awaitable[None]]], **kwargs: Any) -> None:
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


def error_response(exc: AppServerError) -> JSONResponse:
    """The contract's Status body with the same HTTP status."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
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


def create_app(server: AppServer | None = None, **settings: Any) -> Starlette:
    """The Starlette app for an `AppServer` (made from `settings` when not given).

        >>> from starlette.testclient import TestClient
        >>> app = create_app(storage="memory")
        >>> TestClient(app).post("/login", json={"username": "ann", "password": "ann"}).json()["code"]
        200
    """
    if server is None:
        server = AppServer.from_settings(**settings)
    _guard_access_log()
    served = served_operations()
    routes = [Route(path, _endpoint(op), methods=["POST"]) for path, op in served]
    refresh = next(op for op in OPERATIONS if op.name == "refresh_token")
    direct = {("POST", path): _direct(op) for path, op in served}
    direct["GET", "/auth/refresh_token"] = _direct(refresh)
    routes += [
        Route("/auth/refresh_token", _endpoint(refresh), methods=["GET"]),
        Route("/", _root, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/swagger.json", _openapi, methods=["GET"]),
    ]
    middleware = [Middleware(CORSMiddleware, **_CORS)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        server.close()

    app = _App(
        direct=direct,
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.server = server
    return app
