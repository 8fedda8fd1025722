"""A real `livekit-demo serve` process for the reliability tests: its URL, its pid, and a way to kill it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["ServerProcess", "serve_process", "login_headers", "rss_kib", "peak_rss_kib"]

_URL_LINE = "Enter this base URL in a client:"


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    url: str
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self) -> None:
        """SIGKILL: no cleanup, no compaction, no flush; what a power cut or the OOM killer does."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serve_process(tmp_path: Path, *args: str, config: dict[str, Any] | None = None, name: str = "serve") -> Iterator[ServerProcess]:
    """Run `python -m livekit_demo serve ARGS --port 0` until the block ends (killed in any case)."""
    command = [sys.executable, "-m", "livekit_demo", "serve", "--port", "0", *args]
    if config is not None:
        config_file = tmp_path / f"{name}.config.json"
        config_file.write_text(json.dumps(config), encoding="utf-8")
        command += ["--config", str(config_file)]
    stderr_path = tmp_path / f"{name}.stderr.log"
    # stderr to a file, not a pipe: a full pipe nobody reads would stall the server mid-request.
    with stderr_path.open("w", encoding="utf-8") as err:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_DEMO_", "SPF_"))}
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    try:
        url = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if _URL_LINE in line:
                url = line.split(_URL_LINE, 1)[1].strip()
                break
        assert url, f"no URL printed; stderr: {stderr_path.read_text(encoding='utf-8', errors='replace')}"
        yield ServerProcess(proc, url, stderr_path)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()


def login_headers(http: httpx.Client, user: str, password: str | None = None) -> dict[str, str]:
    r = http.post("/login", json={"username": user, "password": password or user})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def rss_kib(pid: int) -> int:
    """The resident set size of process `pid`, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def peak_rss_kib(pid: int) -> int:
    """The high-water mark of the resident set size of process `pid` (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")
