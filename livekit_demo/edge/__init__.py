"""The local media edge: RTMP ingest and play, HTTP-FLV, HLS and fragmented MP4 (SPEC 13).

It makes the AppServer's signed URLs real on one machine or a LAN. It is a client of the
AppServer (publish events go to its callback over HTTP, signed) and never imports rooms,
storage, api or settings: it is given plain values.

    edge = MediaEdge(push_auth_key="pushkey", pull_auth_key="pullkey", rtmp_port=0)
    await edge.start()          # on the running loop (the AppServer's)
    # ffmpeg ... -f flv "rtmp://127.0.0.1:{edge.rtmp_port}/live/room1?auth_key=..."
    # GET /live/room1.flv?auth_key=... on edge.http_app (an ASGI app)
    await edge.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ..clock import Clock, SystemClock
from ._http import EdgeHttpApp
from ._hub import Hub, Stream
from ._remux import HlsMuxer
from ._session import RtmpSession
from .callback import CallbackResult, EdgeCallback

__all__ = ["MediaEdge", "EdgeCallback", "CallbackResult"]

log = logging.getLogger("livekit_demo.edge")

HLS_IDLE = 30.0  # seconds without an HLS fetch before a stream's segmenter stops


class MediaEdge:
    """An RTMP/HTTP media edge for the AppServer's signed stream URLs, on the running event loop."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        rtmp_port: int = 1935,
        app_name: str = "live",
        push_auth_key: str,
        pull_auth_key: str,
        max_streams: int = 16,
        max_viewers: int = 200,
        callback: EdgeCallback | None = None,
        clock: Clock | None = None,
        ffmpeg: str | None = None,
        viewer_queue_bytes: int = 2 * 1024 * 1024,  # 8 s of a 2 Mbit/s stream: a viewer further behind is dropped
    ) -> None:
        self.host = host
        self.rtmp_port = rtmp_port
        self.app_name = app_name
        self.push_auth_key = push_auth_key
        self.pull_auth_key = pull_auth_key
        self.callback = callback
        self.clock = clock or SystemClock()
        self._ffmpeg = ffmpeg
        self.hub = Hub(max_streams=max_streams, max_viewers=max_viewers, viewer_queue_bytes=viewer_queue_bytes)
        self.hls: dict[str, HlsMuxer] = {}
        self.http_app = EdgeHttpApp(self)
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sessions: set[RtmpSession] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._janitor: asyncio.Task[None] | None = None
        self._responses = 0  # HTTP pulls being answered; stop() lets them end before it returns

    def __repr__(self) -> str:
        state = f"rtmp://{self.host}:{self.rtmp_port}" if self._server else "stopped"
        return f"MediaEdge({state}, app={self.app_name!r}, live={self.live_streams()})"

    @property
    def max_streams(self) -> int:
        """How many streams may be live at once."""
        return self.hub.max_streams

    @property
    def max_viewers(self) -> int:
        """How many viewers (all kinds, all streams) the edge serves at once."""
        return self.hub.max_viewers

    async def start(self) -> None:
        """Bind the RTMP listener on the running loop; `rtmp_port` is then the bound port."""
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._on_connection, self.host, self.rtmp_port)
        self.rtmp_port = self._server.sockets[0].getsockname()[1]
        self._janitor = self._loop.create_task(self._sweep())
        log.info("media edge listening on rtmp://%s:%s/%s", self.host, self.rtmp_port, self.app_name)

    async def stop(self) -> None:
        """Close the listener, every publisher and viewer, the ffmpeg children and the callback client.

        Call it before the HTTP server waits for its open requests to end: a live stream's
        response never ends by itself, stop() is what ends it.
        """
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.close()
        for stream in list(self.hub.streams.values()):
            self.hub.close(stream)
        if self._janitor is not None:
            self._janitor.cancel()
        for name in list(self.hls):
            await self._stop_hls(name)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for _ in range(50):  # the HTTP viewers, now ended, finish (and their ffmpeg children with them)
            if not self._responses:
                break
            await asyncio.sleep(0.1)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        if self.callback is not None:
            await self.callback.aclose()

    def viewers(self, stream: str) -> int:
        """Current viewers of a stream, all kinds (RTMP, FLV, mp4 open; HLS within 10 s); thread-safe."""
        return self.hub.viewers(stream)

    def live_streams(self) -> list[str]:
        """The names of the streams being published now."""
        return sorted(self.hub.streams)

    def close_stream(self, stream: str) -> None:
        """Disconnect a stream's publisher (its room was deleted); thread-safe."""
        if self._loop is None or self._loop.is_closed():
            return

        def close() -> None:
            live = self.hub.streams.get(stream)
            if live is not None:
                live.close_publisher()

        self._loop.call_soon_threadsafe(close)

    def ffmpeg_path(self) -> str:
        """The ffmpeg used for HLS and MP4 (found on first use)."""
        if self._ffmpeg is None:
            from .pusher import find_ffmpeg

            self._ffmpeg = find_ffmpeg()
        return self._ffmpeg

    # -- RTMP connections and stream events -------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = RtmpSession(self, reader, writer)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)

    def _published(self, stream: Stream) -> None:
        log.info("stream %s published from %s", stream.name, stream.ip)

    def _went_live(self, stream: Stream) -> None:
        # The publish event waits for the first tag, so it can carry the picture size from onMetaData.
        self._event("publish", stream)

    def _unpublished(self, stream: Stream, never_live: bool) -> None:
        self.hub.close(stream)
        if stream.name in self.hls:
            self._spawn(self._stop_hls(stream.name))
        log.info("stream %s unpublished", stream.name)
        if not never_live:
            self._event("publish_done", stream)

    def _event(self, action: str, stream: Stream) -> None:
        if self.callback is None:
            return
        event: dict[str, Any] = {
            "action": action, "app": self.callback.host, "appname": self.app_name,
            "id": stream.name, "ip": stream.ip, "time": self.clock.timestamp(),
        }  # fmt: skip
        meta = stream.metadata or {}
        for name in ("width", "height"):
            if isinstance(meta.get(name), (int, float)) and meta[name] > 0:
                event[name] = int(meta[name])
        self.callback.send(event)

    # -- HLS segmenters ---------------------------------------------------------------------------

    async def _hls_muxer(self, name: str) -> HlsMuxer:
        muxer = self.hls.get(name)
        if muxer is None:
            viewer = self.hub.subscribe(name, "hls-feed", counted=False)
            muxer = self.hls[name] = HlsMuxer(self.ffmpeg_path(), viewer)
            await muxer.start()
        return muxer

    async def _stop_hls(self, name: str) -> None:
        muxer = self.hls.pop(name, None)
        if muxer is not None:
            await muxer.stop()

    async def _sweep(self) -> None:
        """Stop segmenters nobody fetched from lately."""
        while True:
            await asyncio.sleep(5)
            horizon = time.monotonic() - HLS_IDLE
            for name, muxer in list(self.hls.items()):
                if muxer.last_used < horizon:
                    await self._stop_hls(name)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
