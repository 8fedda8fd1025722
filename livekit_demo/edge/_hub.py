"""Streams, their GOP cache and their viewers: the fan-out at the heart of the edge.

A publisher hands every tag to its `Stream`, which offers it to each `Viewer`'s bounded queue
without ever waiting: a viewer whose queue overflows is dropped on the spot, so one slow viewer
can never stall the publisher or the others. A new viewer gets the metadata, the sequence headers
and the cached group of pictures since the last keyframe first, so it starts decoding at once.

Everything here runs on the edge's event loop, except `Hub.viewers`, which other threads may call.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ._flv import DATA, Tag

__all__ = ["Refused", "Viewer", "Stream", "Hub", "HLS_WINDOW"]

HLS_WINDOW = 10.0  # seconds: an HLS viewer counts while it fetched something this recently (SPEC 13)
GOP_LIMIT = 32 * 1024 * 1024  # a stream without keyframes must not grow the cache forever


class Refused(Exception):
    """A publish or a play the edge turns down; `status` is the HTTP answer, `code` the RTMP one."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


class Viewer:
    """One subscriber of a stream: a queue bounded in bytes, read in batches by its writer."""

    def __init__(self, kind: str, max_bytes: int, *, counted: bool = True) -> None:
        self.kind = kind
        self.counted = counted
        self.max_bytes = max_bytes
        self.dropped = False  # True when it fell behind, rather than the stream ending
        self.closed = False
        self._queue: deque[Tag] = deque()
        self._bytes = 0
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()

    def offer(self, tag: Tag) -> bool:
        """Queue a tag; False (and the viewer closed as dropped) when that would pass the bound."""
        if self.closed:
            return False
        size = len(tag.payload) + 15
        if self._bytes + size > self.max_bytes:
            self.dropped = True
            self.close()
            return False
        self._queue.append(tag)
        self._bytes += size
        self._wakeup.set()
        return True

    def close(self) -> None:
        """No more tags: the writer sends what is queued (unless dropped) and ends."""
        self.closed = True
        self._closed.set()
        if self.dropped:
            self._queue.clear()
        self._wakeup.set()

    async def wait_closed(self) -> None:
        """Return once the viewer is closed (stream ended, dropped or left)."""
        await self._closed.wait()

    async def batch(self) -> list[Tag]:
        """Every queued tag (waiting for one); an empty list once closed and drained."""
        while not self._queue and not self.closed:
            self._wakeup.clear()
            await self._wakeup.wait()
        tags = list(self._queue)
        self._queue.clear()
        self._bytes = 0
        return tags


@dataclass(eq=False)
class Stream:
    """One live stream: its publisher's closer, cached headers and GOP, and its viewers."""

    name: str
    close_publisher: Callable[[], None]
    ip: str = ""
    metadata: dict | None = None
    _meta_tag: Tag | None = None
    _video_header: Tag | None = None
    _audio_header: Tag | None = None
    _gop: list[Tag] = field(default_factory=list)
    _gop_bytes: int = 0
    viewers: set[Viewer] = field(default_factory=set)

    def publish(self, tag: Tag) -> None:
        """Keep what a late viewer needs, then offer the tag to every viewer (never waiting)."""
        if tag.type_id == DATA:
            self._meta_tag = tag
        elif tag.is_video_header:
            self._video_header = tag
        elif tag.is_audio_header:
            self._audio_header = tag
        elif tag.is_keyframe:
            self._gop, self._gop_bytes = [tag], len(tag.payload)
        elif self._gop and self._gop_bytes < GOP_LIMIT:
            self._gop.append(tag)
            self._gop_bytes += len(tag.payload)
        for viewer in [v for v in self.viewers if not v.offer(tag)]:
            self.viewers.discard(viewer)

    def attach(self, viewer: Viewer) -> None:
        """Start a viewer at the last keyframe, with metadata and sequence headers first."""
        start = self._gop[0].timestamp if self._gop else 0
        # Stamped at the GOP's start, so a player sees no jump from 0 to the live timestamps.
        headers = [h.restamped(start) for h in (self._meta_tag, self._video_header, self._audio_header) if h is not None]
        burst = headers + self._gop
        # The start-up burst is let in whatever its size, on top of the bound: a viewer is dropped
        # for falling behind the live edge, never for the size of the GOP it starts with.
        viewer.max_bytes += sum(len(tag.payload) + 15 for tag in burst)
        for tag in burst:
            viewer.offer(tag)
        self.viewers.add(viewer)

    def end(self) -> None:
        """The publisher left: every viewer finishes what it has queued and ends."""
        for viewer in self.viewers:
            viewer.close()
        self.viewers.clear()


