"""`livekit-demo lab`: JupyterLab on the bundled teaching notebooks.

The notebooks are copied into a folder of the learner's (default ``./livekit_demo_notebooks``)
so their edits never touch the installed package; a notebook already there is left as it is.
JupyterLab starts with the news pop-up off (it would cover the control panel), works as root (a
container's usual user), and gets every argument `lab` does not know itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .exceptions import LivekitDemoError

__all__ = ["bundled_notebooks", "copy_notebooks", "run_lab", "lab_command", "lab_environment", "install_hint", "DEFAULT_FOLDER", "CONFIG_DIR"]

DEFAULT_FOLDER = "livekit_demo_notebooks"


def bundled_notebooks() -> list[Path]:
    """The teaching notebooks: inside an installed wheel, or beside the package in a checkout."""
    package = Path(__file__).resolve().parent
    for folder in (package / "notebooks", package.parent / "notebooks"):
        found = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
        if found:
            return found
    raise LivekitDemoError("the bundled notebooks are missing from this installation")


def copy_notebooks(folder: Path) -> list[Path]:
    """Copy the notebooks that `folder` does not have yet; return every notebook path in it."""
    folder.mkdir(parents=True, exist_ok=True)
    placed = []
    for notebook in bundled_notebooks():
        target = folder / notebook.name
        if not target.exists():
            shutil.copy2(notebook, target)
        placed.append(target)
    return placed


def run_lab(folder: Path, extra_args: Sequence[str] = ()) -> int:
    """Start JupyterLab on `folder` (after copying the notebooks there) and wait for it to end."""
    try:
        import jupyterlab  # noqa: F401  (only to tell a missing extra apart from a failing lab)
    except ImportError:
        raise LivekitDemoError(f"JupyterLab is not installed: {install_hint()}") from None
    notebooks = copy_notebooks(folder)
    print(f"{len(notebooks)} notebooks in {folder.resolve()}; start with {notebooks[0].name}")
    return subprocess.call(lab_command(folder, extra_args), env=lab_environment())


def lab_command(folder: Path, extra_args: Sequence[str] = ()) -> list[str]:
    """The JupyterLab command line `run_lab` runs: our options first, so the learner's `extra_args` win."""
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder.resolve()}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # JupyterLab refuses root otherwise; containers and cloud VMs run as root
    return [*command, *extra_args]


def lab_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default os.environ) with our JupyterLab defaults on its config path (news pop-up off)."""
    env = dict(os.environ if base is None else base)
    # JupyterLab reads labconfig/default_setting_overrides.json from every folder of this path:
    # defaults, so a learner's own settings still win.
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(p for p in (str(CONFIG_DIR), env.get("JUPYTER_CONFIG_PATH", "")) if p)
    return env


def install_hint() -> str:
    """How to install the `lab` extra: editable from a checkout, from the package index otherwise."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "notebooks").is_dir():
        return f'pip install -e ".[lab]" (in {checkout})'
    return 'pip install "livekit_demo[lab]"'


CONFIG_DIR = Path(__file__).resolve().parent / "jupyter_config"
"""Jupyter config defaults that `run_lab` adds: ``labconfig/default_setting_overrides.json``."""
