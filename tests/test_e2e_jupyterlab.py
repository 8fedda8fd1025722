"""The control panel in a real JupyterLab, driven through headless Chromium.

Headless widget tests (tests/test_widgets.py) call the Python side directly; they cannot see a
frontend extension that fails to load, a comm message that never reaches the kernel, or output
from a callback that lands nowhere. Here JupyterLab runs as its own process, Chromium opens
notebook 06, runs the cell that displays the panel, and a learner's clicks go through the page:
log in, create a room, start it (status 1, an rtmp:// push URL), stop it (status 2).

Needs /usr/bin/chromium (Debian's `chromium`) and the `playwright` package; skipped with the
reason when either is missing, except under LIVEKIT_DEMO_REQUIRE_E2E=1 (CI), where that fails.
Screenshots go to artifacts/e2e/ at the repo root, or to $LIVEKIT_DEMO_E2E_ARTIFACTS.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, WebSocket

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "06_control_panel.ipynb"
GO_LIVE = REPO / "notebooks" / "08_go_live.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
BUDGET = 120.0
"""Seconds the whole browser flow may take (it needs about 30); every wait shares this budget, so
a hang fails with a screenshot and the log instead of blocking the run."""


# -- requirements: skip where the browser is missing, fail in CI -----------------------------------


def missing_requirement() -> str | None:
    """Why this test cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (Debian: apt-get install chromium chromium-driver)"
    for module, install in (("playwright", "pip install playwright"), ("jupyterlab", 'pip install -e ".[lab]"'), ("ipywidgets", 'pip install -e ".[lab]"')):
        if importlib.util.find_spec(module) is None:
            return f"the Python package {module} is not installed ({install})"
    return None


@pytest.fixture
def requirements() -> None:
    reason = missing_requirement()
    if reason is None:
        return
    if os.environ.get("LIVEKIT_DEMO_REQUIRE_E2E") == "1":
        pytest.fail(f"LIVEKIT_DEMO_REQUIRE_E2E=1 but {reason}")
    pytest.skip(reason)


# -- artifacts: where screenshots go, and a line for each in the terminal summary ------------------


def artifacts_dir() -> Path:
    configured = os.environ.get("LIVEKIT_DEMO_E2E_ARTIFACTS")
    return Path(configured).resolve() if configured else REPO / "artifacts" / "e2e"


class ArtifactReport:
    """Lists the screenshots after the run, whatever `-s` says (captured prints would be hidden)."""

    name = "livekit-demo-e2e-artifacts"

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.paths:
            terminalreporter.section("e2e screenshots")
            for path in self.paths:
                terminalreporter.write_line(str(path))


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> ArtifactReport:
    manager = request.config.pluginmanager
    report = manager.get_plugin(ArtifactReport.name)
    if report is None:
        report = ArtifactReport()
        manager.register(report, ArtifactReport.name)
    return report


# -- JupyterLab as a process of its own ------------------------------------------------------------


@dataclass
class Lab:
    url: str
    token: str
    log: Path
    process: subprocess.Popen[bytes]
    kernels: list[int] = field(default_factory=list)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def blank_copy(source: Path, target: Path) -> None:
    """The notebook without its saved outputs and widget state.

    The saved state would draw a stale panel (even one showing status 1) before any cell runs,
    and the test must see only what the live kernel draws.
    """
    notebook = json.loads(source.read_text())
    notebook.get("metadata", {}).pop("widgets", None)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target.write_text(json.dumps(notebook, indent=1))


def descendants(pid: int) -> list[int]:
    """Processes below `pid`, read from /proc: the kernel runs in a session of its own, so
    killing the server's process group would miss it. Empty where there is no /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while we looked
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name in (...) may hold spaces
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_lab(lab: Lab) -> None:
    """Ask JupyterLab to shut down (it ends its kernels), then make sure: signals, then SIGKILL."""
    process = lab.process
    lab.kernels = descendants(process.pid)
    if process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{lab.url}/api/shutdown", headers={"Authorization": f"token {lab.token}"}, timeout=5, trust_env=False)
        for sig, wait in ((None, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(wait)
                break
    for pid in lab.kernels:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def lab(requirements: None, tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on a free loopback port with a random token, on a blank copy of notebook 06."""
    with run_lab(tmp_path, NOTEBOOK) as started:
        yield started


