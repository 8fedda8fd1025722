"""The edge's HTTP side, a plain ASGI app: HTTP-FLV, HLS and fragmented MP4 of every live stream.

    GET /{app}/{id}.flv?auth_key=A(/{app}/{id}.flv)     HTTP-FLV from the last keyframe
    GET /{app}/{id}.m3u8?auth_key=A(/{app}/{id}.m3u8)   HLS (a master playlist naming a per-viewer session)
    GET /{app}/{id}-{n}.ts?auth_key=...&session=...    an HLS segment (the playlist's auth_key, checked
                                                         against the playlist's path)
    GET /{app}/{id}.mp4?auth_key=A(/{app}/{id}.mp4)     fragmented MP4 for <video src> in a browser

It works mounted at `/{app}` (Starlette's Mount) or at the root. Refused pulls: 403 (missing,
wrong, expired key, or the push key), 404 (not live), 503 (past max_viewers), as a CDN answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ._auth import check_type_a
from ._flv import flv_header
from ._hub import Refused, Viewer
from ._remux import MP4_ARGS, Feeder

if TYPE_CHECKING:
    from . import MediaEdge

__all__ = ["EdgeHttpApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_NO_CACHE = [(b"cache-control", b"no-cache"), (b"access-control-allow-origin", b"*")]
DRAIN_GRACE = 5.0  # seconds a viewer may take to receive what was queued when its stream ended


class EdgeHttpApp:
    """The ASGI app serving `/{app}/...` pulls of the edge's live streams."""

    def __init__(self, edge: MediaEdge) -> None:
        self.edge = edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # when served on its own (tests, the benchmark)
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        prefix = f"/{self.edge.app_name}/"
        path = scope["path"]
        if not path.startswith(prefix):  # mounted: the mount point may sit in root_path
            path = scope.get("root_path", "") + path
        file = path[len(prefix) :] if path.startswith(prefix) else ""
        if scope["method"] not in ("GET", "HEAD"):
            return await _text(send, 405, "only GET is served here")
        if not file or "/" in file:
            return await _text(send, 404, "not found: the edge serves /{app}/{id}.flv, .m3u8 and .mp4")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        stem, dot, extension = file.rpartition(".")
        if not dot or not stem:
            return await _text(send, 404, f"not found: {path}")
        self.edge._responses += 1
        try:
            if extension == "flv":
                await self._flv(stem, path, query, scope, receive, send)
            elif extension == "mp4":
                await self._mp4(stem, path, query, receive, send)
            elif extension == "m3u8":
                await self._playlist(stem, path, query, send)
            elif extension == "ts":
                await self._segment(stem, query, send)
            else:
                await _text(send, 404, f"not found: {path}")
        except Refused as refused:
            await _text(send, refused.status, refused.reason)
        finally:
            self.edge._responses -= 1

    def _check(self, uri: str, query: dict[str, str]) -> None:
        reason = check_type_a(
            uri, query.get("auth_key"), self.edge.pull_auth_key, self.edge.clock.timestamp(), other_key=self.edge.push_auth_key
        )
        if reason is not None:
            raise Refused(403, "", f"Forbidden: {reason}")

    async def _flv(self, name: str, uri: str, query: dict[str, str], scope: Scope, receive: Receive, send: Send) -> None:
        self._check(uri, query)
        viewer = self.edge.hub.subscribe(name, "flv")
        try:
            await _start(send, b"video/x-flv")
            if scope["method"] == "HEAD":
                return await send({"type": "http.response.body", "body": b""})
            await send({"type": "http.response.body", "body": flv_header(), "more_body": True})
            await _serve(viewer, receive, send, _flv_body(viewer))
        finally:
            self.edge.hub.unsubscribe(name, viewer)

    async def _mp4(self, name: str, uri: str, query: dict[str, str], receive: Receive, send: Send) -> None:
        self._check(uri, query)
        viewer = self.edge.hub.subscribe(name, "mp4")
        feeder = Feeder(self.edge.ffmpeg_path(), viewer, MP4_ARGS, stdout=True)
        try:
            await feeder.start()
            await _start(send, b"video/mp4")
            assert feeder.process is not None and feeder.process.stdout is not None
            await _serve(viewer, receive, send, _pipe_body(feeder.process.stdout))
        finally:
            self.edge.hub.unsubscribe(name, viewer)
            await feeder.stop()

    async def _playlist(self, name: str, uri: str, query: dict[str, str], send: Send) -> None:
        self._check(uri, query)
        hub = self.edge.hub
        if name not in hub.streams:
            raise Refused(404, "", f"stream {name!r} is not live")
        session = query.get("session", "")
        auth = query.get("auth_key", "")
        if not session or not hub.knows_hls(name, session):
            # A new viewer: a master playlist whose one variant names its own session, so each
            # player is counted once however often it reloads (SPEC 13: HLS viewers seen in 10 s).
            if hub.total_viewers() >= hub.max_viewers:
                raise Refused(503, "", f"the edge serves at most {hub.max_viewers} viewers")
            session = secrets.token_hex(8)
            hub.touch_hls(name, session)
            variant = f"{name}.m3u8?auth_key={auth}&session={session}" if auth else f"{name}.m3u8?session={session}"
            body = f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=2500000\n{variant}\n"
            return await _text(send, 200, body, b"application/vnd.apple.mpegurl")
        hub.touch_hls(name, session)
        muxer = await self.edge._hls_muxer(name)
        text = await muxer.playlist()
        if text is None:
            raise Refused(404, "", f"stream {name!r} has no HLS segment yet")
        suffix = f"?auth_key={auth}&session={session}" if auth else f"?session={session}"
        lines = [f"{name}-{line[3:-3]}.ts{suffix}" if line.startswith("seg") and line.endswith(".ts") else line for line in text.splitlines()]
        await _text(send, 200, "\n".join(lines) + "\n", b"application/vnd.apple.mpegurl")

    async def _segment(self, stem: str, query: dict[str, str], send: Send) -> None:
        name, _, number = stem.rpartition("-")
        if not name:
            raise Refused(404, "", f"not found: {stem}.ts")
        # Segments carry the playlist's auth_key, checked against the playlist's path.
        self._check(f"/{self.edge.app_name}/{name}.m3u8", query)
        muxer = self.edge.hls.get(name)
        path = muxer.segment(number) if muxer else None
        if path is None:
            raise Refused(404, "", f"segment {number} of {name!r} is gone or not live")
        if query.get("session"):
            self.edge.hub.touch_hls(name, query["session"])
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise Refused(404, "", f"segment {number} of {name!r} is gone") from None
        await _start(send, b"video/mp2t", len(data))
        await send({"type": "http.response.body", "body": data})


