"""A headless HTTP-FLV viewer: reads a room's stream in a thread, as a player would, so it counts as watching.

For notebooks and tests of the live loop (SPEC 13): a second viewer that moves `online_count`
without a browser. It only reads bytes (no decoding) and keeps up, so the edge never drops it as slow.

    >>> viewer = FlvViewer(room["pull_url_info"]["flv_url"]).start()   # doctest: +SKIP
    >>> viewer.received                                                # doctest: +SKIP
    482113
    >>> viewer.stop()                                                  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from types import TracebackType

import httpx

__all__ = ["FlvViewer"]


class FlvViewer:
    """Reads an HTTP-FLV URL in a daemon thread until `stop()`; `status`, `received` bytes and `error` tell how it went."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self.status: int | None = None  # the HTTP status, once answered
        self.received = 0  # bytes of FLV read so far
        self.head = b""  # the first bytes ("FLV..." when it is a stream)
        self.error: str | None = None  # why reading ended early, if it did
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FlvViewer:
        """Start reading (returns self, to chain)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, daemon=True, name="flv-viewer")
            self._thread.start()
        return self

    def _read(self) -> None:
        try:
            with httpx.stream("GET", self.url, timeout=self.timeout, trust_env=False) as response:
                self.status = response.status_code
                if response.status_code != 200:
                    self.error = f"HTTP {response.status_code}: {response.read().decode(errors='replace')[:200]}"
                    return
                for chunk in response.iter_raw():
                    if not self.head:
                        self.head = chunk[:16]
                    self.received += len(chunk)
                    if self._stop.is_set():
                        return
        except httpx.HTTPError as exc:
            if not self._stop.is_set():
                self.error = f"{type(exc).__name__}: {exc}"

    @property
    def watching(self) -> bool:
        """Whether the stream is still being read."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop reading and close the connection (at the next chunk: a live stream sends several a second)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> FlvViewer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "watching" if self.watching else ("stopped" if self._thread else "not started")
        return f"FlvViewer({self.url.split('?')[0]!r}, {state}, {self.received} bytes)"
