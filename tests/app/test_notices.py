"""What the user is looking at is said on the page: the synthetic demo, the split of a sample,
the TCP page's split, out-of-distribution uploads, loading errors in the main area, the glossary."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import fusioncore as fc
from app_helpers import app, mca_case, open_tab, tiny_assets, tiny_assets_root, use_omics  # noqa: F401  (fixtures)
from fusioncore.data.preprocessing import IdentityTransform
from fusioncore.inspect import load_cohort
from fusioncore.inspect.glossary import TERMS


def warnings_text(at) -> str:
    return "\n".join(w.value for w in at.main.warning)


def use_folders(at, ckpt, folder):
    at.radio(key="model_source").set_value("Checkpoint folder").run()
    at.text_input(key="model_path").input(str(ckpt)).run()
    at.radio(key="data_source").set_value("Dataset folder").run()
    at.text_input(key="data_path").input(str(folder)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


@pytest.fixture(scope="module")
def omics_folder(tiny_assets_root, tmp_path_factory):  # noqa: F811
    """The demo's omics as a table-layout folder (random train/test split) and a demo-flagged copy
    of the omics checkpoint (``extra.demo``, as scripts/build_assets.py writes)."""
    from fusioncore.data.synthetic_cohort import select_modalities
    from fusioncore.demo import read_demo_cohort
    from inspect_helpers import write_table_folder

    root = tmp_path_factory.mktemp("omics")
    data = select_modalities(read_demo_cohort(tiny_assets_root / "demo").data, ("mrna", "methylation", "noisy"))
    write_table_folder(data, root / "data")
    model = fc.load(tiny_assets_root / "demo" / "mmdynamics_omics")
    model.save(root / "demo_ckpt", extra={"demo": True})
    return tiny_assets_root / "demo" / "mmdynamics_omics", root / "demo_ckpt", root / "data"


def test_synthetic_notice_names_what_is_synthetic(app, omics_folder):
    plain, flagged, folder = omics_folder
    at = use_omics(app().run())
    assert "Synthetic demo data" in warnings_text(at)  # the tiny checkpoints carry no demo flag
    use_folders(at, flagged, folder)
    assert "Synthetic demo model" in warnings_text(at) and "never seen real tissue" in warnings_text(at)
    at.text_input(key="model_path").input(str(plain)).run()
    assert "Synthetic" not in warnings_text(at)


def test_folder_cohort_opens_on_a_held_out_sample_and_says_its_split(app, omics_folder):
    plain, _, folder = omics_folder
    at = use_folders(app().run(), plain, folder)
    data, split = load_cohort(str(folder))
    first_test = data.sample_ids[split.index("test")]
    assert split[0] == "train"  # the old default (row 0) was a training sample
    box = at.selectbox(key="sample")
    assert box.value == first_test
    assert box.format_func(first_test) == f"{first_test} (test)"
    assert box.format_func(data.sample_ids[0]) == f"{data.sample_ids[0]} (train)"


def test_tcp_page_defaults_to_the_held_out_split(app, omics_folder):
    plain, _, folder = omics_folder
    at = use_folders(app().run(), plain, folder)
    at.switch_page("views/tcp.py").run()
    assert not at.exception
    data, split = load_cohort(str(folder))
    n_test = split.count("test")
    assert at.selectbox(key="tcp_split").value == "test"
    stats = at.dataframe[0].value
    assert (stats["n"] <= n_test).all() and stats["n"].max() == n_test
    assert any(f"test split, {n_test} samples" in c.value for c in at.caption)
    at.selectbox(key="tcp_split").set_value("all").run()
    assert at.dataframe[0].value["n"].max() == len(data)
    assert any("not a probability" in c.value for c in at.caption)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_out_of_distribution_upload_is_flagged(app):
    from fusioncore.demo import demo_checkpoint

    at = app().run()
    tile = np.round(np.moveaxis(fc.demo.load_demo_cohort().data.features["histology"][0], 0, -1) * 255).astype(np.uint8)
    odd = np.repeat(np.repeat(tile, 8, axis=0), 12, axis=1)[..., ::-1].copy()  # 512 x 768, channels swapped
    at.radio(key="data_source").set_value("Upload samples").run()
    at.file_uploader(key="data_files").set_value([("S1.png", _png(odd), "image/png")]).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    text = warnings_text(at)
    assert "Out of distribution" in text and "768 x 512 px" in text and "aspect ratio" in text, text
    assert fc.load(demo_checkpoint("mmdynamics_image_omics")).preprocessing["histology"].n_images > 0


def test_a_checkpoint_without_image_statistics_says_the_check_is_unavailable(app, tmp_path):
    from fusioncore.demo import demo_checkpoint

    model = fc.load(demo_checkpoint("mmdynamics_image_omics"))
    model.preprocessing = {**model.preprocessing, "histology": IdentityTransform()}  # as saved before the statistics
    model.save(tmp_path / "old")
    at = app().run()
    at.radio(key="model_source").set_value("Checkpoint folder").run()
    at.text_input(key="model_path").input(str(tmp_path / "old")).run()
    assert not at.exception and not at.error
    assert any("Out-of-distribution check unavailable" in c.value for c in at.caption)


def test_loading_errors_are_shown_in_the_main_area(app, tmp_path):
    at = app().run()
    at.radio(key="model_source").set_value("Checkpoint folder").run()
    at.text_input(key="model_path").input(str(tmp_path / "nowhere")).run()
    assert not at.exception
    main_errors = [e.value for e in at.main.error]
    assert main_errors and "Cannot load the model" in main_errors[0] and "nowhere" in main_errors[0]
    assert not at.main.info or "Choose a model" not in at.main.info[0].value


def test_glossary_page_lists_every_term(app):
    at = app().run()
    at.switch_page("views/glossary.py").run()
    assert not at.exception
    shown = "\n".join(m.value for m in at.main.markdown)
    for name in TERMS:
        assert f"**{name}**" in shown