@pytest.fixture
def go_live_lab(requirements: None, tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on a blank copy of notebook 08 (needs ffmpeg, for the test pattern)."""
    import shutil

    if shutil.which("ffmpeg") is None:
        if os.environ.get("LIVEKIT_DEMO_REQUIRE_MEDIA") == "1" or os.environ.get("LIVEKIT_DEMO_REQUIRE_E2E") == "1":
            pytest.fail("ffmpeg not on PATH (apt install ffmpeg; .ci/media does it)")
        pytest.skip("ffmpeg not on PATH (apt install ffmpeg; .ci/media does it)")
    with run_lab(tmp_path, GO_LIVE) as started:
        yield started


@contextlib.contextmanager
def run_lab(tmp_path: Path, notebook: Path) -> Iterator[Lab]:
    """JupyterLab on a free loopback port with a random token, on a blank copy of `notebook`."""
    root = tmp_path / "notebooks"
    root.mkdir()
    blank_copy(notebook, root / notebook.name)
    # Config, data and runtime in tmp_path: the user's settings and extensions stay out, and
    # nothing (cookie secret, signing key, connection files) is written into their home.
    home = tmp_path / "jupyter"
    (home / "config" / "labconfig").mkdir(parents=True)
    # The announcements plugin would ask in a toast whether to fetch news from the internet.
    (home / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",  # silences jupyter_core's notice about the coming default
    }
    port, token = free_port(), secrets.token_urlsafe(24)
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # a taken port is an error, not a silent move elsewhere
        f"--IdentityProvider.token={token}",  # ServerApp.token is its deprecated alias
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",  # CI containers run as root; JupyterLab refuses that otherwise
        "--ServerApp.terminals_enabled=False",
        # Quiet and offline: no news feed, no update check, no PyPI queries by the extension manager.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.user_settings_dir={home / 'user-settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
    ]  # fmt: skip
    log = tmp_path / "jupyterlab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    started = Lab(url=f"http://127.0.0.1:{port}", token=token, log=log, process=process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {process.returncode} before answering; its log:\n{started.log_tail()}")
            try:
                if httpx.get(f"{started.url}/api/status", params={"token": token}, timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer /api/status within 60 s; its log:\n{started.log_tail()}")
            time.sleep(0.2)
        yield started
    finally:
        stop_lab(started)


# -- the flow --------------------------------------------------------------------------------------


class Flow:
    """The page and the panel in it, with waits that share one time budget."""

    def __init__(self, page: Page, shots: Path, report: ArtifactReport) -> None:
        self.page, self.shots, self.report = page, shots, report
        self.deadline = time.monotonic() + BUDGET
        self.kernel_frames = 0  # messages the page got over a kernel's websocket
        page.on("websocket", self._watch)
        self.panel: Locator = page.locator(".jp-OutputArea-output").filter(has=page.locator(".widget-tab"))
        # The "Last answer" box: the VBox titled so that does not also hold the tabs.
        self.answer: Locator = (
            self.panel.locator(".widget-vbox").filter(has=page.get_by_text("Last answer", exact=True)).filter(has_not=page.locator(".widget-tab"))
        )

    def _watch(self, socket: WebSocket) -> None:
        if "/api/kernels/" in socket.url:
            socket.on("framereceived", lambda _: setattr(self, "kernel_frames", self.kernel_frames + 1))

    def wait_for_kernel(self) -> None:
        """Until the page has heard from the kernel over its websocket, then until it is idle.

        Shift+Enter before that is dropped silently (the cell stays "[ ]:"), and the toolbar's
        indicator can say idle before the websocket is even opened, so it alone is not enough.
        """
        while self.kernel_frames == 0:
            if time.monotonic() > self.deadline:
                raise AssertionError("the page never connected to a kernel")
            self.page.wait_for_timeout(100)  # lets Playwright deliver the websocket events
        self.page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=self.left())

    def left(self) -> float:
        """Milliseconds left in the budget (at least one, so an overrun fails at the next wait)."""
        return max(1.0, (self.deadline - time.monotonic()) * 1000)

    def expect_text(self, locator: Locator, text: str) -> None:
        from playwright.sync_api import expect

        expect(locator).to_contain_text(text, timeout=self.left())

    def tab(self, title: str) -> None:
        self.panel.get_by_role("tab", name=title, exact=True).click(timeout=self.left())

    def click(self, button: str) -> None:
        self.panel.get_by_role("button", name=button, exact=True).filter(visible=True).click(timeout=self.left())

    def type_into(self, label: str, text: str) -> None:
        # One `input` event, as when a value is pasted, not one per key: ipywidgets holds back a
        # model's further updates while one is unanswered and sends only the last one later, so a
        # button click (sent at once) could reach the kernel before the last keys did.
        self.panel.get_by_label(label, exact=True).filter(visible=True).fill(text, timeout=self.left())

    def last_answer(self) -> Any:
        # The full JSON sits in a collapsed <details>: read its text, which does not need it shown.
        return json.loads(self.answer.locator("pre").text_content(timeout=self.left()) or "")

    def shoot(self, name: str, *, whole_page: bool = False) -> Path:
        path = self.shots / name
        if whole_page:
            self.page.screenshot(path=path, timeout=10_000)
        else:
            self.panel.screenshot(path=path, timeout=self.left())
        self.report.paths.append(path)
        return path


def run_panel_cell(flow: Flow) -> None:
    """Run the first code cell only: it starts the server and displays the panel (the last cell
    would stop the server again, so "Run All" is not what a learner does before clicking)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = flow.page
    flow.wait_for_kernel()
    cell = page.locator(".jp-Notebook .jp-CodeCell").first
    prompt = cell.locator(".jp-InputArea-prompt")
    for attempt in range(3):  # retried in case a keystroke still arrives too early
        cell.locator(".cm-content").click(timeout=flow.left())
        page.keyboard.press("Shift+Enter")
        try:
            # "[*]:" while it runs, "[1]:" once done: either way the kernel has the cell.
            prompt.filter(has_not_text="[ ]").wait_for(timeout=min(10_000, flow.left()))
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise AssertionError(f"the panel cell did not start running after 3 tries (prompt {prompt.inner_text()!r})") from None
    flow.panel.locator(".widget-tab").wait_for(state="visible", timeout=flow.left())


def drive_panel(flow: Flow, title: str) -> list[Path]:
    shots: list[Path] = []
    panel = flow.panel
    flow.expect_text(panel, "not logged in")
    shots.append(flow.shoot("01_panel_rendered.png"))

    flow.tab("Login")
    flow.type_into("Username", "ann")
    flow.click("Log in")
    flow.expect_text(panel, "✓ login: ok")
    flow.expect_text(panel, "logged in as ann")

    flow.tab("Create")
    flow.type_into("title", title)
    flow.click("Create")
    flow.expect_text(panel, "✓ create: ok")
    flow.expect_text(flow.answer, f'"title": "{title}"')
    created = flow.last_answer()
    assert created["status"] == 0 and created["anchor_id"] == "ann", created

    flow.tab("Rooms")
    flow.expect_text(panel.get_by_role("listbox").filter(visible=True), title)  # the list reloaded with the new room
    flow.click("start")
    flow.expect_text(panel, "✓ start: ok")
    flow.expect_text(flow.answer, '"status": 1')
    live = flow.last_answer()
    assert live["id"] == created["id"] and live["status"] == 1, live
    shots.append(flow.shoot("02_room_live.png"))

    flow.tab("URLs")
    push_row = panel.locator("tr").filter(has_text="push_url_info.rtmp_url")
    flow.expect_text(push_row, "rtmp://")
    flow.expect_text(push_row, created["id"])
    flow.expect_text(push_row, "valid")  # the explainer checked the signature with the server's keys
    assert push_row.locator("code").inner_text().startswith("rtmp://")
    flow.expect_text(panel, "RTMP push URL")  # the QR code's caption
    shots.append(flow.shoot("03_urls.png"))

    flow.tab("Rooms")
    flow.click("stop")
    flow.expect_text(panel, "✓ stop: ok")
    flow.expect_text(flow.answer, '"status": 2')
    stopped = flow.last_answer()
    assert stopped["id"] == created["id"] and stopped["status"] == 2, stopped
    shots.append(flow.shoot("04_room_stopped.png"))
    return shots


def test_control_panel_in_jupyterlab(lab: Lab, artifacts: ArtifactReport, record_property: Callable[[str, object], None]) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Route, sync_playwright

    shots = artifacts_dir()
    shots.mkdir(parents=True, exist_ok=True)
    for stale in shots.glob("*.png"):  # a screenshot from an earlier run must not pass for this one's
        stale.unlink()
    blocked: list[str] = []
    console_errors: list[str] = []

    def only_loopback(route: Route) -> None:
        # Nothing leaves 127.0.0.1: JupyterLab's page must work offline, and CI may have no network.
        if route.request.url.startswith(lab.url + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 2600})
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
            flow = Flow(page, shots, artifacts)
            title = f"e2e room {secrets.token_hex(3)}"
            try:
                page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}", timeout=flow.left())
                run_panel_cell(flow)
                taken = drive_panel(flow, title)
            except (AssertionError, PlaywrightError) as exc:
                try:
                    failure: Path | str = flow.shoot("failure.png", whole_page=True)
                except PlaywrightError as shot_error:  # a crashed page: report the first error, not this one
                    failure = f"none ({shot_error})"
                pytest.fail(
                    f"the control panel flow failed after {time.monotonic() - started:.1f} s: {exc}\n"
                    f"screenshot: {failure}\nscreenshots so far: {[str(p) for p in artifacts.paths]}\n"
                    f"blocked non-loopback requests: {blocked}\nbrowser console errors: {console_errors[-10:]}\n"
                    f"JupyterLab log tail:\n{lab.log_tail()}"
                )
        finally:
            browser.close()
    elapsed = time.monotonic() - started
    for path in taken:
        record_property(f"screenshot_{path.stem}", str(path))
    assert all(path.stat().st_size > 1000 for path in taken), f"empty screenshots: {taken}"
    # The page must not have needed anything from outside (the route above answered it with an error).
    assert not blocked, f"the page asked for non-loopback URLs: {blocked} (screenshots: {taken})"
    print(f"browser flow took {elapsed:.1f} s; screenshots:", *map(str, taken), sep="\n  ")