class Hub:
    """Every live stream of the edge, and the limits on streams and viewers."""

    def __init__(self, *, max_streams: int, max_viewers: int, viewer_queue_bytes: int) -> None:
        self.max_streams = max_streams
        self.max_viewers = max_viewers
        self.viewer_queue_bytes = viewer_queue_bytes
        self.streams: dict[str, Stream] = {}
        self._lock = threading.Lock()  # guards the HLS sessions, which `viewers` reads from any thread
        self._hls: dict[str, dict[str, float]] = {}

    def open(self, name: str, close_publisher: Callable[[], None], ip: str = "") -> Stream:
        """Register a publisher, or refuse: the stream is already live, or the edge is full."""
        if name in self.streams:
            raise Refused(409, "NetStream.Publish.BadName", f"stream {name!r} is already being published")
        if len(self.streams) >= self.max_streams:
            raise Refused(503, "NetStream.Publish.BadName", f"the edge serves at most {self.max_streams} streams")
        stream = self.streams[name] = Stream(name, close_publisher, ip)
        return stream

    def close(self, stream: Stream) -> None:
        """Unregister a publisher's stream and end its viewers."""
        if self.streams.get(stream.name) is stream:
            del self.streams[stream.name]
        stream.end()
        with self._lock:
            self._hls.pop(stream.name, None)

    def subscribe(self, name: str, kind: str, *, counted: bool = True) -> Viewer:
        """A new viewer of a live stream, or Refused (404 not live, 503 past max_viewers)."""
        stream = self.streams.get(name)
        if stream is None:
            raise Refused(404, "NetStream.Play.StreamNotFound", f"stream {name!r} is not live")
        if counted and self.total_viewers() >= self.max_viewers:
            raise Refused(503, "NetStream.Play.Failed", f"the edge serves at most {self.max_viewers} viewers")
        viewer = Viewer(kind, self.viewer_queue_bytes, counted=counted)
        stream.attach(viewer)
        return viewer

    def unsubscribe(self, name: str, viewer: Viewer) -> None:
        """A viewer left (or was dropped)."""
        viewer.close()
        stream = self.streams.get(name)
        if stream is not None:
            stream.viewers.discard(viewer)

    def touch_hls(self, name: str, session: str) -> None:
        """An HLS viewer fetched the playlist or a segment now."""
        with self._lock:
            self._hls.setdefault(name, {})[session] = time.monotonic()

    def hls_sessions(self, name: str) -> int:
        """HLS viewers of a stream that fetched something within the last HLS_WINDOW seconds."""
        horizon = time.monotonic() - HLS_WINDOW
        with self._lock:
            sessions = self._hls.get(name, {})
            for session in [s for s, seen in sessions.items() if seen < horizon]:
                del sessions[session]
            return len(sessions)

    def knows_hls(self, name: str, session: str) -> bool:
        """Whether this HLS session is one of the stream's current viewers."""
        with self._lock:
            return session in self._hls.get(name, {})

    def viewers(self, name: str) -> int:
        """Current viewers of a stream, all kinds; safe to call from any thread."""
        stream = self.streams.get(name)
        open_ones = sum(1 for v in list(stream.viewers) if v.counted and not v.closed) if stream else 0
        return open_ones + self.hls_sessions(name)

    def total_viewers(self) -> int:
        """Viewers of every stream together (what max_viewers bounds)."""
        return sum(self.viewers(name) for name in list(self.streams))
