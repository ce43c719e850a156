"""Whole-image heatmaps for the dashboard: tiling with progress, display copy, full-resolution map."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.data.images import ImageLoadError
from fusioncore.inspect.whole_image import whole_image_heatmap


@pytest.fixture(scope="module")
def image_model():
    torch.manual_seed(0)
    schema = DataSchema((ModalitySpec("slide", "image", (3, 64, 64)), ModalitySpec("rna", "tabular", (4,))), ("a", "b"))
    return fc.create_model("mmdynamics", schema, image_gate="paper", image_hidden_dim=8, hidden_dim=8).eval()


def png_bytes(h: int, w: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_tiles_with_progress_and_full_resolution_map(image_model):
    calls = []
    result = whole_image_heatmap(image_model, png_bytes(300, 200), "region.png", batch_size=4, max_display=100,
                                 progress=lambda done, total: calls.append((done, total)))
    assert result.full_map.shape == (300, 200) and result.modality == "slide"
    assert result.n_tiles == 5 * 4  # ceil(300/64) x ceil(200/64)
    assert calls[-1] == (20, 20) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert max(result.pixels.shape[:2]) == 100 and result.heat.shape == result.pixels.shape[:2]
    assert np.all((result.full_map > 0) & (result.full_map < 1))
    loaded = np.load(io.BytesIO(result.npy_bytes()))
    assert np.array_equal(loaded, result.full_map)


def test_one_tile_equals_the_model_gate(image_model):
    payload = png_bytes(64, 64, seed=3)
    result = whole_image_heatmap(image_model, payload, "tile.png")
    x = torch.from_numpy(np.asarray(Image.open(io.BytesIO(payload)), dtype=np.float32).transpose(2, 0, 1)[None] / 255.0)
    with torch.no_grad():
        direct = image_model.branches["slide"].informativeness(x)[0, 0].numpy()
    assert np.allclose(result.full_map, direct, atol=1e-6)


def test_bad_upload_is_named(image_model):
    with pytest.raises(ImageLoadError, match="notes.png"):
        whole_image_heatmap(image_model, b"this is not an image", "notes.png")
    tabular = fc.create_model("mmdynamics", DataSchema((ModalitySpec("rna", "tabular", (4,)),), ("a", "b")), hidden_dim=4)
    with pytest.raises(ValueError, match="no image modality"):
        whole_image_heatmap(tabular, png_bytes(80, 80), "x.png")
