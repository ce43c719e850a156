"""Image tables through ``table:``, end to end: ``fusioncore train`` on CSV, TSV and parquet image
tables, a manifest, and the documented folder layout (images in sub-folders, mixed formats).

The table path once passed an int image size where a pair was expected (TypeError in
``load_image_column``) and no test loaded an image table through ``table:``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import fusioncore as fc
from fusioncore.cli import main
from fusioncore.data.loaders import load_data

from conftest import REPO
from doc_layouts import write_my_cohort


def _train(data_spec: str, out, capsys) -> dict:
    code = main(["train", "--method", "mmdynamics", "--data", data_spec, "--out", str(out), "--epochs", "1",
                 "--param", "hidden_dim=8", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _image_spec(folder):
    model = fc.load(folder)
    return {m.name: (m.kind, tuple(m.shape)) for m in model.schema.modalities}


@pytest.mark.parametrize("table", ["histology.csv", "histology.tsv", "histology.parquet"])
def test_an_image_table_trains_through_table(tmp_path, capsys, table):
    cohort = write_my_cohort(tmp_path / "my_cohort", image_table=table)
    record = _train(f"table:{cohort}", tmp_path / "runs" / "my_model", capsys)
    assert record["test"]["n"] > 0
    assert _image_spec(tmp_path / "runs" / "my_model") == {"histology": ("image", (3, 64, 64)),
                                                           "mrna": ("tabular", (8,))}


def test_a_manifest_with_an_image_modality(tmp_path, capsys):
    cohort = write_my_cohort(tmp_path / "c", image_table="slides.csv", image_column="image", split=True)
    manifest = {"labels": "labels.csv", "id_column": "sample", "label_column": "label",
                "modalities": {"rna": "mrna.csv", "slide": {"file": "slides.csv", "kind": "image", "size": 32}}}
    (cohort / "fusioncore.json").write_text(json.dumps(manifest))
    splits = load_data(f"table:{cohort / 'fusioncore.json'}")
    assert splits.schema.modality("slide").shape == (3, 32, 32) and len(splits.test) == 6  # the split column
    _train(f"table:{cohort / 'fusioncore.json'}", tmp_path / "m", capsys)
    assert _image_spec(tmp_path / "m")["slide"] == ("image", (3, 32, 32))


def test_the_documented_folder_layout_with_absolute_paths_and_absent_images(tmp_path, capsys):
    """tiles/ and tiles/batch2/, PNG/JPEG/TIFF in RGB/RGBA/grayscale; an absolute path; samples without a row."""
    cohort = write_my_cohort(tmp_path / "my_cohort", n=30)
    table = (cohort / "histology.csv").read_text().splitlines()
    rows = [table[0], *table[1:3], f"P003,{cohort / 'tiles' / 'batch2' / 'P003.tiff'}", *table[4:-4]]
    (cohort / "histology.csv").write_text("\n".join(rows) + "\n")
    splits = load_data(f"table:{cohort}")
    image = splits.schema.modality_names.index("histology")
    present = sum(int(s.present[:, image].sum()) for s in (splits.train, splits.test))
    assert present == 26  # the 4 samples without a row have no image
    _train(f"table:{cohort}", tmp_path / "out", capsys)


def test_python_m_fusioncore_train_on_an_image_table(tmp_path):
    """The README's worked example as a user types it (a real process, not the in-process CLI)."""
    cohort = write_my_cohort(tmp_path / "my_cohort", n=16)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "fusioncore", "train", "--method", "mmdynamics", "--data",
                           "table:my_cohort", "--out", "runs/my_model", "--epochs", "1", "--quiet"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "runs" / "my_model" / "model.safetensors").is_file()
