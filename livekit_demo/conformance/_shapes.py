"""Shape rules for the answers of the contract, as pure functions that list what is wrong.

Each function takes one answered object (and what the checker knows about who asked) and returns
problems as short sentences; an empty list means the rule holds. The field lists come from SPEC
section 3 and the swagger definitions, not from our implementation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..signing import explain_url

__all__ = [
    "BASE_FIELDS",
    "DYNAMIC_PARTS",
    "ZERO_TIME",
    "Sample",
    "base_field_problems",
    "cdn_url_problems",
    "integer_problems",
    "is_rfc3339",
    "link_info_problems",
    "meeting_info_problems",
    "metrics_problems",
    "pull_url_problems",
    "push_url_problems",
    "rtc_url_problems",
    "srt_form_problems",
    "string_problems",
    "time_problems",
    "user_status_problems",
    "utc_time_problems",
    "vod_info_problems",
]

BASE_FIELDS = (
    "id", "created_at", "updated_at", "started_at", "stopped_at", "title", "notice", "cover_url", "anchor_id",
    "anchor_nick", "extends", "status", "mode", "chat_id", "meeting_id", "vod_id", "meeting_info",
)  # fmt: skip
DYNAMIC_PARTS = ("pull_url_info", "push_url_info", "link_info", "metrics", "user_status", "vod_info")
TIME_FIELDS = ("created_at", "updated_at", "started_at", "stopped_at")
STRING_FIELDS = tuple(f for f in BASE_FIELDS if f not in ("status", "mode"))
ZERO_TIME = "0001-01-01T00:00:00Z"
PULL_KEYS = {"rtmp_url": "rtmp", "rts_url": "artc", "flv_url": "http", "hls_url": "http"}
PUSH_KEYS = {"rtmp_url": "rtmp", "rts_url": "artc", "srt_url": "srt"}
METRICS_KEYS = {"like_count", "online_count", "pv", "uv"}
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_RTC_HOST = "live.aliyun.com"


@dataclass
class Sample:
    """One RoomInfo as answered, with what the checker knows: which call, who asked, is push expected."""

    label: str
    info: dict[str, Any]
    asker: str
    push_expected: bool


def is_rfc3339(text: Any) -> bool:
    """An RFC 3339 date-time with an offset (Z or +hh:mm) that names a real moment."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:
        return False
    return True


def base_field_problems(info: dict[str, Any]) -> list[str]:
    """Every field of the original's RoomInfo present; nothing beyond them and the dynamic parts."""
    problems = [f"{name} is missing" for name in BASE_FIELDS if name not in info]
    extra = sorted(set(info) - set(BASE_FIELDS) - set(DYNAMIC_PARTS))
    if extra:
        problems.append(f"unexpected keys {extra} (anchor and pk_id are stored, not answered)")
    return problems


def string_problems(info: dict[str, Any]) -> list[str]:
    """String fields are JSON strings, never null (the iOS client asserts on types)."""
    return [f"{name} is {info[name]!r}, not a string" for name in STRING_FIELDS if name in info and not isinstance(info[name], str)]


def integer_problems(info: dict[str, Any]) -> list[str]:
    """`status` in 0..3 and `mode` in 0/1, as JSON integers."""
    problems = []
    for name, allowed in (("status", (0, 1, 2, 3)), ("mode", (0, 1))):
        value = info.get(name)
        if type(value) is not int or value not in allowed:
            problems.append(f"{name} is {value!r}, not an integer in {allowed}")
    return problems


def time_problems(info: dict[str, Any]) -> list[str]:
    """The four times are RFC 3339 with an offset, or the zero time; created_at is set."""
    problems = [f"{name} is {info.get(name)!r}, not an RFC 3339 time" for name in TIME_FIELDS if not is_rfc3339(info.get(name))]
    if info.get("created_at") == ZERO_TIME:
        problems.append("created_at is the zero time")
    if info.get("status") == 0 and is_rfc3339(info.get("started_at")) and info["started_at"] != ZERO_TIME:
        problems.append(f"started_at is {info['started_at']!r} on a room never started (expected {ZERO_TIME})")
    return problems


def utc_time_problems(info: dict[str, Any]) -> list[str]:
    """Our stricter form: UTC, whole seconds, `Z` (`2026-11-28T10:15:00Z`)."""
    return [f"{name} is {info.get(name)!r}, not like 2026-11-28T10:15:00Z" for name in TIME_FIELDS if not (isinstance(info.get(name), str) and _UTC_SECONDS.fullmatch(info[name]))]


