"""IM tokens, v1 and v2 shapes (SPEC section 5).

v1 is a local stand-in: the original asked the cloud IM service for a token; we issue one in the
shape the client SDK decodes (base64 of `{"endpoints": [...], "token": "<JWT>"}`), signed with our
JWT secret. It lets a client get through its IM login step; it is not accepted by any real IM gateway.

v2 is computed exactly as the real IM service expects: with real `live_im` credentials, `app_token`
is the token that service accepts.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import timedelta

import jwt

from .clock import Clock
from .settings import GatewaySettings, LiveImSettings
from .signing import im_app_token
from .types import JSONDict, UserId

__all__ = ["ImTokens", "decode_v1_token", "ACCESS_TTL", "REFRESH_TTL", "V2_TTL"]

ACCESS_TTL = timedelta(days=1)
REFRESH_TTL = timedelta(days=7)
V2_TTL = timedelta(days=2)


class ImTokens:
    """Builds the `token` answers."""

    def __init__(self, live_im: LiveImSettings, gateway: GatewaySettings, secret: str, clock: Clock) -> None:
        self._im = live_im
        self._gateway = gateway
        self._secret = secret
        self._clock = clock

    def v1(self, user_id: UserId, device_id: str, device_type: str) -> JSONDict:
        """`{"access_token", "refresh_token"}`: web clients get the WebSocket gateway, others LWP."""
        endpoint = self._gateway.ws_addr if device_type == "web" else self._gateway.lwp_addr
        return {
            "access_token": self._v1_token(user_id, device_id, device_type, endpoint, ACCESS_TTL, "access"),
            "refresh_token": self._v1_token(user_id, device_id, device_type, endpoint, REFRESH_TTL, "refresh"),
        }

    def _v1_token(self, user_id: str, device_id: str, device_type: str, endpoint: str, ttl: timedelta, use: str) -> str:
        now = self._clock.now().replace(microsecond=0)
        claims = {
            "sub": user_id,
            "device_id": device_id,
            "device_type": device_type,
            "use": use,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "iss": "livekit_demo (local IM stand-in)",
        }
        inner = jwt.encode(claims, self._secret, algorithm="HS256")
        body = json.dumps({"endpoints": [endpoint], "token": inner}, separators=(",", ":"))
        return base64.b64encode(body.encode("utf-8")).decode("ascii")

    def v2(self, user_id: UserId, role: str = "", im_server: list[str] | None = None, *, device_id: str = "", device_type: str = "") -> JSONDict:
        """The v2 answer: `aliyun_new_im` always, `aliyun_old_im` when `im_server` asks for it."""
        timestamp = int((self._clock.now() + V2_TTL).timestamp())
        nonce = "AK-" + secrets.token_hex(16)
        answer: JSONDict = {
            "code": 200,
            "aliyun_new_im": {
                "app_id": self._im.app_id,
                "app_sign": self._im.app_sign,
                "app_token": im_app_token(self._im.app_id, self._im.app_key, user_id, nonce, timestamp, role),
                "auth": {"user_id": user_id, "nonce": nonce, "timestamp": timestamp, "role": role},
            },
        }
        if im_server and "aliyun_old" in im_server:
            answer["aliyun_old_im"] = self.v1(user_id, device_id, device_type or "android")
        return answer


def decode_v1_token(token: str) -> JSONDict:
    """Look inside a v1 token (for teaching): its endpoints and the claims of its inner JWT, unverified."""
    outer = json.loads(base64.b64decode(token))
    claims = jwt.decode(outer["token"], options={"verify_signature": False})
    return {"endpoints": outer["endpoints"], "claims": claims}
