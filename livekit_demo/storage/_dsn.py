"""The original server's MySQL DSN, read into plain parts (no SQLAlchemy here).

The Go server (go-sql-driver/mysql) takes a DSN of the form

    [user[:password]@][net[(address)]]/dbname[?param=value&...]

e.g. ``root:secret@tcp(db.local:3306)/live?charset=utf8mb4&parseTime=True&loc=Local``.
Its rules, which we keep so a copied DSN means the same thing here: the database name follows
the *last* ``/``; the credentials end at the *last* ``@`` before it; the user ends at the *first*
``:``. So a password may hold ``@``, ``:``, ``/`` or ``?`` unescaped, and nothing is URL-decoded.

Every error here is a `StorageError` that never quotes the DSN, since the DSN holds the password.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from ..exceptions import StorageError

__all__ = ["GoDsn", "parse_go_dsn", "is_url", "rejected", "safe_url", "ACCEPTED_FORMS"]

ACCEPTED_FORMS = (
    "user:password@tcp(host:3306)/db?charset=utf8mb4&parseTime=True&loc=Local  (the original server's MySQL DSN)",
    "mysql://user:password@host:3306/db  (also mariadb://, mysql+pymysql://)",
    "postgresql://user:password@host:5432/db  (also postgres://, postgresql+psycopg://)",
    "sqlite:///path/to/rooms.db",
)
"""The database addresses `SqlStore` understands, for error messages."""

_DEFAULT_PORT = 3306
_DEFAULT_SOCKET = "/tmp/mysql.sock"  # go-sql-driver's default for unix()
_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_NET_ADDRESS = re.compile(r"^(?P<net>[a-z0-9]+)(?:\((?P<address>.*)\))?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# Go driver options with no meaning for us: times are always stored as UTC and read back as
# datetimes (parseTime, loc), and the rest tune the Go driver's own protocol handling.
_GO_ONLY_PARAMS = frozenset(
    {"parseTime", "loc", "allowNativePasswords", "interpolateParams", "maxAllowedPacket", "checkConnLiveness"}
)
# Go timeouts (durations such as "5s") and the PyMySQL connect() argument each one becomes.
_TIMEOUT_PARAMS = {"timeout": "connect_timeout", "readTimeout": "read_timeout", "writeTimeout": "write_timeout"}


@dataclass(frozen=True)
class GoDsn:
    """The parts of a Go MySQL DSN, ready for a `mysql+pymysql` URL; `query` holds PyMySQL options."""

    user: str | None
    password: str | None = field(repr=False)
    host: str
    port: int | None
    database: str
    query: dict[str, str]


def is_url(text: str) -> bool:
    """True for ``scheme://...`` (a SQLAlchemy URL); False for a Go DSN, whose password may hold ``://``."""
    return bool(_URL_START.match(text))


def parse_go_dsn(text: str) -> GoDsn:
    """Read a Go MySQL DSN; `StorageError` (listing the accepted forms) when it is not one."""
    slash = text.rfind("/")
    if slash < 0:
        raise rejected("it has no '/dbname'")
    left, rest = text[:slash], text[slash + 1 :]
    database, _, params = rest.partition("?")
    if not database:
        raise rejected("it names no database after the last '/'")

    user: str | None = None
    password: str | None = None
    at = left.rfind("@")
    if at >= 0:
        credentials, left = left[:at], left[at + 1 :]
        name, colon, secret = credentials.partition(":")
        user = name or None
        password = secret if colon else None

    host, port, socket = _address(left)
    query = _params(params)
    if socket is not None:
        query["unix_socket"] = socket
    return GoDsn(user=user, password=password, host=host, port=port, database=database, query=query)


def _address(part: str) -> tuple[str, int | None, str | None]:
    """``tcp(host:port)``, ``tcp(host)``, ``unix(/path)`` or nothing (local TCP): host, port, socket."""
    if not part:
        return "127.0.0.1", _DEFAULT_PORT, None
    match = _NET_ADDRESS.match(part)
    if match is None:
        raise rejected("the address must look like tcp(host:port) or unix(/path/to/socket)")
    net, address = match["net"], match["address"] or ""
    if net == "unix":
        return "localhost", None, address or _DEFAULT_SOCKET
    if net not in ("tcp", "tcp4", "tcp6"):
        raise rejected(f"unsupported network {net!r}; use tcp(host:port) or unix(/path/to/socket)")
    if not address:
        return "127.0.0.1", _DEFAULT_PORT, None
    if address.startswith("["):  # an IPv6 literal: [::1]:3306
        host, bracket, tail = address[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise rejected("an IPv6 address must be written [address]:port")
        port_text = tail[1:]
    else:
        host, _, port_text = address.rpartition(":") if ":" in address else (address, "", "")
    return host, _port(port_text), None


def _port(text: str) -> int:
    if not text:
        return _DEFAULT_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise rejected(f"the port {text!r} is not a number from 1 to 65535")
    return int(text)


def _params(text: str) -> dict[str, str]:
    """Go driver parameters as PyMySQL options: keep the charset, convert timeouts, drop Go-only ones."""
    query: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key == "charset":
            # Go accepts a fallback list ("utf8mb4,utf8"); PyMySQL takes one charset: the preferred one.
            query["charset"] = value.split(",")[0]
        elif key in _TIMEOUT_PARAMS:
            query[_TIMEOUT_PARAMS[key]] = str(_seconds(key, value))
        elif key not in _GO_ONLY_PARAMS:
            # Refuse rather than drop: silently losing e.g. tls=true would weaken the connection.
            raise rejected(f"the option {key!r} has no equivalent here; write a mysql:// URL with PyMySQL options instead")
    query.setdefault("charset", "utf8mb4")
    return query


def _seconds(key: str, value: str) -> int:
    """A Go duration ("5s", "1m30s", "500ms") as whole seconds, rounded up (PyMySQL wants an int)."""
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        raise rejected(f"the option {key!r} must be a duration such as 5s or 1m30s")
    return max(1, math.ceil(sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)))


_SECRET_QUERY = re.compile(r"([?&][^=&]*(?:pass|secret|key|token)[^=&]*=)[^&]*", re.IGNORECASE)


def safe_url(text: str) -> str:
    """A database URL, Go DSN or file path fit to print: any password, and secret-looking query values, as ***.

    Works on text that does not parse too (it is what error messages and banners show): the
    credentials end at the last '@' before the last '/', as the Go driver reads them.
    """
    slash = text.rfind("/")
    at = text.rfind("@", 0, slash if slash >= 0 else len(text))
    head, tail = (text[:at], text[at:]) if at >= 0 else ("", text)
    if head:
        start = head.find("://") + 3 if is_url(head) else 0
        user, colon, _ = head[start:].partition(":")
        head = head[:start] + (f"{user}:***" if colon else user)
    return head + _SECRET_QUERY.sub(r"\1***", tail)


def rejected(problem: str) -> StorageError:
    """The error for an address we cannot use: the problem, then every accepted form (never the address)."""
    forms = "\n  ".join(ACCEPTED_FORMS)
    return StorageError(f"not a database address this server understands: {problem}. Accepted forms:\n  {forms}")
