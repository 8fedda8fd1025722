"""Every call's request body, and every answer's shape, as the contract spells them.

Requests are `validation.Schema`s (checked, and described in OpenAPI); answers are JSON Schemas used
only to describe what we serve. Field names, required-ness and limits come from SPEC section 1 and
`contract/swagger.yaml`.
"""

from __future__ import annotations

from .models import MEETING_MEMBER_FIELDS, METRICS_FIELDS, ROOMINFO_FIELDS
from .types import JSONDict
from .validation import Field, Schema, rtc_id_problem, shown, user_id_problem

__all__ = ["REQUESTS", "COMPONENTS", "MAX_MEMBERS", "MAX_LIKES", "EXTENDS_MAX_BYTES"]

MAX_MEMBERS = 16
EXTENDS_MAX_BYTES = 64 * 1024
DEVICE_TYPES = ("android", "ios", "web", "win", "mac")


def _mode_problem(value: int) -> str | None:
    if value == 2:
        return "mode 2 (PK) is in the contract's enum but not supported; use 0 (plain live) or 1 (co-streaming)"
    if value not in (0, 1):
        return f"must be 0 (plain live) or 1 (co-streaming), not {shown(value)}"
    return None


def _user(name: str, description: str, required: bool = True) -> Field:
    return Field(name, "string", required=required, description=description, check=user_id_problem, example="anchor1")


def _text(name: str, description: str, limit: int = 256) -> Field:
    return Field(name, "string", description=description, max_length=limit)


_ROOM_ID = Field("id", "string", required=True, description="the room's id", max_length=256)
_ACTING_USER = _user("user_id", "the acting user; must be the token's user unless that user is an admin")
_EXTENDS = Field(
    "extends",
    "string",
    description="a JSON object encoded as a string, kept as given (at most 64 KiB of UTF-8)",
    max_bytes=EXTENDS_MAX_BYTES,
    example='{"userNick":"Ann"}',
)

MEETING_MEMBER = Schema(
    "MeetingMember",
    (
        Field("user_id", "string", required=True, description="co-streaming user", check=rtc_id_problem, example="guest1"),
        _text("user_nick", "display name"),
        _text("user_avatar", "avatar URL", 1024),
        Field("camera_opened", "boolean", description="camera on"),
        Field("mic_opened", "boolean", description="microphone on"),
        _text("rtc_pull_url", "where others play this member; the server supplies it when empty", 2048),
    ),
    defaults={"user_nick": "", "user_avatar": "", "camera_opened": False, "mic_opened": False, "rtc_pull_url": ""},
)

_CHATROOM_ID = Field("chatroom_id", "string", required=True, description="the room's chat_id (here its id)", max_length=256)
_CHATROOM = Schema("ChatroomRequest", (_CHATROOM_ID,))
MAX_LIKES = 1000

_LOGIN = Schema(
    "LoginRequest",
    (
        Field("username", "string", required=True, check=user_id_problem, example="anchor1"),
        Field("password", "string", required=True, max_length=1024, example="anchor1"),
    ),
)
_ROOM_AS_USER = Schema("RoomRequest", (_ROOM_ID, _ACTING_USER))

