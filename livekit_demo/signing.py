"""Signing: the CDN's Type A auth_key, the RTC token, the IM v2 app token, and the URL explainer.

Pure functions over strings, keys and integer timestamps: no settings, no clock objects.
`explain_url` reads back any URL this package emits and says whether its signature holds, and
why not, for teaching and for debugging a CDN's 403:

    >>> url = sign_url("rtmp://push.example.com/live/room1", "mykey", 1700000000)
    >>> url
    'rtmp://push.example.com/live/room1?auth_key=1700000000-0-0-89eba59f3d82bb7653e0a04f236b4487'
    >>> explain_url(url, "mykey", now=1690000000).verdict
    'valid'
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "RTC_HOST",
    "SRT_PORT",
    "type_a_hash",
    "type_a_auth_key",
    "sign_url",
    "Signer",
    "srt_url",
    "srt_form",
    "plain_path",
    "plain_origin",
    "rtc_token",
    "rtc_url",
    "im_app_token",
    "callback_signature",
    "UrlExplanation",
    "explain_url",
]

RTC_HOST = "live.aliyun.com"
"""The host of every RTC (co-streaming) URL; the channel is in the path."""

SRT_PORT = 1105
"""The port of the documented SRT ingest form."""

_CDN_SCHEMES = ("rtmp", "artc", "http", "https")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def type_a_hash(uri: str, key: str, exp: int | str, rand: str = "0", uid: str = "0") -> str:
    """The md5 hex of Type A signing for one URI (the path, extension included, no query)."""
    return hashlib.md5(f"{uri}-{exp}-{rand}-{uid}-{key}".encode()).hexdigest()


def type_a_auth_key(uri: str, key: str, exp: int | str, rand: str = "0", uid: str = "0") -> str:
    """The Type A `auth_key` value for one URI: ``{exp}-{rand}-{uid}-{md5hex}``."""
    return f"{exp}-{rand}-{uid}-{type_a_hash(uri, key, exp, rand, uid)}"


def sign_url(url: str, key: str, exp: int) -> str:
    """`url` with an ``auth_key`` parameter for its path; unchanged when `key` is empty (unsigned)."""
    return Signer(key, exp)(url)


class Signer:
    """`sign_url` with one key and expiry for the several URLs of one answer, or of one second.

    A room's URLs share paths (RTMP, RTS and SRT publish to one; RTMP and RTS play one), and a
    path's auth_key depends on nothing else: `query` hashes a path once for the URLs that ask for it
    one after the other, and keeps nothing else, so one Signer can serve a second's answers.
    """

    def __init__(self, key: str, exp: int) -> None:
        self.key = key
        self.exp = exp
        # `type_a_auth_key(path, key, exp)` is "{exp}-0-0-" + md5("{path}-{exp}-0-0-{key}"):
        # everything but the path is joined once.
        self._query_head = f"?auth_key={exp}-0-0-"
        self._hashed_tail = f"-{exp}-0-0-{key}"
        self._last = ("?", "")  # the last path `query` signed (none yet: no plain path has a "?"), its query

    def __call__(self, url: str) -> str:
        """`sign_url(url, key, exp)`."""
        if not self.key:
            return url
        base, _, query = url.partition("?")
        if query and any(name == "auth_key" for name, _ in parse_qsl(query, keep_blank_values=True)):
            raise ValueError(f"already signed: {url}")
        auth_key = type_a_auth_key(_path_of(base), self.key, self.exp)
        return f"{base}?{query}&auth_key={auth_key}" if query else f"{base}?auth_key={auth_key}"

    def query(self, path: str) -> str:
        """What signing appends to a URL whose path is `path`, one that `plain_path` accepts:
        ``?auth_key=...``, or "" without a key. Then ``origin + path + query(path)`` is
        `self(origin + path)` for any origin `plain_origin` accepts, without parsing anything."""
        if not self.key:
            return ""
        last_path, query = self._last
        if path != last_path:
            query = self._query_head + _md5((path + self._hashed_tail).encode()).hexdigest()
            self._last = (path, query)  # one assignment: another thread sees the old pair or the new
        return query

    def at(self, origin: str, path: str) -> str:
        """`self(origin + path)` for a URL given as its parts: `origin` is ``scheme://authority``
        (or empty), `path` the URI; plain parts are signed by `query`, others the long way."""
        if plain_origin(origin) and plain_path(path):
            return origin + path + self.query(path)
        return self(origin + path)


def plain_path(path: str) -> bool:
    """Whether `Signer.query` signs URLs with this path: it starts with "/", and is printable ASCII
    without "?" or "#" (which would end the path, so that a parser would read another)."""
    return path[:1] == "/" and _plain(path)


def plain_origin(origin: str) -> bool:
    """Whether `Signer.query` signs URLs with this ``scheme://authority`` (or empty) in front, as
    `plain_path` for a path (and no leading space, which a URL parser strips)."""
    return _plain(origin) and origin[:1] != " "


def _plain(text: str) -> bool:
    """Printable ASCII without ``?`` or ``#``."""
    return text.isascii() and text.isprintable() and "?" not in text and "#" not in text


