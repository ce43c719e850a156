"""In a real browser, the switches drawn on are exactly the modalities the prediction used —
after every model / data / upload change (issue 13, item 1).

Each test replays a sequence that, before widget state was kept per model + data and re-sent to
the browser (``app/widgets.py: control``), drew switches off while computing with them on:
Streamlit's AppTest does not reproduce it, because the cause is the browser forgetting the
widgets of a page that stopped early while the server kept their values.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from app_helpers import tiny_assets_root  # noqa: F401  (fixtures)
from browser_helpers import assert_drawn_is_used, chromium_page, settle, streamlit_server, used_off

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tiny_assets_root):  # noqa: F811
    with streamlit_server(tiny_assets_root) as url:
        yield url


def open_app(page, url: str):
    page.goto(url)
    main = page.locator('[data-testid="stMain"]')
    main.get_by_role("heading", name="Sample view").wait_for()
    main.locator('[class*="st-key-toggle_"]').first.wait_for()
    settle(page)
    return main, page.locator('[data-testid="stSidebar"]')


def switch(main, name: str) -> None:
    main.locator(f'[class*="st-key-toggle_{name}"] label').first.click()


def type_into(side, label: str, text: str) -> None:
    box = side.get_by_role("textbox", name=label)
    box.fill(text)
    box.press("Enter")


def test_checkpoint_folder_then_back_to_the_demo(server, tiny_assets_root):  # noqa: F811
    """Model -> "Checkpoint folder" -> the omics demo checkpoint; click mrna; back to "Bundled demo"."""
    with chromium_page() as page:
        main, side = open_app(page, server)
        assert all(assert_drawn_is_used(page).values())
        side.get_by_text("Checkpoint folder", exact=True).first.click()
        settle(page)
        type_into(side, "Checkpoint folder", str(tiny_assets_root / "demo" / "mmdynamics_omics"))
        main.locator('[class*="st-key-toggle_mrna"]').first.wait_for()
        drawn = assert_drawn_is_used(page)
        assert set(drawn) == {"mrna", "methylation", "noisy"} and all(drawn.values())
        switch(main, "mrna")
        main.get_by_text("Without mrna").first.wait_for()
        assert assert_drawn_is_used(page) == {"mrna": False, "methylation": True, "noisy": True}
        assert used_off(page) == {"mrna"}
        side.get_by_text("Bundled demo", exact=True).first.click()
        main.locator('[class*="st-key-toggle_histology"]').first.wait_for()
        assert_drawn_is_used(page)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_samples(server, tiny_assets_root, tmp_path):  # noqa: F811
    """Data -> "Upload samples" (nothing yet), then a sample's image and tables: its switches
    (histology included) are drawn as used, also after one is clicked."""
    from fusioncore.demo import read_demo_cohort

    data = read_demo_cohort(tiny_assets_root / "demo").data
    row = int(np.flatnonzero(data.present.all(axis=1))[0])
    sid = data.sample_ids[row]
    files = [tmp_path / f"{sid}.png"]
    files[0].write_bytes(_png(np.round(np.moveaxis(data.features["histology"][row], 0, -1) * 255).astype(np.uint8)))
    for name in ("mrna", "methylation", "noisy"):
        spec = data.schema.modality(name)
        frame = pd.DataFrame(data.features[name][[row]], columns=list(spec.features))
        frame.insert(0, "sample_id", [sid])
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False, float_format="%.9g")
        files.append(path)
    with chromium_page() as page:
        main, side = open_app(page, server)
        switch(main, "methylation")
        main.get_by_text("Without methylation").first.wait_for()
        assert_drawn_is_used(page)
        side.get_by_text("Upload samples", exact=True).first.click()
        settle(page)
        side.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(f) for f in files])
        main.locator('[class*="st-key-toggle_histology"]').first.wait_for()
        drawn = assert_drawn_is_used(page)
        assert drawn["histology"], "histology is drawn off while its heatmap is computed"
        switch(main, "noisy")
        main.get_by_text("Without noisy").first.wait_for()
        assert assert_drawn_is_used(page)["noisy"] is False


@pytest.fixture(scope="module")
def rosmap_like(tiny_assets_root, tmp_path_factory):  # noqa: F811
    """A tabular MM-dynamics checkpoint sharing a modality name (methylation) with the demo, as a
    ROSMAP checkpoint does, and its dataset folder."""
    from fusioncore.demo import read_demo_cohort
    from inspect_helpers import select_modalities, tiny_model, write_table_folder

    data = select_modalities(read_demo_cohort(tiny_assets_root / "demo").data, ("methylation", "noisy"))
    root = tmp_path_factory.mktemp("rosmap_like")
    tiny_model(data, "mmdynamics", epochs=5).save(root / "ckpt")
    write_table_folder(data, root / "data")
    return root / "ckpt", root / "data"


def test_tabular_checkpoint_and_dataset_folder(server, rosmap_like):
    """methylation switched off on the demo, then another checkpoint with a methylation modality
    and its dataset folder typed in: that model starts with every switch on, drawn on."""
    ckpt, folder = rosmap_like
    with chromium_page() as page:
        main, side = open_app(page, server)
        switch(main, "methylation")
        main.get_by_text("Without methylation").first.wait_for()
        side.get_by_text("Checkpoint folder", exact=True).first.click()
        settle(page)
        type_into(side, "Checkpoint folder", str(ckpt))
        side.get_by_text("Dataset folder", exact=True).first.click()
        settle(page)
        type_into(side, "Dataset folder or spec", str(folder))
        main.get_by_text("Sample").first.wait_for()
        main.locator('[class*="st-key-toggle_noisy"]').first.wait_for()
        drawn = assert_drawn_is_used(page)
        assert drawn == {"methylation": True, "noisy": True}, drawn
        switch(main, "noisy")
        main.get_by_text("Without noisy").first.wait_for()
        assert assert_drawn_is_used(page) == {"methylation": True, "noisy": False}
