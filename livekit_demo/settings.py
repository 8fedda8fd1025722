"""Settings: defaults -> config file (JSON or YAML) -> environment -> keyword arguments, later winning.

The sections and keys are the original AppServer's (`live_stream`, `live_mic`, `live_im`, `storage`,
`gateway`) plus ours (`auth`, `server`). Environment variables are ``LIVEKIT_DEMO_<SECTION>_<KEY>``;
the original's ``SPF_<SECTION>_<KEY>`` names work too, so its deployment templates carry over.

    >>> s = Settings.build(storage="memory", live_stream={"push_auth_key": ""})
    >>> s.storage.type, s.live_stream.push_auth_key
    ('memory', '')

Every bad setting is one `SettingsError` naming its dotted key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import SettingsError
from .passwords import is_password_hash, unsupported_reason

__all__ = [
    "Settings",
    "LiveStreamSettings",
    "LiveMicSettings",
    "LiveImSettings",
    "GatewaySettings",
    "StorageSettings",
    "AuthSettings",
    "ServerSettings",
    "EdgeSettings",
    "PLACEHOLDER_DOMAINS",
    "RoomsSettings",
    "parse_storage",
    "ENV_PREFIXES",
]

ENV_PREFIXES = ("SPF_", "LIVEKIT_DEMO_")
"""Environment prefixes in the order applied: ours wins over the original's."""

PLACEHOLDER_DOMAINS = ("push.example.com", "pull.example.com")
"""The default push and pull domains: while both are these, a running local edge serves the URLs (SPEC 13)."""

STORAGE_TYPES = ("tinydb", "memory", "none", "mysql", "postgresql", "sqlite", "sql")


@dataclass(frozen=True)
class LiveStreamSettings:
    """The CDN: push and pull domains, their Type A auth keys (empty = unsigned URLs), the app name."""

    push_url: str = "push.example.com"
    pull_url: str = "pull.example.com"
    push_auth_key: str = field(default="demo-push-key", repr=False)
    pull_auth_key: str = field(default="demo-pull-key", repr=False)
    app_name: str = "live"
    scheme: str = "http"
    auth_expires: int = 604800
    callback_host: str = ""  # the host the CDN signs its push callbacks with ("": push_url, as the reference)
    callback_auth_key: str = field(default="", repr=False)  # "": the push auth key

    @property
    def placeholder_domains(self) -> bool:
        """Whether push and pull are still the example domains (no CDN configured)."""
        return (self.push_url, self.pull_url) == PLACEHOLDER_DOMAINS

    @property
    def callback_signing_host(self) -> str:
        """The host in `ALI-LIVE-SIGNATURE`: `callback_host`, else `push_url` as configured."""
        return self.callback_host or self.push_url

    @property
    def callback_signing_key(self) -> str:
        """The key in `ALI-LIVE-SIGNATURE`: `callback_auth_key`, else the push auth key."""
        return self.callback_auth_key or self.push_auth_key

    def _check(self) -> None:
        _require(self.scheme in ("http", "https"), "live_stream.scheme", "must be 'http' or 'https'")
        _require(self.auth_expires > 0, "live_stream.auth_expires", "must be a positive number of seconds")
        _require(bool(self.app_name) and "/" not in self.app_name, "live_stream.app_name", "must be a non-empty name without '/'")
        for key in ("push_url", "pull_url"):
            value = getattr(self, key)
            _require(bool(value) and "/" not in value, f"live_stream.{key}", "must be a bare domain such as 'push.example.com'")


@dataclass(frozen=True)
class LiveMicSettings:
    """The RTC (co-streaming) application."""

    app_id: str = "demo-rtc-app"
    app_key: str = field(default="demo-rtc-key", repr=False)


@dataclass(frozen=True)
class LiveImSettings:
    """The IM application, for v2 IM tokens."""

    app_id: str = "demo-im-app"
    app_key: str = field(default="demo-im-key", repr=False)
    app_sign: str = field(default="demo-im-sign", repr=False)


@dataclass(frozen=True)
class GatewaySettings:
    """IM gateway addresses put into v1 IM tokens: WebSocket for web clients, LWP for the others."""

    ws_addr: str = "wss://im.example.com/ws"
    lwp_addr: str = "tls://im.example.com:443"


