"""Slide heatmaps: the streamed, stitched map equals the in-memory tiled map; heatmap.tif opens in
OpenSlide with its levels; regions.csv / regions.geojson are valid and agree; the slide-level
prediction is the stated aggregate; a changed run is refused rather than mixed."""

from __future__ import annotations

import csv
import json

import numpy as np
import openslide
import pytest

from slide_helpers import slide_factory, textures, tiny_image_model  # noqa: F401  (fixtures)

from fusioncore.explain.heatmap import model_map_fn, tiled_map
from fusioncore.reports.slide_run import SlideOptions, explain_slide
from fusioncore.slides import SlideError, open_slide
from fusioncore.slides.aggregate import decode_cells
from fusioncore.slides.store import TileStore

FP32 = dict(precision="fp32")


def dense_cells(out, grid_shape, cells_per_tile) -> np.ndarray:
    """The float map per model patch from a run's tile store (NaN where no tile ran)."""
    work = out / "work"
    tiles, cells = np.load(work / "tiles.npy"), np.load(work / "cells.npy")
    ch, cw = cells_per_tile
    dense = np.full((grid_shape[0] * ch, grid_shape[1] * cw), np.nan, dtype=np.float32)
    for (r, c), block in zip(tiles, cells):
        dense[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = block
    return dense


@pytest.fixture(scope="module")
def model():
    return tiny_image_model()


@pytest.mark.parametrize("size", [(512, 384), (500, 350)])
def test_stitched_slide_map_equals_the_in_memory_tiled_map(slide_factory, model, tmp_path, size):  # noqa: F811
    path = slide_factory(f"small_{size[0]}.tif", size, levels=3)
    summary = explain_slide(model, path, tmp_path, SlideOptions(min_tissue=0.0, batch_size=37, **FP32))
    grid = summary["grid"]
    rows, cols = grid["shape"]
    assert summary["tissue"]["tiles"] == rows * cols  # min_tissue=0: every tile, glass included
    with open_slide(path) as slide:
        padded = slide.read_rgb((0, 0), 0, (cols * 32, rows * 32))  # past the edge reads as glass (white)
    map_fn, model_size, _ = model_map_fn(model)
    reference = tiled_map(padded, map_fn, model_size=model_size, batch_size=64, device="cpu")
    streamed = np.kron(dense_cells(tmp_path, (rows, cols), (4, 4)), np.ones((8, 8), dtype=np.float32))
    np.testing.assert_allclose(streamed, reference, atol=1e-5, rtol=0)
    # heatmap.tif holds the same map (8-bit: within half a step of 1/254), cropped to the slide
    with openslide.OpenSlide(str(tmp_path / "heatmap.tif")) as heat:
        assert heat.level_count >= 2
        w, h = heat.level_dimensions[0]
        assert (w, h) == (-(-size[0] // 8), -(-size[1] // 8))
        stored = decode_cells(np.asarray(heat.read_region((0, 0), 0, (w, h)))[..., 0])
        assert heat.level_dimensions[1] == (w // 2, h // 2)
        assert float(heat.properties["openslide.mpp-x"]) == pytest.approx(0.5 * 8)
    cells = dense_cells(tmp_path, (rows, cols), (4, 4))[:h, :w]
    assert np.nanmax(np.abs(stored - cells)) <= 0.5 / 254 + 1e-6


def test_tissue_only_run_outputs(slide_factory, model, tmp_path):  # noqa: F811
    path = slide_factory("islands_run.tif", (1280, 1024), levels=3, n_islands=3)
    summary = explain_slide(model, path, tmp_path, SlideOptions(top_k=5, **FP32))
    n = summary["tissue"]["tiles"]
    rows, cols = summary["grid"]["shape"]
    assert 0 < n < rows * cols  # glass tiles were skipped
    assert summary["resolution"]["source"].startswith("assumed")  # the tiny model records no mpp
    assert summary["absent_modalities"] == ["rna"] and summary["prediction"]["confidence"]["rna"] is None
    # the slide-level prediction is the tissue-weighted mean of the tiles' probabilities
    work = tmp_path / "work"
    probs, weight = np.load(work / "probs.npy"), np.load(work / "tissue.npy")
    expected = (probs * weight[:, None]).sum(0) / weight.sum()
    got = summary["prediction"]["probabilities"]
    np.testing.assert_allclose([got["a"], got["b"]], expected, rtol=1e-6)
    assert summary["prediction"]["predicted"] == ["a", "b"][int(np.argmax(expected))]
    spread = summary["prediction"]["probability_spread"]["a"]
    assert spread["p5"] <= spread["p50"] <= spread["p95"]
    # regions: CSV and GeoJSON agree, ranked by the tile's mean map, inside the slide
    with open(tmp_path / "regions.csv", newline="") as fh:
        rows_csv = list(csv.DictReader(fh))
    geo = json.loads((tmp_path / "regions.geojson").read_text())
    check_geojson(geo, (1280, 1024))
    assert len(rows_csv) == len(geo["features"]) == 5
    scores = np.load(work / "cells.npy").reshape(n, -1).mean(1)
    tiles = np.load(work / "tiles.npy")
    for row, feature in zip(rows_csv, geo["features"]):
        x, y, w, h = (int(row[k]) for k in ("x", "y", "width", "height"))
        assert feature["geometry"]["coordinates"][0][0] == [x, y] and feature["geometry"]["coordinates"][0][2] == [x + w, y + h]
        index = int(np.flatnonzero((tiles[:, 0] == int(row["row"])) & (tiles[:, 1] == int(row["col"])))[0])
        assert float(row["score"]) == pytest.approx(scores[index], rel=1e-5)
        assert (x, y, w, h) == (int(row["col"]) * 32, int(row["row"]) * 32, 32, 32)
    assert [float(r["score"]) for r in rows_csv] == sorted((float(r["score"]) for r in rows_csv), reverse=True)
    assert float(rows_csv[0]["score"]) == pytest.approx(scores.max(), rel=1e-5)
    for name in ("overlay.png", "tissue.png", "heatmap.tif", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0


def check_geojson(geo: dict, size: tuple[int, int]) -> None:
    """RFC 7946 structure: a FeatureCollection of Polygon features with closed, counter-clockwise
    (positive shoelace area in the coordinates as written) rings of numeric positions."""
    assert geo["type"] == "FeatureCollection" and isinstance(geo["features"], list)
    for f in geo["features"]:
        assert f["type"] == "Feature" and isinstance(f["properties"], dict)
        assert f["geometry"]["type"] == "Polygon"
        (ring,) = f["geometry"]["coordinates"]
        assert len(ring) >= 4 and ring[0] == ring[-1]
        assert all(len(p) == 2 and all(isinstance(v, (int, float)) for v in p) for p in ring)
        xs, ys = np.array(ring, dtype=float).T
        assert 0.5 * float(np.sum(xs[:-1] * ys[1:] - xs[1:] * ys[:-1])) > 0
        assert xs.min() >= 0 and ys.min() >= 0 and xs.max() <= size[0] + 32 and ys.max() <= size[1] + 32


def test_a_run_with_other_settings_is_refused_not_mixed(slide_factory, model, tmp_path):  # noqa: F811
    path = slide_factory("refuse.tif", (512, 384), levels=2)
    explain_slide(model, path, tmp_path, SlideOptions(**FP32))
    with pytest.raises(SlideError, match="min_tissue"):
        explain_slide(model, path, tmp_path, SlideOptions(min_tissue=0.5, **FP32))
    again = explain_slide(model, path, tmp_path, SlideOptions(**FP32))  # the same settings: nothing to do
    assert again["run"]["tiles_computed"] == 0 and again["run"]["resumed_from"] == again["tissue"]["tiles"]


def test_tile_store_round_trip(tmp_path):
    from fusioncore.slides.infer import TileOutputs

    tiles = np.array([[0, 0], [0, 1], [1, 0]], dtype=np.int32)
    store = TileStore.open(tmp_path, {"x": 1}, tiles, np.ones(3, np.float32), (2, 2), 3)
    assert list(store.pending()) == [0, 1, 2]
    out = TileOutputs(np.arange(8, dtype=np.float32).reshape(2, 2, 2), np.eye(3, dtype=np.float32)[:2], np.array([1, 2], np.float32))
    store.write(1, out)
    assert list(store.pending()) == [0]
    again = TileStore.open(tmp_path, {"x": 1}, tiles, np.ones(3, np.float32), (2, 2), 3)
    np.testing.assert_array_equal(again.read("cells", 1, 3), out.cells)
    assert np.isnan(again.read("cells", 0, 1)).all()
