"""The edge's HTTP client of the AppServer's `handlePushStreamEventCallback`, signed like the CDN (SPEC 13).

Events go out one at a time, in order (a `publish_done` never overtakes its `publish`), from a
queue drained by one task on the edge's loop. A failed call is logged and kept in `history`;
nothing is ever raised into the edge: a stream keeps flowing whatever the AppServer answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

from ..clock import Clock, SystemClock
from ..signing import callback_signature

__all__ = ["EdgeCallback", "CallbackResult"]

log = logging.getLogger("livekit_demo.edge")


@dataclass(frozen=True)
class CallbackResult:
    """One event the edge sent, and how the AppServer answered (status 0: no answer, see `error`)."""

    event: dict[str, Any]
    status: int
    error: str = ""


class EdgeCallback:
    """Sends publish / publish_done events to the AppServer, signed with `callback_signature`."""

    def __init__(self, url: str, *, host: str, auth_key: str, clock: Clock | None = None, timeout: float = 5.0) -> None:
        self.url = url
        self.host = host
        self.auth_key = auth_key
        self.clock = clock or SystemClock()
        self.timeout = timeout
        self.history: deque[CallbackResult] = deque(maxlen=100)
        self._queue: asyncio.Queue[dict[str, Any] | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._client_factory = httpx.AsyncClient  # tests hand in one over an ASGI transport

    def __repr__(self) -> str:
        return f"EdgeCallback({self.url!r}, host={self.host!r})"

    def headers(self) -> dict[str, str]:
        """The two signature headers, for now."""
        timestamp = self.clock.timestamp()
        return {"ALI-LIVE-TIMESTAMP": str(timestamp), "ALI-LIVE-SIGNATURE": callback_signature(self.host, timestamp, self.auth_key)}

    def send(self, event: dict[str, Any]) -> None:
        """Queue one event (call on the edge's loop); it is posted in order, in the background."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run(self._queue))
        self._queue.put_nowait(event)

    async def _run(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        async with self._client_factory(timeout=self.timeout) as client:
            while (event := await queue.get()) is not None:
                await self._post(client, event)

    async def _post(self, client: httpx.AsyncClient, event: dict[str, Any]) -> None:
        try:
            response = await client.post(self.url, json=event, headers=self.headers())
        except Exception as exc:  # never into the edge: log it, keep it, carry on
            log.warning("push callback %s for %s failed: %s", event.get("action"), event.get("id"), exc)
            self.history.append(CallbackResult(event, 0, f"{type(exc).__name__}: {exc}"))
            return
        if response.status_code != 200:
            log.warning("push callback %s for %s answered %s: %s", event.get("action"), event.get("id"), response.status_code, response.text[:200])
        self.history.append(CallbackResult(event, response.status_code, "" if response.status_code == 200 else response.text[:200]))

    async def aclose(self, timeout: float = 5.0) -> None:
        """Post what is queued (waiting at most `timeout` seconds), then stop."""
        if self._queue is None or self._worker is None:
            return
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._worker), timeout)
        except (asyncio.TimeoutError, Exception):
            self._worker.cancel()
        self._queue = self._worker = None