def _builtin_md5() -> Callable[[bytes], Any]:
    """CPython's own MD5 (what hashlib falls back to without OpenSSL), else hashlib's.

    For the 60-100 bytes a Type A hash reads, OpenSSL's per-call setup costs more than the hashing:
    CPython's module answers the same digest in about half the time, and a new room needs four.
    """
    try:
        import _md5  # type: ignore[import-not-found]  # (no stubs) not in every build: --without-builtin-hashlib-hashes

        return cast(Callable[[bytes], Any], _md5.md5)
    except ImportError:
        return hashlib.md5


_md5 = _builtin_md5()


def _path_of(url: str) -> str:
    """`urlsplit(url).path`, read directly for the plain URLs this package builds (urlsplit costs
    more than the md5): printable ASCII without a query, fragment or IPv6 brackets, and either
    ``scheme://host/path`` or a bare ``/path``. Anything else goes to urlsplit."""
    if "?" not in url and "#" not in url and "[" not in url and "]" not in url and url.isascii() and url.isprintable() and url[:1] != " ":
        scheme, sep, rest = url.partition("://")
        if sep and scheme.isalpha():
            slash = rest.find("/")
            return rest[slash:] if slash >= 0 else ""
        if url[:1] == "/" and url[1:2] != "/":
            return url
    return urlsplit(url).path


def srt_url(host: str, uri: str, key: str, exp: int, *, mode: str = "publish", signer: Signer | None = None) -> str:
    """The SRT form: the resource, its auth_key and the mode live inside ``streamid``
    (`signer`, when given, signs with its own key and expiry)."""
    return srt_form(host, (signer or Signer(key, exp)).at("", uri), mode=mode)


def srt_form(host: str, resource: str, *, mode: str = "publish") -> str:
    """The SRT URL of an already signed `resource` (the path and its ``?auth_key=...``)."""
    return f"srt://{host}:{SRT_PORT}?streamid=#!::h={host},r={resource},m={mode}"


def rtc_token(app_id: str, app_key: str, channel: str, user_id: str, timestamp: int | str) -> str:
    """The RTC token: sha256 hex of app_id, app_key, channel, user id and expiry, concatenated."""
    return hashlib.sha256(f"{app_id}{app_key}{channel}{user_id}{timestamp}".encode()).hexdigest()


def rtc_url(direction: str, app_id: str, app_key: str, channel: str, user_id: str, timestamp: int) -> str:
    """An RTC URL: `direction` ``push`` (where the user publishes) or ``play`` (where others play it)."""
    if direction not in ("push", "play"):
        raise ValueError(f"direction must be 'push' or 'play', not {direction!r}")
    token = rtc_token(app_id, app_key, channel, user_id, timestamp)
    return (
        f"artc://{RTC_HOST}/{direction}/{channel}"
        f"?sdkAppId={app_id}&userId={user_id}&timestamp={timestamp}&token={token}"
    )


def im_app_token(app_id: str, app_key: str, user_id: str, nonce: str, timestamp: int, role: str) -> str:
    """The IM v2 `app_token`: sha256 hex of app_id, app_key, user id, nonce, timestamp and role."""
    return hashlib.sha256(f"{app_id}{app_key}{user_id}{nonce}{timestamp}{role}".encode()).hexdigest()


def callback_signature(host: str, timestamp: int | str, key: str) -> str:
    """`ALI-LIVE-SIGNATURE` of a CDN stream callback: md5 hex of `host|timestamp|key` (SPEC 13)."""
    return hashlib.md5(f"{host}|{timestamp}|{key}".encode()).hexdigest()