REQUESTS: dict[str, Schema] = {
    "login": _LOGIN,
    "token": Schema(
        "TokenRequest",
        (
            _ACTING_USER,
            Field("device_id", "string", required=True, max_length=256, example="DEVICE-ID"),
            Field("device_type", "string", required=True, choices=DEVICE_TYPES, example="web"),
        ),
    ),
    "token_v2": Schema(
        "TokenV2Request",
        (
            _ACTING_USER,
            Field("device_id", "string", max_length=256),
            # Optional here, and "" is what the answer uses for "none", so a client may send it too.
            Field("device_type", "string", choices=(*DEVICE_TYPES, "")),
            Field("im_server", "array", max_items=8, description="IM generations wanted, e.g. aliyun_old, aliyun_new"),
            Field("role", "string", max_length=64),
        ),
    ),
    "create": Schema(
        "CreateRequest",
        (
            Field("title", "string", required=True, max_length=256, example="My first room"),
            _user("anchor", "the anchor's user id; must be the token's user unless that user is an admin"),
            _text("anchor_nick", "the anchor's display name"),
            _text("notice", "the room's notice"),
            _text("cover_url", "cover image URL"),
            _EXTENDS,
            Field("mode", "integer", description="0 plain live, 1 co-streaming", check=_mode_problem, default=0),
        ),
    ),
    "get": _ROOM_AS_USER,
    "list": Schema(
        "ListRequest",
        (
            _ACTING_USER,
            Field("page_num", "integer", required=True, minimum=1, example=1),
            Field("page_size", "integer", required=True, minimum=1, maximum=100, example=10),
            Field("status", "integer", choices=(-1, 0, 1, 2, 3), description="-1 or absent: all"),
        ),
    ),
    "update": Schema(
        "UpdateRequest",
        (
            _ROOM_ID,
            _text("title", "new title"),
            _text("notice", "new notice"),
            _EXTENDS,
            _text("cover_url", "new cover URL"),
            _text("anchor_nick", "new anchor display name"),
        ),
        description="Only fields present and non-empty overwrite.",
    ),
    "start": _ROOM_AS_USER,
    "pause": _ROOM_AS_USER,
    "stop": _ROOM_AS_USER,
    "delete": _ROOM_AS_USER,
    "getMeetingInfo": Schema("GetMeetingInfoRequest", (_ROOM_ID,)),
    "getStatistics": Schema("GetStatisticsRequest", (_CHATROOM_ID,)),
    "sendLikeMessage": Schema(
        "SendLikeMessageRequest",
        (
            _CHATROOM_ID,
            _user("user_id", "the liking user; must be the token's user unless that user is an admin"),
            Field("like_count", "integer", required=True, minimum=1, maximum=MAX_LIKES, description="likes in this batch", example=5),
        ),
    ),
    "muteChatroom": _CHATROOM,
    "cancelMuteChatroom": _CHATROOM,
    "isMuteChatroom": _CHATROOM,
    "getRtcAuthToken": Schema(
        "GetRtcAuthTokenRequest",
        (
            Field("room_id", "string", required=True, description="the RTC channel, as given (no room lookup)", check=rtc_id_problem, example="channel1"),
            _user("user_id", "the user the token is for; defaults to the token's user, and must be it unless that user is an admin", required=False),
        ),
    ),
    "getLiveJumpUrl": Schema(
        "GetLiveJumpUrlRequest",
        (
            _user("user_id", "the anchor handing the room over; must be the token's user unless that user is an admin"),
            Field("live_id", "string", required=True, description="the room's id", max_length=256),
            _text("user_name", "the anchor's display name"),
            Field("version", "string", max_length=64, description="the pusher app's version, passed through"),
        ),
    ),
    "verifyAuthToken": Schema(
        "VerifyAuthTokenRequest",
        (
            _user("user_id", "the user the hand-off token names"),
            Field("live_id", "string", required=True, description="the room the hand-off token names", max_length=256),
            _text("user_name", "checked against the token when given"),
            Field("app_server", "string", required=True, max_length=2048, description="the base URL in the jump URL"),
            Field("token", "string", required=True, max_length=4096, description="the hand-off token from the jump URL"),
        ),
    ),
    "heartbeat": Schema(
        "HeartbeatRequest",
        (_ROOM_ID, _user("user_id", "the watching viewer; must be the token's user unless that user is an admin")),
        description="Ours (SPEC 14): a viewer counts as online for 30 s after its last heartbeat.",
    ),
    "updateMeetingInfo": Schema(
        "MeetingActionRequest",
        (
            _ROOM_ID,
            Field("members", "array", required=True, max_items=MAX_MEMBERS, items=MEETING_MEMBER),
        ),
    ),
}


def _obj(properties: dict[str, JSONDict], required: tuple[str, ...] | None = None) -> JSONDict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": False,
    }


_STR: JSONDict = {"type": "string"}
_INT: JSONDict = {"type": "integer"}
_BOOL: JSONDict = {"type": "boolean"}
_TIME: JSONDict = {"type": "string", "description": "RFC 3339, UTC; 0001-01-01T00:00:00Z when not set"}


