"""The public names of the package are exactly the ones we mean, and each one resolves."""

from __future__ import annotations

import subprocess
import sys

import livekit_demo


def test_all_is_what_we_mean() -> None:
    assert livekit_demo.__all__ == [
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


def test_every_exported_name_resolves() -> None:
    for name in livekit_demo.__all__:
        member = getattr(livekit_demo, name)
        if name != "__version__":
            assert member.__module__.startswith("livekit_demo."), name
    assert set(livekit_demo.__all__) <= set(dir(livekit_demo))


def test_import_does_not_load_the_notebook_runtime() -> None:
    # A fresh interpreter: this test process has long imported everything.
    code = "import sys, livekit_demo; print(sorted(m for m in ('uvicorn', 'httpx', 'starlette', 'ipywidgets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
