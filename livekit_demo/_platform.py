"""What the Python we run on can do: a browser tab (Pyodide) has no threads and no sockets.

Below the runner (api, audience, widgets, inprocess all ask), so that asking never imports the
notebook runner or the server it starts.
"""

from __future__ import annotations

import sys

__all__ = ["threads_available"]


def threads_available() -> bool:
    """False where no thread can be started: Pyodide in a browser or Node (``sys.platform == "emscripten"``)."""
    return sys.platform not in ("emscripten", "wasi")
