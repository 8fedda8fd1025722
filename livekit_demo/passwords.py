"""Password hashes for `auth.users`: one self-describing string each, made by hashlib.

Formats (fields joined by ``$``, salt and hash in url-safe base64 without padding):

    scrypt$n=16384,r=8,p=1$<salt>$<hash>
    pbkdf2_sha256$<iterations>$<salt>$<hash>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "verify_password", "is_password_hash", "decoy_hash"]

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A new scrypt hash string for `password`, with a random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **_SCRYPT)
    params = ",".join(f"{k}={v}" for k, v in _SCRYPT.items())
    return f"scrypt${params}${_b64(salt)}${_b64(digest)}"


def is_password_hash(text: str) -> bool:
    """True when `text` parses as one of our hash strings (so a plain password in settings is caught)."""
    try:
        _parse(text)
    except ValueError:
        return False
    return True


def decoy_hash(like: str) -> str:
    """A hash with the scheme and cost of `like` that no password matches (random salt and digest).

    Checking an unknown username against it costs what checking a configured one does, so the
    time a failed login takes does not tell which usernames are configured.
    """
    scheme, params, salt, digest = _parse(like)
    raw = ",".join(f"{k}={v}" for k, v in params.items()) if scheme == "scrypt" else str(params["iterations"])
    return f"{scheme}${raw}${_b64(secrets.token_bytes(len(salt)))}${_b64(secrets.token_bytes(len(digest)))}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the hash string `stored`, compared in constant time."""
    try:
        scheme, params, salt, expected = _parse(stored)
    except ValueError:
        return False
    if scheme == "scrypt":
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=salt, dklen=len(expected), maxmem=256 * 1024 * 1024, **params
        )
    else:
        digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, params["iterations"], len(expected))
    return hmac.compare_digest(digest, expected)


def _parse(text: str) -> tuple[str, dict[str, int], bytes, bytes]:
    parts = text.split("$") if isinstance(text, str) else []
    if len(parts) != 4:
        raise ValueError("not a password hash")
    scheme, raw_params, salt, digest = parts
    try:
        if scheme == "scrypt":
            params = {k: int(v) for k, v in (item.split("=", 1) for item in raw_params.split(","))}
            if set(params) != {"n", "r", "p"}:
                raise ValueError("scrypt needs n, r and p")
        elif scheme == "pbkdf2_sha256":
            params = {"iterations": int(raw_params)}
        else:
            raise ValueError(f"unknown scheme {scheme!r}")
        return scheme, params, _unb64(salt), _unb64(digest)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a password hash: {exc}") from None
