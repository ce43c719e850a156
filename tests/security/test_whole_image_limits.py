"""The whole-image heatmap takes uploads, so it has the upload pixel limit and a tile budget."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.data.images import DEFAULT_MAX_PIXELS, ImageLoadError
from fusioncore.inspect.uploads import UPLOAD_MAX_PIXELS
from fusioncore.inspect.whole_image import MAX_TILES, MIN_TILE_PX, check_tiling, whole_image_heatmap
from security_helpers import blank_png


@pytest.fixture(scope="module")
def image_model():
    torch.manual_seed(0)
    schema = DataSchema((ModalitySpec("slide", "image", (3, 64, 64)), ModalitySpec("rna", "tabular", (4,))), ("a", "b"))
    return fc.create_model("mmdynamics", schema, image_gate="paper", image_hidden_dim=8, hidden_dim=8).eval()


def test_a_9000_by_9000_png_is_refused_before_decoding(image_model, monkeypatch):
    payload = blank_png(9000, 9000)  # 81 MP in ~240 kB: the 3.6 GB probe
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or real_load(self))
    with pytest.raises(ImageLoadError) as err:
        whole_image_heatmap(image_model, payload, "region.png")
    assert "region.png: 9000x9000 = 81.0 megapixels exceeds the limit of 40.0 MP" in str(err.value)
    assert "/tmp" not in str(err.value) and "fc-image" not in str(err.value)
    assert decoded == []  # refused from the header: the 243 MB of pixels were never decoded


def test_tiles_below_the_minimum_or_beyond_the_budget_are_refused(image_model):
    with pytest.raises(ValueError, match=f"tile size 16 px is below the minimum of {MIN_TILE_PX} px"):
        whole_image_heatmap(image_model, blank_png(100, 100), "small.png", tile=16)
    # 40 MP in 32-px tiles: ~39,000 tiles (the 26 CPU-minutes per click)
    with pytest.raises(ValueError) as err:
        check_tiling(6000, 6600, 32)
    text = str(err.value)
    assert "makes 38,916 tiles, more than the 10,000 one map may take; use tiles of at least 64 px" in text
    assert check_tiling(6000, 6600, 64) <= MAX_TILES
    with pytest.raises(ValueError, match="tiles of at least"):
        whole_image_heatmap(image_model, blank_png(4000, 4000), "big.png", tile=32)


def test_the_limits_agree_with_pillow_and_the_docs():
    from pathlib import Path

    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS == 144_000_000
    docs = (Path(__file__).resolve().parents[2] / "docs")
    assert "144 megapixels" in (docs / "image_tables.md").read_text()
    deployment = (docs / "deployment.md").read_text()
    assert f"{UPLOAD_MAX_PIXELS / 1e6:.0f} megapixels" in deployment and "144 megapixels" in deployment
    assert f"{MIN_TILE_PX} px" in deployment and f"{MAX_TILES:,} tiles" in deployment


def test_a_normal_region_still_maps(image_model):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (130, 70, 3), dtype=np.uint8)).save(buffer, "PNG")
    result = whole_image_heatmap(image_model, buffer.getvalue(), "ok.png")
    assert result.full_map.shape == (130, 70) and result.n_tiles == 3 * 2
