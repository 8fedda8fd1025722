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
    "served_operations", "callback_paths", "STORE_READS", "STORE_WRITES", "STORE_FREE",
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


def _mute(muted: bool) -> Handler:
    def handler(server: AppServer, actor: Identity, body: JSONDict, _: CallContext) -> Any:
        return server.rooms.set_muted(actor, body["chatroom_id"], muted)

    return handler


def _rtc_auth_token(server: AppServer, actor: Identity, body: JSONDict, _: CallContext) -> Any:
    user_id = body.get("user_id", actor.user_id)
    server.rooms.check_acting_as(actor, user_id, "user_id")
    return server.handoff.rtc_auth_token(body["room_id"], user_id)


def _live_jump_url(server: AppServer, actor: Identity, body: JSONDict, call: CallContext) -> Any:
    server.rooms.check_acting_as(actor, body["user_id"], "user_id")
    server.rooms.check_anchor_of(actor, body["live_id"], "hand it to the pusher app")
    return server.handoff.jump_url(call.base_url, body["user_id"], body["live_id"], body.get("user_name", ""), body.get("version", ""))


def _verify_auth_token(server: AppServer, _: Identity, body: JSONDict, call: CallContext) -> Any:
    return server.handoff.verify(body["token"], body["user_id"], body["live_id"], body["app_server"], body.get("user_name"))


def _lifecycle(action: str) -> Handler:
    def handler(server: AppServer, actor: Identity, body: JSONDict, call: CallContext) -> Any:
        return server.rooms.transition(action, actor, body["id"], body["user_id"], host=call.host)

    return handler


OPERATIONS: tuple[Operation, ...] = (
    Operation("login", "Log in; get a JWT", "login", _login, "AuthResponse", authenticated=False, statuses=(400, 401, 429), blocking=True),
    Operation("refresh_token", "Trade a token inside its refresh window for a new one", None, _refresh, "AuthResponse", authenticated=False, statuses=(401,)),
    Operation("token", "Get an IM token", "token", _token_v1, "TokenResponse", statuses=(400, 401, 403)),
    Operation("create", "Create a room", "create", lambda s, a, b, c: s.rooms.create_json(a, b, host=c.host), "RoomInfo", statuses=(400, 401, 403, 409)),
    Operation("get", "One room, with its URLs and metrics; counts a visit", "get", lambda s, a, b, c: s.rooms.get_json(a, b["id"], b["user_id"], host=c.host), "RoomInfo", statuses=(400, 401, 403, 404)),
    Operation("list", "Rooms, newest first, paged", "list", lambda s, a, b, c: s.rooms.list_json(a, b["user_id"], b["page_num"], b["page_size"], b.get("status"), host=c.host), "RoomList", statuses=(400, 401, 403)),
    Operation("update", "Change title, notice, extends, cover or nick", "update", lambda s, a, b, c: s.rooms.update(a, b["id"], b, host=c.host), "RoomInfo", statuses=(400, 401, 403, 404)),
    Operation("start", "Go live (or resume, or re-open)", "start", _lifecycle("start"), "RoomInfo"),
    Operation("pause", "Pause a live room", "pause", _lifecycle("pause"), "RoomInfo"),
    Operation("stop", "End the live", "stop", _lifecycle("stop"), "RoomInfo"),
    Operation("delete", "Remove a room; answers it as it was", "delete", lambda s, a, b, c: s.rooms.delete(a, b["id"], b["user_id"], host=c.host), "RoomInfo", statuses=(400, 401, 403, 404)),
    Operation("getMeetingInfo", "Co-streaming members ([] on a room whose mode is not 1)", "getMeetingInfo", lambda s, a, b, c: s.rooms.get_meeting(a, b["id"]), "MeetingInfo", statuses=(400, 401, 404)),
    Operation("updateMeetingInfo", "Replace the co-streaming members", "updateMeetingInfo", lambda s, a, b, c: s.rooms.update_meeting(a, b["id"], b["members"]), "MeetingInfo"),
    # SPEC 11: the audience calls the mobile clients make (chatroom_id is a room's chat_id, here its id).
    Operation("getStatistics", "A room's pv, uv, like_count and online_count (counts no visit)", "getStatistics", lambda s, a, b, c: s.rooms.statistics(a, b["chatroom_id"]), "Statistics", statuses=(400, 401, 404)),
    Operation("sendLikeMessage", "Add likes to a room; answers the room's like total", "sendLikeMessage", lambda s, a, b, c: s.rooms.send_likes(a, b["chatroom_id"], b["user_id"], b["like_count"]), "LikeResponse", statuses=(400, 401, 403, 404)),
    Operation("muteChatroom", "Mute a room's chat for everyone but the anchor (anchor or admin)", "muteChatroom", _mute(True), "MuteResponse", statuses=(400, 401, 403, 404)),
    Operation("cancelMuteChatroom", "Unmute a room's chat (anchor or admin)", "cancelMuteChatroom", _mute(False), "MuteResponse", statuses=(400, 401, 403, 404)),
    Operation("isMuteChatroom", "Whether a room's chat is muted", "isMuteChatroom", lambda s, a, b, c: s.rooms.is_muted(a, b["chatroom_id"]), "MuteResponse", statuses=(400, 401, 404)),
    # SPEC 12: hand-offs.
    Operation("getRtcAuthToken", "An RTC auth token for a channel and the caller", "getRtcAuthToken", _rtc_auth_token, "RtcAuthToken", statuses=(400, 401, 403)),
    Operation("getLiveJumpUrl", "Hand a room to the PC pusher app: an auipusher:// link with a one-time token", "getLiveJumpUrl", _live_jump_url, "LiveJumpUrl", statuses=(400, 401, 403, 404)),
    Operation("verifyAuthToken", "Trade a hand-off token (once) for a login token", "verifyAuthToken", _verify_auth_token, "VerifyAuthTokenResponse", authenticated=False, statuses=(400, 401)),
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


STORE_WRITES = frozenset({"create", "update", "start", "pause", "stop", "delete", "updateMeetingInfo"})
"""Calls that write to the room store: they can meet a full disk (507)."""
STORE_READS = frozenset({"get", "list", "getMeetingInfo", "heartbeat"})
"""Calls that only read the room store."""
STORE_FREE = frozenset({"login", "refresh_token", "token"})
"""Calls that never touch the room store: a database that is down or hung must not hold them up."""
