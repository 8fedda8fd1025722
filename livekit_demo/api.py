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
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

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
request_log = logging.getLogger("livekit_demo.requests")
"""One INFO line per call: method, path, status, milliseconds, user (never a token or a body)."""
CORS_HEADERS = ["Origin", "Content-Length", "Content-Type", "Authorization", "x-live-env"]


def _token_of(request: Request) -> str | None:
    return find_token(request.headers, request.query_params, request.cookies)


def _call_context(request: Request) -> CallContext:
    return CallContext(
        client=request.client.host if request.client else "",
        token=_token_of(request),
        base_url=str(request.base_url).rstrip("/"),
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it passes `limit`, before reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if too_big:
            raise PayloadTooLarge(f"request body of {declared} bytes is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_content_type(request: Request, body: bytes) -> None:
    if not body:
        return
    content_type = request.headers.get("content-type")
    if content_type is None:
        return  # no Content-Type at all: read as JSON, as the clients expect
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {media or 'empty'!r}")


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest("request body is empty; send a JSON object", details=[{"field": "body", "problem": "is empty"}])
    try:
        value = json.loads(body)
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


def _endpoint(op: Operation) -> Callable[[Request], Any]:
    schema = REQUESTS[op.schema] if op.schema else None

    async def endpoint(request: Request) -> Response:
        server: AppServer = request.app.state.server
        started = time.perf_counter()
        user = "-"
        try:
            body = await _read_body(request, server.settings.server.max_body)
            _check_content_type(request, body)
            actor = ANONYMOUS
            if op.authenticated:
                token = _token_of(request)
                if token is None:
                    raise Unauthorized("no token: send 'Authorization: Bearer <jwt>' (get one from /login)")
                actor = server.auth.verify(token)
                user = actor.user_id
            fields = schema.validate(_parse_json(body)) if schema is not None else {}
            if not op.authenticated and isinstance(fields.get("username"), str):
                user = fields["username"]  # /login: who is trying, shown even when it fails
            call = _call_context(request)
            if op.blocking or server.store.blocking:
                # A database call or password hashing would stall every other request: off the loop.
                result = await run_in_threadpool(op.handler, server, actor, fields, call)
            else:
                result = op.handler(server, actor, fields, call)
            response: Response = JSONResponse(result)
        except AppServerError as exc:
            response = error_response(exc)
        except Exception:
            log.exception("internal error in %s %s", request.method, request.url.path)
            response = error_response(InternalError("internal server error; the server log has the details"))
        if request_log.isEnabledFor(logging.INFO):
            # The path only: a ?token= query string never reaches the log.
            elapsed = (time.perf_counter() - started) * 1000
            request_log.info("%s %s %d %.1f ms user=%s", request.method, request.url.path, response.status_code, elapsed, user)
        return response

    endpoint.__name__ = op.name
    return endpoint


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
    routes = [Route(path, _endpoint(op), methods=["POST"]) for path, op in served_operations()]
    refresh = next(op for op in OPERATIONS if op.name == "refresh_token")
    routes += [
        Route("/auth/refresh_token", _endpoint(refresh), methods=["GET"]),
        Route("/", _root, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/swagger.json", _openapi, methods=["GET"]),
    ]
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_methods=["POST", "GET", "OPTIONS"],
            allow_headers=CORS_HEADERS,
            allow_credentials=False,
        )
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        server.close()

    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.server = server
    return app