def metrics_problems(info: dict[str, Any]) -> list[str]:
    """`metrics` always present: exactly like_count, online_count, pv, uv, as integers."""
    metrics = info.get("metrics")
    if not isinstance(metrics, dict):
        return [f"metrics is {'missing' if 'metrics' not in info else repr(metrics)}, not an object"]
    problems = []
    if set(metrics) != METRICS_KEYS:
        problems.append(f"metrics keys are {sorted(metrics)}, not exactly {sorted(METRICS_KEYS)}")
    problems += [f"metrics.{k} is {v!r}, not a non-negative integer" for k, v in metrics.items() if type(v) is not int or v < 0]
    return problems


def user_status_problems(info: dict[str, Any]) -> list[str]:
    """`user_status` always present: {mute: bool, mute_source: [strings]}."""
    status = info.get("user_status")
    if not isinstance(status, dict):
        return [f"user_status is {'missing' if 'user_status' not in info else repr(status)}, not an object"]
    problems = []
    if not isinstance(status.get("mute"), bool):
        problems.append(f"user_status.mute is {status.get('mute')!r}, not a boolean")
    source = status.get("mute_source")
    if not (isinstance(source, list) and all(isinstance(s, str) for s in source)):
        problems.append(f"user_status.mute_source is {source!r}, not a list of strings")
    return problems


def cdn_url_problems(url: Any, name: str, scheme: str, stream: str, *, app: str | None = None, extension: str = "") -> list[str]:
    """One CDN URL: the scheme, `/{app}/{stream}{extension}`, and a well-formed auth_key if any."""
    if not isinstance(url, str) or not url:
        return [f"{name} is {url!r}, not a URL"]
    parts = urlsplit(url)
    if not (parts.scheme == scheme or (scheme == "http" and parts.scheme in ("http", "https"))):
        return [f"{name} {url!r} does not start with {scheme}://"]
    segments = parts.path.strip("/").split("/")
    want = f"{stream}{extension}"
    if len(segments) != 2 or segments[1] != want or (app is not None and segments[0] != app):
        return [f"{name} {url!r}: path is not /{app or '<app>'}/{want}"]
    if explain_url(url).verdict == "bad signature":
        return [f"{name} {url!r}: auth_key is not exp-rand-uid-md5hex"]
    return []


def pull_url_problems(info: dict[str, Any], stream: str | None = None, *, app: str | None = None, where: str = "pull_url_info") -> list[str]:
    """The four pull URLs (rtmp, rts, flv, hls) for the room's stream."""
    pull = info.get(where) if where == "pull_url_info" else info
    if not isinstance(pull, dict):
        return [f"{where} is {'missing' if pull is None else repr(pull)}, not an object"]
    stream = stream or str(info.get("id"))
    problems = []
    for key, scheme in PULL_KEYS.items():
        extension = {"flv_url": ".flv", "hls_url": ".m3u8"}.get(key, "")
        problems += cdn_url_problems(pull.get(key), f"{where}.{key}", scheme, stream, app=app, extension=extension)
    return problems


def push_url_problems(sample: Sample) -> list[str]:
    """`push_url_info` with rtmp, rts, srt URLs for the anchor; absent for anyone else."""
    info = sample.info
    push = info.get("push_url_info")
    if not sample.push_expected:
        return [f"push_url_info is present for {sample.asker!r}, who is not the anchor"] if "push_url_info" in info else []
    if not isinstance(push, dict):
        return [f"push_url_info is {'missing' if push is None else repr(push)}, not an object (the anchor needs it)"]
    problems = []
    for key, scheme in PUSH_KEYS.items():
        if key == "srt_url":
            url = push.get(key)
            if not (isinstance(url, str) and url.startswith("srt://")):
                problems.append(f"push_url_info.srt_url is {url!r}, not an srt:// URL")
            continue
        problems += cdn_url_problems(push.get(key), f"push_url_info.{key}", scheme, str(info.get("id")))
    return problems


