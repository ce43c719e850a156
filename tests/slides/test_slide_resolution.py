"""The resolution a slide runs at: --mpp, --level, the checkpoint's training mpp, or level 0 stated
as an assumption; the optional ``mpp`` of image modalities (schema, checkpoint, table manifest)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from slide_helpers import tiny_image_model

from fusioncore.checkpoint import load
from fusioncore.config import ModalitySpec
from fusioncore.data.errors import DataError
from fusioncore.data.tables import load_tables, read_manifest
from fusioncore.slides.grid import choose_resolution
from fusioncore.slides.reader import SlideError, SlideInfo


def info(mpp=(0.25, 0.25), downsamples=(1.0, 4.0, 16.0)) -> SlideInfo:
    dims = tuple((int(40000 / d), int(30000 / d)) for d in downsamples)
    return SlideInfo("s.svs", "openslide", "aperio", dims[0], dims, downsamples, mpp, 40.0)


def test_resolution_choice_and_its_stated_source():
    r = choose_resolution(info(), mpp=1.0)
    assert (r.downsample, r.level, r.mpp, r.source) == (4.0, 1, 1.0, "--mpp 1")
    r = choose_resolution(info(), mpp=2.0)
    assert (r.downsample, r.level) == (8.0, 1)  # read level 1 (4x), resized by 2
    assert choose_resolution(info(), mpp=0.5, model_mpp=2.0).downsample == 2.0  # the flag wins
    r = choose_resolution(info(), model_mpp=1.0)
    assert r.downsample == 4.0 and "checkpoint" in r.source
    r = choose_resolution(info(), level=2)
    assert (r.downsample, r.mpp) == (16.0, 4.0)
    r = choose_resolution(info(), level=2, model_mpp=1.0)
    assert "trained at 1 um/px" in r.source
    r = choose_resolution(info())
    assert r.downsample == 1.0 and r.source.startswith("assumed") and "0.25 um/px" in r.source
    assert choose_resolution(info(mpp=(0.499, 0.499)), mpp=0.5).downsample == 1.0  # within 10 %: no resize
    with pytest.raises(SlideError, match="finer than the slide"):
        choose_resolution(info(), mpp=0.1)
    with pytest.raises(SlideError, match="does not record"):
        choose_resolution(info(mpp=None), mpp=1.0)
    with pytest.raises(SlideError, match="levels 0-2"):
        choose_resolution(info(), level=5)
    with pytest.raises(SlideError, match="not both"):
        choose_resolution(info(), mpp=1.0, level=1)


def test_image_mpp_is_validated_and_round_trips_through_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="image modalities only"):
        ModalitySpec("rna", "tabular", (4,), mpp=0.5)
    with pytest.raises(ValueError, match="positive"):
        ModalitySpec("he", "image", (3, 32, 32), mpp=-1.0)
    model = tiny_image_model()
    model.save(tmp_path / "plain")
    assert "mpp" not in (tmp_path / "plain" / "config.json").read_text()  # checkpoints without one keep their bytes
    assert load(tmp_path / "plain").schema.modality("histology").mpp is None
    config = json.loads((tmp_path / "plain" / "config.json").read_text())
    config["schema"]["modalities"][0]["mpp"] = 2.0
    (tmp_path / "plain" / "config.json").write_text(json.dumps(config))
    assert load(tmp_path / "plain").schema.modality("histology").mpp == 2.0


def test_manifest_mpp_reaches_the_schema(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / f"t{i}.png")
        rows.append(f"s{i},t{i}.png")
    (tmp_path / "tiles.csv").write_text("sample_id,path\n" + "\n".join(rows) + "\n")
    (tmp_path / "labels.csv").write_text("sample_id,label\n" + "\n".join(f"s{i},{i % 2}" for i in range(6)) + "\n")
    manifest = {"labels": "labels.csv", "modalities": {"he": {"file": "tiles.csv", "kind": "image", "size": 16, "mpp": 2.0}}}
    (tmp_path / "fusioncore.json").write_text(json.dumps(manifest))
    assert read_manifest(tmp_path / "fusioncore.json").modalities[0].mpp == 2.0
    assert load_tables(tmp_path).train.schema.modality("he").mpp == 2.0
    manifest["modalities"]["he"]["mpp"] = "fine"
    (tmp_path / "fusioncore.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="modalities.he.mpp must be a positive number"):
        read_manifest(tmp_path / "fusioncore.json")