# --- the explainer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UrlExplanation:
    """What `explain_url` found in one URL: its parts, its expiry and whether its signature holds."""

    url: str
    kind: str  # "cdn-type-a", "srt", "rtc", "unsigned" or "unknown"
    reason: str
    scheme: str = ""
    host: str = ""
    port: int | None = None
    uri: str = ""
    app: str | None = None
    stream: str | None = None
    direction: str | None = None  # "push", "pull", "play" or None when the URL does not say
    user_id: str | None = None  # the RTC userId, or the Type A uid
    signature: str | None = None  # the hash or token as given
    expected_signature: str | None = None  # as the key computes it, when a key was given
    expires_at: datetime | None = None
    expired: bool | None = None
    signature_valid: bool | None = None

    @property
    def verdict(self) -> str:
        """One word: "valid", "expired", "bad signature", "unsigned" or "unchecked"."""
        # A bad hash comes first: a fresh expiry would not fix it.
        if self.signature_valid is False:
            return "bad signature"
        if self.expired:
            return "expired"
        if self.kind == "unsigned":
            return "unsigned"
        return "valid" if self.signature_valid else "unchecked"

    def _repr_html_(self) -> str:
        rows = [("verdict", self.verdict)]
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value != "":
                rows.append((f.name, value.isoformat() if isinstance(value, datetime) else str(value)))
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left;word-break:break-all'><code>{html.escape(v)}</code></td></tr>"
            for k, v in rows
        )
        return f"<table><caption style='text-align:left'><b>URL explained</b></caption>{body}</table>"


def explain_url(url: str, key: str | None = None, *, now: datetime | int | float | None = None) -> UrlExplanation:
    """Take any URL we emit apart and check it; never raises.

    `key` is the CDN auth key (push or pull) for Type A and SRT URLs, the RTC app_key for RTC URLs;
    None or empty: the signature is not checked. `now` (default: the system time) decides expiry.

        >>> explain_url("rtmp://push.example.com/live/room1").verdict
        'unsigned'
    """
    if not isinstance(url, str):
        return UrlExplanation(url=repr(url), kind="unknown", reason=f"not a URL but {type(url).__name__}")
    try:
        moment = _as_utc(now)
    except (TypeError, ValueError, OverflowError, OSError):
        return UrlExplanation(url=url, kind="unknown", reason=f"`now` is not a time: {now!r}")
    text = url.strip()
    scheme, sep, _ = text.partition("://")
    scheme = scheme.lower()
    if not sep or not scheme:
        return UrlExplanation(url=url, kind="unknown", reason="not a URL: expected scheme://host/path")
    try:
        if scheme == "srt":
            return _explain_srt(url, text, key or None, moment)
        if scheme not in _CDN_SCHEMES:
            reason = f"unknown scheme {scheme!r}: expected rtmp, artc, http(s) or srt"
            return UrlExplanation(url=url, kind="unknown", scheme=scheme, reason=reason)
        parts = urlsplit(text)
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:  # urlsplit and .port refuse malformed hosts and ports
        return UrlExplanation(url=url, kind="unknown", scheme=scheme, reason=f"not a URL: {exc}")
    if not host:
        return UrlExplanation(url=url, kind="unknown", scheme=scheme, reason="no host in the URL")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    base = dict(url=url, scheme=scheme, host=host, port=port, uri=parts.path)
    if scheme == "artc" and host == RTC_HOST:
        return _explain_rtc(base, parts.path, query, key or None, moment)
    app, stream = _app_and_stream(parts.path)
    direction = "pull" if scheme in ("http", "https") else None  # nobody pushes over HTTP-FLV or HLS
    found = dict(base, app=app, stream=stream, direction=direction)
    return _explain_type_a(found, query.get("auth_key"), key or None, moment)


def _explain_srt(url: str, text: str, key: str | None, now: datetime) -> UrlExplanation:
    # The SRT form hides path and auth_key in `streamid=#!::h=...,r=/app/id?auth_key=...,m=...`:
    # urlsplit would take the '#' for a fragment, so read it by hand.
    rest = text.split("://", 1)[1]
    netloc, _, query = rest.partition("?")
    host, _, port_text = netloc.partition(":")
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else None
    base: dict[str, Any] = dict(url=url, scheme="srt", host=host, port=port)
    found = re.search(r"(?:^|&)streamid=(.*)", query)
    if not found:
        return UrlExplanation(kind="unknown", reason="SRT URL without a streamid parameter", **base)
    streamid = unquote(found.group(1))
    if not streamid.startswith("#!::"):
        return UrlExplanation(kind="unknown", reason="SRT streamid is not in the '#!::h=...,r=...,m=...' form", **base)
    items = dict(item.partition("=")[::2] for item in streamid[4:].split(","))
    resource = items.get("r", "")
    uri, _, resource_query = resource.partition("?")
    if not uri.startswith("/"):
        return UrlExplanation(kind="unknown", reason="SRT streamid has no r=/app/stream resource", **base)
    app, stream = _app_and_stream(uri)
    direction = {"publish": "push", "request": "pull"}.get(items.get("m", ""))
    auth = dict(parse_qsl(resource_query, keep_blank_values=True)).get("auth_key")
    found_parts = dict(base, host=items.get("h") or host, uri=uri, app=app, stream=stream, direction=direction)
    return _explain_type_a(found_parts, auth, key, now, kind="srt")


