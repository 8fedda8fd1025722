"""The README's curl walkthrough works as written, against a real `livekit-demo serve`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from server_process import serve_process

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough_commands() -> list[str]:
    """The indented command lines of the "Five minutes with curl" section, comments left out."""
    section = README.read_text(encoding="utf-8").split("## Five minutes with curl", 1)[1].split("\n## ", 1)[0]
    lines = [line[4:] for line in section.splitlines() if line.startswith("    ")]
    return [line for line in lines if not line.lstrip().startswith("#")]


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash")
def test_the_curl_walkthrough_runs_as_written(tmp_path: Path) -> None:
    commands = walkthrough_commands()
    assert commands[0].startswith("livekit-demo serve --storage memory --port 8080")
    with serve_process(tmp_path, "--storage", "memory") as server:
        host = re.sub(r"^http://|/$", "", server.url)
        script = "set -euo pipefail\n" + "\n".join(commands[1:]).replace("localhost:8080", host)
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert '"status": 1' in done.stdout and "rtmp://push.example.com/live/" in done.stdout  # started, signed URLs
    assert '"status":2' in done.stdout  # stopped, then deleted (answered as it was)
    assert done.stdout.rstrip().endswith('"details":null}') and '"code":404' in done.stdout  # gone


def test_base_urls_in_the_readme_have_no_trailing_slash() -> None:
    # SPEC 1 "Base URLs": clients build base + "/api/...", so a documented ".../" becomes "//api/...".
    text = README.read_text(encoding="utf-8")
    assert re.findall(r"https?://[\w.\-]+:\d+/(?![\w{$])", text) == []
    assert "http://127.0.0.1:8080 " in text  # the check command's example is there, and written right