def _ref(name: str) -> JSONDict:
    return {"$ref": f"#/components/schemas/{name}"}


_ROOM_TYPES = {name: _STR for name in ROOMINFO_FIELDS} | {
    "created_at": _TIME, "updated_at": _TIME, "started_at": _TIME, "stopped_at": _TIME,
    "status": {"type": "integer", "enum": [0, 1, 2, 3], "description": "0 prepared, 1 live, 2 ended, 3 paused"},
    "mode": {"type": "integer", "enum": [0, 1]},
}  # fmt: skip

COMPONENTS: dict[str, JSONDict] = {
    "Status": _obj(
        {
            "code": {"type": "integer", "description": "the HTTP status again"},
            "message": _STR,
            "details": {
                "anyOf": [{"type": "null"}, {"type": "array", "items": _obj({"field": _STR, "problem": _STR})}]
            },
        }
    ),
    "AuthResponse": _obj({"code": {"type": "integer", "enum": [200]}, "expire": _STR, "token": _STR}),
    "TokenResponse": _obj({"access_token": _STR, "refresh_token": _STR}),
    "TokenV2Response": _obj(
        {
            "code": {"type": "integer", "enum": [200]},
            "aliyun_new_im": _obj(
                {
                    "app_id": _STR,
                    "app_sign": _STR,
                    "app_token": _STR,
                    "auth": _obj({"user_id": _STR, "nonce": _STR, "timestamp": _INT, "role": _STR}),
                }
            ),
            "aliyun_old_im": _ref("TokenResponse"),
        },
        required=("code", "aliyun_new_im"),
    ),
    "PushLiveInfo": _obj({"rtmp_url": _STR, "rts_url": _STR, "srt_url": _STR}),
    "PullLiveInfo": _obj({"rtmp_url": _STR, "rts_url": _STR, "flv_url": _STR, "hls_url": _STR}),
    "LinkInfo": _obj({"cdn_pull_info": _ref("PullLiveInfo"), "rtc_push_url": _STR, "rtc_pull_url": _STR}),
    "Metrics": _obj({name: _INT for name in METRICS_FIELDS}),
    "UserStatus": _obj({"mute": _BOOL, "mute_source": {"type": "array", "items": _STR}}),
    "VodInfo": _obj({"status": _INT, "playlist": {"type": "array", "items": {"type": "object"}}}),
    "RoomInfo": _obj(
        _ROOM_TYPES
        | {
            "pull_url_info": _ref("PullLiveInfo"),
            "push_url_info": _ref("PushLiveInfo"),
            "link_info": _ref("LinkInfo"),
            "metrics": _ref("Metrics"),
            "user_status": _ref("UserStatus"),
            "vod_info": _ref("VodInfo"),
        },
        required=(*ROOMINFO_FIELDS, "pull_url_info", "metrics", "user_status"),
    ),
    "MeetingMember": _obj(
        {name: (_BOOL if name.endswith("_opened") else _STR) for name in MEETING_MEMBER_FIELDS}
    ),
    "MeetingInfo": _obj({"members": {"type": "array", "items": _ref("MeetingMember")}}),
    "RoomList": {"type": "array", "items": _ref("RoomInfo")},
    "Statistics": _obj({"pv": _INT, "uv": _INT, "like_count": _INT, "online_count": _INT}),
    "LikeResponse": _obj({"code": {"type": "integer", "enum": [200]}, "count": _INT}),
    "MuteResponse": _obj({"code": {"type": "integer", "enum": [200]}, "mute": _BOOL}),
    "RtcAuthToken": _obj({"auth_token": _STR, "timestamp": _INT}),
    "LiveJumpUrl": _obj({"live_jump_url": _STR}),
    "VerifyAuthTokenResponse": _obj({"login_token": _STR}),
    "HeartbeatResponse": _obj({"code": {"type": "integer", "enum": [200]}, "online_count": _INT}),
    "CallbackResponse": _obj({"code": {"type": "integer", "enum": [200]}}),
}
