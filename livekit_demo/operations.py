"""The operation table: every call of the contract, what it reads and what it does.

The api layer serves these (one route per operation and prefix) and openapi describes them, so both
import this module and neither imports the other. A handler never sees the HTTP framework: it gets
the server, the acting identity, the validated body and a `CallContext` with the few facts of the
request some calls need (the caller's address, the token sent, the base URL the caller used).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .app_server import AppServer
from .auth import Identity
from .callbacks import CALLBACK_NAME, PushEvent
from .exceptions import Unauthorized
from .types import JSONDict

__all__ = [
    "CallContext", "Operation", "OPERATIONS", "TOKEN_V2", "PUSH_CALLBACK", "API_PREFIXES", "ANONYMOUS",
    "served_operations", "callback_paths",
]  # fmt: skip

API_PREFIXES = ("/api/v1/live", "/api/v2/live")


@dataclass(frozen=True)
class CallContext:
    """What a handler may know of the request, without the HTTP framework."""

    client: str = ""  # the caller's address ("" when unknown)
    token: str | None = None  # the token sent (header, query or cookie), if any
    base_url: str = ""  # the base URL the caller reached us at, without a trailing slash
    host: str = ""  # the host name or address the caller reached us at, without the port ("" when unknown)


Handler = Callable[[AppServer, Identity, JSONDict, CallContext], Any]
"""What a call does: given the server, the acting identity, the validated body and the call's context."""

ANONYMOUS = Identity("")
"""The actor of the calls that need no token (login, refresh): it names no user and is never an admin."""


@dataclass(frozen=True)
class Operation:
    """One call of the contract: its name, body schema, whether it needs a token, and what it does."""

    name: str
    summary: str
    schema: str | None  # key of schemas.REQUESTS; None: no body (refresh)
    handler: Handler
    response: str  # component name of the 200 answer
    authenticated: bool = True
    statuses: tuple[int, ...] = field(default=(400, 401, 403, 404, 409))
    # True when the handler may block the calling thread whatever the store (password hashing):
    # the api layer then runs it off the event loop where threads exist.
    blocking: bool = False
    # True for a call of ours that no original AppServer serves (the OpenAPI marks it so).
    ours: bool = False


def _login(server: AppServer, _: Identity, body: JSONDict, call: CallContext) -> Any:
    return server.auth.login(body["username"], body["password"], call.client)


def _refresh(server: AppServer, _: Identity, body: JSONDict, call: CallContext) -> Any:
    if call.token is None:
        raise Unauthorized("no token: send the token to refresh as 'Authorization: Bearer <jwt>'")
    return server.auth.refresh(call.token)


def _token_v1(server: AppServer, actor: Identity, body: JSONDict, _: CallContext) -> Any:
    server.rooms.check_acting_as(actor, body["user_id"], "user_id")
    return server.im.v1(body["user_id"], body["device_id"], body["device_type"])


def _token_v2(server: AppServer, actor: Identity, body: JSONDict, _: CallContext) -> Any:
    server.rooms.check_acting_as(actor, body["user_id"], "user_id")
    return server.im.v2(
        body["user_id"],
        body.get("role", ""),
        body.get("im_server"),
        device_id=body.get("device_id", ""),
        device_type=body.get("device_type", ""),
    )


def _lifecycle(action: str) -> Handler:
    def handler(server: AppServer, actor: Identity, body: JSONDict, call: CallContext) -> Any:
        return server.rooms.transition(action, actor, body["id"], body["user_id"], host=call.host)

    return handler


