"""The built JupyterLite site, for real: Pyodide in Node on the site's own files, then the site in Chromium offline.

The site is built once per run (`livekit-demo lite`), its runtime and wheels fetched by npm and pip
into a cache on the first run ($LIVEKIT_DEMO_LITE_CACHE, default ~/.cache/livekit_demo/lite).
Two layers: Node (cheap: no browser, no JupyterLab) loads our wheel from the site's lock and runs the
in-process server, the conformance kit and TinyDB; Chromium serves the site from loopback with every
other request blocked, runs notebook 01 and logs in with the control panel.

Needs the lite extra, Node.js (and npm for the first fetch), /usr/bin/chromium and Playwright; skipped
with the reason when one is missing, except under LIVEKIT_DEMO_REQUIRE_LITE=1 (CI), where that fails.
Screenshots go to artifacts/lite/ at the repo root, or to $LIVEKIT_DEMO_LITE_ARTIFACTS.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from livekit_demo.exceptions import LivekitDemoError
from livekit_demo.lite import LiteSite, build_site, check_site

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.lite

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
BUDGET = 180.0
"""Seconds the browser flow may take (kernel start ~15 s, notebook 01 and the login ~20 s on a busy machine)."""


def requirement_missing(*needs: str) -> str | None:
    """Why this layer cannot run here, or None."""
    if importlib.util.find_spec("jupyterlite_pyodide_kernel") is None:
        return 'the lite extra is not installed (pip install -e ".[lite]")'
    if "node" in needs and shutil.which("node") is None:
        return "node (Node.js) is not installed (Debian: apt-get install nodejs npm)"
    if "browser" in needs:
        if not CHROMIUM.exists():
            return f"{CHROMIUM} not found (Debian: apt-get install chromium)"
        if importlib.util.find_spec("playwright") is None:
            return "the Python package playwright is not installed"
    return None


def skip_or_fail(reason: str) -> None:
    if os.environ.get("LIVEKIT_DEMO_REQUIRE_LITE") == "1":
        pytest.fail(f"LIVEKIT_DEMO_REQUIRE_LITE=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> LiteSite:
    """The site, built once for the run (fetching into the cache only what it lacks)."""
    reason = requirement_missing()
    if reason:
        skip_or_fail(reason)
    cache = os.environ.get("LIVEKIT_DEMO_LITE_CACHE")
    try:
        return build_site(tmp_path_factory.mktemp("lite") / "site", cache=Path(cache) if cache else None, log=lambda line: None)
    except LivekitDemoError as exc:
        if "fetch" in str(exc) or "npm" in str(exc) or "pip download" in str(exc):
            skip_or_fail(f"the site could not be built: {exc}")
        raise


def test_the_built_site_fetches_nothing_from_outside(site: LiteSite) -> None:
    assert check_site(site.path) == []
    names = {w.split("-")[0].lower() for w in site.wheels}
    assert {"livekit_demo", "starlette", "httpx", "tinydb", "pyjwt", "ipywidgets", "micropip", "ipython"} <= names
    assert not names & {"uvicorn", "pyyaml", "jupyterlab", "widgetsnbextension", "sqlalchemy"}
    notebooks = sorted(p.name for p in (site.path / "files").glob("*.ipynb"))
    assert notebooks[0] == "01_quickstart.ipynb" and len(notebooks) >= 7


# -- Node: Pyodide on the site's runtime and lock, no browser ---------------------------------------

NODE_SCRIPT = """
import path from "node:path";
const dir = process.argv[2];
const { loadPyodide } = await import(path.join(dir, "pyodide.mjs"));
// Offline like the site: the lock beside the runtime is the only source of packages.
const pyodide = await loadPyodide({ indexURL: dir + "/", packages: ["livekit-demo"] });
const answer = await pyodide.runPythonAsync(process.argv[3]);
console.log("RESULT " + answer);
"""

NODE_PYTHON = """
import json, os, sys
import livekit_demo
from livekit_demo.conformance import run_checks
from livekit_demo.passwords import hash_password

