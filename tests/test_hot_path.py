"""What the hot path remembers and skips changes no answer: the token cache, JSON in and out,
the direct calls that bypass Starlette's per-request machinery, and signed URLs reused within a second."""

from __future__ import annotations

import dataclasses

import jwt
import pytest

from livekit_demo import auth as auth_module
from livekit_demo.auth import Authenticator
from livekit_demo.clock import FixedClock
from livekit_demo.exceptions import Unauthorized
from livekit_demo.settings import AuthSettings

SECRET = "a-secret-of-at-least-thirty-two-bytes!"


def _authenticator(**settings: object) -> tuple[Authenticator, FixedClock]:
    clock = FixedClock("2026-11-28T10:15:00Z")
    return Authenticator(AuthSettings(**settings), SECRET, clock), clock  # type: ignore[arg-type]


def _count_decodes(monkeypatch: pytest.MonkeyPatch, auth: Authenticator) -> list[str]:
    seen: list[str] = []
    real = auth._decode

    def counting(token: str, secret: str | None = None) -> dict[str, object]:
        seen.append(token)
        return real(token, secret)

    monkeypatch.setattr(auth, "_decode", counting)
    return seen


def test_a_token_is_decoded_once_and_still_expires_by_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    auth, clock = _authenticator(token_ttl=60)
    decoded = _count_decodes(monkeypatch, auth)
    token, _ = auth.issue("ann")
    assert auth.verify(token).user_id == "ann"
    assert auth.verify(token).user_id == "ann"
    assert decoded == [token]  # the second call came from the cache
    clock.advance(59)
    assert auth.verify(token).user_id == "ann"
    clock.advance(1)  # exp itself is expired, cached or not
    with pytest.raises(Unauthorized, match="token expired at 2026-11-28T10:16:00Z"):
        auth.verify(token)
    assert decoded == [token]


def test_a_new_secret_forgets_every_verified_token() -> None:
    auth, _ = _authenticator()
    token, _ = auth.issue("ann")
    auth.verify(token)
    auth.secret = "another-secret-of-at-least-thirty-two-bytes"
    with pytest.raises(Unauthorized, match="signature does not match"):
        auth.verify(token)
    fresh, _ = auth.issue("ann")
    assert auth.verify(fresh).user_id == "ann"


def test_refused_tokens_are_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    auth, _ = _authenticator()
    decoded = _count_decodes(monkeypatch, auth)
    forged = jwt.encode({"id": "ann", "iat": 1, "exp": 2**40}, "not-our-secret-but-long-enough-for-hs256", algorithm="HS256")
    for _ in range(2):
        with pytest.raises(Unauthorized, match="signature does not match"):
            auth.verify(forged)
    assert decoded == [forged, forged]


def test_the_cache_is_bounded_and_forgets_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_module, "VERIFIED_TOKENS", 3)
    auth, _ = _authenticator()
    decoded = _count_decodes(monkeypatch, auth)
    tokens = [auth.issue(name)[0] for name in ("a", "b", "c", "d")]
    for token in tokens[:3]:
        auth.verify(token)
    auth.verify(tokens[0])  # "a" is now the most recently used: "b" goes first
    auth.verify(tokens[3])
    assert len(auth._verified) == 3
    decoded.clear()
    auth.verify(tokens[0])
    auth.verify(tokens[2])
    assert decoded == []
    auth.verify(tokens[1])
    assert decoded == [tokens[1]]


def test_admin_ness_is_read_from_settings_on_every_call() -> None:
    auth, _ = _authenticator(users={"ann": "unused-hash"})
    token, _ = auth.issue("ann")
    assert auth.verify(token).is_admin is False
    auth.settings = dataclasses.replace(auth.settings, admins=["ann"])
    assert auth.verify(token).is_admin is True
    auth.settings = dataclasses.replace(auth.settings, admins=[])
    assert auth.verify(token).is_admin is False
