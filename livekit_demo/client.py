"""A Python client for any AppServer that speaks the contract: one method per call.

    >>> import livekit_demo
    >>> server = livekit_demo.start_server(storage="memory")            # doctest: +SKIP
    >>> client = livekit_demo.connect(username="ann", password="ann")   # doctest: +SKIP
    >>> room = client.create("Morning show")                            # doctest: +SKIP
    >>> client.start(room["id"])["status"]                              # doctest: +SKIP
    1

It logs in when connecting, sends ``Authorization: Bearer <jwt>``, and when the server answers
401 (an expired token, a server restarted with a new secret) logs in again once and repeats the
call once. Any answer with status >= 400 raises `ApiError`, also when its body is not the
contract's Status JSON (the original Go server answers some faults with plain text). No answer
at all raises `ServerUnavailable`, one line saying whether the server was stopped.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from .exceptions import LivekitDemoError
from .models import LoginResult, MeetingInfo, RoomInfo
from .serving import is_loopback
from .settings import PLACEHOLDER_DOMAINS

if TYPE_CHECKING:
    from .edge.pusher import TestPattern
    from .runner import ServerHandle

__all__ = ["ApiError", "ServerUnavailable", "AppServerClient", "connect"]

DEFAULT_TIMEOUT = 10.0


class ServerUnavailable(LivekitDemoError, ConnectionError):
    """Nothing answers at the client's URL: the server was stopped, or never ran there. One line says which and what to do."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of the traceback: the one line a learner can act on, not
        # some 200 lines of httpx and httpcore frames.
        return [f"{type(self).__name__}: {self}"]


def unavailable(url: str, error: BaseException) -> ServerUnavailable:
    """The `ServerUnavailable` for `url`: 'was stopped' when a server of this process served there."""
    from .runner import was_stopped

    if was_stopped(url):
        return ServerUnavailable(f"the server at {url} was stopped (server.stop() or a later start_server()); run start_server() again")
    return ServerUnavailable(
        f"no AppServer answers at {url} ({type(error).__name__}: {error}); start one "
        "(livekit_demo.start_server() in a notebook, livekit-demo serve in a terminal) or check the URL"
    )


class ApiError(Exception):
    """An AppServer answered with HTTP status >= 400.

    `status` is the HTTP status; `code`, `message` and `details` come from the contract's Status
    body when there is one (`code` falls back to `status`, `message` to the start of the body
    text); `response` is the `httpx.Response` itself.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: int | None = None,
        details: Any = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.code = status if code is None else code
        self.message = message
        self.details = details
        self.response = response

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """Read a failed answer: a Status body when it is one, else the text, else the reason phrase."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            code = body.get("code")
            return cls(
                response.status_code,
                body["message"],
                code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                details=body.get("details"),
                response=response,
            )
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        return cls(response.status_code, text or response.reason_phrase or "error", response=response)

    def to_json(self) -> dict[str, Any]:
        """The error as the contract's Status body, for showing next to successful answers."""
        return {"code": self.code, "message": self.message, "details": self.details}

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.message!r})"


