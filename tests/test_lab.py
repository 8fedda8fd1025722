"""`livekit-demo lab`: learners get their own copies of the notebooks, and JupyterLab opens on them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from livekit_demo import lab
from livekit_demo.cli import main


def test_the_notebooks_are_bundled_in_order() -> None:
    names = [p.name for p in lab.bundled_notebooks()]
    assert names == sorted(names) and names[0] == "01_quickstart.ipynb"


def test_copies_never_overwrite_a_learners_edits(tmp_path: Path) -> None:
    placed = lab.copy_notebooks(tmp_path)
    assert [p.name for p in placed] == [p.name for p in lab.bundled_notebooks()]
    placed[0].write_text("my edits")
    lab.copy_notebooks(tmp_path)
    assert placed[0].read_text() == "my edits"


def test_lab_command_starts_jupyterlab_on_the_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda command, **kwargs: started.append(command) or 0)
    assert main(["lab", "--dir", str(tmp_path / "nb"), "--no-browser", "--port", "9999"]) == 0
    (command,) = started
    assert command[1:3] == ["-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={(tmp_path / 'nb').resolve()}" in command
    assert command[-3:] == ["--no-browser", "--port", "9999"]
    assert "01_quickstart.ipynb" in capsys.readouterr().out


def test_lab_as_root_passes_allow_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert "--allow-root" in lab.lab_command(tmp_path, ["--no-browser"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "--allow-root" not in lab.lab_command(tmp_path, ["--no-browser"])


def test_lab_help_says_other_arguments_go_to_jupyterlab(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["lab", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Any other arguments go to JupyterLab" in text and "--no-browser --port 8888" in text


def test_missing_jupyterlab_hint_fits_a_checkout(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "jupyterlab", None)  # as if the extra were not installed
    assert main(["lab", "--dir", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: JupyterLab is not installed: pip install -e ".[lab]"'), err


@pytest.mark.slow
def test_the_launched_jupyterlab_has_the_news_pop_up_off(tmp_path: Path) -> None:
    """JupyterLab's own settings API, asked on the lab `run_lab` starts: fetchNews is "false" (no consent toast)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "home"
    env = lab.lab_environment({
        **os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_PLATFORM_DIRS": "1",
    })  # fmt: skip
    extra = ["--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             "--IdentityProvider.token=t0ken", f"--LabApp.user_settings_dir={home / 'settings'}"]  # fmt: skip
    process = subprocess.Popen(lab.lab_command(tmp_path, extra), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/lab/api/settings/@jupyterlab/apputils-extension:notification?token=t0ken"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "JupyterLab exited"
            try:
                answer = httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
                time.sleep(0.3)
        assert answer.status_code == 200
        data = json.loads(answer.text)
        # Defaults from labconfig land in the schema's defaults; the browser's composite starts there.
        assert data["schema"]["properties"]["fetchNews"]["default"] == "false", data["schema"]["properties"]["fetchNews"]
    finally:
        process.terminate()
        process.wait(20)
