"""Password hashes for `auth.users`: one self-describing string each, made by hashlib.

Formats (fields joined by ``$``, salt and hash in url-safe base64 without padding):

    scrypt$n=16384,r=8,p=1$<salt>$<hash>
    pbkdf2_sha256$<iterations>$<salt>$<hash>

**In a browser tab** (Pyodide, JupyterLite) hashlib has neither ``scrypt`` nor ``pbkdf2_hmac``
(both come from OpenSSL). There, PBKDF2-HMAC-SHA256 is computed in pure Python on the standard
library's ``hmac`` and ``sha256``, which Pyodide has: `hash_password` makes ``pbkdf2_sha256``
hashes with `BROWSER_ITERATIONS` rounds, and ``pbkdf2_sha256`` hashes made anywhere verify there
(same algorithm, same bytes). Fewer rounds are acceptable in a tab: the hash only guards the
settings text of a server that lives in that one tab, next to its JWT secret and its data, and no
other machine can ask it to log anyone in. scrypt hashes cannot be checked there (a pure-Python
scrypt would take minutes per login): `unsupported_reason` says so, and settings refuse them with that message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "verify_password", "is_password_hash", "unsupported_reason", "BROWSER_ITERATIONS", "decoy_hash"]

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
BROWSER_ITERATIONS = 50_000
"""PBKDF2 rounds of `hash_password` where hashlib has no scrypt (a browser tab): a quarter second a login on CPython, a second in Pyodide."""


def _pbkdf2_sha256(password: bytes, salt: bytes, iterations: int, dklen: int) -> bytes:
    """PBKDF2-HMAC-SHA256 (RFC 8018): hashlib's where it has one, else the same in pure Python."""
    native = getattr(hashlib, "pbkdf2_hmac", None)
    if native is not None:
        return bytes(native("sha256", password, salt, iterations, dklen))
    # The keyed inner and outer hashes are set up once; each round then costs two copies and updates.
    mac = hmac.new(password, digestmod=hashlib.sha256)
    blocks: list[bytes] = []
    for index in range(1, -(-dklen // mac.digest_size) + 1):
        first = mac.copy()
        first.update(salt + index.to_bytes(4, "big"))
        u = first.digest()
        total = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            step = mac.copy()
            step.update(u)
            u = step.digest()
            total ^= int.from_bytes(u, "big")
        blocks.append(total.to_bytes(mac.digest_size, "big"))
    return b"".join(blocks)[:dklen]


def unsupported_reason(stored: str) -> str | None:
    """Why this Python cannot check the hash string `stored` (None when it can): scrypt in a browser tab."""
    scheme = stored.split("$", 1)[0] if isinstance(stored, str) else ""
    if scheme == "scrypt" and not hasattr(hashlib, "scrypt"):
        return (
            "is an scrypt hash, which this Python cannot check (no hashlib.scrypt: Pyodide in a browser has no OpenSSL); "
            "make a pbkdf2_sha256 hash here with livekit_demo.passwords.hash_password(...), or log in with the demo rule"
        )
    return None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A new scrypt hash string for `password`, with a random salt (pbkdf2_sha256 where there is no scrypt)."""
    salt = secrets.token_bytes(16)
    if not hasattr(hashlib, "scrypt"):
        digest = _pbkdf2_sha256(password.encode("utf-8"), salt, BROWSER_ITERATIONS, 32)
        return f"pbkdf2_sha256${BROWSER_ITERATIONS}${_b64(salt)}${_b64(digest)}"
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
        reason = unsupported_reason(stored)
        if reason is not None:
            raise ValueError(f"the password hash {reason}")  # settings refuse such hashes before this
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=salt, dklen=len(expected), maxmem=256 * 1024 * 1024, **params
        )
    else:
        digest = _pbkdf2_sha256(password.encode("utf-8"), salt, params["iterations"], len(expected))
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