async def _text(send: Send, status: int, text: str, content_type: bytes = b"text/plain; charset=utf-8") -> None:
    body = text.encode()
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *_NO_CACHE]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _start(send: Send, content_type: bytes, length: int | None = None) -> None:
    headers = [(b"content-type", content_type), *_NO_CACHE]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _flv_body(viewer: Viewer) -> AsyncIterator[bytes]:
    while batch := await viewer.batch():
        yield b"".join(tag.flv() for tag in batch)


async def _pipe_body(stdout: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while chunk := await stdout.read(256 * 1024):
        yield chunk


async def _serve(viewer: Viewer, receive: Receive, send: Send, body: AsyncIterator[bytes]) -> None:
    """Send `body` until it ends, the client leaves or the viewer is dropped, whichever comes first.

    A stalled client blocks `send` (the server's flow control); the viewer's queue then overflows
    and the hub drops it, which ends this response even though that `send` never returns.
    """

    async def pump() -> None:
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def client_left() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(client_left()), asyncio.ensure_future(viewer.wait_closed())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if tasks[2] in done and not viewer.dropped and not tasks[0].done():
            await asyncio.wait(tasks[:2], timeout=DRAIN_GRACE, return_when=asyncio.FIRST_COMPLETED)
        finished = tasks[0].done() and not tasks[0].cancelled() and tasks[0].exception() is None
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
    if finished and not tasks[1].done():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(send({"type": "http.response.body", "body": b""}), 1)
