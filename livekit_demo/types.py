"""Type aliases shared across the package."""

from __future__ import annotations

from typing import Any

RoomId = str
"""A room's id: 32 hex characters of a version 7 UUID (rooms made by other servers may differ)."""

UserId = str
"""A user's id: the JWT's ``id`` claim, a room's ``anchor``, a meeting member's ``user_id``."""

JSONDict = dict[str, Any]
"""A JSON object as Python sees it."""

Claims = dict[str, Any]
"""The decoded claims of one of our JWTs."""