OPERATIONS: tuple[Operation, ...] = (
    Operation("login", "Log in; get a JWT", "login", _login, "AuthResponse", authenticated=False, statuses=(400, 401, 429), blocking=True),
    Operation("refresh_token", "Trade a token inside its refresh window for a new one", None, _refresh, "AuthResponse", authenticated=False, statuses=(401,)),
    Operation("token", "Get an IM token", "token", _token_v1, "TokenResponse", statuses=(400, 401, 403)),
    Operation("create", "Create a room", "create", lambda s, a, b, c: s.rooms.create(a, b, host=c.host), "RoomInfo", statuses=(400, 401, 403, 409)),
    Operation("get", "One room, with its URLs and metrics; counts a visit", "get", lambda s, a, b, c: s.rooms.get(a, b["id"], b["user_id"], host=c.host), "RoomInfo", statuses=(400, 401, 403, 404)),
    Operation("list", "Rooms, newest first, paged", "list", lambda s, a, b, c: s.rooms.list(a, b["user_id"], b["page_num"], b["page_size"], b.get("status"), host=c.host), "RoomList", statuses=(400, 401, 403)),
    Operation("update", "Change title, notice, extends, cover or nick", "update", lambda s, a, b, c: s.rooms.update(a, b["id"], b, host=c.host), "RoomInfo", statuses=(400, 401, 403, 404)),
    Operation("start", "Go live (or resume, or re-open)", "start", _lifecycle("start"), "RoomInfo"),
    Operation("pause", "Pause a live room", "pause", _lifecycle("pause"), "RoomInfo"),
    Operation("stop", "End the live", "stop", _lifecycle("stop"), "RoomInfo"),
    Operation("delete", "Remove a room; answers it as it was", "delete", lambda s, a, b, c: s.rooms.delete(a, b["id"], b["user_id"], host=c.host), "RoomInfo", statuses=(400, 401, 403, 404)),
    Operation("getMeetingInfo", "Co-streaming members ([] on a room whose mode is not 1)", "getMeetingInfo", lambda s, a, b, c: s.rooms.get_meeting(a, b["id"]), "MeetingInfo", statuses=(400, 401, 404)),
    Operation("updateMeetingInfo", "Replace the co-streaming members", "updateMeetingInfo", lambda s, a, b, c: s.rooms.update_meeting(a, b["id"], b["members"]), "MeetingInfo"),
    Operation("heartbeat", "A viewer is still watching: online for 30 s more; answers the room's online count", "heartbeat", lambda s, a, b, c: s.rooms.heartbeat(a, b["id"], b["user_id"]), "HeartbeatResponse", statuses=(400, 401, 403, 404), ours=True),
)  # fmt: skip


def _follow_stream(server: AppServer, _: Identity, body: JSONDict, call: CallContext) -> Any:
    event = PushEvent(**body)
    when = None
    if event.time is not None:
        try:
            when = datetime.fromtimestamp(event.time, timezone.utc)
        except (OverflowError, OSError, ValueError):
            when = None  # a time no calendar holds: keep the event, stamped with ours
    server.rooms.follow_stream(event.action, event.stream, ip=event.ip or call.client, time=when)
    return {"code": 200}


PUSH_CALLBACK = Operation(
    CALLBACK_NAME, "The CDN says a stream was published or ended; the room follows (signed with ALI-LIVE-* headers, no JWT)",
    "push_event", _follow_stream, "CallbackResponse", authenticated=False, statuses=(400, 401),
)  # fmt: skip
"""Served with GET (query) and POST (form or JSON) by its own small path in api: it is not a JSON-only call."""

TOKEN_V2 = Operation("token", "Get IM tokens (v2 shape)", "token_v2", _token_v2, "TokenV2Response", statuses=(400, 401, 403))


def served_operations() -> list[tuple[str, Operation]]:
    """(path, operation) for every API path served, v1 and v2."""
    served: list[tuple[str, Operation]] = [("/login", OPERATIONS[0])]
    for prefix in API_PREFIXES:
        for op in OPERATIONS:
            chosen = TOKEN_V2 if (prefix.endswith("v2/live") and op.name == "token") else op
            served.append((f"{prefix}/{op.name}", chosen))
    return served


def callback_paths() -> list[str]:
    """The paths of the CDN's push callback, v1 and v2."""
    return [f"{prefix}/{CALLBACK_NAME}" for prefix in API_PREFIXES]
