"""End to end: ``streamlit run app/main.py`` on a free port, driven by Playwright in headless Chromium.

Toggles a modality, downloads a PNG export, and screenshots every page (into
``$FUSIONCORE_SCREENSHOTS`` when set, e.g. ``docs/screenshots``; a temp folder otherwise).
Skips cleanly when Chromium or Playwright is missing. ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "app"))

from app_helpers import mca_case, tiny_assets_root  # noqa: E402,F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tiny_assets_root):  # noqa: F811
    port = free_port()
    env = dict(os.environ, FUSIONCORE_ASSETS=os.environ.get("FUSIONCORE_E2E_ASSETS", str(tiny_assets_root)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "main.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_dashboard_in_a_browser(server, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine")
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = Path(os.environ.get("FUSIONCORE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 2200}, accept_downloads=True)
        page.set_default_timeout(60_000)
        page.goto(server)
        main = page.locator('[data-testid="stMain"]')
        main.get_by_role("heading", name="Sample view").wait_for()
        page.get_by_text("Research use only").first.wait_for()
        # Locate the metric by its label, not its position: Streamlit streams elements, so which
        # metric is first in the DOM at a given instant is a race (CI once saw "Probability" first).
        metric = main.locator('[data-testid="stMetric"]', has_text="Prediction").first
        metric.wait_for()
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for()

        # toggle a modality off: the page says what changed against the all-present prediction
        main.locator('[data-testid="stCheckbox"]', has_text="mrna").first.click()
        main.get_by_text("Without mrna").wait_for()
        sync_api.expect(metric).to_contain_text("vs all present")
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "sample.png"), full_page=True)

        # download the PNG export of the probabilities figure
        main.get_by_text("Export probabilities").click()
        with page.expect_download(timeout=90_000) as info:
            main.locator('[data-testid="stDownloadButton"] button', has_text="PNG").first.click()
        download = info.value
        assert download.suggested_filename.startswith("probabilities__") and download.suggested_filename.endswith(".png")
        target = tmp_path / download.suggested_filename
        download.save_as(str(target))
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # the U-Net patch heatmap of the image modality, with its controls
        heading = main.get_by_role("heading", name="Image informativeness: histology")
        heading.scroll_into_view_if_needed()
        sync_api.expect(main).to_contain_text("Top-k patches")
        main.locator('[data-testid="stPlotlyChart"]', has_text="heatmap overlay").first.wait_for()
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "heatmap.png"))

        for link, heading, text, name in [("Attention", "Attention view", "has no attention maps", None),
                                          ("TCP error", "TCP error view", "Summary statistics", "tcp.png"),
                                          ("Cohort", "Cohort view", "Robustness to missing modalities", "cohort.png")]:
            page.locator('[data-testid="stSidebarNav"]').get_by_text(link, exact=True).click()
            main.get_by_role("heading", name=heading).wait_for()
            main.get_by_text(text).first.wait_for()
            if name == "tcp.png":
                page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
                # expect() polls: later elements may still be streaming in when the first chart shows
                sync_api.expect(main).to_contain_text("Predicted vs true TCP")
                sync_api.expect(main).to_contain_text("Fraction of samples with |error| > k * TCP")
            if name == "cohort.png":
                main.locator('[data-testid="stDataFrame"]').first.wait_for()
                sync_api.expect(main).to_contain_text("Balanced accuracy")
            if name:
                page.wait_for_timeout(800)
                page.screenshot(path=str(shots / name), full_page=True)
        browser.close()


def test_attention_view_in_a_browser(server, mca_case, tmp_path):  # noqa: F811
    """An MCA checkpoint folder + a dataset folder typed into the sidebar; a modality switched off
    is drawn masked in the attention maps."""
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine")
    sync_api = pytest.importorskip("playwright.sync_api")
    ckpt, folder, _ = mca_case
    shots = Path(os.environ.get("FUSIONCORE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.set_default_timeout(60_000)
        page.goto(f"{server}/attention")
        main = page.locator('[data-testid="stMain"]')
        side = page.locator('[data-testid="stSidebar"]')
        main.get_by_role("heading", name="Attention view").wait_for()
        side.get_by_text("Checkpoint folder", exact=True).first.click()
        box = side.get_by_role("textbox", name="Checkpoint folder")
        box.fill(str(ckpt))
        box.press("Enter")
        side.get_by_text("method: mca").first.wait_for()
        side.get_by_text("Dataset folder", exact=True).first.click()
        box = side.get_by_role("textbox", name="Dataset folder or spec")
        box.fill(str(folder))
        box.press("Enter")
        main.get_by_role("heading", name="Attention mask").wait_for()
        main.locator('[data-testid="stCheckbox"]', has_text="m1").first.click()
        main.get_by_text("Switched off (masked, grey): m1").wait_for()
        page.locator('[data-testid="stPlotlyChart"]').nth(2).wait_for()  # mask, one layer's map, channel x modality
        sync_api.expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(3)
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "attention.png"), full_page=True)
        browser.close()
