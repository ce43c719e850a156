"""The slide viewer in a browser: ``streamlit run app/main.py`` (the dashboard plus its tile route),
driven by Playwright in headless Chromium: upload a slide, compute its heatmap, zoom, change the
heatmap's opacity, click a listed region and see its tile beside the viewer. Screenshots go to
``$FUSIONCORE_SCREENSHOTS`` when set (e.g. docs/screenshots)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from slide_helpers import REPO, slide_factory, textures  # noqa: F401  (fixtures)

CHROMIUM = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.browser
VIEWER = 'iframe[title*="fusioncore_slide_viewer"]'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "main.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"streamlit did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def test_slide_viewer_in_a_browser(server, slide_factory, tmp_path):  # noqa: F811
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine")
    sync_api = pytest.importorskip("playwright.sync_api")
    slide = slide_factory("viewer.tif", (3072, 2048), levels=3, n_islands=3, seed=3)
    shots = Path(os.environ.get("FUSIONCORE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1500, "height": 1500})
        page.set_default_timeout(120_000)
        page.goto(f"{server}/slides")
        main = page.locator('[data-testid="stMain"]')
        main.get_by_role("heading", name="Slide viewer").wait_for()
        page.locator('input[type="file"]').set_input_files(str(slide))
        main.get_by_role("button", name="Compute the slide heatmap").click()
        main.get_by_text("Slide prediction").wait_for()
        viewer = page.frame_locator(VIEWER)
        viewer.locator("#region-list button").first.wait_for()
        frame = next(f for f in page.frames if "fusioncore_slide_viewer" in f.url)
        # the slide and its heatmap are drawn from tiles cut by the tile route
        frame.wait_for_function("window.fusioncore && fusioncore.state.heat && fusioncore.state.heat.getFullyLoaded()"
                                " && fusioncore.viewer.world.getItemAt(0).getFullyLoaded()")
        assert frame.evaluate("fusioncore.viewer.world.getItemCount()") == 3  # slide, heatmap, tissue mask
        assert frame.evaluate("fusioncore.state.heat.getOpacity()") == pytest.approx(0.5)
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "slides.png"), full_page=True)

        # zoom in with the viewer's own zoom button (twice)
        zoom = frame.evaluate("fusioncore.viewer.viewport.getZoom()")
        for _ in range(2):
            viewer.locator('div[title="Zoom in"]').first.click()
            page.wait_for_timeout(300)
        frame.wait_for_function(f"fusioncore.viewer.viewport.getZoom() > {zoom * 1.5}", timeout=30_000)

        # change the opacity (keyboard on the slider): the viewer applies it without reloading the slide
        slider = main.get_by_role("slider", name="Heatmap opacity")
        slider.focus()
        for _ in range(4):
            slider.press("ArrowRight")
        frame.wait_for_function("Math.abs(fusioncore.state.heat.getOpacity() - 0.7) < 1e-6")
        assert frame.evaluate("fusioncore.viewer.viewport.getZoom()") > zoom * 1.5  # same viewer, same zoom

        # click a listed region: the viewer flies there and the tile shows beside it
        first = viewer.locator("#region-list button").first
        label = first.inner_text()
        first.click()
        panel = main.locator('[data-testid="stPlotlyChart"]').first
        panel.wait_for()
        sync_api.expect(main).to_contain_text("Re-inferred in float32")
        assert label.split()[1] in main.inner_text()  # the region's predicted class is the tile's
        frame.wait_for_function("document.getElementById('fc-selected') !== null")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "slides_region.png"), full_page=True)
        browser.close()
