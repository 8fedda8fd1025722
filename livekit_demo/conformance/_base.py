"""The machinery under `livekit_demo.conformance`: the check registry and the probe checks talk through.

A check is a function of one `Probe`. The probe makes HTTP calls with httpx (records each one, with
tokens and passwords redacted), asserts on the answers (`expect_*`, raising `CheckFailed` with what
was expected and what was seen) and creates rooms that it deletes again at the end of the run.
Nothing here knows how our own server is built: only SPEC.md and the swagger contract.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

__all__ = [
    "API",
    "API_V2",
    "REGISTRY",
    "Answer",
    "Check",
    "CheckFailed",
    "CheckSkipped",
    "Exchange",
    "Keys",
    "Probe",
    "brief",
    "check",
    "jwt_parts",
    "now",
    "redact",
    "status_body_problems",
    "unsigned_jwt",
]

API = "/api/v1/live"
API_V2 = "/api/v2/live"
_SECRET_KEYS = ("password", "token", "access_token", "refresh_token", "app_token", "app_sign")
_SHOWN = 600  # characters of a body kept in a record: enough to read, not a wall of text


class CheckFailed(Exception):
    """The server answered outside the contract: what the check expected, and what it saw."""

    def __init__(self, expected: str, seen: str) -> None:
        super().__init__(f"expected {expected}; saw {seen}")
        self.expected = expected
        self.seen = seen


class CheckSkipped(Exception):
    """The check cannot run here (no second user, no keys...): the reason says why."""


@dataclass(frozen=True)
class Check:
    """One named rule of the contract, with the function that tests it."""

    id: str
    description: str
    run: Callable[[Probe], None]
    stricter: str = ""  # non-empty: our deliberate rule beyond the original, and what the original did

    @property
    def is_stricter(self) -> bool:
        return bool(self.stricter)


REGISTRY: dict[str, Check] = {}


def check(check_id: str, description: str, *, stricter: str = "") -> Callable[[Callable[[Probe], None]], Callable[[Probe], None]]:
    """Register a check function under a unique id (registration order is run order)."""

    def register(func: Callable[[Probe], None]) -> Callable[[Probe], None]:
        if check_id in REGISTRY:
            raise ValueError(f"duplicate check id {check_id}")
        REGISTRY[check_id] = Check(check_id, description, func, stricter)
        return func

    return register


@dataclass(frozen=True)
class Keys:
    """What the checker knows of the server's settings; None = unknown, so that rule is not verified."""

    push_auth_key: str | None = None
    pull_auth_key: str | None = None
    app_name: str = "live"
    auth_expires: int = 604800
    rtc_app_id: str | None = None
    rtc_app_key: str | None = None
    im_app_id: str | None = None
    im_app_key: str | None = None
    max_body: int = 1048576
    callback_host: str | None = None  # what the CDN's push callback is signed with (SPEC 13)
    callback_auth_key: str | None = None

    @property
    def callback_known(self) -> bool:
        return self.callback_host is not None and self.callback_auth_key is not None

    @property
    def cdn_known(self) -> bool:
        return self.push_auth_key is not None and self.pull_auth_key is not None


@dataclass
class Exchange:
    """One request a check made and the answer it got, with secrets redacted."""

    method: str
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    response: Any = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def line(self) -> str:
        """`POST /api/v1/live/get {"id": ...} -> 404`, for tables and messages."""
        body = "" if self.body is None else " " + brief(self.body, 160)
        return f"{self.method} {self.path}{body} -> {self.status if self.status is not None else 'no answer'}"


@dataclass
class Answer:
    """What the server answered: status, parsed JSON (or None) and text."""

    status: int
    data: Any
    text: str
    headers: httpx.Headers
    exchange: Exchange

    @property
    def is_json(self) -> bool:
        return self.data is not None or self.text.strip() == "null"

    def show(self) -> str:
        """`HTTP 500 {"code": 500, ...}`: the status and the start of the body."""
        return f"HTTP {self.status} {brief(self.data if self.is_json else self.text)}"