def srt_form_problems(info: dict[str, Any]) -> list[str]:
    """The documented SRT form: `srt://{push}:1105?streamid=#!::h={push},r=/{app}/{id}?auth_key=...,m=publish`."""
    push = info.get("push_url_info")
    if not isinstance(push, dict):
        return []
    url = push.get("srt_url")
    pattern = rf"srt://([^/:?]+):1105\?streamid=#!::h=\1,r=/[^/?,]+/{re.escape(str(info.get('id')))}(\?auth_key=[^,]+)?,m=publish"
    if not (isinstance(url, str) and re.fullmatch(pattern, url)):
        return [f"push_url_info.srt_url is {url!r}, not srt://{{push}}:1105?streamid=#!::h={{push}},r=/{{app}}/{{id}}?auth_key=...,m=publish"]
    return []


def rtc_url_problems(url: Any, name: str, direction: str, channel: str, user: str | None) -> list[str]:
    """`artc://live.aliyun.com/{push|play}/{channel}?sdkAppId&userId&timestamp&token` for `user`."""
    if not isinstance(url, str):
        return [f"{name} is {url!r}, not a URL"]
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme != "artc" or parts.hostname != _RTC_HOST or parts.path != f"/{direction}/{channel}":
        return [f"{name} {url!r} is not artc://{_RTC_HOST}/{direction}/{channel}?..."]
    missing = [k for k in ("sdkAppId", "userId", "timestamp", "token") if not query.get(k)]
    if missing:
        return [f"{name} {url!r} lacks {missing}"]
    if user is not None and query["userId"] != user:
        return [f"{name} is for userId {query['userId']!r}, not {user!r}"]
    if not re.fullmatch(r"\d+", query["timestamp"]) or not re.fullmatch(r"[0-9a-f]{64}", query["token"]):
        return [f"{name} {url!r}: timestamp is not digits or token not 64 hex digits"]
    return []


def link_info_problems(sample: Sample) -> list[str]:
    """Mode 1: `link_info` with the CDN mix and the asker's RTC URLs. Mode 0: no key at all."""
    info = sample.info
    if info.get("mode") != 1:
        return ["link_info is present on a mode 0 room (the Android client pushes to it whenever the key exists)"] if "link_info" in info else []
    link = info.get("link_info")
    if not isinstance(link, dict):
        return [f"link_info is {'missing' if link is None else repr(link)} on a mode 1 room"]
    meeting, anchor = str(info.get("meeting_id")), str(info.get("anchor_id"))
    cdn = link.get("cdn_pull_info")
    problems: list[str] = []
    if not isinstance(cdn, dict):
        problems.append(f"link_info.cdn_pull_info is {cdn!r}, not an object")
    else:
        rtmp = cdn.get("rtmp_url")
        stream = urlsplit(rtmp).path.rsplit("/", 1)[-1] if isinstance(rtmp, str) else ""
        if not re.fullmatch(rf"[^/]+_{re.escape(meeting)}_{re.escape(anchor)}_camera", stream):
            problems.append(f"link_info.cdn_pull_info stream is {stream!r}, not {{app_id}}_{meeting}_{anchor}_camera")
        else:
            problems += pull_url_problems(cdn, stream, app="live", where="link_info.cdn_pull_info")
    problems += rtc_url_problems(link.get("rtc_push_url"), "link_info.rtc_push_url", "push", meeting, sample.asker)
    problems += rtc_url_problems(link.get("rtc_pull_url"), "link_info.rtc_pull_url", "play", meeting, sample.asker)
    return problems


def vod_info_problems(info: dict[str, Any]) -> list[str]:
    """`vod_info` only on stopped rooms, as {status: int, playlist: [...]}."""
    vod = info.get("vod_info")
    if info.get("status") != 2:
        return [f"vod_info is present on a room with status {info.get('status')!r} (only stopped rooms have it)"] if "vod_info" in info else []
    if not (isinstance(vod, dict) and type(vod.get("status")) is int and isinstance(vod.get("playlist"), list)):
        return [f"vod_info is {'missing' if vod is None else repr(vod)} on a stopped room, not {{status: int, playlist: []}}"]
    return []


def meeting_info_problems(info: dict[str, Any]) -> list[str]:
    """`meeting_info` is the stored JSON string: "" or `{"members": [...]}`, never an object."""
    text = info.get("meeting_info")
    if not isinstance(text, str):
        return [f"meeting_info is {text!r}, not a string"]
    if text == "":
        return []
    try:
        members = json.loads(text).get("members")
    except (ValueError, AttributeError):
        members = None
    return [] if isinstance(members, list) else [f"meeting_info {text[:80]!r} is not a JSON string of {{\"members\": [...]}}"]
