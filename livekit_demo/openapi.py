"""The served OpenAPI 3.1 document, generated from what is really served.

Built from the api layer's operation table and the request/answer schemas, so it cannot drift
from the code: every path, its request body, and every status it can answer with its body.
"""

from __future__ import annotations

from typing import Any

from . import __version__
from .callbacks import PUSH_EVENT_FIELDS, SIGNATURE_HEADER, TIMESTAMP_HEADER, push_event_schema
from .operations import PUSH_CALLBACK, STORE_READS, STORE_WRITES, Operation, callback_paths
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
    if op.ours:
        # Clients of the original never send it: say so where a reader of the document looks.
        entry["description"] = "Ours, not the original AppServer's: livekit_demo serves this call in addition to the contract."
        entry["x-livekit-demo-ours"] = True
    if op.authenticated or op.name == "refresh_token":
        entry["security"] = [{"bearer": []}, {"query_token": []}, {"cookie_jwt": []}]
    return entry


_CALLBACK_STATUSES = {
    400: "A signature header is missing, or a parameter is missing or bad (`details` names each)",
    401: "ALI-LIVE-SIGNATURE does not match, or ALI-LIVE-TIMESTAMP is more than 300 s from the server's clock (a replay)",
    413: STATUS_MEANINGS[413],
    415: "A POST body whose Content-Type is neither application/json nor application/x-www-form-urlencoded",
    500: STATUS_MEANINGS[500],
}


def _push_callback(path: str, method: str, max_body: int) -> JSONDict:
    """The CDN's push callback: signed headers instead of a JWT; query, form or JSON parameters."""
    op = PUSH_CALLBACK
    version = "v2" if "/v2/" in path else "v1"
    responses: dict[str, Any] = {
        "200": {
            "description": "Accepted (an unknown stream too, so the CDN stops retrying); repeats change nothing",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{op.response}"}}},
        }
    }
    for status, meaning in _CALLBACK_STATUSES.items():
        if method == "get" and status == 415:
            continue
        responses[str(status)] = {"description": meaning, "content": _status_ref()}
    headers = [
        {"name": TIMESTAMP_HEADER, "in": "header", "required": True, "schema": {"type": "string"}, "description": "unix seconds; within 300 s of the server's clock"},
        {"name": SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string"},
         "description": "md5_hex(callback_host|timestamp|callback_auth_key)"},
    ]  # fmt: skip
    entry: JSONDict = {
        "operationId": f"{version}_{op.name}_{method}",
        "summary": op.summary,
        "tags": [version],
        "parameters": headers,
        "responses": responses,
    }
    if method == "get":
        entry["parameters"] = headers + [
            {"name": name, "in": "query", "required": name in ("action", "id"), "schema": {"type": "string"}, "description": text}
            for name, (_, text) in PUSH_EVENT_FIELDS.items()
        ]
    else:
        schema = push_event_schema()
        form = {**schema, "properties": {k: {**v, "type": "string"} for k, v in schema["properties"].items()}}
        entry["requestBody"] = {
            "required": True,
            "description": f"At most {max_body} bytes; query parameters count too; unknown ones (usrargs, node) are ignored",
            "content": {"application/json": {"schema": schema}, "application/x-www-form-urlencoded": {"schema": form}},
        }
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
    for path in callback_paths():
        paths[path] = {method: _push_callback(path, method, max_body) for method in ("get", "post")}
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
