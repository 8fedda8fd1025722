"""Debian's Chromium plays the edge's fragmented MP4 (H.264/AAC) in a plain <video>: no plug-in, no script.

Needs ffmpeg (LIVEKIT_DEMO_REQUIRE_MEDIA) and Chromium with Playwright (LIVEKIT_DEMO_REQUIRE_E2E);
skipped with the reason when either is missing outside CI.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from livekit_demo.edge.pusher import TestPattern

from edge_harness import EdgeHarness, require_media

pytestmark = [pytest.mark.media, pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _require_browser() -> None:
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found (apt-get install chromium)"
    elif importlib.util.find_spec("playwright") is None:
        reason = "the Python package playwright is not installed"
    if reason is None:
        return
    if os.environ.get("LIVEKIT_DEMO_REQUIRE_E2E") == "1":
        pytest.fail(f"LIVEKIT_DEMO_REQUIRE_E2E=1 but {reason}")
    pytest.skip(reason)


def test_chromium_plays_the_mp4_pull() -> None:
    require_media()
    _require_browser()
    from playwright.sync_api import sync_playwright

    edge = EdgeHarness()
    pusher = TestPattern(edge.push_url("room1"), title="room1").start()
    try:
        edge.wait_live("room1")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = browser.new_page()
                page.set_content(f'<video id="v" src="{edge.pull_url("mp4")}" muted autoplay playsinline></video>')
                page.wait_for_function("document.getElementById('v').currentTime > 1", timeout=20000)
                first = page.evaluate("document.getElementById('v').currentTime")
                page.wait_for_function(f"document.getElementById('v').currentTime > {first} + 1", timeout=20000)
                size = page.evaluate("[document.getElementById('v').videoWidth, document.getElementById('v').videoHeight]")
                assert size == [640, 360]
                assert page.evaluate("document.getElementById('v').error") is None
            finally:
                browser.close()
    finally:
        pusher.stop()
        edge.close()
