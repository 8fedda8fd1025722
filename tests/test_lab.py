"""`livekit-demo lab`: learners get their own copies of the notebooks, and JupyterLab opens on them."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
    monkeypatch.setattr(subprocess, "call", lambda command: started.append(command) or 0)
    assert main(["lab", "--dir", str(tmp_path / "nb"), "--no-browser", "--port", "9999"]) == 0
    (command,) = started
    assert command[1:3] == ["-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={(tmp_path / 'nb').resolve()}" in command
    assert command[-3:] == ["--no-browser", "--port", "9999"]
    assert "01_quickstart.ipynb" in capsys.readouterr().out