# -- notebook 08: a live stream playing in the page -------------------------------------------------

VIDEO_STATE = """(video) => ({time: video.currentTime, ready: video.readyState, paused: video.paused,
    error: video.error ? video.error.code : null, width: video.videoWidth, height: video.videoHeight})"""

# Draws the current frame on a canvas and samples it: how many samples are not near-black, and how
# many distinct colours (coarsely) there are. A blank or single-colour frame has one or two.
FRAME_SAMPLE = """(video) => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    const context = canvas.getContext("2d");
    context.drawImage(video, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let lit = 0, samples = 0;
    const colours = new Set();
    for (let i = 0; i < data.length; i += 4 * 101) {
        samples++;
        if (data[i] + data[i + 1] + data[i + 2] > 60) lit++;
        colours.add((data[i] >> 5) << 6 | (data[i + 1] >> 5) << 3 | (data[i + 2] >> 5));
    }
    return {samples, lit, colours: colours.size};
}"""


def run_cells_until(flow: Flow, selector: str, presses: int) -> None:
    """Run the notebook's cells from the top with Shift+Enter (they queue) until `selector` shows up."""
    page = flow.page
    flow.wait_for_kernel()
    page.locator(".jp-Notebook .jp-Cell").first.click(timeout=flow.left())
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs the cell and moves to the next
    for _ in range(presses):
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(150)
    page.locator(selector).first.wait_for(state="attached", timeout=flow.left())


