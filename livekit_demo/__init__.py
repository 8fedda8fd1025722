"""livekit_demo: an AppServer for interactive live rooms, at home in a notebook, a terminal and a QA pipeline.

    >>> import livekit_demo
    >>> server = livekit_demo.start_server(storage="memory")   # doctest: +SKIP
    >>> client = livekit_demo.connect(server.url, username="ann", password="ann")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .exceptions import AppServerError, LivekitDemoError, SettingsError, StorageError
from .settings import Settings

if TYPE_CHECKING:
    from .client import ApiError, AppServerClient, connect
    from .runner import ServerHandle, start_server

__all__ = [
    "__version__",
    "Settings",
    "LivekitDemoError",
    "SettingsError",
    "StorageError",
    "AppServerError",
    "start_server",
    "ServerHandle",
    "connect",
    "AppServerClient",
    "ApiError",
]

# The notebook runtime pulls in uvicorn, Starlette and httpx; `import livekit_demo` stays quick
# (the CLI and the settings do not need them) by importing those names on first use.
_LAZY = {
    "start_server": "runner",
    "ServerHandle": "runner",
    "connect": "client",
    "AppServerClient": "client",
    "ApiError": "client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'livekit_demo' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
