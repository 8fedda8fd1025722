"""Stream URLs for a room and a viewer: CDN push and pull, and co-streaming (RTC), from settings.

The forms are the tables of SPEC section 4; the hashes come from `signing`, the time from one
injectable clock, so tests see exact URLs. While a local edge runs (SPEC 13) and the domains are the
placeholders, the RTMP, FLV and HLS URLs point at the edge, on the host the caller reached us at
(the api layer passes that host down as a plain string):

    >>> from livekit_demo.clock import FixedClock
    >>> from livekit_demo.settings import LiveMicSettings, LiveStreamSettings
    >>> urls = StreamUrls(LiveStreamSettings(push_auth_key=""), LiveMicSettings(), FixedClock())
    >>> urls.push_info("room1")["rtmp_url"]
    'rtmp://push.example.com/live/room1'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .clock import Clock
from .models import Mode, RoomRecord
from .settings import LiveMicSettings, LiveStreamSettings, Settings
from .signing import RTC_HOST, Signer, UrlExplanation, explain_url, plain_origin, plain_path, rtc_url, sign_url, srt_form
from .types import JSONDict, RoomId, UserId

__all__ = ["StreamUrls", "EdgeAddress", "LINK_TTL", "LINK_CDN_APP", "LINK_STREAM_KINDS", "link_stream_name"]

LINK_TTL = 86400
"""Seconds that co-streaming URLs (the CDN mix and the RTC URLs) stay valid."""

LINK_CDN_APP = "live"
"""The CDN app of the co-streamed mix, whatever `live_stream.app_name` is (as in the original)."""


LINK_STREAM_KINDS = ("camera", "audio")
"""The suffixes of a co-streaming mix's CDN streams: the picture, and the audio-only mix."""


def link_stream_name(app_id: str, meeting_id: str, anchor_id: UserId) -> str:
    """The CDN stream of a co-streaming room's mix: ``{app_id}_{meeting_id}_{anchor_id}_camera``."""
    return f"{app_id}_{meeting_id}_{anchor_id}_camera"


@dataclass(frozen=True)
class EdgeAddress:
    """Where a running local edge listens: its RTMP port, the AppServer's HTTP port (which serves FLV/HLS),
    and the host for callers whose host is unknown."""

    rtmp_port: int
    http_port: int
    default_host: str = "127.0.0.1"


class _Origins(NamedTuple):
    """The ``scheme://authority`` of a room's URLs, before the path."""

    push_rtmp: str
    push_rts: str
    pull_rtmp: str
    pull_rts: str
    pull_http: str  # FLV and HLS
    plain: bool  # all of them pass `signing.plain_origin`: a URL is origin + path + `Signer.query(path)`


_HOSTS_KEPT = 256


