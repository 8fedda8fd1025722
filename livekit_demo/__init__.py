"""livekit_demo: an AppServer for interactive live rooms, at home in a notebook, a terminal and a QA pipeline.

    >>> import livekit_demo
    >>> server = livekit_demo.start_server(storage="memory")   # doctest: +SKIP
    >>> client = livekit_demo.connect(server.url, username="ann", password="ann")  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from .exceptions import AppServerError, LivekitDemoError, SettingsError, StorageError  # noqa: E402
from .settings import Settings  # noqa: E402

__all__ = [
    "__version__",
    "Settings",
    "LivekitDemoError",
    "SettingsError",
    "StorageError",
    "AppServerError",
]
