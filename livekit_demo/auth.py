"""Who may log in, the JWTs they get, and who a token says is acting.

- Login: configured users (`auth.users`, password hashes) with their password; any other username
  with the original's demo rule "password equals username" while `auth.demo_login` is on.
- JWT: HS256 with claims `id` and `sub` (the username), `iat`, `exp`, `orig_iat`. Verified against
  an explicit algorithm list with required claims, and against our injectable clock (so tests can
  expire a token without sleeping). Refresh is allowed while `now < orig_iat + refresh_window`.
- Admin-ness is looked up in settings each time a token is checked; it is never a claim.
- A token's signature and claims are checked once: the verified claims are kept by token (a
  bounded LRU, emptied when the secret changes), while `exp` is still compared with the clock on
  every call. Decoding a JWT is most of what a cheap call costs otherwise. Who the token is (and
  that its user may still log in) is kept with them, for as long as the settings stay the same.
- Repeated failed logins are throttled per username and per client address (429 + Retry-After).
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt

from .clock import Clock, format_time
from .exceptions import SettingsError, TooManyRequests, Unauthorized
from .passwords import decoy_hash, verify_password
from .settings import AuthSettings
from .types import Claims, UserId

__all__ = ["Identity", "Authenticator", "LoginThrottle", "find_token", "resolve_secret", "ALGORITHM"]

ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ("exp", "iat", "id")
VERIFIED_TOKENS = 4096
"""How many verified tokens `Authenticator.verify` remembers (least recently used go first)."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """The user a valid token speaks for."""

    user_id: UserId
    is_admin: bool = False


@dataclass(slots=True)
class _Verified:
    """A token whose signature and claims passed `Authenticator._decode`."""

    claims: Claims
    # Who the token was last found to be, with the settings it was found under (one tuple, so
    # a thread never reads one settings' identity beside another's settings); None until then.
    found: tuple[AuthSettings, Identity] | None = None


@functools.lru_cache(maxsize=4096)
def _identity(user_id: UserId, is_admin: bool) -> Identity:
    # Identities are immutable and every call asks for one: made once per (user, admin-ness).
    return Identity(user_id, is_admin)


def find_token(headers: Mapping[str, str], query: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The token in the original's order: `Authorization: Bearer`, then `?token=`, then cookie `jwt`.

    An Authorization header that is not `Bearer ...` is passed over as if absent.
    """
    header = headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query.get("token") or cookies.get("jwt") or None


def resolve_secret(auth: AuthSettings, load_from_store: Callable[[Callable[[], str]], str]) -> str:
    """The JWT secret: from settings, else the one the room store keeps (generated on first use).

    Generated secrets are random (never a constant). The store keeps them with the data (a file
    with owner-only permissions beside TinyDB's, or `auth.secret_file`; a table in SQL), so tokens
    survive a restart and every process sharing the data shares the secret.
    """
    if auth.jwt_secret:
        return auth.jwt_secret
    secret = load_from_store(_new_secret)
    if len(secret.encode("utf-8")) < 32:
        raise SettingsError("auth.secret_file", "the stored JWT secret holds fewer than 32 bytes; remove it to have a new one made")
    return secret


def _new_secret() -> str:
    return secrets.token_urlsafe(48)