@dataclass(frozen=True)
class StorageSettings:
    """Where rooms live: `type` as in SPEC section 6, `url` a file path or a database URL/DSN."""

    type: str = "tinydb"
    url: str = "livekit_demo.json"
    # SQL databases only (seconds): how long to wait for a connection to open, for an answer to a
    # query, and for a free pooled connection. Past them a request gets 503 with Retry-After.
    connect_timeout: int = 5
    read_timeout: int = 10
    pool_timeout: int = 5

    def _check(self) -> None:
        _require(self.type in STORAGE_TYPES, "storage.type", f"must be one of {', '.join(STORAGE_TYPES)}")
        for key in ("connect_timeout", "read_timeout", "pool_timeout"):
            _require(getattr(self, key) > 0, f"storage.{key}", "must be a positive number of seconds")
        needs_url = self.type not in ("memory", "none")
        _require(not needs_url or bool(self.url), "storage.url", f"is needed for storage type {self.type!r}")


@dataclass(frozen=True)
class AuthSettings:
    """Who may log in, and the JWTs they get."""

    users: dict[str, str] = field(default_factory=dict, repr=False)
    admins: list[str] = field(default_factory=list)
    # Names the demo rule must never hand out: users removed from `users` belong here, since nothing
    # else remembers that a name was once configured (admins and configured users are reserved anyway).
    reserved: list[str] = field(default_factory=list)
    demo_login: bool = True
    jwt_secret: str = field(default="", repr=False)
    secret_file: str = ""  # where memory and TinyDB storage keep a generated secret (SQL keeps it in the database)
    token_ttl: int = 86400
    refresh_window: int = 86400
    login_max_failures: int = 5  # per username, within login_lockout seconds
    login_max_failures_per_address: int = 50  # per client address: higher, since a class may share one NAT
    login_lockout: int = 60
    max_concurrent_hashes: int = 4  # password checks at once (scrypt takes 16 MiB each); more wait

    def _check(self) -> None:
        for name, stored in self.users.items():
            _require(
                is_password_hash(stored),
                f"auth.users.{name}",
                "is not a password hash; make one with `livekit-demo hash-password` (plain passwords are refused)",
            )
            reason = unsupported_reason(stored)
            _require(reason is None, f"auth.users.{name}", reason or "")
        _require(
            not self.jwt_secret or len(self.jwt_secret.encode("utf-8")) >= 32,
            "auth.jwt_secret",
            "must be at least 32 bytes (or empty, to generate one)",
        )
        for key in ("token_ttl", "refresh_window", "login_max_failures", "login_max_failures_per_address", "login_lockout", "max_concurrent_hashes"):
            _require(getattr(self, key) > 0, f"auth.{key}", "must be a positive number")

    def is_admin(self, user_id: str) -> bool:
        """Admins are configured users named in `admins`: the demo login rule never makes one."""
        return user_id in self.users and user_id in self.admins

    def is_reserved(self, user_id: str) -> bool:
        """Names the demo login rule never applies to: configured users, admins, and `reserved`."""
        return user_id in self.users or user_id in self.admins or user_id in self.reserved