def brief(value: Any, limit: int = 240) -> str:
    """Compact JSON (or text) cut to `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact(value: Any) -> Any:
    """A copy with passwords and tokens replaced by their length, so reports can be shared."""
    if isinstance(value, Mapping):
        return {k: (f"<redacted {len(v)} chars>" if k in _SECRET_KEYS and isinstance(v, str) and v else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _redact_path(path: str) -> str:
    base, sep, query = path.partition("?")
    if not sep:
        return path
    pairs = [(k, "<redacted>" if k in _SECRET_KEYS else v) for k, v in parse_qsl(query, keep_blank_values=True)]
    return f"{base}?{urlencode(pairs, safe='<>')}"


def _shown(value: Any) -> Any:
    # Keep JSON structure when small; a long body becomes a cut string so reports stay readable.
    text = json.dumps(value, ensure_ascii=False)
    return value if len(text) <= _SHOWN * 4 else brief(value, _SHOWN)


class Probe:
    """The session checks run in: HTTP calls, expectations, tokens of two users, rooms to clean up."""

    def __init__(
        self,
        client: httpx.Client,
        username: str,
        password: str,
        second_user: tuple[str, str],
        keys: Keys | None,
    ) -> None:
        self.client = client
        self.username = username
        self.password = password
        self.peer_name, self.peer_password = second_user
        self.keys = keys
        self.exchanges: list[Exchange] = []
        self.expectations: list[str] = []
        self.created: dict[str, tuple[str, str]] = {}  # room id -> (anchor, token used): rooms to delete
        self.cleanup_problems: list[str] = []
        self._tokens: dict[str, str] = {}
        self._login_problem: dict[str, str] = {}
        self.cache: dict[str, Any] = {}

    # -- per check ---------------------------------------------------------------------------------

    def begin(self) -> None:
        """Start recording for the next check."""
        self.exchanges = []
        self.expectations = []

    # -- HTTP --------------------------------------------------------------------------------------

    def call(
        self,
        path: str,
        body: Any = None,
        *,
        as_user: str | None = "main",
        method: str = "POST",
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> Answer:
        """One request. `path` without a leading "/" is under /api/v1/live (an absolute URL is sent as it is); `as_user` "main", "peer" or None.

        `body` is sent as JSON unless `content` gives the raw bytes; `token` overrides the user's token.
        """
        if not path.startswith("/") and "://" not in path:
            path = f"{API}/{path}"
        sent: dict[str, str] = dict(headers or {})
        if token is None and as_user is not None:
            token = self.token(as_user)
        if token is not None and not any(k.lower() == "authorization" for k in sent):
            sent["Authorization"] = f"Bearer {token}"
        raw = content
        if raw is None and body is not None:
            raw = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        record = Exchange(
            method=method,
            path=_redact_path(path),
            body=_shown(redact(body)) if content is None else brief(content.decode("utf-8", "replace"), 120),
            headers={k: ("<redacted>" if k.lower() in ("authorization", "cookie") else v) for k, v in sent.items()},
        )
        self.exchanges.append(record)
        try:
            response = self.client.request(method, path, content=raw, headers=sent)
        except httpx.HTTPError as exc:
            record.response = f"{type(exc).__name__}: {exc}"
            raise CheckFailed(f"an answer to {method} {record.path}", f"no answer: {type(exc).__name__}: {exc}") from None
        text = response.text
        try:
            data = response.json()
        except ValueError:
            data = None
        record.status = response.status_code
        record.response = _shown(redact(data)) if data is not None else brief(text, _SHOWN)
        answer = Answer(response.status_code, data, text, response.headers, record)
        self._track_created(path, body, answer, as_user, token)
        return answer

    def _track_created(self, path: str, body: Any, answer: Answer, as_user: str | None, token: str | None) -> None:
        # Any room a create made, even one a check expected to be refused, is deleted at the end.
        if path.rsplit("/", 1)[-1] != "create" or answer.status != 200 or not isinstance(answer.data, dict):
            return
        room_id = answer.data.get("id")
        anchor = body.get("anchor") if isinstance(body, dict) else None
        if isinstance(room_id, str) and isinstance(anchor, str) and token is not None:
            self.created[room_id] = (anchor, token)

    def forget(self, room_id: str) -> None:
        """A room a check deleted itself needs no cleanup."""
        self.created.pop(room_id, None)

    def cleanup(self) -> None:
        """Delete every room the run created; note (never raise) what could not be deleted."""
        for room_id, (anchor, token) in list(self.created.items()):
            try:
                answer = self.call("delete", {"id": room_id, "user_id": anchor}, token=token)
            except CheckFailed as exc:
                self.cleanup_problems.append(f"room {room_id}: {exc.seen}")
                continue
            if answer.status not in (200, 404):
                self.cleanup_problems.append(f"room {room_id}: delete answered {answer.show()}")
        self.created.clear()

    # -- users -------------------------------------------------------------------------------------

    def user(self, who: str) -> str:
        """The username of "main" or "peer"."""
        return self.username if who == "main" else self.peer_name

    def token(self, who: str) -> str:
        """The JWT of "main" or "peer", logging in once; skips the check when the peer cannot log in."""
        if who in self._tokens:
            return self._tokens[who]
        if who in self._login_problem:
            raise CheckSkipped(self._login_problem[who])
        name, password = (self.username, self.password) if who == "main" else (self.peer_name, self.peer_password)
        response = self.client.post("/login", json={"username": name, "password": password})
        data = _json_or_none(response)
        token = data.get("token") if isinstance(data, dict) else None
        if response.status_code != 200 or not isinstance(token, str):
            what = "the user" if who == "main" else "the second user (give one with --second-user NAME:PASS)"
            problem = f"cannot log in as {name!r}, {what}: /login answered HTTP {response.status_code} {brief(data or response.text, 120)}"
            self._login_problem[who] = problem
            raise CheckSkipped(problem)
        self._tokens[who] = token
        return token

    # -- rooms -------------------------------------------------------------------------------------

    def room(self, mode: int = 0, *, as_user: str = "main", **fields: Any) -> dict[str, Any]:
        """A new room of `as_user` (deleted at the end of the run); its RoomInfo as create answered."""
        body = {"title": f"conformance {secrets.token_hex(3)}", "anchor": self.user(as_user), "mode": mode, **fields}
        answer = self.call("create", body, as_user=as_user)
        if answer.status != 200 or not isinstance(answer.data, dict) or not isinstance(answer.data.get("id"), str):
            raise CheckFailed("setup: create answers HTTP 200 with a RoomInfo carrying an id", answer.show())
        return answer.data

    def room_in(self, status: int, mode: int = 0) -> dict[str, Any]:
        """A new room brought to `status` (0 prepared, 1 live, 3 paused, 2 ended) through the lifecycle calls."""
        info = self.room(mode)
        steps = {0: [], 1: ["start"], 3: ["start", "pause"], 2: ["stop"]}[status]
        for action in steps:
            info = self.ok(action, {"id": info["id"], "user_id": self.username}, what=f"setup: {action}")
        if info.get("status") != status:
            raise CheckFailed(f"setup: status {status} after {'/'.join(steps) or 'create'}", f"status {info.get('status')!r}")
        return info

    def shared_room(self, mode: int) -> dict[str, Any]:
        """One room per mode for checks that only read; created once per run."""
        return self.cached(f"room{mode}", lambda: self.room(mode))

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """`build()` once per run; every check using it also records the requests that built it."""
        if key not in self.cache:
            start = len(self.exchanges)
            value = build()
            self.cache[key] = (value, self.exchanges[start:])
        value, made = self.cache[key]
        self.exchanges.extend(e for e in made if e not in self.exchanges)
        return value

    # -- expectations ------------------------------------------------------------------------------

    def expect(self, condition: bool, expected: str, seen: str | Callable[[], str]) -> None:
        """Fail with `expected` / `seen` unless `condition`."""
        self.expectations.append(expected)
        if not condition:
            raise CheckFailed(expected, seen() if callable(seen) else seen)

    def ok(self, path: str, body: Any = None, *, what: str = "", **kwargs: Any) -> Any:
        """Call and require HTTP 200 with a JSON body; return the body."""
        answer = self.call(path, body, **kwargs)
        label = what or f"{answer.exchange.method} {answer.exchange.path}"
        self.expect(answer.status == 200 and answer.is_json, f"{label}: HTTP 200 with a JSON body", answer.show)
        return answer.data

    def expect_error(self, answer: Answer, status: int, *, field: str | None = None, why: str = "") -> None:
        """Require HTTP `status` with a Status body (same code, a message; `details` naming `field`)."""
        request = answer.exchange.line()
        because = f" ({why})" if why else ""
        self.expect(answer.status == status, f"HTTP {status}{because} for {request}", answer.show)
        problems = status_body_problems(answer.data, status)
        self.expect(not problems, "a Status body {code: <the HTTP status>, message: <text>, details: null or [{field, problem}]}",
                    lambda: f"{'; '.join(problems)} in {answer.show()}")  # fmt: skip
        if field is not None:
            details = answer.data.get("details") if isinstance(answer.data, dict) else None
            named = [d.get("field") for d in details or [] if isinstance(d, dict)]
            self.expect(field in named, f"details naming the field {field!r}", f"details {brief(details)}")

    def expect_keys(self, value: Any, keys: set[str], where: str) -> None:
        """Require a JSON object with exactly `keys`."""
        got = set(value) if isinstance(value, dict) else None
        self.expect(got == keys, f"{where}: an object with exactly the keys {sorted(keys)}",
                    lambda: f"{brief(value)}" if got is None else f"missing {sorted(keys - got)}, unexpected {sorted(got - keys)}")  # fmt: skip

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        """Prefix failures inside with `label` (which room, which call)."""
        try:
            yield
        except CheckFailed as exc:
            raise CheckFailed(f"{label}: {exc.expected}", exc.seen) from None


def status_body_problems(data: Any, status: int) -> list[str]:
    """What is wrong with a Status body answered with HTTP `status` (empty: nothing)."""
    if not isinstance(data, dict):
        return ["the body is not a JSON object"]
    problems = []
    code = data.get("code")
    if type(code) is not int or code != status:
        problems.append(f"code is {code!r}, not the HTTP status {status}")
    if not isinstance(data.get("message"), str) or not data["message"].strip():
        problems.append("message is not a non-empty string")
    details = data.get("details")
    if details is not None and not (
        isinstance(details, list) and all(isinstance(d, dict) and isinstance(d.get("field"), str) and isinstance(d.get("problem"), str) for d in details)
    ):
        problems.append("details is neither null nor a list of {field, problem}")
    return problems


def jwt_parts(token: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The header and claims of a JWT (not verified: the checker has no secret), or None."""
    if not isinstance(token, str) or not re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]*", token):
        return None
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in token.split(".")[:2])
    except ValueError:
        return None
    return (header, claims) if isinstance(header, dict) and isinstance(claims, dict) else None


def unsigned_jwt(claims: Mapping[str, Any]) -> str:
    """A token with `alg: none` and no signature: a server must refuse it."""

    def part(value: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def now() -> int:
    """The checker's clock, in seconds."""
    return int(time.time())


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
