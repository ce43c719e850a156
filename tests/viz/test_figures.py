"""Figure builders: each returns a Figure with the expected traces/data for small inputs;
absent modalities are marked, never zero-filled; percentile clipping sets the colour range."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

import fusioncore.viz as V
from fusioncore.types import AttentionMaps


def _y(trace) -> list:
    return list(trace.y)


def _annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def test_class_probabilities_with_reference_change():
    fig = V.class_probabilities_figure([0.2, 0.7, 0.1], ["a", "b", "c"], reference=[0.3, 0.5, 0.2], true_class=1)
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["current prediction", "all modalities present"]
    np.testing.assert_allclose(_y(fig.data[0]), [0.2, 0.7, 0.1])
    assert list(fig.data[0].text) == ["-0.100", "+0.200", "-0.100"]
    assert "b (true)" in list(fig.data[0].x)
    frame = V.class_probabilities_data([0.2, 0.7, 0.1], ["a", "b", "c"], reference=[0.3, 0.5, 0.2])
    np.testing.assert_allclose(frame["change"], [-0.1, 0.2, -0.1])
    assert frame["predicted"].tolist() == [False, True, False]


def test_class_probabilities_rejects_bad_shapes():
    with pytest.raises(ValueError, match="reference"):
        V.class_probabilities_figure([0.5, 0.5], reference=[1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="classes"):
        V.class_probabilities_figure([0.5, 0.5], ["only-one"])


def test_modality_confidence_marks_absent_not_zero():
    conf = {"mrna": torch.tensor(0.8), "meth": torch.tensor(float("nan")), "mirna": 0.5}
    fig = V.modality_confidence_figure(conf, ["mrna", "meth", "mirna"], present=[True, False, True],
                                       true_tcp={"mrna": 0.9, "meth": 0.2, "mirna": 0.4})
    bars = fig.data[0]
    assert bars.y[0] == pytest.approx(0.8) and bars.y[2] == pytest.approx(0.5)
    assert bars.y[1] is None  # a gap, not a zero bar
    assert fig.data[1].name == "true TCP" and fig.data[1].y[1] is None
    assert "absent" in _annotation_texts(fig)
    frame = V.modality_confidence_data(conf, ["mrna", "meth", "mirna"], present=[True, False, True],
                                       true_tcp={"mrna": 0.9, "meth": 0.2, "mirna": 0.4})
    assert frame["status"].tolist() == ["present", "absent", "present"]
    assert math.isnan(frame.loc[1, "confidence"]) and math.isnan(frame.loc[1, "true_tcp"])
    np.testing.assert_allclose(frame.loc[[0, 2], "error"], [-0.1, 0.1], atol=1e-6)


def test_feature_gates_topk_and_filter():
    gates = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    names = ["ENSG1", "ENSG2", "cg3", "ENSG4", "cg5"]
    frame = V.feature_gates_data(gates, names, top_k=2)
    assert frame["feature"].tolist() == ["ENSG2", "ENSG4"] and frame["rank"].tolist() == [1, 2]
    frame = V.feature_gates_data(gates, names, top_k=10, name_filter="^cg")
    assert frame["feature"].tolist() == ["cg3", "cg5"]
    fig = V.feature_gates_figure(gates, names, top_k=3)
    assert fig.data[0].orientation == "h"
    assert list(fig.data[0].y) == ["cg3", "ENSG4", "ENSG2"]  # largest on top
    absent = V.feature_gates_figure(gates, names, present=False, modality="mrna")
    assert len(absent.data) == 0 and any("absent" in t for t in _annotation_texts(absent))
    with pytest.raises(ValueError, match="name_filter"):
        V.feature_gates_data(gates, names, name_filter="(")


def test_image_heatmap_percentile_clipping_and_topk():
    rng = np.random.default_rng(0)
    image = rng.random((3, 16, 16))
    grid = rng.random((4, 4))
    fig = V.image_heatmap_figure(image, grid, clip_percentiles=(10, 90), top_k=2, opacity=0.4)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)][0]
    full = np.kron(grid, np.ones((4, 4)))
    assert heat.zmin == pytest.approx(np.percentile(full, 10))
    assert heat.zmax == pytest.approx(np.percentile(full, 90))
    assert heat.opacity == pytest.approx(0.4)
    assert sum(isinstance(t, go.Image) for t in fig.data) == 2  # raw view + overlay base
    assert len(fig.layout.shapes) == 2
    top = np.unravel_index(np.argmax(grid), grid.shape)
    first = fig.layout.shapes[0]
    assert (first.x0, first.y0) == (top[1] * 4 - 0.5, top[0] * 4 - 0.5)
    frame = V.image_heatmap_data(image, grid, top_k=2)
    assert len(frame) == 256 and frame["top_k"].sum() == 2 * 16
    single = V.image_heatmap_figure(image, full, side_by_side=False, patch_size=4)
    assert sum(isinstance(t, go.Image) for t in single.data) == 1
    with pytest.raises(ValueError, match="heatmap"):
        V.image_heatmap_figure(image, rng.random((5, 3)))


def _attention() -> AttentionMaps:
    torch.manual_seed(0)
    S = 5
    return AttentionMaps(
        mask=torch.tril(torch.ones(S, S, dtype=torch.bool)),
        layers=[torch.softmax(torch.randn(1, 2, S, S), -1)],
        token_modality=torch.tensor([0, 0, 1, 1, -1]),
        channel_modality=torch.tensor([[[0.7, 0.3]]]),
        channel_names=["a+b"],
    )


def test_attention_map_masks_toggled_off_modality():
    att = _attention()
    labels = V.token_labels(att, ["a", "b"])
    assert labels == ["a[0]", "a[1]", "b[0]", "b[1]", "a+b[0]"]
    frame = V.attention_map_data(att, ["a", "b"], head=1, present=[True, False])
    w = frame["weight"].to_numpy().reshape(5, 5)
    assert np.isnan(w[2:4, :]).all() and np.isnan(w[:, 2:4]).all()
    np.testing.assert_allclose(w[:2, :2], att.layers[0][0, 1, :2, :2].numpy(), rtol=1e-6)
    fig = V.attention_map_figure(att, ["a", "b"], present=[True, False])
    assert [t.name for t in fig.data] == ["absent", "attention"]
    mean = V.attention_map_data(att, ["a", "b"])["weight"].to_numpy().reshape(5, 5)
    np.testing.assert_allclose(mean, att.layers[0][0].mean(0).numpy(), rtol=1e-6)
    mask = V.attention_mask_figure(att.mask, labels)
    np.testing.assert_array_equal(np.asarray(mask.data[0].z), np.tril(np.ones((5, 5))))


def test_channel_modality_absent_column():
    att = _attention()
    fig = V.channel_modality_figure(att, ["a", "b"], present=[True, False])
    main = fig.data[-1]
    assert list(main.x) == ["a", "b (absent)"]
    z = np.asarray(main.z, dtype=float)
    assert z[0, 0] == pytest.approx(0.7) and np.isnan(z[0, 1])


def test_tcp_views_drop_absent_rows():
    pred = {"a": [0.5, 0.8, 0.2], "b": [np.nan, 0.4, 0.6]}
    true = {"a": [0.5, 0.4, 0.4], "b": [0.9, 0.5, 0.3]}
    frame = V.tcp_error_data(pred, true)
    assert (frame["modality"] == "b").sum() == 2
    fig = V.tcp_scatter_figure(pred, true)
    assert [t.name for t in fig.data] == ["a", "b", "identity"] and len(fig.data[1].x) == 2
    frac = V.tcp_fraction_data(pred, true, ks=[0.5])
    # a: errors 0, 0.4, 0.2 vs 0.5*TCP = 0.25, 0.2, 0.2 -> 1/3 above
    assert frac.loc[frac["modality"] == "a", "fraction_above"].item() == pytest.approx(1 / 3)
    table = V.tcp_fraction_table_figure(pred, true, ks=[0.5, 1.0])
    assert list(table.data[0].header.values) == ["k", "a", "b"]
    hist = V.tcp_relative_error_histogram(pred, true)
    assert len(hist.data) == 2 and len(hist.data[0].x) == 3


def test_robustness_every_subset():
    results = {("a",): 0.6, "b": 0.5, ("a", "b"): (0.9, 0.01)}
    frame = V.robustness_data(results, ["a", "b"], metric="acc")
    assert frame["subset"].tolist() == ["a", "b", "a+b"]
    assert frame[["a", "b"]].to_numpy().tolist() == [[1, 0], [0, 1], [1, 1]]
    fig = V.robustness_figure(results, ["a", "b"], metric="acc")
    np.testing.assert_allclose(fig.data[0].y, [0.6, 0.5, 0.9])
    with pytest.raises(ValueError, match="a\\+b"):
        V.robustness_data({("a",): 0.6, ("b",): 0.5}, ["a", "b"], require_all=True)
    with pytest.raises(ValueError, match="unknown"):
        V.robustness_data({("z",): 0.6}, ["a", "b"])
    assert V.all_subsets(["a", "b", "c"])[-1] == ("a", "b", "c") and len(V.all_subsets(["a", "b", "c"])) == 7


def test_missing_rate_mean_std():
    recs = [dict(method=m, missing_rate=r, value=v) for m in ("x", "y") for r in (0.0, 0.5) for v in (0.6, 0.8)]
    frame = V.missing_rate_data(recs)
    assert frame["mean"].tolist() == pytest.approx([0.7] * 4)
    assert frame["std"].tolist() == pytest.approx([np.std([0.6, 0.8], ddof=1)] * 4)
    fig = V.missing_rate_figure(recs, metric_label="acc")
    assert len(fig.data) == 2 and fig.data[0].error_y.array is not None
    with pytest.raises(ValueError, match="missing column"):
        V.missing_rate_data([dict(method="x", value=1.0)])


def test_attribution_and_contribution_figures():
    attr = np.array([0.1, -0.9, 0.3, np.nan])
    frame = V.attribution_bar_data(attr, ["f0", "f1", "f2", "f3"], top_k=2)
    assert frame["feature"].tolist() == ["f1", "f2"]
    fig = V.attribution_bar_figure(attr[:3], top_k=3)
    assert list(fig.data[0].x) == pytest.approx([0.1, 0.3, -0.9])
    absent = V.attribution_bar_figure(np.full(3, np.nan))
    assert len(absent.data) == 0
    hm = V.attribution_heatmap_figure(np.array([[1.0, -2.0], [0.5, 0.0]]), ["s0", "s1"], ["f0", "f1"])
    assert hm.data[0].zmin == -2.0 and hm.data[0].zmax == 2.0
    contrib = V.modality_contribution_figure({"a": 0.3, "b": -0.1, "c": 0.0}, present=[True, True, False])
    assert contrib.data[0].y[2] is None and "absent" in _annotation_texts(contrib)


def test_fidelity_curve_figure():
    curves = pd.DataFrame(
        [dict(kind=k, mode=m, sample=0, fraction=f, probability=1 - f) for k in ("gates", "ig")
         for m in ("deletion", "insertion") for f in (0.0, 0.5, 1.0)]
    )
    fig = V.fidelity_curve_figure(curves)
    assert len(fig.data) == 4
    with pytest.raises(ValueError, match="columns"):
        V.fidelity_curve_figure(curves.drop(columns="mode"))
