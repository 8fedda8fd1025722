"""The test-pattern pusher: an ffmpeg sending a moving picture, a title, a clock and a tone to a push URL.

    with TestPattern("rtmp://127.0.0.1:1935/live/room1?auth_key=...", title="My room") as pusher:
        ...                              # the room is live while this runs
    # ffmpeg stopped; pusher.returncode, pusher.log_tail() tell how it ended

ffmpeg is the system's when on PATH, else the one the `imageio-ffmpeg` package ships (the
`media` extra); with neither, `find_ffmpeg` raises `MediaToolMissing` naming the extra.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from types import TracebackType

from ..exceptions import LivekitDemoError

__all__ = ["MediaToolMissing", "find_ffmpeg", "find_ffprobe", "TestPattern"]


class MediaToolMissing(LivekitDemoError):
    """Neither a system ffmpeg nor the `imageio-ffmpeg` package is there."""


def find_ffmpeg() -> str:
    """The path of an ffmpeg: the system's (PATH), else imageio-ffmpeg's; MediaToolMissing otherwise."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found,unused-ignore]

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        raise MediaToolMissing(
            'ffmpeg is needed for the media edge\'s HLS/MP4 and the test pattern: install it (apt install ffmpeg) '
            'or pip install "livekit_demo[media]"'
        ) from exc


def find_ffprobe() -> str | None:
    """The system's ffprobe, or None (imageio-ffmpeg ships no ffprobe)."""
    return shutil.which("ffprobe")


def _has_drawtext(ffmpeg: str) -> bool:
    # imageio-ffmpeg's static builds may lack libfreetype: then the picture goes without text.
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return " drawtext " in out


class TestPattern:
    """A running ffmpeg pushing testsrc2 + title + clock + a 440 Hz tone as H.264/AAC FLV, in real time."""

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(
        self,
        push_url: str,
        *,
        title: str = "",
        ffmpeg: str | None = None,
        video_bitrate: str = "1000k",
        size: str = "640x360",
        rate: int = 25,
    ) -> None:
        self.push_url = push_url
        self.title = title
        self.ffmpeg = ffmpeg or find_ffmpeg()
        self.video_bitrate = video_bitrate
        self.size = size
        self.rate = rate
        self.process: subprocess.Popen[bytes] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=20)
        self._reader: threading.Thread | None = None
        self._title_file: str | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else ("not started" if self.process is None else f"exited {self.returncode}")
        return f"TestPattern({self.push_url.split('?')[0]!r}, {state})"

    def command(self) -> list[str]:
        """The ffmpeg command line."""
        video = f"testsrc2=size={self.size}:rate={self.rate}"
        filters = []
        if _has_drawtext(self.ffmpeg):
            if self.title:
                if self._title_file is None:
                    handle, self._title_file = tempfile.mkstemp(prefix="livekit-demo-title-", suffix=".txt")
                    with os.fdopen(handle, "w", encoding="utf-8") as out:
                        out.write(self.title)
                # A text file spares the title drawtext's escaping rules; expansion off: a % stays a %.
                filters.append(f"drawtext=textfile='{self._title_file}':expansion=none:fontsize=32:fontcolor=white:box=1:boxcolor=black@0.6:x=20:y=48")
            filters.append("drawtext=text='%{localtime}':fontsize=28:fontcolor=white:box=1:boxcolor=black@0.6:x=20:y=h-50")
        gop = str(self.rate * 2)  # a keyframe every 2 s: viewers join fast, HLS segments are short
        return [
            self.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            *(["-vf", ",".join(filters)] if filters else []),
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
            "-b:v", self.video_bitrate, "-maxrate", self.video_bitrate, "-bufsize", self.video_bitrate,
            "-g", gop, "-keyint_min", gop,
            "-c:a", "aac", "-b:a", "96k", "-f", "flv", self.push_url,
        ]  # fmt: skip

    def start(self) -> TestPattern:
        """Start ffmpeg (returns self, to chain)."""
        if self.running:
            return self
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read_errors, args=(self.process,), daemon=True, name="test-pattern-stderr")
        self._reader.start()
        return self

    def _read_errors(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self._tail.append(line.decode(errors="replace").rstrip())

    @property
    def running(self) -> bool:
        """Whether ffmpeg is still running."""
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        """ffmpeg's exit status once it ended (None while running or before start)."""
        return None if self.process is None else self.process.poll()

    def log_tail(self) -> str:
        """The last lines ffmpeg wrote to stderr (why it failed, when it did)."""
        if self._reader is not None and not self.running:
            self._reader.join(timeout=2)
        return "\n".join(self._tail)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for ffmpeg to end by itself (e.g. refused by the edge); its exit status."""
        assert self.process is not None, "not started"
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Stop ffmpeg: SIGINT lets it close the RTMP stream properly; killed if it lingers."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT if os.name != "nt" else signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
        if process is not None and process.stderr is not None:
            process.stderr.close()
        if self._title_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._title_file)
            self._title_file = None

    def __enter__(self) -> TestPattern:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
