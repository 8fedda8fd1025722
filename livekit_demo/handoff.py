"""Hand-offs (SPEC 12): a room handed to the PC pusher app, and the RTC auth token.

`getLiveJumpUrl` gives the anchor an ``auipusher://`` link carrying a hand-off JWT; the PC pusher app
sends that token back to `verifyAuthToken` and gets a login token for the same user. As in the
reference Java AppServer, with its holes closed:

- A hand-off token is not a login token: it names no ``id`` claim, so `auth` refuses it (401).
- Every claim must match what the app sends (the reference answered 200 with ``null`` otherwise).
- A hand-off token is traded once, by its random ``jti``. The used ids are kept by the room store
  (`RoomStore.use_token`), so every process sharing a database refuses a second trade; a refused
  verify never marks a token used.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlencode

import jwt

from .auth import ALGORITHM, Authenticator
from .clock import Clock
from .exceptions import Unauthorized
from .settings import LiveMicSettings
from .signing import rtc_token
from .storage.base import RoomStore
from .types import Claims, JSONDict, RoomId, UserId

__all__ = ["HandOff", "HANDOFF_TTL", "RTC_TOKEN_TTL", "JUMP_URL_BASE"]

HANDOFF_TTL = 3600
"""Seconds a hand-off token lives."""
RTC_TOKEN_TTL = 86400
"""Seconds an RTC auth token lives."""
JUMP_URL_BASE = "auipusher://page/live-room"
"""Where the PC pusher app listens for hand-offs."""
_CLAIMS = ("user_id", "live_id", "app_server", "exp", "jti")


class HandOff:
    """Issues and trades hand-off tokens, and computes RTC auth tokens."""

    def __init__(self, secret: str, clock: Clock, store: RoomStore, auth: Authenticator, live_mic: LiveMicSettings) -> None:
        self._secret = secret
        self._clock = clock
        self._store = store
        self._auth = auth
        self._live_mic = live_mic

    def __repr__(self) -> str:
        return f"HandOff(store={self._store.kind})"

    def rtc_auth_token(self, room_id: str, user_id: UserId) -> JSONDict:
        """``{"auth_token": sha256(app_id + app_key + room_id + user_id + timestamp), "timestamp"}``."""
        timestamp = self._clock.timestamp() + RTC_TOKEN_TTL
        token = rtc_token(self._live_mic.app_id, self._live_mic.app_key, room_id, user_id, timestamp)
        return {"auth_token": token, "timestamp": timestamp}

    def jump_url(self, base_url: str, user_id: UserId, live_id: RoomId, user_name: str = "", version: str = "") -> JSONDict:
        """``{"live_jump_url": "auipusher://page/live-room?app_server=...&token=..."}`` (the caller checked who may ask)."""
        app_server = base_url.rstrip("/")
        now = self._clock.timestamp()
        claims = {
            "user_id": user_id, "live_id": live_id, "user_name": user_name, "app_server": app_server,
            "iat": now, "exp": now + HANDOFF_TTL, "jti": secrets.token_hex(16),
        }  # fmt: skip
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        query = {"app_server": app_server, "token": token, "user_id": user_id, "user_name": user_name, "live_id": live_id}
        if version:
            query["version"] = version
        # quote, not quote_plus: a space is %20 in a URL the app parses as a URL, never "+".
        return {"live_jump_url": f"{JUMP_URL_BASE}?{urlencode(query, quote_via=quote, safe='')}"}

    def verify(self, token: str, user_id: UserId, live_id: RoomId, app_server: str, user_name: str | None = None) -> JSONDict:
        """``{"login_token": <a login JWT for user_id>}`` for a valid, unused, matching hand-off token; 401 otherwise."""
        claims = self._decode(token)
        expected = {"user_id": user_id, "live_id": live_id, "app_server": app_server.rstrip("/")}
        if user_name is not None:
            expected["user_name"] = user_name
        wrong = [name for name, value in expected.items() if claims.get(name) != value]
        if wrong:
            raise Unauthorized(f"the hand-off token does not match the request's {', '.join(wrong)}")
        # Last, so that a refused verify never uses the token up.
        if not self._store.use_token(str(claims["jti"]), int(claims["exp"]), self._clock.timestamp()):
            raise Unauthorized("the hand-off token was traded already: ask for a new jump URL")
        login_token, _ = self._auth.issue(user_id)
        return {"login_token": login_token}

    def _decode(self, token: str) -> Claims:
        try:
            claims: Claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": list(_CLAIMS), "verify_exp": False, "verify_iat": False}
            )
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"not a hand-off token: it lacks the {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the hand-off token's signature does not match: signed with another secret or altered") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the hand-off token is invalid: {exc}") from None
        exp = claims["exp"]
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise Unauthorized("the hand-off token's 'exp' claim is not a whole number of seconds")
        if self._clock.timestamp() >= exp:
            raise Unauthorized("the hand-off token has expired: ask for a new jump URL")
        return claims
