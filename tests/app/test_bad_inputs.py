"""Bad input never shows a stack trace: each gets an error saying what is wrong, and the app keeps working."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app_helpers import app, errors, mca_case, tiny_assets, tiny_assets_root, use_omics  # noqa: E402,F401  (fixtures)
from upload_bytes import huge_png_header, png_bytes, zip_bytes  # noqa: E402

from fusioncore.demo import demo_checkpoint  # noqa: E402
from fusioncore.inspect.sources import demo_cohort  # noqa: E402


def still_usable(at) -> None:
    """Back to the bundled demo: the sample view renders a prediction again."""
    at.radio(key="model_source").set_value("Bundled demo").run()
    at.radio(key="data_source").set_value("Bundled demo cohort").run()
    assert not at.exception and not at.error
    assert at.metric[0].label == "Prediction"


def upload_samples(at, files):
    at.radio(key="data_source").set_value("Upload samples").run()
    at.file_uploader(key="data_files").set_value(files).run()
    assert not at.exception
    return at


def table_csv(name: str, rows=(0,), drop: int = 0, text_cell: bool = False) -> bytes:
    data = demo_cohort()[0]
    spec = data.schema.modality(name)
    frame = pd.DataFrame(data.features[name][list(rows)], columns=list(spec.features))
    frame = frame.iloc[:, drop:]
    if text_cell:
        frame = frame.astype(object)
        frame.iat[0, 1] = "high"
    frame.insert(0, "sample_id", [data.sample_ids[i] for i in rows])
    return frame.to_csv(index=False, float_format="%.9g").encode()


@pytest.mark.parametrize("content, message", [
    (b"GIF? no: plain text pretending to be a picture", "not an image file (expected PNG, JPEG or TIFF)"),
    ("truncated", "truncated or corrupt image"),
    ("huge", "megapixels exceeds the limit"),
])
def test_bad_images(app, content, message):
    png = png_bytes(np.zeros((64, 64, 3), dtype=np.uint8))
    content = {"truncated": png[: len(png) // 2], "huge": huge_png_header(8000, 8000)}.get(content, content)
    at = upload_samples(app().run(), [("demo-0001.png", content, "image/png")])
    assert message in errors(at) and "demo-0001.png" in errors(at)
    still_usable(at)


def test_csv_with_wrong_columns_lists_them(app):
    at = upload_samples(use_omics(app().run()), [("mrna.csv", table_csv("mrna", drop=3), "text/csv")])
    text = errors(at)
    assert "lacks 3 of the model's 100 feature columns" in text
    data = demo_cohort()[0]
    for feature in data.schema.modality("mrna").features[:3]:
        assert f"missing column {feature!r}" in text
    still_usable(at)


def test_text_in_numeric_cells(app):
    at = upload_samples(use_omics(app().run()), [("mrna.csv", table_csv("mrna", text_cell=True), "text/csv")])
    feature = demo_cohort()[0].schema.modality("mrna").features[1]
    assert f"row 2, column {feature!r}: 'high' is not a number" in errors(at)
    still_usable(at)


def test_unknown_table_name(app):
    at = upload_samples(use_omics(app().run()), [("rna.csv", b"sample_id,a\ns1,1\n", "text/csv")])
    assert "'rna' is not a tabular modality of the model" in errors(at) and "mrna, methylation, noisy" in errors(at)
    still_usable(at)


def checkpoint_files() -> dict[str, bytes]:
    folder = demo_checkpoint("mmdynamics_omics")
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("payload, message", [
    (lambda f: zip_bytes({"config.json": f["config.json"]}), "no model.safetensors"),
    (lambda f: zip_bytes(f | {"model.safetensors": b"\x00garbage" * 20}), "not a readable safetensors file"),
    (lambda f: zip_bytes(f | {"config.json": b'{"format_version": 1'}), "config.json: not valid JSON"),
    (lambda f: b"PK but not really a zip", "not a zip archive"),
    (lambda f: zip_bytes({"../../etc/config.json": b"{}"}), "points outside the archive folder"),
])
def test_bad_checkpoint_zips(app, payload, message):
    at = app().run()
    at.radio(key="model_source").set_value("Upload checkpoint (.zip)").run()
    at.file_uploader(key="model_zip").set_value(("ckpt.zip", payload(checkpoint_files()), "application/zip")).run()
    assert not at.exception
    assert "Cannot load the model" in errors(at) and message in errors(at) and "ckpt.zip" in errors(at)
    still_usable(at)


def test_good_checkpoint_zip_loads(app):
    at = app().run()
    at.radio(key="model_source").set_value("Upload checkpoint (.zip)").run()
    at.file_uploader(key="model_zip").set_value(("ckpt.zip", zip_bytes(checkpoint_files()), "application/zip")).run()
    assert not at.exception and not at.error
    assert "mrna (tabular)" in "\n".join(m.value for m in at.sidebar.markdown)
    assert at.metric[0].label == "Prediction"


def test_checkpoint_for_other_modalities_than_the_data(app, mca_case):
    ckpt, _, _ = mca_case
    at = app().run()
    at.radio(key="model_source").set_value("Checkpoint folder").run()
    at.text_input(key="model_path").input(str(ckpt)).run()
    assert not at.exception
    text = errors(at)
    assert "Cannot use this data with the model" in text and "none of its modalities" in text and "m0, m1, m2" in text
    at.text_input(key="model_path").input("/no/such/folder").run()
    assert "not a checkpoint folder" in errors(at)
    still_usable(at)


def test_uploaded_sample_is_scored_like_the_dataset_sample(app):
    data = demo_cohort()[0]
    at = app().run()  # the image + omics demo model
    demo = [(m.label, m.value) for m in at.metric]
    image = np.round(data.features["histology"][0] * 255).astype(np.uint8).transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    labels = f"sample_id,label\n{data.sample_ids[0]},{data.schema.classes[data.labels[0]]}\n".encode()
    files = [(f"{m}.csv", table_csv(m), "text/csv") for m in ("mrna", "methylation", "noisy")]
    files += [(f"{data.sample_ids[0]}.png", buf.getvalue(), "image/png"), ("labels.csv", labels, "text/csv")]
    upload_samples(at, files)
    assert not at.error
    assert at.selectbox(key="sample").options == [data.sample_ids[0]]
    assert [(m.label, m.value) for m in at.metric] == demo
