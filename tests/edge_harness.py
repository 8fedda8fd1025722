"""A MediaEdge and its HTTP app served on one event loop in a background thread, as the AppServer runs it.

For the edge tests: signed push and pull URLs on free ports, ffprobe, and the skip-or-fail rule
for ffmpeg (skipped with a reason when missing, a failure under LIVEKIT_DEMO_REQUIRE_MEDIA=1).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import uvicorn

from livekit_demo.clock import Clock, FixedClock
from livekit_demo.edge import MediaEdge
from livekit_demo.signing import sign_url

__all__ = ["CallbackReceiver", "PUSH_KEY", "PULL_KEY", "EdgeHarness", "require_media", "probe_video_packets", "wait_until"]

PUSH_KEY = "push-secret"
PULL_KEY = "pull-secret"
REQUIRE_ENV = "LIVEKIT_DEMO_REQUIRE_MEDIA"
T = TypeVar("T")


def require_media() -> None:
    """Skip (or fail under LIVEKIT_DEMO_REQUIRE_MEDIA=1) unless ffmpeg and ffprobe are on PATH."""
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        message = f"{' and '.join(missing)} not on PATH (apt install ffmpeg; .ci/media does it)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1 requires it)")
        pytest.skip(message)


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `predicate` every 50 ms until true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def probe_video_packets(url: str, seconds: float = 2.0, timeout: float = 40.0) -> int:
    """How many video packets ffprobe reads from `url` in its first `seconds` of media (0 on failure)."""
    command = [
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-read_intervals", f"%+{seconds}",
        "-show_entries", "stream=codec_name,nb_read_packets", "-of", "default=noprint_wrappers=1", url,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    fields = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    if result.returncode != 0 or fields.get("codec_name") != "h264":
        return 0
    return int(fields.get("nb_read_packets", "0") or 0)


class EdgeHarness:
    """A started MediaEdge (RTMP on a free port) and its http_app under uvicorn (a free port), one loop."""

    def __init__(self, *, clock: Clock | None = None, **edge_options: Any) -> None:
        self.clock = clock or FixedClock(time.time())
        self.loop = asyncio.new_event_loop()
        self.edge = MediaEdge(push_auth_key=PUSH_KEY, pull_auth_key=PULL_KEY, rtmp_port=0, clock=self.clock, **edge_options)
        self.server = uvicorn.Server(uvicorn.Config(self.edge.http_app, host="127.0.0.1", port=0, lifespan="off", log_level="warning"))
        self._thread = threading.Thread(target=self._run, daemon=True, name="edge-harness")
        self._thread.start()
        wait_until(lambda: self.server.started, 10, "uvicorn to start")
        self.http_port = self.server.servers[0].sockets[0].getsockname()[1]

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.edge.start())
        self._serving = self.loop.create_task(self.server.serve())
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        """Run a coroutine on the edge's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def exp(self, seconds: int = 3600) -> int:
        """An expiry `seconds` after the edge's clock."""
        return self.clock.timestamp() + seconds

    def push_url(self, stream: str = "room1", key: str = PUSH_KEY, exp: int | None = None) -> str:
        """The signed RTMP push URL of a stream."""
        return sign_url(f"rtmp://127.0.0.1:{self.edge.rtmp_port}/live/{stream}", key, exp or self.exp())

    def pull_url(self, kind: str, stream: str = "room1", key: str = PULL_KEY, exp: int | None = None) -> str:
        """A signed pull URL: kind "rtmp", "flv", "m3u8" or "mp4"."""
        if kind == "rtmp":
            return sign_url(f"rtmp://127.0.0.1:{self.edge.rtmp_port}/live/{stream}", key, exp or self.exp())
        return sign_url(f"http://127.0.0.1:{self.http_port}/live/{stream}.{kind}", key, exp or self.exp())

    def wait_live(self, stream: str = "room1", timeout: float = 20.0) -> None:
        """Wait until the stream is published and has sent its first keyframe."""
        wait_until(lambda: stream in self.edge.live_streams() and bool(self.edge.hub.streams[stream]._gop), timeout, f"{stream} to go live")

    async def _served(self) -> None:
        await asyncio.wait_for(self._serving, 10)

    def close(self) -> None:
        """Stop the edge (which ends the live responses), uvicorn, then the loop."""
        self.call(self.edge.stop())
        self.server.should_exit = True
        try:
            self.call(self._served(), 15)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class CallbackReceiver:
    """A tiny ASGI app standing in for the AppServer's handlePushStreamEventCallback."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], Any]] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((headers, json.loads(body)))
        await send({"type": "http.response.start", "status": self.status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"code": 200}'})