def _explain_type_a(
    parts: dict, auth_key: str | None, key: str | None, now: datetime, *, kind: str = "cdn-type-a"
) -> UrlExplanation:
    if auth_key is None:
        return UrlExplanation(kind="unsigned", reason="no auth_key parameter: the URL is unsigned", **parts)
    pieces = auth_key.split("-")
    if len(pieces) != 4 or not (pieces[0].isascii() and pieces[0].isdigit()) or not _HEX32.fullmatch(pieces[3]):
        return UrlExplanation(
            kind=kind, signature_valid=False, signature=auth_key,
            reason="malformed auth_key: expected exp-rand-uid-hash (hash = 32 hex digits)", **parts,
        )  # fmt: skip
    exp_text, rand, uid, given = pieces
    # Hash the expiry as written: that text, not a re-formatted number, is what was signed.
    expected = type_a_hash(parts["uri"], key, exp_text, rand, uid) if key else None
    return _judge(
        dict(parts, kind=kind, user_id=uid, signature=given),
        given, expected, exp_text, now, noun="hash", mismatch="hash does not match: the URI, expiry or key differs",
    )  # fmt: skip


def _explain_rtc(parts: dict, path: str, query: dict[str, str], key: str | None, now: datetime) -> UrlExplanation:
    segments = path.strip("/").split("/")
    if len(segments) != 2 or segments[0] not in ("push", "play") or not segments[1]:
        return UrlExplanation(kind="unknown", reason="RTC URL path must be /push/{channel} or /play/{channel}", **parts)
    direction, channel = segments
    app_id, user_id = query.get("sdkAppId"), query.get("userId")
    found = dict(parts, kind="rtc", app=app_id, stream=channel, direction=direction, user_id=user_id)
    missing = [name for name in ("sdkAppId", "userId", "timestamp", "token") if not query.get(name)]
    if missing:
        return UrlExplanation(signature_valid=False, reason=f"missing RTC parameter(s): {', '.join(missing)}", **found)
    timestamp, given = query["timestamp"], query["token"]
    if not (timestamp.isascii() and timestamp.isdigit()) or not _HEX64.fullmatch(given):
        return UrlExplanation(
            signature_valid=False, signature=given,
            reason="malformed RTC parameters: timestamp must be digits and token 64 hex digits", **found,
        )  # fmt: skip
    expected = rtc_token(app_id or "", key, channel, user_id or "", timestamp) if key else None
    return _judge(
        dict(found, signature=given), given, expected, timestamp, now, noun="token",
        mismatch="token does not match: the channel, user, timestamp, sdkAppId or app_key differs",
    )  # fmt: skip


def _judge(
    parts: dict, given: str, expected: str | None, exp: str, now: datetime, *, noun: str, mismatch: str
) -> UrlExplanation:
    try:
        expires_at = datetime.fromtimestamp(int(exp), timezone.utc)
    except (OverflowError, OSError, ValueError):
        return UrlExplanation(signature_valid=False, reason=f"malformed expiry: {exp} is out of range", **parts)
    # Valid through the second `exp` itself; from the next second on the CDN answers 403.
    expired = now > expires_at
    when = f"expired {_span(now - expires_at)} ago" if expired else f"expires in {_span(expires_at - now)}"
    if expected is None:
        valid, reason = None, f"{when} (signature not checked: no key given)"
    elif not hmac.compare_digest(given.lower(), expected):
        valid, reason = False, mismatch + (f" (and it {when})" if expired else "")
    elif expired:
        valid, reason = True, f"{when} (the {noun} matches)"
    else:
        valid, reason = True, f"the {noun} matches and it {when}"
    return UrlExplanation(
        expected_signature=expected, expires_at=expires_at, expired=expired, signature_valid=valid, reason=reason, **parts
    )


def _app_and_stream(path: str) -> tuple[str | None, str | None]:
    segments = [s for s in path.split("/") if s]
    if len(segments) < 2:
        return None, None
    stream = segments[-1]
    for extension in (".flv", ".m3u8"):
        stream = stream.removesuffix(extension)
    return segments[0], stream


def _as_utc(now: datetime | int | float | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if isinstance(now, datetime):
        return now.astimezone(timezone.utc) if now.tzinfo else now.replace(tzinfo=timezone.utc)
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise TypeError(now)
    return datetime.fromtimestamp(now, timezone.utc)


def _span(delta: timedelta) -> str:
    # Two largest units are enough to tell "3h ago" from "7d ago" at a glance.
    seconds = int(delta.total_seconds())
    units = [(86400, "d"), (3600, "h"), (60, "m"), (1, "s")]
    parts: list[str] = []
    for size, name in units:
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append(f"{count}{name}")
        if len(parts) == 2:
            break
    shown = [p for p in parts if not p.startswith("0")]
    return " ".join(shown) or "0s"
