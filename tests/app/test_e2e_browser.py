"""End to end: ``streamlit run app/main.py`` on a free port, driven by Playwright in headless
Chromium at a 1280 x 720 laptop size.

Toggles a modality, downloads a PNG export (its name says what it shows), checks that the
prediction, the switches, the modality informativeness and the heatmap share the first screen,
and screenshots every page (into ``$FUSIONCORE_SCREENSHOTS`` when set, e.g. docs/screenshots; a
temp folder otherwise). Skips cleanly when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_helpers import mca_case, tiny_assets_root  # noqa: E402,F401  (fixtures)
from browser_helpers import REPO, chromium_page, settle, streamlit_server  # noqa: E402

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 1280, 720


@pytest.fixture(scope="module")
def server(tiny_assets_root):  # noqa: F811
    with streamlit_server(Path(os.environ.get("FUSIONCORE_E2E_ASSETS", str(tiny_assets_root)))) as url:
        yield url


def shots_dir(tmp_path) -> Path:
    shots = Path(os.environ.get("FUSIONCORE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def top(locator) -> float:
    return locator.first.bounding_box()["y"]


def test_dashboard_in_a_browser(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = shots_dir(tmp_path)
    with chromium_page(WIDTH, HEIGHT, accept_downloads=True) as page:
        page.goto(server)
        main = page.locator('[data-testid="stMain"]')
        main.get_by_role("heading", name="Sample view").wait_for()
        page.get_by_text("Research use only").first.wait_for()
        metric = main.locator('[data-testid="stMetric"]', has_text="Prediction").first
        metric.wait_for()
        heatmap = main.locator('[data-testid="stPlotlyChart"]', has_text="heatmap overlay")
        heatmap.first.wait_for()
        settle(page)
        # the first screen holds the prediction, the switches, the informativeness and the heatmap
        for what, y in [("prediction", top(metric)), ("switches", top(main.locator('[class*="st-key-toggle_"]'))),
                        ("informativeness", top(main.locator('[data-testid="stPlotlyChart"]', has_text="Modality informativeness"))),
                        ("heatmap", top(heatmap))]:
            assert y < HEIGHT, f"{what} starts at y = {y:.0f} px, below the first {HEIGHT} px"
        page.screenshot(path=str(shots / "sample.png"))

        # toggle a modality off: the page says what changed against the all-present prediction
        main.locator('.st-key-toggle_mrna label').first.click()
        main.get_by_text("Without mrna").wait_for()
        sync_api.expect(metric).to_contain_text("vs all present")
        settle(page)
        page.screenshot(path=str(shots / "sample-mrna-off.png"))

        # the PNG export of the probabilities figure is named after sample, class and switch
        main.get_by_role("tab", name="Class probabilities").click()
        main.get_by_role("button", name="Export probabilities").first.click()
        with page.expect_download(timeout=90_000) as info:
            page.locator('[data-testid="stDownloadButton"] button', has_text="PNG").first.click()
        name = info.value.suggested_filename
        assert name.startswith("probabilities__") and "__predicted-" in name and name.endswith("__without-mrna.png"), name
        target = tmp_path / name
        info.value.save_as(str(target))
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page.keyboard.press("Escape")

        main.get_by_role("tab", name="Feature gates").click()
        main.locator('[data-testid="stPlotlyChart"]', has_text="Feature informativeness").first.wait_for()
        settle(page)
        page.screenshot(path=str(shots / "sample-gates.png"))

        pages = [("Attention", "Attention view", None, "attention-empty.png"),
                 ("TCP error", "TCP error view", "Predicted vs true TCP", "tcp.png"),
                 ("Cohort", "Cohort view", "Balanced accuracy", "cohort.png"),
                 ("Glossary", "Glossary", "not a probability", "glossary.png")]
        for link, heading, text, shot in pages:
            page.locator('[data-testid="stSidebarNav"]').get_by_text(link, exact=True).click()
            main.get_by_role("heading", name=heading).first.wait_for()
            if text:
                sync_api.expect(main).to_contain_text(text, timeout=120_000)
            settle(page)
            page.screenshot(path=str(shots / shot))


def test_attention_view_in_a_browser(server, mca_case, tmp_path):  # noqa: F811
    """An MCA checkpoint folder + a dataset folder typed into the sidebar; a modality switched off
    is drawn masked in the attention maps."""
    sync_api = pytest.importorskip("playwright.sync_api")
    ckpt, folder, _ = mca_case
    shots = shots_dir(tmp_path)
    with chromium_page(WIDTH, HEIGHT) as page:
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
        main.locator('.st-key-att_toggle_m1 label').first.click()
        main.get_by_text("Switched off (masked, grey): m1").wait_for()
        sync_api.expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(3)
        settle(page)
        page.screenshot(path=str(shots / "attention-folder.png"), full_page=True)


def test_attention_view_on_a_bundled_attention_model(tmp_path):
    """The repository's bundled MCA demo model (image patches + omics), chosen through the page URL
    as a user's bookmark would: the mask, the per-layer map, channel x modality and the attention
    over the tile are all drawn."""
    sync_api = pytest.importorskip("playwright.sync_api")
    bundled = REPO / "fusioncore" / "assets"
    if not (bundled / "demo" / "mca_image_omics" / "model.safetensors").is_file():
        pytest.skip("the bundled demo checkpoints are not built")
    shots = shots_dir(tmp_path)
    with streamlit_server(bundled) as server, chromium_page(WIDTH, HEIGHT) as page:
        page.goto(f"{server}/attention?demo_model=mca_image_omics")
        main = page.locator('[data-testid="stMain"]')
        main.get_by_role("heading", name="Attention view").wait_for()
        page.locator('[data-testid="stSidebar"]').get_by_text("method: mca").first.wait_for(timeout=120_000)
        main.get_by_role("heading", name="Attention over the image (histology)").wait_for(timeout=120_000)
        sync_api.expect(main).not_to_contain_text("has no attention maps")
        sync_api.expect(page.locator('[data-testid="stPlotlyChart"]').nth(3)).to_be_visible(timeout=120_000)
        settle(page)
        page.screenshot(path=str(shots / "attention.png"), full_page=True)
        page.locator('[data-testid="stPlotlyChart"]').last.scroll_into_view_if_needed()  # the maps over the tile
        settle(page)
        page.screenshot(path=str(shots / "attention-patches.png"))
