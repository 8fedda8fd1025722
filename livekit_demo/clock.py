"""The one source of time: injectable, so URLs, tokens and timestamps are exact in tests."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from datetime import datetime, timedelta, timezone

__all__ = ["Clock", "SystemClock", "FixedClock", "ZERO_TIME", "format_time", "parse_time", "to_second"]

ZERO_TIME = "0001-01-01T00:00:00Z"
"""How the contract writes a time that is not set yet (the original's Go zero time)."""


class Clock(ABC):
    """Tells the current time as an aware UTC datetime."""

    @abstractmethod
    def now(self) -> datetime:
        """The current time, aware, in UTC."""

    def timestamp(self) -> int:
        """Whole seconds since the epoch."""
        return int(self.now().timestamp())


class SystemClock(Clock):
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def timestamp(self) -> int:
        """Whole seconds since the epoch (without making a datetime: URLs ask for it several times a call)."""
        return int(time.time())

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock(Clock):
    """A clock that only moves when told to; thread-safe. For tests and teaching."""

    def __init__(self, start: datetime | int | float | str = "2026-11-28T10:15:00Z") -> None:
        self._lock = threading.Lock()
        self._now = _as_datetime(start)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward and return the new time."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, when: datetime | int | float | str) -> None:
        with self._lock:
            self._now = _as_datetime(when)

    def __repr__(self) -> str:
        return f"FixedClock({format_time(self.now())!r})"


def _as_datetime(value: datetime | int | float | str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    parsed = parse_time(value)
    if parsed is None:
        raise ValueError(f"not a time: {value!r}")
    return parsed


def to_second(when: datetime) -> datetime:
    """The same instant in UTC, cut to whole seconds (what the table's datetime columns keep)."""
    global _LAST_SECOND
    if when.tzinfo is not timezone.utc:  # already UTC (every clock here): no conversion to make
        when = when.astimezone(timezone.utc)
    start, end = _LAST_SECOND
    if start <= when < end:  # the second of the previous call (`replace` costs more than two comparisons)
        return start
    start = when.replace(microsecond=0)
    _LAST_SECOND = (start, start + _ONE_SECOND)  # one assignment: a thread reads the old pair or the new
    return start


_ONE_SECOND = timedelta(seconds=1)
_LAST_SECOND = (datetime.max.replace(tzinfo=timezone.utc), datetime.max.replace(tzinfo=timezone.utc))


def format_time(when: datetime | None) -> str:
    """RFC 3339 in UTC with whole seconds; the Go zero time for None."""
    if when is None:
        return ZERO_TIME
    # Every answer shows four times per room, and rooms keep their times: remember the text.
    # Datetimes that compare equal are the same instant, so they share one text.
    text = _FORMATTED.get(when)
    if text is None:
        text = to_second(when).strftime("%Y-%m-%dT%H:%M:%SZ")
        if len(_FORMATTED) >= _FORMATTED_MAX:
            _FORMATTED.clear()  # bounded; refilling costs one strftime per time shown
        _FORMATTED[when] = text
    return text


_FORMATTED: dict[datetime, str] = {}
_FORMATTED_MAX = 8192


def parse_time(text: str | None) -> datetime | None:
    """Read an RFC 3339 time back; None for empty text and for the zero time."""
    if not text or text.startswith("0001-01-01"):
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
