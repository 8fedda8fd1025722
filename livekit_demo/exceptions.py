"""One tree of errors. Each server-side error maps to one HTTP status of SPEC section 1.

    LivekitDemoError
    ├── SettingsError                 a bad setting, named by its key (at start, never per request)
    ├── StorageError                  the store cannot be opened or used (500 if it happens in a request)
    │   ├── StorageFull               the disk (or the database's) is full: a request gets 507
    │   └── StorageUnavailable        the database is down or does not answer in time: 503 + Retry-After
    └── AppServerError                an answer the API gives with status >= 400
        ├── BadRequest          400   body or fields wrong; `details` names every bad field
        ├── Unauthorized        401   no token, bad token, bad username or password
        ├── Forbidden           403   acting for someone else, or not the room's anchor
        ├── NotFound            404   unknown path
        │   └── RoomNotFound    404   unknown room id
        ├── MethodNotAllowed    405
        ├── Conflict            409
        │   ├── LifecycleConflict     transition not allowed from the room's status
        │   ├── ModeConflict          meeting call on a room whose mode is not 1
        │   └── RoomLimitReached      the anchor holds rooms.max_per_user rooms already
        ├── PayloadTooLarge     413
        ├── UnsupportedMediaType 415
        ├── TooManyRequests     429   login throttled; carries `retry_after`
        ├── InternalError       500   a real fault; the message never carries a traceback
        ├── ServiceUnavailable  503   the database is down or hung; carries `retry_after`
        └── InsufficientStorage 507   the disk is full; nothing was written

The client side has its own error, `livekit_demo.client.ApiError`, which carries what a server answered.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LivekitDemoError",
    "SettingsError",
    "StorageError",
    "AppServerError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "RoomNotFound",
    "MethodNotAllowed",
    "Conflict",
    "LifecycleConflict",
    "ModeConflict",
    "RoomLimitReached",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "TooManyRequests",
    "InternalError",
    "ServiceUnavailable",
    "InsufficientStorage",
    "StorageFull",
    "StorageUnavailable",
    "FieldProblem",
]

FieldProblem = dict[str, str]
"""One entry of a 400's `details`: ``{"field": "members[2].user_id", "problem": "..."}``."""


class LivekitDemoError(Exception):
    """Base of every error this package raises on purpose."""


class SettingsError(LivekitDemoError, ValueError):
    """A setting is unknown or has a bad value. `key` is its dotted name, e.g. ``auth.token_ttl``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"setting {key!r}: {problem}")
        self.key = key
        self.problem = problem


class StorageError(LivekitDemoError):
    """The room store cannot be opened or used."""


class StorageFull(StorageError):
    """A write found no space left (ENOSPC, a full database); nothing was written."""


class StorageUnavailable(StorageError):
    """The database refused the connection or did not answer within its timeouts."""


class AppServerError(LivekitDemoError):
    """An error the API answers with `status` and a `models.Status` body."""

    status: int = 500

    def __init__(self, message: str, *, details: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        """The contract's Status body: code equals the HTTP status."""
        return {"code": self.status, "message": self.message, "details": self.details}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class BadRequest(AppServerError):
    status = 400

    @classmethod
    def for_fields(cls, problems: list[FieldProblem]) -> BadRequest:
        """One 400 naming every bad field, its message readable on its own."""
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return cls(f"invalid request: {summary}", details=problems)


class Unauthorized(AppServerError):
    status = 401


class Forbidden(AppServerError):
    status = 403


class NotFound(AppServerError):
    status = 404


class RoomNotFound(NotFound):
    def __init__(self, room_id: str) -> None:
        super().__init__(f"room not found: {room_id}")
        self.room_id = room_id


class MethodNotAllowed(AppServerError):
    status = 405


class Conflict(AppServerError):
    status = 409


class LifecycleConflict(Conflict):
    """The lifecycle table does not allow this call from the room's status."""

    def __init__(self, action: str, status: int, status_name: str) -> None:
        super().__init__(f"cannot {action} a room whose status is {status} ({status_name})")
        self.action = action
        self.room_status = status


class ModeConflict(Conflict):
    def __init__(self, mode: int) -> None:
        super().__init__(f"unsupported live mode: {mode}")
        self.mode = mode


class RoomLimitReached(Conflict):
    """The anchor already holds as many rooms as `rooms.max_per_user` allows."""

    def __init__(self, anchor: str, limit: int) -> None:
        super().__init__(f"{anchor!r} already has {limit} rooms, the most one user may have (rooms.max_per_user); delete some first")
        self.limit = limit


class PayloadTooLarge(AppServerError):
    status = 413


class UnsupportedMediaType(AppServerError):
    status = 415


class TooManyRequests(AppServerError):
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InternalError(AppServerError):
    status = 500


class ServiceUnavailable(AppServerError):
    status = 503

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InsufficientStorage(AppServerError):
    status = 507
