"""Tiled whole-image inference and stitching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.data.images import read_image
from fusioncore.explain.heatmap import (
    model_map_fn,
    overlay,
    plan_tiles,
    tile_starts,
    tiled_map,
)
from fusioncore.reports.heatmap import explain_heatmap_cli

HE_TILES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "he_tiles"


def gray_map(x: torch.Tensor) -> torch.Tensor:
    """A per-pixel map (the channel mean): its tiled version must equal the direct one."""
    return x.mean(dim=1, keepdim=True)


def _model(gate: str = "paper"):
    torch.manual_seed(0)
    schema = DataSchema((ModalitySpec("he", "image", (3, 64, 64)), ModalitySpec("rna", "tabular", (4,), tuple("abcd"))), ("a", "b"))
    return fc.create_model("mmdynamics", schema, image_gate=gate, hidden_dim=8, image_hidden_dim=8).eval()


def test_tile_starts_cover_and_stay_inside():
    assert tile_starts(64, 64, 64).tolist() == [0]
    assert tile_starts(100, 64, 64).tolist() == [0, 36]
    assert tile_starts(160, 64, 48).tolist() == [0, 48, 96]
    assert tile_starts(30, 64, 64).tolist() == [0]
    plan = plan_tiles(200, 130, 64, overlap=16)
    rows, cols = plan.coverage()
    assert rows.min() >= 1 and cols.min() >= 1
    assert plan.ys[-1] + plan.tile_h == 200 and plan.xs[-1] + plan.tile_w == 130
    with pytest.raises(ValueError, match="overlap"):
        plan_tiles(100, 100, 64, overlap=64)


@pytest.mark.parametrize("overlap", [0, 16, 40])
def test_constant_image_gives_constant_map(overlap):
    image = np.full((200, 150, 3), 123, dtype=np.uint8)
    heat = tiled_map(image, gray_map, model_size=(64, 64), overlap=overlap, batch_size=5, device="cpu")
    assert heat.shape == (200, 150)
    np.testing.assert_allclose(heat, 123 / 255, rtol=0, atol=1e-6)
    if overlap == 0:
        assert np.all(heat == heat[0, 0])


@pytest.mark.parametrize("overlap, batch", [(0, 1), (24, 7)])
def test_per_pixel_map_is_stitched_exactly(overlap, batch):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(150, 170, 3), dtype=np.uint8)
    heat = tiled_map(image, gray_map, model_size=(64, 64), overlap=overlap, batch_size=batch, device="cpu")
    direct = image.astype(np.float32).mean(axis=2) / 255
    np.testing.assert_allclose(heat, direct, rtol=0, atol=2e-6)


def test_tile_equal_to_whole_equals_direct_model_map():
    model = _model("smp")
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    map_fn, size, name = model_map_fn(model)
    assert size == (64, 64) and name == "he"
    heat = tiled_map(image, map_fn, model_size=size, device="cpu")
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        direct = model.branches["he"].informativeness(x)[0, 0].numpy()
    # same tile, same model: equal up to float rounding of the uint8 -> float conversion path
    np.testing.assert_allclose(heat, direct, rtol=0, atol=1e-6)


def test_non_overlapping_tiles_are_the_per_tile_maps():
    model = _model("paper")
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(128, 192, 3), dtype=np.uint8)
    map_fn, size, _ = model_map_fn(model)
    heat = tiled_map(image, map_fn, model_size=size, batch_size=4, device="cpu")
    with torch.no_grad():
        for y in (0, 64):
            for x in (0, 64, 128):
                t = torch.from_numpy(image[y : y + 64, x : x + 64]).permute(2, 0, 1)[None].float() / 255
                np.testing.assert_allclose(heat[y : y + 64, x : x + 64], map_fn(t)[0, 0].numpy(), atol=1e-6, rtol=0)
    # piece-wise constant on the 8-px patches of each tile
    blocks = heat.reshape(16, 8, 24, 8)
    assert np.all(blocks == blocks[:, :1, :, :1])


def test_larger_tiles_are_resized_to_the_model_and_back():
    image = np.full((256, 256, 3), 40, dtype=np.uint8)
    heat = tiled_map(image, gray_map, model_size=(64, 64), tile=128, overlap=32, device="cpu")
    np.testing.assert_allclose(heat, 40 / 255, atol=1e-6)


def test_overlay_blends_with_viridis():
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    out = overlay(pixels, np.ones((4, 4), dtype=np.float32), alpha=1.0)
    import matplotlib

    top = (np.array(matplotlib.colormaps["viridis"](1.0)[:3]) * 255).round().astype(np.uint8)
    assert np.abs(out[0, 0].astype(int) - top.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="differ in size"):
        overlay(pixels, np.ones((3, 4)))


def test_explain_heatmap_cli_writes_overlay_and_raw_map(tmp_path):
    model = _model("paper")
    ckpt = model.save(tmp_path / "ckpt")
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, size=(100, 90, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    summary = explain_heatmap_cli(ckpt, tmp_path / "img.png", tmp_path / "out" / "heat.png", overlap=16, device="cpu")
    assert Image.open(summary["overlay"]).size == (90, 100)
    raw = np.load(summary["map"])
    assert raw.shape == (100, 90) and 0 < raw.min() <= raw.max() < 1
    summary = explain_heatmap_cli(ckpt, tmp_path / "img.png", tmp_path / "heat2", raw_format="tiff", device="cpu")
    tiff = np.asarray(Image.open(summary["map"]), dtype=np.float32)
    assert tiff.shape == (100, 90) and np.isfinite(tiff).all()
    assert Path(summary["map"]).suffix == ".tiff" and Path(summary["overlay"]).name == "heat2.png"


@pytest.mark.skipif(not (HE_TILES / "region").is_dir(), reason="shared H&E region not available")
def test_real_region_tiles_and_stitches():
    pixels = read_image(HE_TILES / "region" / "CMU-1-Small-Region_level0.png").pixels
    assert pixels.shape == (2967, 2220, 3)
    crop = pixels[:700, :900]
    heat = tiled_map(crop, gray_map, model_size=(64, 64), overlap=16, batch_size=64, device="cpu")
    np.testing.assert_allclose(heat, crop.astype(np.float32).mean(axis=2) / 255, atol=2e-6)


@pytest.mark.skipif(not HE_TILES.is_dir(), reason="shared H&E tiles not available")
def test_real_tile_model_heatmap_is_piecewise_constant_per_tile():
    pixels = read_image(HE_TILES / "histolab_tissue-level0-4302-10273-4814-10785.png").pixels
    map_fn, size, _ = model_map_fn(_model("paper"))
    heat = tiled_map(pixels[:256, :256], map_fn, model_size=size, device="cpu")
    blocks = heat.reshape(32, 8, 32, 8)
    assert np.all(blocks == blocks[:, :1, :, :1])