def test_go_live_notebook_plays_the_stream_in_jupyterlab(
    go_live_lab: Lab, artifacts: ArtifactReport, record_property: Callable[[str, object], None]
) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Route, sync_playwright

    lab = go_live_lab
    shots = artifacts_dir()
    shots.mkdir(parents=True, exist_ok=True)
    for stale in shots.glob("go_live_*.png"):
        stale.unlink()
    blocked: list[str] = []

    def only_loopback(route: Route) -> None:
        # The page talks to JupyterLab and, for the video, to the AppServer the kernel started: both on loopback.
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 2600})
            context.route("**/*", only_loopback)
            page = context.new_page()
            flow = Flow(page, shots, artifacts)
            try:
                page.goto(f"{lab.url}/lab/tree/{GO_LIVE.name}?token={lab.token}", timeout=flow.left())
                # Up to the player's cell: setup, create, push (waits until live), events, player.
                run_cells_until(flow, "video.livekit-demo-player", presses=10)
                video = page.locator("video.livekit-demo-player").first
                video.scroll_into_view_if_needed(timeout=flow.left())
                page.wait_for_function("(v) => v.currentTime > 1.0 && v.videoWidth > 0", arg=video.element_handle(), timeout=flow.left())
                first = video.evaluate(VIDEO_STATE)
                page.wait_for_timeout(2000)
                second = video.evaluate(VIDEO_STATE)
                frame = video.evaluate(FRAME_SAMPLE)
                output = page.locator(".jp-OutputArea-output").filter(has=page.locator("video.livekit-demo-player"))
                shot = shots / "go_live_video_playing.png"
                output.screenshot(path=shot, timeout=flow.left())
                artifacts.paths.append(shot)
            except (AssertionError, PlaywrightError) as exc:
                try:
                    failure: Path | str = flow.shoot("go_live_failure.png", whole_page=True)
                except PlaywrightError as shot_error:
                    failure = f"none ({shot_error})"
                pytest.fail(f"the go-live flow failed: {exc}\nscreenshot: {failure}\nblocked: {blocked}\nJupyterLab log tail:\n{lab.log_tail()}")
        finally:
            browser.close()
    record_property("screenshot_go_live", str(shot))
    assert first["error"] is None and second["error"] is None, (first, second)
    assert second["time"] > first["time"] + 1.0, f"the video's time did not advance: {first} -> {second}"
    assert (first["width"], first["height"]) == (640, 360), first  # the test pattern's size
    assert frame["lit"] > frame["samples"] // 4 and frame["colours"] >= 8, f"the frame looks blank: {frame}"
    assert shot.stat().st_size > 5000
    assert not blocked, f"the page asked for non-loopback URLs: {blocked}"
    print(f"video time {first['time']:.2f} s -> {second['time']:.2f} s; frame {frame}; screenshot {shot}")