class LoginThrottle:
    """Counts failed logins per username and per client address in a sliding window.

    After `max_per_user` failures for one username (or `max_per_address` from one address) within
    `window` seconds, that key is refused (429) until its oldest counted failure leaves the window.
    The address limit is higher by default: a workshop behind one NAT shares an address, and a few
    typos must not lock the whole room out. A successful login clears the username's count.

    An attempt is reserved (`begin`) before its password is checked and settled (`end`) after, so
    attempts in flight count against the limit: 200 concurrent guesses get at most `max_per_user`
    password checks, not however many threads happen to pass the check before the first failure lands.
    An attempt that finds the limit full only because of attempts in flight waits for them to settle
    instead of being refused: a class logging in as one demo user at once is not a guessing attack.
    """

    def __init__(self, max_per_user: int, max_per_address: int, window: int, clock: Clock, *, wait: float = 30.0) -> None:
        self.max_per_user = max_per_user
        self.max_per_address = max_per_address
        self.window = window
        self.wait = wait  # the longest an attempt waits for attempts in flight before a 429
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._pending: dict[str, int] = {}  # attempts reserved and not yet settled, per key
        self._sweep_at = 10000
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)

    def check(self, *keys: str) -> None:
        """Raise TooManyRequests when any key is locked out."""
        with self._lock:
            self._check(keys, self._clock.now().timestamp())

    def begin(self, *keys: str) -> None:
        """Reserve one attempt for every key, or raise TooManyRequests (nothing reserved then)."""
        deadline = time.monotonic() + self.wait
        with self._settled:
            while self._check(keys, self._clock.now().timestamp()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TooManyRequests("too many logins in flight for this username or address; try again in 1 s", retry_after=1)
                self._settled.wait(left)
            for key in keys:
                self._pending[key] = self._pending.get(key, 0) + 1

    def end(self, *keys: str, ok: bool) -> None:
        """Settle an attempt reserved by `begin`: a failure is counted, a success clears the username's count."""
        now = self._clock.now().timestamp()
        with self._settled:
            for key in keys:
                left = self._pending.get(key, 0) - 1
                if left > 0:
                    self._pending[key] = left
                else:
                    self._pending.pop(key, None)
            if ok:
                self._failures.pop(keys[0], None)
            else:
                self._count_failure(keys, now)
            self._settled.notify_all()

    def failed(self, *keys: str) -> None:
        """Count one failed login for every key."""
        now = self._clock.now().timestamp()
        with self._lock:
            self._count_failure(keys, now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _check(self, keys: tuple[str, ...], now: float) -> bool:
        """Raise TooManyRequests when a key's counted failures reach its limit; True when it is full only with attempts in flight."""
        busy = False
        for key in keys:
            times = self._failures.get(key)
            counted = self._forget_old(times, now) if times is not None else 0
            limit = self.max_per_user if key.startswith("user:") else self.max_per_address
            if times and counted >= limit:
                retry_after = max(1, int(times[0] + self.window - now + 0.999))
                what = "this username" if key.startswith("user:") else "this address"
                raise TooManyRequests(f"too many failed logins for {what}; try again in {retry_after} s", retry_after=retry_after)
            busy = busy or counted + self._pending.get(key, 0) >= limit
        return busy

    def _count_failure(self, keys: tuple[str, ...], now: float) -> None:
        for key in keys:
            times = self._failures.setdefault(key, deque())
            self._forget_old(times, now)
            times.append(now)
        if len(self._failures) > self._sweep_at:
            # Bound memory under a flood of distinct names or addresses; sweeping only when the
            # table has doubled keeps the cost per failure constant.
            for stale in [k for k, v in self._failures.items() if self._forget_old(v, now) == 0]:
                del self._failures[stale]
            self._sweep_at = max(10000, 2 * len(self._failures))

    def _forget_old(self, times: deque[float], now: float) -> int:
        while times and times[0] <= now - self.window:
            times.popleft()
        return len(times)


class Authenticator:
    """Issues and checks the AppServer's JWTs."""

    def __init__(self, auth: AuthSettings, secret: str, clock: Clock) -> None:
        self.settings = auth
        self._clock = clock
        # token -> its verified claims; only tokens whose signature and claims passed `_decode`.
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._verified_lock = threading.Lock()
        self.secret = secret
        self.throttle = LoginThrottle(auth.login_max_failures, auth.login_max_failures_per_address, auth.login_lockout, clock)
        # scrypt takes 16 MiB per check: a burst of logins must not take the server's memory with it.
        self._hashing = threading.BoundedSemaphore(auth.max_concurrent_hashes)
        # Unknown usernames are checked against a hash as costly as a configured one (see decoy_hash).
        self._decoy = decoy_hash(next(iter(auth.users.values()))) if auth.users else None

    @property
    def secret(self) -> str:
        """The HS256 key tokens are signed and checked with."""
        return self._secret

    @secret.setter
    def secret(self, value: str) -> None:
        # A token verified under the old key proves nothing under the new one.
        with self._verified_lock:
            self._secret = value
            self._verified.clear()

    def __repr__(self) -> str:
        return f"Authenticator(users={len(self.settings.users)}, demo_login={self.settings.demo_login})"

    def login(self, username: str, password: str, client: str = "") -> dict[str, object]:
        """Check the password and answer `{"code": 200, "expire", "token"}`; 401 or 429 otherwise."""
        keys = (f"user:{username}", f"addr:{client}") if client else (f"user:{username}",)
        self.throttle.begin(*keys)  # reserved before the (slow) check: concurrent guesses count
        ok = False
        try:
            ok = self._password_ok(username, password)
        finally:
            self.throttle.end(*keys, ok=ok)
        if not ok:
            log.info("login refused for user %r", username)
            raise Unauthorized("wrong username or password")
        return self._answer(username, self._clock.now(), configured=username in self.settings.users)

    def _password_ok(self, username: str, password: str) -> bool:
        stored = self.settings.users.get(username)
        if stored is None and self._decoy is None:
            return self._demo_ok(username, password)  # no users configured: nothing to hide
        with self._hashing:
            matched = verify_password(password, stored if stored is not None else self._decoy or "")
        return matched if stored is not None else self._demo_ok(username, password)

    def _demo_ok(self, username: str, password: str) -> bool:
        # The demo rule never hands out a configured, admin or reserved name (one removed from users).
        if not self.settings.demo_login or self.settings.is_reserved(username):
            return False
        return secrets.compare_digest(password.encode(), username.encode())

    def issue(self, user_id: UserId, *, orig_iat: datetime | None = None, configured: bool | None = None) -> tuple[str, datetime]:
        """A new token for `user_id` and its expiry; `configured` (default: whether it is in auth.users) goes in claim `cfg`."""
        now = self._clock.now().replace(microsecond=0)
        exp = now + timedelta(seconds=self.settings.token_ttl)
        claims = {
            "id": user_id,
            "sub": user_id,
            "iat": int(now.timestamp()),
            "exp": int(exp.timestamp()),
            "orig_iat": int((orig_iat or now).timestamp()),
            # Whether a configured user logged in: checked on every use against the users of the day.
            "cfg": user_id in self.settings.users if configured is None else configured,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), exp

    def verify(self, token: str) -> Identity:
        """The identity of a valid, unexpired token; 401 saying what is wrong otherwise."""
        verified = self._verified_token(token)
        claims = verified.claims
        exp = claims["exp"]
        if self._clock.timestamp() >= exp:
            raise Unauthorized(f"token expired at {format_time(_from_ts(exp))}; log in again or refresh it")
        settings = self.settings
        found = verified.found
        if found is None or found[0] is not settings:  # first use, or the settings were replaced since
            self.check_still_allowed(claims, settings)
            found = verified.found = (settings, self.identity(claims["id"], settings))
        return found[1]

    def identity(self, user_id: UserId, settings: AuthSettings | None = None) -> Identity:
        """Who `user_id` is under `settings` (default: the current ones): admin-ness is read from the
        settings, never from a token."""
        return _identity(user_id, (self.settings if settings is None else settings).is_admin(user_id))

    def check_still_allowed(self, claims: Claims, settings: AuthSettings | None = None) -> None:
        """401 when the user a valid token names may no longer log in the way it did.

        A configured user's token (claim `cfg`) lapses once the user leaves `auth.users`; a demo
        login's token lapses when the demo rule is switched off or no longer covers the name (it
        became configured, an admin or `auth.reserved`). Checked against `settings` (default: the
        current ones); `verify` checks each token again whenever the settings are replaced.
        """
        settings = self.settings if settings is None else settings
        user_id = claims["id"]
        if claims.get("cfg") is True:
            if user_id not in settings.users:
                raise Unauthorized(f"user {user_id!r} is no longer configured on this server; log in again")
        elif not settings.demo_login or settings.is_reserved(user_id):
            raise Unauthorized(f"the demo login for {user_id!r} is no longer allowed on this server; log in again")

    def refresh(self, token: str) -> dict[str, object]:
        """A new token for a token still inside its refresh window, expired or not."""
        claims = self._decode(token)
        orig_iat = claims.get("orig_iat")
        if not isinstance(orig_iat, int) or isinstance(orig_iat, bool):
            raise Unauthorized("token has no orig_iat claim, so it cannot be refreshed; log in again")
        window_end = orig_iat + self.settings.refresh_window
        if self._clock.timestamp() >= window_end:
            raise Unauthorized(
                f"token is past its refresh window, which ended at {format_time(_from_ts(window_end))}; log in again"
            )
        self.check_still_allowed(claims)
        return self._answer(claims["id"], self._clock.now(), configured=claims.get("cfg") is True)

    def _answer(self, user_id: UserId, orig_iat: datetime, *, configured: bool) -> dict[str, object]:
        token, exp = self.issue(user_id, orig_iat=orig_iat, configured=configured)
        return {"code": 200, "expire": exp.astimezone(timezone.utc).isoformat(), "token": token}

    def _verified_token(self, token: str) -> _Verified:
        """`_decode(token)`, from the cache when this token passed it before under the current secret."""
        with self._verified_lock:
            verified = self._verified.get(token)
            if verified is not None:
                self._verified.move_to_end(token)
                return verified
            secret = self._secret
        verified = _Verified(self._decode(token, secret))  # outside the lock: a miss costs ~0.1 ms
        with self._verified_lock:
            if self._secret == secret:  # not verified under a key replaced meanwhile
                self._verified[token] = verified
                if len(self._verified) > VERIFIED_TOKENS:
                    self._verified.popitem(last=False)
        return verified

    def _decode(self, token: str, secret: str | None = None) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise Unauthorized("token is malformed: not a JWT") from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise Unauthorized(f"token algorithm {alg!r} is not accepted; only {ALGORITHM} is")
        try:
            # Expiry is checked against our clock by the caller, so refresh can read expired tokens.
            claims = jwt.decode(
                token,
                self._secret if secret is None else secret,
                algorithms=[ALGORITHM],
                options={"require": list(_REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False},
            )
        except jwt.MissingRequiredClaimError as exc:
            if "live_id" in jwt.decode(token, options={"verify_signature": False}):
                # SPEC 12: what getLiveJumpUrl hands out is traded through verifyAuthToken, never used as a login.
                raise Unauthorized("this is a hand-off token, not a login token: trade it for one with verifyAuthToken") from None
            raise Unauthorized(f"token lacks the required {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("token signature does not match: it was signed with another secret or altered") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"token is invalid: {exc}") from None
        if not isinstance(claims.get("id"), str) or not claims["id"]:
            raise Unauthorized("token's 'id' claim is not a user id")
        if not isinstance(claims.get("exp"), int) or isinstance(claims["exp"], bool):
            raise Unauthorized("token's 'exp' claim is not a whole number of seconds")
        return claims


def _from_ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)