class AppServerClient:
    """One user's session with one AppServer, over httpx (synchronous).

    Made by `connect`. `user_id` and `anchor` arguments default to the logged-in username.
    `api_version` picks the path prefix of the room calls (``/api/v1/live`` or ``/api/v2/live``);
    `token_v2` always uses v2 and `token` always v1, since their answers differ.
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str | None = None,
        *,
        api_version: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if api_version not in (1, 2):
            raise ValueError(f"api_version must be 1 or 2, not {api_version!r}")
        self.url = url.rstrip("/")
        self.username = username
        self._password = username if password is None else password
        self.api_version = api_version
        self.jwt: str | None = None  # the current JWT (not named `token`: that is the IM token call)
        self.login_result: LoginResult | None = None
        if transport is None:
            transport = transport_for_url(self.url)
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            # A proxy from the environment cannot reach this machine's loopback server.
            trust_env=not is_loopback(urlsplit(self.url).hostname or ""),
        )

    # -- plumbing ------------------------------------------------------------------------------

    def _path(self, name: str, version: int | None = None) -> str:
        return f"/api/v{version or self.api_version}/live/{name}"

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turn "nothing answers" (refused, reset, timed out) into one `ServerUnavailable` line."""
        try:
            yield
        except (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError) as exc:  # not: a URL that is none
            raise unavailable(self.url, exc) from None

    def _send(self, path: str, body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.jwt}"} if self.jwt else {}
        with self._reaching():
            return self._http.post(path, json=body, headers=headers)

    def _call(self, name: str, body: Mapping[str, Any], *, version: int | None = None, relogin: bool = True) -> Any:
        """POST one API call; log in again once on 401 (unless not `relogin`); raise `ApiError` on any status >= 400."""
        path = self._path(name, version)
        payload = {k: v for k, v in body.items() if v is not None}
        response = self._send(path, payload)
        if response.status_code == 401 and relogin:
            self.login()  # raises ApiError itself when the credentials no longer work
            response = self._send(path, payload)
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response.json()

    def raw(
        self,
        path: str,
        json: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        content: bytes | str | None = None,
        authenticate: bool = True,
    ) -> httpx.Response:
        """Send any request and hand back the response as it is: no raising, no re-login.

        For teaching and conformance checks: a malformed body (`content`), a wrong content
        type or token (`headers`, which win over the client's), an unknown path. The client's
        token is sent unless `authenticate` is false.
        """
        sent: dict[str, str] = {}
        if authenticate and self.jwt:
            sent["Authorization"] = f"Bearer {self.jwt}"
        sent.update(headers or {})
        with self._reaching():
            if content is not None:
                return self._http.request(method, path, content=content, headers=sent)
            return self._http.request(method, path, json=json, headers=sent)

    # -- auth ----------------------------------------------------------------------------------

    def login(self, username: str | None = None, password: str | None = None) -> LoginResult:
        """Log in (again), keep the token; other credentials become this client's."""
        if username is not None:
            self.username = username
            self._password = username if password is None else password
        elif password is not None:
            self._password = password
        # /login ignores any Authorization header, but an old token has no business being sent.
        with self._reaching():
            response = self._http.post("/login", json={"username": self.username, "password": self._password})
        if response.status_code >= 400:
            self.jwt = None
            raise ApiError.from_response(response)
        result = LoginResult(response.json())
        self.jwt = str(result["token"])
        self.login_result = result
        return result

    def refresh_token(self) -> LoginResult:
        """Trade the current token (even expired, within the refresh window) for a new one."""
        response = self._send(self._path("refresh_token"), None)
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        result = LoginResult(response.json())
        self.jwt = str(result["token"])
        self.login_result = result
        return result

    def token(self, device_id: str = "notebook", device_type: str = "web", *, user_id: str | None = None) -> dict[str, Any]:
        """IM token, v1 shape: ``{"access_token", "refresh_token"}``."""
        body = {"user_id": user_id or self.username, "device_id": device_id, "device_type": device_type}
        return dict(self._call("token", body, version=1))

    def token_v2(
        self,
        *,
        user_id: str | None = None,
        role: str | None = None,
        im_server: Sequence[str] | None = None,
        device_id: str | None = None,
        device_type: str | None = None,
    ) -> dict[str, Any]:
        """IM tokens, v2 shape: ``{"code": 200, "aliyun_new_im": {...}}`` (always the v2 path)."""
        body = {
            "user_id": user_id or self.username,
            "role": role,
            "im_server": list(im_server) if im_server is not None else None,
            "device_id": device_id,
            "device_type": device_type,
        }
        return dict(self._call("token", body, version=2))

    # -- rooms ---------------------------------------------------------------------------------

    def create(
        self,
        title: str,
        *,
        anchor: str | None = None,
        anchor_nick: str | None = None,
        notice: str | None = None,
        cover_url: str | None = None,
        extends: str | Mapping[str, Any] | None = None,
        mode: int | None = None,
    ) -> RoomInfo:
        """Create a room. `extends` may be a mapping: it is sent encoded as the JSON string the contract wants."""
        body = {
            "title": title,
            "anchor": anchor or self.username,
            "anchor_nick": anchor_nick,
            "notice": notice,
            "cover_url": cover_url,
            "extends": _encode_extends(extends),
            "mode": mode,
        }
        return RoomInfo(self._call("create", body))

    def get(self, room_id: str, *, user_id: str | None = None) -> RoomInfo:
        """One room as `user_id` sees it (counts a visit)."""
        return RoomInfo(self._call("get", {"id": room_id, "user_id": user_id or self.username}))

    def list(
        self, page_num: int = 1, page_size: int = 10, *, status: int | None = None, user_id: str | None = None
    ) -> builtins.list[RoomInfo]:
        """Rooms, newest first; `status` filters (None or -1: all)."""
        body = {"user_id": user_id or self.username, "page_num": page_num, "page_size": page_size, "status": status}
        return [RoomInfo(room) for room in self._call("list", body)]

    def update(
        self,
        room_id: str,
        *,
        title: str | None = None,
        notice: str | None = None,
        extends: str | Mapping[str, Any] | None = None,
        cover_url: str | None = None,
        anchor_nick: str | None = None,
    ) -> RoomInfo:
        """Change the fields given (empty ones change nothing, as the contract says)."""
        body = {
            "id": room_id,
            "title": title,
            "notice": notice,
            "extends": _encode_extends(extends),
            "cover_url": cover_url,
            "anchor_nick": anchor_nick,
        }
        return RoomInfo(self._call("update", body))

    def start(self, room_id: str, *, user_id: str | None = None) -> RoomInfo:
        """Go live (also resumes a paused room and re-opens an ended one)."""
        return self._lifecycle("start", room_id, user_id)

    def pause(self, room_id: str, *, user_id: str | None = None) -> RoomInfo:
        """Pause a live room."""
        return self._lifecycle("pause", room_id, user_id)

    def stop(self, room_id: str, *, user_id: str | None = None) -> RoomInfo:
        """End the live."""
        return self._lifecycle("stop", room_id, user_id)

    def delete(self, room_id: str, *, user_id: str | None = None) -> RoomInfo:
        """Remove a room; answers it as it was."""
        return self._lifecycle("delete", room_id, user_id)

    def _lifecycle(self, name: str, room_id: str, user_id: str | None) -> RoomInfo:
        return RoomInfo(self._call(name, {"id": room_id, "user_id": user_id or self.username}))

    # -- co-streaming --------------------------------------------------------------------------

    def get_meeting_info(self, room_id: str) -> MeetingInfo:
        """The co-streaming members of a mode 1 room."""
        return MeetingInfo(self._call("getMeetingInfo", {"id": room_id}))

    def update_meeting_info(self, room_id: str, members: Sequence[Mapping[str, Any]]) -> MeetingInfo:
        """Replace the members (the full list, in order; ``[]`` clears it)."""
        return MeetingInfo(self._call("updateMeetingInfo", {"id": room_id, "members": [dict(m) for m in members]}))

    # -- the audience calls (SPEC 11; chatroom_id is a room's chat_id) ---------------------------

    def get_statistics(self, chatroom_id: str) -> dict[str, Any]:
        """``{"pv", "uv", "like_count", "online_count"}`` of a room (counts no visit)."""
        return dict(self._call("getStatistics", {"chatroom_id": chatroom_id}))

    def send_like_message(self, chatroom_id: str, like_count: int = 1, *, user_id: str | None = None) -> dict[str, Any]:
        """Like a room `like_count` times (1 to 1000 a call): ``{"code": 200, "count": <the room's total>}``."""
        body = {"chatroom_id": chatroom_id, "user_id": user_id or self.username, "like_count": like_count}
        return dict(self._call("sendLikeMessage", body))

    def mute_chatroom(self, chatroom_id: str) -> dict[str, Any]:
        """Mute the room's chat for everyone but the anchor (the anchor or an admin): ``{"code": 200, "mute": true}``."""
        return dict(self._call("muteChatroom", {"chatroom_id": chatroom_id}))

    def cancel_mute_chatroom(self, chatroom_id: str) -> dict[str, Any]:
        """Unmute the room's chat: ``{"code": 200, "mute": false}``."""
        return dict(self._call("cancelMuteChatroom", {"chatroom_id": chatroom_id}))

    def is_mute_chatroom(self, chatroom_id: str) -> dict[str, Any]:
        """Whether the room's chat is muted: ``{"code": 200, "mute": <bool>}``."""
        return dict(self._call("isMuteChatroom", {"chatroom_id": chatroom_id}))

    # -- hand-offs (SPEC 12) ---------------------------------------------------------------------

    def get_rtc_auth_token(self, room_id: str, *, user_id: str | None = None) -> dict[str, Any]:
        """An RTC auth token for channel `room_id`: ``{"auth_token", "timestamp"}``."""
        return dict(self._call("getRtcAuthToken", {"room_id": room_id, "user_id": user_id}))

    def get_live_jump_url(
        self, live_id: str, *, user_name: str | None = None, version: str | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        """Hand the room to the PC pusher app: ``{"live_jump_url": "auipusher://page/live-room?..."}``."""
        body = {"user_id": user_id or self.username, "live_id": live_id, "user_name": user_name, "version": version}
        return dict(self._call("getLiveJumpUrl", body))

    def verify_auth_token(
        self, token: str, *, user_id: str, live_id: str, app_server: str, user_name: str | None = None
    ) -> dict[str, Any]:
        """What the PC pusher app does with a jump URL: trade its hand-off token (once) for ``{"login_token"}``.

        Needs no login; a refusal (401) is raised as it is, never retried after a re-login.
        """
        body = {"user_id": user_id, "live_id": live_id, "app_server": app_server, "token": token, "user_name": user_name}
        return dict(self._call("verifyAuthToken", body, relogin=False))

    # -- presence (ours) ------------------------------------------------------------------------

    def heartbeat(self, room_id: str, *, user_id: str | None = None) -> dict[str, Any]:
        """Say `user_id` still watches the room (online for 30 s): ``{"code": 200, "online_count": n}``.

        A call of ours (SPEC 14): another AppServer may answer it with 404.
        """
        return dict(self._call("heartbeat", {"id": room_id, "user_id": user_id or self.username}))

    # -- lifetime ------------------------------------------------------------------------------

    def wait_for(self, room_id: str, condition: Callable[[RoomInfo], bool], *, timeout: float = 30.0, interval: float = 0.25) -> RoomInfo:
        """Read the room (`get`) until `condition(room)` holds, and answer it; `TimeoutError` after `timeout` seconds.

        For what the server changes by itself, e.g. the push callback taking a room live:
        ``client.wait_for(room_id, lambda room: room["status"] == 1)``.
        """
        deadline = time.monotonic() + timeout
        while True:
            room = self.get(room_id)
            if condition(room):
                return room
            if time.monotonic() >= deadline:
                raise TimeoutError(f"room {room_id} did not get there within {timeout:g} s (status {room.get('status')}, metrics {room.get('metrics')})")
            time.sleep(interval)

    def push_test_pattern(self, room_id: str) -> TestPattern:
        """Push a moving test picture (the room's title, a clock) and a tone to the room's push URL, as its anchor.

        Returns the running `edge.pusher.TestPattern`; call its ``stop()`` to end the stream. Needs
        ffmpeg (on PATH, or ``pip install "livekit_demo[media]"``) and a server whose push URL is
        real: one running the local edge (``start_server(edge=True)``, ``serve --edge``) or a CDN.

            >>> pusher = client.push_test_pattern(room["id"])   # doctest: +SKIP
            >>> pusher.stop()                                   # doctest: +SKIP
        """
        from .edge.pusher import TestPattern

        room = self.get(room_id)
        push = room.get("push_url_info") or {}
        url = push.get("rtmp_url") if isinstance(push, Mapping) else None
        if not isinstance(url, str) or not url:
            raise ValueError(f"room {room_id} shows {self.username!r} no push URL: only its anchor (or an admin) may push to it")
        host = urlsplit(url).hostname or ""
        if host in PLACEHOLDER_DOMAINS:
            raise ValueError(
                f"the room's push URL points at the placeholder {host}: nothing listens there. Start the server with "
                "its local edge (start_server(edge=True), or `livekit-demo serve --edge`), or configure a real CDN"
            )
        return TestPattern(url, title=str(room.get("title") or "")).start()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> AppServerClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "logged in" if self.jwt else "not logged in"
        return f"<AppServerClient {self.url} user={self.username!r} v{self.api_version} {state}>"


def connect(
    url: str | ServerHandle | None = None,
    username: str = "demo",
    password: str | None = None,
    *,
    api_version: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    login: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> AppServerClient:
    """A client for the AppServer at `url`, logged in as `username`.

    `url` None means the server most recently started by `start_server()` in this process; a
    `ServerHandle` means that server. An ``inprocess://<name>`` URL (an in-process server, as
    `start_server` gives in a browser tab) is reached through `livekit_demo.inprocess`. `password` None means the username itself (the demo login
    rule). Raises `ApiError` when the login is refused.

        >>> client = connect(username="ann")                                     # doctest: +SKIP
        >>> other = connect("http://10.0.0.5:8080", "bob", "s3cret", api_version=2)  # doctest: +SKIP
        >>> client.list(status=1)                                                # doctest: +SKIP
        []
    """
    base = _base_url(url)
    client = AppServerClient(base, username, password, api_version=api_version, timeout=timeout, transport=transport)
    if login:
        try:
            client.login()
        except BaseException:
            client.close()
            raise
    return client


def _base_url(url: str | ServerHandle | None) -> str:
    if isinstance(url, str):
        return url
    if url is not None:
        return url.url
    from .runner import current_server

    server = current_server()
    if server is None:
        raise LookupError("no AppServer started in this process: call livekit_demo.start_server() first, or pass a url")
    return server.url


def transport_for_url(url: str) -> httpx.BaseTransport | None:
    """The in-process transport for an ``inprocess://<name>`` URL; None (httpx's own) for any other URL."""
    if urlsplit(url).scheme != "inprocess":
        return None
    from .inprocess import transport_for

    return transport_for(url)


def _encode_extends(extends: str | Mapping[str, Any] | None) -> str | None:
    if extends is None or isinstance(extends, str):
        return extends
    return json.dumps(dict(extends), ensure_ascii=False, separators=(",", ":"))
