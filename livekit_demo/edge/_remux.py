"""ffmpeg children that re-package a live stream without re-encoding (`-c copy`): HLS and fragmented MP4.

Each is fed FLV on its stdin by a `Viewer` of the stream, so ffmpeg sees exactly what an HTTP-FLV
viewer would (GOP first), and a stuck ffmpeg is dropped like any slow viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path

from ._flv import flv_header
from ._hub import Viewer

__all__ = ["Feeder", "HlsMuxer", "MP4_ARGS"]

log = logging.getLogger("livekit_demo.edge")

SEGMENT_SECONDS = 2
MP4_ARGS = ("-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "pipe:1")


class Feeder:
    """An ffmpeg process reading FLV from a viewer on its stdin."""

    def __init__(self, ffmpeg: str, viewer: Viewer, output_args: tuple[str, ...], *, stdout: bool = False) -> None:
        self.ffmpeg = ffmpeg
        self.viewer = viewer
        self.output_args = output_args
        self.want_stdout = stdout
        self.process: asyncio.subprocess.Process | None = None
        self._feed: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start ffmpeg and the task that feeds it."""
        self.process = await asyncio.create_subprocess_exec(
            self.ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "flv", "-i", "pipe:0", *self.output_args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE if self.want_stdout else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self._feed = asyncio.get_running_loop().create_task(self._run_feed())

    async def _run_feed(self) -> None:
        assert self.process is not None and self.process.stdin is not None
        stdin = self.process.stdin
        try:
            stdin.write(flv_header())
            while batch := await self.viewer.batch():
                stdin.write(b"".join(tag.flv() for tag in batch))
                await stdin.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            stdin.close()  # end of input: ffmpeg finishes its output and exits

    async def stop(self) -> None:
        """Stop feeding and end ffmpeg (killed if it does not exit by itself within 2 s)."""
        self.viewer.close()
        if self._feed is not None:
            self._feed.cancel()
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        # Read what ffmpeg still writes: blocked on a full stdout pipe it would never see the end of
        # its input, and an unread pipe is never closed.
        drain = asyncio.get_running_loop().create_task(_discard(process.stdout))
        try:
            await asyncio.wait_for(process.wait(), 2)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(drain, 2)


async def _discard(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.read(256 * 1024):
        pass


class HlsMuxer:
    """One stream's HLS segments in a temporary folder, written by ffmpeg while someone watches."""

    def __init__(self, ffmpeg: str, viewer: Viewer) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="livekit-demo-hls-"))
        self.last_used = time.monotonic()
        args = (
            "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_list_size", "6",
            "-hls_flags", "delete_segments+independent_segments",
            "-hls_segment_filename", str(self.folder / "seg%d.ts"), str(self.folder / "index.m3u8"),
        )  # fmt: skip
        self.feeder = Feeder(ffmpeg, viewer, args)

    async def start(self) -> None:
        """Start segmenting."""
        await self.feeder.start()

    async def playlist(self, timeout: float = 15.0) -> str | None:
        """ffmpeg's current playlist, waiting up to `timeout` for its first segment; None if none came."""
        self.last_used = time.monotonic()
        path = self.folder / "index.m3u8"
        deadline = time.monotonic() + timeout
        while not path.exists():
            process = self.feeder.process
            if time.monotonic() > deadline or self.feeder.viewer.closed or (process and process.returncode is not None):
                return None
            await asyncio.sleep(0.2)
        return await asyncio.to_thread(path.read_text)

    def segment(self, number: str) -> Path | None:
        """The file of segment `number`, if it is still there."""
        self.last_used = time.monotonic()
        if not re.fullmatch(r"\d{1,10}", number):
            return None
        path = self.folder / f"seg{number}.ts"
        return path if path.exists() else None

    async def stop(self) -> None:
        """Stop ffmpeg and remove the segments."""
        await self.feeder.stop()
        await asyncio.to_thread(shutil.rmtree, self.folder, True)
