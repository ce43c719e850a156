"""The patch-attention figure (fusioncore.viz.figures_patches): one panel per reader over the tile."""

from __future__ import annotations

import numpy as np
import pytest

from fusioncore import viz

IMAGE = np.random.default_rng(0).random((3, 8, 8))
MAPS = np.array([
    [[0.7, 0.1], [0.2, 0.0]],
    [[0.25, 0.25], [0.25, 0.25]],
    [[0.0, 0.0], [0.0, 1.0]],
])
READERS = ["img+rna", "img return token", "img tokens"]


def test_data_ranks_patches_within_each_reader():
    frame = viz.patch_attention_data(MAPS, READERS, mass=[0.4, 1.0, 1.0], top_k=1)
    assert len(frame) == 12 and list(frame.columns) == ["reader", "patch_row", "patch_col", "share", "rank", "top_k", "mass"]
    first = frame[frame["reader"] == "img+rna"]
    assert first.loc[first["rank"] == 1, ["patch_row", "patch_col"]].values.tolist() == [[0, 0]]
    assert first["top_k"].sum() == 1 and np.allclose(first["mass"], 0.4)
    last = frame[frame["reader"] == "img tokens"]
    assert last.loc[last["top_k"], ["patch_row", "patch_col"]].values.tolist() == [[1, 1]]


def test_figure_has_the_tile_and_a_map_per_reader_on_one_colour_scale():
    fig = viz.patch_attention_figure(IMAGE, MAPS, READERS, mass=[0.4, 1.0, 1.0], top_k=2, columns=2)
    kinds = [t.type for t in fig.data]
    assert kinds == ["image", "heatmap"] * 3
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert all(t.coloraxis == "coloraxis" for t in heat) and fig.layout.coloraxis.cmax == pytest.approx(1.0)
    assert heat[0].z.shape == (8, 8) and heat[0].z[0][0] == pytest.approx(0.7) and heat[0].z[7][7] == 0.0
    assert len(fig.layout.shapes) == 6, "top-2 patches outlined in each of 3 panels"
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "img+rna (mass 0.40)" and len(titles) == 3


def test_absent_image_and_bad_input():
    fig = viz.patch_attention_figure(IMAGE, MAPS, READERS, present=False)
    assert "absent" in fig.layout.annotations[0].text and not fig.data
    with pytest.raises(ValueError, match="readers: 2 names for 3 maps"):
        viz.patch_attention_figure(IMAGE, MAPS, READERS[:2])
    with pytest.raises(ValueError, match="3 x 3 patch grid does not tile the 8 x 8 image"):
        viz.patch_attention_figure(IMAGE, np.zeros((1, 3, 3)), ["a"])