@dataclass(frozen=True)
class ServerSettings:
    """The HTTP server."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_body: int = 1048576
    workers: int = 1
    log_level: str = "warning"
    # `serve` only: open connections per process (fewer when the open-file limit is lower), seconds
    # a kept-alive connection may idle, and seconds a client has to send a whole request.
    max_connections: int = 1000
    keep_alive: int = 5
    read_timeout: int = 20

    def _check(self) -> None:
        _require(0 <= self.port <= 65535, "server.port", "must be between 0 and 65535")
        for key in ("max_connections", "keep_alive", "read_timeout"):
            _require(getattr(self, key) > 0, f"server.{key}", "must be a positive number")
        _require(self.max_body > 0, "server.max_body", "must be a positive number of bytes")
        _require(self.workers >= 1, "server.workers", "must be at least 1")
        levels = ("critical", "error", "warning", "info", "debug")
        _require(self.log_level in levels, "server.log_level", f"must be one of {', '.join(levels)}")


@dataclass(frozen=True)
class EdgeSettings:
    """The local media edge (SPEC 13): off by default; RTMP port and limits when on."""

    enabled: bool = False
    rtmp_port: int = 1935
    max_streams: int = 16
    max_viewers: int = 200

    def _check(self) -> None:
        _require(0 <= self.rtmp_port <= 65535, "edge.rtmp_port", "must be between 0 and 65535 (0: any free port)")
        _require(self.max_streams >= 1, "edge.max_streams", "must be at least 1")
        _require(self.max_viewers >= 1, "edge.max_viewers", "must be at least 1")


@dataclass(frozen=True)
class RoomsSettings:
    """Limits on rooms."""

    max_per_user: int = 1000  # rooms one anchor may hold at once (64 KiB extends each: a bound on memory and disk)

    def _check(self) -> None:
        _require(self.max_per_user > 0, "rooms.max_per_user", "must be a positive number")


_SECTIONS: dict[str, type] = {
    "live_stream": LiveStreamSettings,
    "live_mic": LiveMicSettings,
    "live_im": LiveImSettings,
    "gateway": GatewaySettings,
    "storage": StorageSettings,
    "auth": AuthSettings,
    "server": ServerSettings,
    "edge": EdgeSettings,
    "rooms": RoomsSettings,
}


@dataclass(frozen=True)
class Settings:
    """All settings of one AppServer. Build with `Settings.build`; sections are attributes."""

    live_stream: LiveStreamSettings = field(default_factory=LiveStreamSettings)
    live_mic: LiveMicSettings = field(default_factory=LiveMicSettings)
    live_im: LiveImSettings = field(default_factory=LiveImSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    edge: EdgeSettings = field(default_factory=EdgeSettings)
    rooms: RoomsSettings = field(default_factory=RoomsSettings)

    @classmethod
    def build(
        cls,
        config_file: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults, then `config_file`, then `env` (default: os.environ), then `overrides`.

        An override is a section name with a dict of keys (``auth={"token_ttl": 60}``) or a
        section object; ``storage`` also takes a string: ``"memory"``, a file path or a database URL.

            >>> Settings.build(env={}, server={"port": 9000}).server.port
            9000
        """
        layers: list[tuple[str, Mapping[str, Any]]] = []
        if config_file is not None:
            layers.append((str(config_file), load_config_file(config_file)))
        layers.append(("environment", _from_env(os.environ if env is None else env)))
        layers.append(("arguments", _from_overrides(overrides)))
        merged: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        for origin, layer in layers:
            for section, values in layer.items():
                if section not in _SECTIONS:
                    raise SettingsError(section, f"unknown section (from {origin}); known: {', '.join(_SECTIONS)}")
                if section == "storage" and isinstance(values, str):
                    values = parse_storage(values)
                if not isinstance(values, Mapping):
                    raise SettingsError(section, f"must be a mapping of keys to values (from {origin})")
                merged[section].update(values)
        return cls(**{name: _make_section(name, values) for name, values in merged.items()})

    def replace(self, **overrides: Any) -> Settings:
        """A copy with some sections' keys changed, checked like `build`'s arguments."""
        data = self.to_dict()
        for section, values in _from_overrides(overrides).items():
            if section not in _SECTIONS:
                raise SettingsError(section, f"unknown section; known: {', '.join(_SECTIONS)}")
            if section == "storage" and isinstance(values, str):
                values = parse_storage(values)
            data[section].update(values)
        return Settings(**{name: _make_section(name, values) for name, values in data.items()})

    def to_dict(self, *, redact: bool = False) -> dict[str, dict[str, Any]]:
        """Plain data, as a config file would hold it; `redact` hides keys, secrets and hashes."""
        data = {name: dataclasses.asdict(getattr(self, name)) for name in _SECTIONS}
        if redact:
            for values in data.values():
                for key, value in values.items():
                    if value and (key.endswith(("key", "secret", "sign")) or key == "users"):
                        values[key] = {u: "***" for u in value} if key == "users" else "***"
        return data


def parse_storage(text: str) -> dict[str, str]:
    """Storage settings from one string: ``memory``/``none``, a database URL or DSN, or a TinyDB path ending in ``.json``."""
    value = text.strip()
    if value in ("memory", "none"):
        return {"type": value, "url": ""}
    if "@tcp(" in value:
        return {"type": "mysql", "url": value}
    if "://" in value:
        scheme = value.split("://", 1)[0].split("+", 1)[0].lower()
        kinds = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgresql", "postgres": "postgresql", "sqlite": "sqlite"}
        if scheme not in kinds:
            raise SettingsError("storage.url", f"unknown database scheme {scheme!r}; use mysql://, postgresql:// or sqlite:///")
        return {"type": kinds[scheme], "url": value}
    if value.lower().endswith(".json"):
        return {"type": "tinydb", "url": value}
    # A typo ('memroy') must not quietly become a TinyDB file of that name: only the three forms pass.
    raise SettingsError("storage", f"{value!r} is none of the three forms: {STORAGE_FORMS}")


