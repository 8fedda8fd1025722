"""`livekit-demo lab`: JupyterLab on the bundled teaching notebooks.

The notebooks are copied into a folder of the learner's (default ``./livekit_demo_notebooks``)
so their edits never touch the installed package; a notebook already there is left as it is.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .exceptions import LivekitDemoError

__all__ = ["bundled_notebooks", "copy_notebooks", "run_lab", "DEFAULT_FOLDER"]

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
        raise LivekitDemoError('JupyterLab is not installed: pip install "livekit_demo[lab]"') from None
    notebooks = copy_notebooks(folder)
    print(f"{len(notebooks)} notebooks in {folder.resolve()}; start with {notebooks[0].name}")
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder.resolve()}", *extra_args]
    return subprocess.call(command)