class StreamUrls:
    """Builds the push, pull and link URLs of rooms from the `live_stream` and `live_mic` settings."""

    def __init__(self, live_stream: LiveStreamSettings, live_mic: LiveMicSettings, clock: Clock) -> None:
        self.live_stream = live_stream
        self.live_mic = live_mic
        self.clock = clock
        self.edge: EdgeAddress | None = None  # set while a local edge runs (the wiring does)
        # URLs made within the current second for the current settings and edge: a URL depends on
        # nothing else but the caller's host (in the key), as its expiry is the second plus a fixed
        # TTL; so within that second it is reused.
        self._made: tuple[tuple[Any, ...], dict[tuple[str, ...], Any]] = ((-1,), {})
        self._origins_made: tuple[tuple[Any, ...], dict[str, _Origins]] = ((None, None), {})
        self._signers: dict[tuple[str, int], Signer] = {}

    @property
    def at_edge(self) -> bool:
        """Whether URLs point at the local edge: it runs, and push/pull are still the placeholder domains."""
        return self.edge is not None and self.live_stream.placeholder_domains

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> StreamUrls:
        """The URL builder for one server's settings."""
        return cls(settings.live_stream, settings.live_mic, clock)

    def push_info(self, room_id: RoomId, host: str = "", *, keep: bool = True) -> JSONDict:
        """PushLiveInfo: where the anchor publishes (`rtmp_url`, `rts_url`, `srt_url`); `host`: the one the caller reached us at.

        `keep` false: made without looking for or keeping this second's copy (a room just created).
        """
        now = self.clock.timestamp()
        if not keep:
            return self._push(room_id, now + self.live_stream.auth_expires, host)
        made = self._made_in(now)
        key = ("push", room_id, host)
        urls = made.get(key)
        if urls is None:
            urls = made[key] = self._push(room_id, now + self.live_stream.auth_expires, host)
        return dict(urls)  # a copy: the caller may change its answer, not ours

    def pull_info(self, room_id: RoomId, host: str = "", *, keep: bool = True) -> JSONDict:
        """PullLiveInfo: where the audience plays a room (`rtmp_url`, `rts_url`, `flv_url`, `hls_url`); `keep` as for `push_info`."""
        ls = self.live_stream
        now = self.clock.timestamp()
        if not keep:
            return self._pull(ls.app_name, room_id, now + ls.auth_expires, host)
        return dict(self._pull_made(self._made_in(now), ls.app_name, room_id, now + ls.auth_expires, host))

    def player_url(self, room_id: RoomId, host: str = "") -> str | None:
        """The signed fragmented-MP4 URL the local edge serves a browser's `<video>`, or None without an edge."""
        if self.edge is None:
            return None
        ls = self.live_stream
        where = self._http_authority(ls.pull_url, host) if self.at_edge else self._edge_authority(host, self.edge.http_port)
        exp = self.clock.timestamp() + ls.auth_expires
        return sign_url(f"http://{where}/{ls.app_name}/{room_id}.mp4", ls.pull_auth_key, exp)

    def link_info(self, record: RoomRecord, viewer_id: UserId, host: str = "") -> JSONDict:
        """LinkInfo of a mode 1 room for one viewer: the CDN mix and the viewer's RTC push/play URLs."""
        # An empty meeting_id (a row from another server) still gets URLs, as the original gave, not a 500.
        if record.mode != Mode.LINK:
            raise ValueError(f"link_info is for mode 1 rooms; room {record.id!r} has mode {int(record.mode)}")
        now = self.clock.timestamp()
        made = self._made_in(now)
        stream = link_stream_name(self.live_mic.app_id, record.meeting_id, record.anchor_id)
        return {
            "cdn_pull_info": dict(self._pull_made(made, LINK_CDN_APP, stream, now + LINK_TTL, host)),
            "rtc_push_url": self._rtc_made(made, "push", record.meeting_id, viewer_id, now + LINK_TTL),
            "rtc_pull_url": self._rtc_made(made, "play", record.meeting_id, viewer_id, now + LINK_TTL),
        }

    def member_pull_url(self, meeting_id: str, user_id: UserId) -> str:
        """The RTC play URL of a meeting member, supplied when the client left `rtc_pull_url` empty."""
        now = self.clock.timestamp()
        return self._rtc_made(self._made_in(now), "play", meeting_id, user_id, now + LINK_TTL)

    def explain(self, url: str) -> UrlExplanation:
        """`signing.explain_url` with the key these settings sign that URL's host with, at the clock's time."""
        ls = self.live_stream
        now = self.clock.now()
        # Read the URL once without a key to learn its host (the SRT form hides it in `streamid`).
        unkeyed = explain_url(url, now=now)
        keys = {
            ls.push_url.lower(): ls.push_auth_key,
            ls.pull_url.lower(): ls.pull_auth_key,
            RTC_HOST: self.live_mic.app_key,
        }
        key = keys.get(unkeyed.host.lower())
        if key:
            return explain_url(url, key, now=now)
        if self.edge is not None and unkeyed.kind == "cdn-type-a":
            # The edge's URLs share one host for push and pull: whichever key the signature holds with.
            tried = [explain_url(url, k, now=now) for k in (ls.pull_auth_key, ls.push_auth_key) if k]
            return next((e for e in tried if e.signature_valid), tried[0] if tried else unkeyed)
        return unkeyed

    def generation(self) -> object:
        """A token that stays the same object while every URL made would come out the same: the
        same second (expiries are the second plus a fixed TTL), settings and edge."""
        return self._made_in(self.clock.timestamp())

    def _made_in(self, now: int) -> dict[tuple[str, ...], Any]:
        """The URLs made in second `now` under the current settings and edge (a new, empty table when any changed)."""
        stamp, made = self._made
        if stamp != (now, self.live_stream, self.live_mic, self.edge):
            made = {}
            # One assignment: a thread still holding the old table fills that one, never this.
            self._made = ((now, self.live_stream, self.live_mic, self.edge), made)
        return made

    def _pull_made(self, made: dict[tuple[str, ...], Any], app: str, stream: str, exp: int, host: str) -> JSONDict:
        key = ("pull", app, stream, str(exp), host)  # the two TTLs (CDN, link) may name one stream
        urls = made.get(key)
        if urls is None:
            urls = made[key] = self._pull(app, stream, exp, host)
        return urls

    def _rtc_made(self, made: dict[tuple[str, ...], Any], direction: str, channel: str, user_id: UserId, timestamp: int) -> str:
        key = ("rtc", direction, channel, user_id)
        url = made.get(key)
        if url is None:
            url = made[key] = self._rtc(direction, channel, user_id, timestamp)
        return url

    def _push(self, room_id: RoomId, exp: int, host: str) -> JSONDict:
        ls = self.live_stream
        origins = self._origins(host)
        path = f"/{ls.app_name}/{room_id}"
        signer = self._signer(ls.push_auth_key, exp)
        if origins.plain and plain_path(path):  # every room this server makes: nothing to parse
            resource = path + signer.query(path)  # RTMP, RTS and SRT publish to one path
            return {
                "rtmp_url": origins.push_rtmp + resource,
                "rts_url": origins.push_rts + resource,
                "srt_url": srt_form(ls.push_url, resource),
            }
        return {
            "rtmp_url": signer(origins.push_rtmp + path),
            "rts_url": signer(origins.push_rts + path),
            "srt_url": srt_form(ls.push_url, signer(path)),
        }

    def _pull(self, app: str, stream: str, exp: int, host: str = "") -> JSONDict:
        origins = self._origins(host)
        path, flv, hls = f"/{app}/{stream}", f"/{app}/{stream}.flv", f"/{app}/{stream}.m3u8"
        signer = self._signer(self.live_stream.pull_auth_key, exp)
        if origins.plain and plain_path(path):  # as in `_push`
            resource = path + signer.query(path)
            return {
                "rtmp_url": origins.pull_rtmp + resource,
                "rts_url": origins.pull_rts + resource,
                "flv_url": origins.pull_http + flv + signer.query(flv),
                "hls_url": origins.pull_http + hls + signer.query(hls),
            }
        return {
            "rtmp_url": signer(origins.pull_rtmp + path),
            "rts_url": signer(origins.pull_rts + path),
            "flv_url": signer(origins.pull_http + flv),
            "hls_url": signer(origins.pull_http + hls),
        }

    def _signer(self, key: str, exp: int) -> Signer:
        """A Signer for `key` and `exp`, shared by the answers of a second (it keeps no URLs)."""
        signer = self._signers.get((key, exp))
        if signer is None:
            if len(self._signers) >= 8:
                self._signers.clear()  # two keys, a few expiries a second
            signer = self._signers[key, exp] = Signer(key, exp)
        return signer

    def _origins(self, host: str) -> _Origins:
        """The ``scheme://authority`` of each URL form, for callers that reached us at `host`
        (kept per host while the settings and the edge stay the same: every URL of every answer asks)."""
        ls, edge = self.live_stream, self.edge
        stamp, made = self._origins_made
        if stamp[0] is not ls or stamp[1] is not edge:
            made = {}
            self._origins_made = ((ls, edge), made)  # one assignment, as in `_made_in`
        found = made.get(host)
        if found is None:
            if len(made) >= _HOSTS_KEPT:
                made.clear()  # the host comes from the client's Host header: bounded
            http = self._http_authority(ls.pull_url, host)
            scheme = "http" if self.at_edge else ls.scheme  # the local edge serves plain HTTP
            forms = (  # in `_Origins`' order: push RTMP and RTS, pull RTMP, RTS and HTTP
                f"rtmp://{self._rtmp_authority(ls.push_url, host)}",
                f"artc://{ls.push_url}",
                f"rtmp://{self._rtmp_authority(ls.pull_url, host)}",
                f"artc://{ls.pull_url}",
                f"{scheme}://{http}",
            )
            found = made[host] = _Origins(*forms, plain=all(plain_origin(origin) for origin in forms))
        return found

    def _rtmp_authority(self, domain: str, host: str) -> str:
        if not self.at_edge:
            return domain
        assert self.edge is not None
        return self._edge_authority(host, self.edge.rtmp_port)

    def _http_authority(self, domain: str, host: str) -> str:
        if not self.at_edge:
            return domain
        assert self.edge is not None
        return self._edge_authority(host, self.edge.http_port)

    def _edge_authority(self, host: str, port: int) -> str:
        assert self.edge is not None
        name = host or self.edge.default_host
        return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"

    def _rtc(self, direction: str, channel: str, user_id: UserId, timestamp: int) -> str:
        return rtc_url(direction, self.live_mic.app_id, self.live_mic.app_key, channel, user_id, timestamp)

    def __repr__(self) -> str:
        ls = self.live_stream
        signed = "signed" if ls.push_auth_key or ls.pull_auth_key else "unsigned"
        where = f"push={ls.push_url!r}, pull={ls.pull_url!r}, app={ls.app_name!r}"
        return f"StreamUrls({where}, {signed}, clock={self.clock!r})"