STORAGE_FORMS = "'memory' (or 'none'), a TinyDB file path ending in '.json', or a database URL (mysql://, postgresql://, sqlite:///)"
"""The storage strings `parse_storage` accepts, for messages and help texts."""


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        # PyYAML is not a requirement in a browser tab (Pyodide): JSON files and keyword settings are.
        raise SettingsError("config_file", "reading YAML needs PyYAML (pip install pyyaml); or write the file as JSON") from None
    return yaml


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A config file's sections: YAML for .yaml/.yml, else JSON."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError("config_file", f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError("config_file", f"{file} is not UTF-8 text (byte {exc.start})") from None
    try:
        if file.suffix.lower() in (".yaml", ".yml"):
            data = _yaml().safe_load(text)
        else:
            data = json.loads(text)
    except RecursionError:
        raise SettingsError("config_file", f"{file} does not parse: it is nested too deeply") from None
    except Exception as exc:  # the parsers' own errors name line and column
        raise SettingsError("config_file", f"{file} does not parse: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError("config_file", f"{file} must hold a mapping of sections")
    return data


def _from_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for section, value in overrides.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        result[section] = value
    return result


def _from_env(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    # Section names contain underscores, so match known section prefixes, longest first.
    found: dict[str, dict[str, Any]] = {}
    for prefix in ENV_PREFIXES:
        for name, raw in env.items():
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :].lower()
            for section in sorted(_SECTIONS, key=len, reverse=True):
                if rest.startswith(section + "_"):
                    key = rest[len(section) + 1 :]
                    if key not in _field_types(section):
                        raise SettingsError(f"{section}.{key}", f"unknown key (from environment variable {name})")
                    found.setdefault(section, {})[key] = _parse_env_value(section, key, raw, name)
                    break
            # Names under our prefix that match no section (LIVEKIT_DEMO_CONFIG, ...) are not settings.
    return found


def _parse_env_value(section: str, key: str, raw: str, name: str) -> Any:
    kind = _field_types(section)[key]
    origin = typing.get_origin(kind) or kind
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"{raw!r} is not a yes/no value")
        if kind is int:
            return int(raw)
        if origin in (dict, list):
            text = raw.strip()
            if origin is list and not text.startswith("["):
                return [item.strip() for item in text.split(",") if item.strip()]
            return json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"{section}.{key}", f"environment variable {name}: {exc}") from None
    return raw


def _field_types(section: str) -> dict[str, Any]:
    return typing.get_type_hints(_SECTIONS[section])


def _make_section(section: str, values: Mapping[str, Any]) -> Any:
    cls = _SECTIONS[section]
    hints = _field_types(section)
    for key, value in values.items():
        if key not in hints:
            raise SettingsError(f"{section}.{key}", f"unknown key; known: {', '.join(hints)}")
        _check_type(f"{section}.{key}", value, hints[key])
    values = {k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, (list, tuple)) else v) for k, v in values.items()}
    obj = cls(**values)
    check = getattr(obj, "_check", None)
    if check is not None:
        check()
    return obj


def _check_type(key: str, value: Any, kind: Any) -> None:
    origin = typing.get_origin(kind)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is str:
        ok = isinstance(value, str)
    elif origin is dict:
        ok = isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    elif origin is list:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    else:  # pragma: no cover - every field has one of the kinds above
        ok = True
    if not ok:
        # A value under a secret-looking key is never echoed: a mistyped password is still a password.
        shown = "(value hidden)" if _is_secret_key(key) else _short(value)
        raise SettingsError(key, f"must be {_describe(kind)}, not {type(value).__name__} {shown}")


def _is_secret_key(key: str) -> bool:
    name = key.rsplit(".", 1)[-1]
    return name.endswith(("key", "secret", "sign", "password")) or name == "users" or key.startswith(("auth.users", "storage.url"))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(kind: Any) -> str:
    if isinstance(kind, types.GenericAlias):
        return "a mapping of names to strings" if typing.get_origin(kind) is dict else "a list of strings"
    return {bool: "true or false", int: "an integer", str: "a string"}[kind]


def _require(condition: bool, key: str, problem: str) -> None:
    if not condition:
        raise SettingsError(key, problem)
