"""The served OpenAPI 3.1 document, generated from what is really served.

Built from the api layer's operation table and the request/answer schemas, so it cannot drift
from the code: every path, its request body, and every status it can answer with its body.
"""

from __future__ import annotations

from typing import Any

from . import __version__
from .operations import STORE_READS, STORE_WRITES, Operation
from .schemas import COMPONENTS, REQUESTS
from .types import JSONDict

__all__ = ["build_openapi", "STATUS_MEANINGS"]

STATUS_MEANINGS = {
    400: "The body is not a JSON object, or a field is missing, empty, of the wrong type or out of range; `details` names each",
    401: "No token, or a malformed, tampered, expired or wrongly signed token; or a wrong username or password",
    403: "Acting for someone else, or not the room's anchor",
    404: "No such room",
    409: "The lifecycle does not allow this call from the room's status, or the room's mode is not 1",
    413: "The body is larger than the limit",
    415: "The body's Content-Type is not application/json",
    429: "Too many failed logins; wait for Retry-After seconds",
    500: "A server fault, or a stored row this server cannot serve; the message says which",
    503: "The database is down or does not answer; try again after Retry-After seconds",
    507: "The disk (or the database) is full; nothing was written",
}


def _status_ref() -> JSONDict:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}


def _operation(path: str, op: Operation, max_body: int) -> JSONDict:
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.response}"}}},
        }
    }
    # Every API endpoint reads its body under the size limit and checks a sent body's Content-Type,
    # refresh too (it needs no body, but one sent as text/plain is a 415), so all can answer 413 and 415.
    statuses = set(op.statuses) | {413, 415, 500}
    if op.name in STORE_READS | STORE_WRITES:
        statuses.add(503)  # with a SQL store, a database that is down or hung
    if op.name in STORE_WRITES:
        statuses.add(507)
    for status in sorted(statuses):
        responses[str(status)] = {"description": STATUS_MEANINGS[status], "content": _status_ref()}
    for status in (429, 503):
        if status in statuses:
            responses[str(status)]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    version = "v2" if "/v2/" in path else "v1"
    entry: JSONDict = {
        "operationId": f"{version}_{op.name}" if path != "/login" else "login_root",
        "summary": op.summary,
        "tags": [version if path != "/login" else "login"],
        "responses": responses,
    }
    if op.schema is not None:
        entry["requestBody"] = {
            "required": True,
            "description": f"At most {max_body} bytes; unknown fields are ignored; null counts as absent",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{REQUESTS[op.schema].name}"}}},
        }
    if op.authenticated or op.name == "refresh_token":
        entry["security"] = [{"bearer": []}, {"query_token": []}, {"cookie_jwt": []}]
    return entry


def build_openapi(served: list[tuple[str, Operation]], max_body: int) -> JSONDict:
    """The document for the (path, operation) pairs the app serves."""
    schemas: dict[str, JSONDict] = dict(COMPONENTS)
    for schema in REQUESTS.values():
        schemas[schema.name] = schema.openapi()
    paths: dict[str, JSONDict] = {path: {"post": _operation(path, op, max_body)} for path, op in served}
    refresh = next(op for path, op in served if path.endswith("/refresh_token"))
    get_refresh = _operation("/auth/refresh_token", refresh, max_body)
    get_refresh["operationId"] = "auth_refresh_token"
    paths["/auth/refresh_token"] = {"get": get_refresh}
    paths["/"] = {
        "get": {
            "operationId": "root",
            "summary": "Which base URL to enter in a client",
            "responses": {"200": {"description": "one line of text", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "livekit_demo AppServer",
            "version": __version__,
            "description": "The interactive-live AppServer contract (AUI Kits), as served by livekit_demo. "
            "Success is HTTP 200 with the bare model; failure is a status >= 400 with a Status body.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "query_token": {"type": "apiKey", "in": "query", "name": "token"},
                "cookie_jwt": {"type": "apiKey", "in": "cookie", "name": "jwt"},
            },
        },
    }