result = {"platform": sys.platform, "has_uvicorn": "uvicorn" in sys.modules}
os.makedirs("/tmp/lite", exist_ok=True)
server = livekit_demo.start_server(storage="/tmp/lite/rooms.json", auth={"users": {"boss": hash_password("pw")}})
result["url"] = server.url
client = livekit_demo.connect(username="ann")
room = client.create("Morning show")
result["started"] = client.start(room["id"])["status"]
result["boss"] = livekit_demo.connect(username="boss", password="pw").username
report = run_checks(server.url, "ann", "ann")
result["checks"] = report.counts
result["failed"] = [(r.id, r.seen) for r in report.failures]
server.restart()  # TinyDB on Emscripten's file system: no os.link, no flock
result["kept"] = [r["title"] for r in client.list()]
result["secret_file"] = os.path.exists("/tmp/lite/rooms.json.secret")
server.stop()
json.dumps(result)
"""


def test_pyodide_in_node_runs_the_in_process_server_from_the_site(site: LiteSite, tmp_path: Path) -> None:
    reason = requirement_missing("node")
    if reason:
        skip_or_fail(reason)
    script = tmp_path / "run.mjs"
    script.write_text(NODE_SCRIPT)
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run([node, str(script), str(site.path / "static" / "pyodide"), NODE_PYTHON], capture_output=True, text=True, timeout=240)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    # On failure, the Python traceback (the minified runtime around it says nothing).
    error = done.stderr[done.stderr.find("PythonError") :] if "PythonError" in done.stderr else done.stderr[-3000:]
    assert done.returncode == 0 and lines, f"node failed ({done.returncode}):\n{done.stdout[-2000:]}\n{error[:3000]}"
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["platform"] == "emscripten" and not result["has_uvicorn"]
    assert result["url"].startswith("inprocess://")
    assert result["started"] == 1 and result["boss"] == "boss"
    assert result["failed"] == [] and result["checks"]["pass"] >= 120, result["checks"]
    assert result["kept"] == ["Morning show"] and result["secret_file"]


# -- Chromium: the site served from loopback, nothing else reachable ---------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site; no log lines in the test output. `.mjs` is JavaScript (workers refuse other types)."""

    extensions_map: ClassVar[dict[str, str]] = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(site: LiteSite) -> Iterator[str]:
    """The site on a free loopback port, for this test only."""
    handler = functools.partial(QuietHandler, directory=str(site.path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def artifacts_dir() -> Path:
    configured = os.environ.get("LIVEKIT_DEMO_LITE_ARTIFACTS")
    return Path(configured).resolve() if configured else REPO / "artifacts" / "lite"


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Milliseconds left (at least one, so an overrun fails at the next wait)."""
        return max(1.0, (self.end - time.monotonic()) * 1000)


def shown_notebook(page: Page) -> Any:
    """The notebook of the current tab (an earlier tab's stays in the page, hidden)."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")


def wait_for_kernel(page: Page, deadline: Deadline) -> None:
    """Until the status bar says the Pyodide kernel is idle (it starts 10-20 s after the page)."""
    page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"Pyodide.*\| Idle")).first.wait_for(timeout=deadline.left())


def run_all_cells(page: Page, deadline: Deadline) -> None:
    """Run > Run All Cells, as a learner does, once the kernel is idle."""
    wait_for_kernel(page, deadline)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click(timeout=deadline.left())
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click(timeout=deadline.left())


def wait_until_all_ran(page: Page, deadline: Deadline) -> None:
    """Until every code cell has an execution count: none waiting ("[ ]") or running ("[*]")."""
    prompts = shown_notebook(page).locator(".jp-CodeCell .jp-InputArea-prompt")
    while True:
        texts = [t.strip() for t in prompts.all_inner_texts()]
        if texts and all(re.fullmatch(r"\[\d+\]:", t) for t in texts):
            return
        if deadline.left() <= 1:
            raise AssertionError(f"the cells did not all run in time: {texts}")
        page.wait_for_timeout(250)


def shoot(page: Page, path: Path, what: Any = None) -> Path:
    (what or page).screenshot(path=path, timeout=10_000)
    return path


def test_notebook_01_and_the_control_panel_run_in_chromium_offline(site: LiteSite, served: str) -> None:
    reason = requirement_missing("browser")
    if reason:
        skip_or_fail(reason)
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Route, expect, sync_playwright

    shots = artifacts_dir()
    shots.mkdir(parents=True, exist_ok=True)
    for stale in shots.glob("*.png"):
        stale.unlink()
    blocked: list[str] = []
    console: list[str] = []

    def only_loopback(route: Route) -> None:
        if route.request.url.startswith(served + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    deadline = Deadline(BUDGET)
    started = time.monotonic()
    taken: list[Path] = []
    timings: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 2400})
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            try:
                # Notebook 01, every cell: it starts the server in-process and makes its first calls.
                page.goto(f"{served}/lab/index.html?path=01_quickstart.ipynb", timeout=deadline.left())
                # The site's notebooks come without outputs: whatever shows after running was made here.
                shown_notebook(page).locator(".jp-CodeCell").first.wait_for(timeout=deadline.left())
                assert shown_notebook(page).locator(".jp-OutputArea-output").count() == 0
                run_all_cells(page, deadline)
                wait_until_all_ran(page, deadline)
                text = "\n".join(shown_notebook(page).locator(".jp-OutputArea-output").all_inner_texts())
                for expected in ("inprocess://appserver-", "status: 0 (prepared)", "status after stop: 2", "after delete: 404"):
                    assert expected in text, f"{expected!r} not in the outputs of notebook 01:\n{text[-3000:]}"
                assert "Traceback" not in text and "Error" not in text.replace("ApiError", ""), text[-3000:]
                taken.append(shoot(page, shots / "01_quickstart.png"))
                timings["notebook 01"] = time.monotonic() - started

                # The control panel of notebook 06: log in through its form.
                # Opened from the file browser, as a learner does (a second ?path= would race the workspace restore).
                page.locator(".jp-DirListing-item", has_text="06_control_panel.ipynb").dblclick(timeout=deadline.left())
                shown_notebook(page).get_by_role("heading", name="· The control panel").wait_for(timeout=deadline.left())
                wait_for_kernel(page, deadline)
                first = shown_notebook(page).locator(".jp-CodeCell").first
                first.locator(".cm-content").click(timeout=deadline.left())
                page.keyboard.press("Shift+Enter")
                panel = shown_notebook(page).locator(".jp-OutputArea-output").filter(has=page.locator(".widget-tab"))
                panel.locator(".widget-tab").wait_for(state="visible", timeout=deadline.left())
                expect(panel).to_contain_text("not logged in", timeout=deadline.left())
                panel.get_by_role("tab", name="Login", exact=True).click(timeout=deadline.left())
                panel.get_by_label("Username", exact=True).filter(visible=True).fill("ann", timeout=deadline.left())
                panel.get_by_role("button", name="Log in", exact=True).filter(visible=True).click(timeout=deadline.left())
                expect(panel).to_contain_text("✓ login: ok", timeout=deadline.left())
                expect(panel).to_contain_text("logged in as ann", timeout=deadline.left())
                expect(panel.get_by_label("Server", exact=True)).to_have_value(re.compile(r"^inprocess://appserver-\d+$"), timeout=deadline.left())
                taken.append(shoot(page, shots / "02_control_panel_login.png", panel))
                timings["panel login"] = time.monotonic() - started
            except (AssertionError, PlaywrightError) as exc:
                failure = shots / "failure.png"
                try:
                    page.screenshot(path=failure, timeout=10_000)
                except PlaywrightError:
                    pass
                pytest.fail(
                    f"the JupyterLite flow failed after {time.monotonic() - started:.1f} s ({timings}): {exc}\nscreenshot: {failure}\n"
                    f"blocked non-loopback requests: {blocked}\nbrowser console (last 15): {console[-15:]}"
                )
        finally:
            browser.close()
    assert all(path.stat().st_size > 1000 for path in taken), taken
    assert not blocked, f"the site asked for non-loopback URLs: {blocked}"
    print(f"JupyterLite flow: {timings} s; screenshots:", *map(str, taken), sep="\n  ")
