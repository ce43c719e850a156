"""The one planted-truth scorer: pooled and per-sample AUROC, top-k hits, and the demo's published
fidelity numbers (``explanation_fidelity``) computed the way they were published."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import fusioncore as fc
from fusioncore.data.synthetic_cohort import make_synthetic_cohort
from fusioncore.explain.planted import (
    explanation_fidelity,
    planted_auroc,
    planted_recovery,
    sample_aurocs,
    top_k_hits,
)
from fusioncore.training import fit_preprocessing, predict

TRUTH = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)


def test_pooled_and_per_sample_differ_where_they_should():
    # each sample ranks its own planted unit first (per sample: 1.0), but sample 1's scores are all
    # below sample 0's, so across the cohort its planted unit loses to three of sample 0's others
    scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.3, 0.5, 0.2, 0.1]])
    assert planted_auroc(scores, TRUTH) == 1.0
    assert planted_auroc(scores, TRUTH, pooled=True) == pytest.approx((6 + 3) / 12)
    assert planted_auroc(scores, TRUTH, pooled=True) == pytest.approx(roc_auc_score(TRUTH.ravel(), scores.ravel()))
    assert sample_aurocs(scores, TRUTH).tolist() == [1.0, 1.0]


def test_rows_without_finite_scores_or_both_classes_take_no_part():
    scores = np.array([[0.9, 0.8, 0.7, 0.6], [np.nan] * 4, [0.1, 0.2, 0.3, 0.4]])
    truth = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)
    a = sample_aurocs(scores, truth)
    assert a[0] == 1.0 and np.isnan(a[1]) and np.isnan(a[2])
    assert planted_auroc(scores, truth) == 1.0
    # pooled: the NaN row is dropped, the row without planted units still counts as "other" units
    assert planted_auroc(scores, truth, pooled=True) == pytest.approx(roc_auc_score(truth[[0, 2]].ravel(),
                                                                                    scores[[0, 2]].ravel()))
    assert np.isnan(planted_auroc(scores[[1, 2]], truth[[1, 2]]))
    assert np.isnan(planted_auroc(scores[[2]], truth[[2]], pooled=True))


def test_a_patch_grid_is_scored_like_its_flattened_units():
    rng = np.random.default_rng(0)
    grid, masks = rng.random((5, 4, 4)), rng.random((5, 4, 4)) < 0.3
    assert planted_auroc(grid, masks, pooled=True) == planted_auroc(grid.reshape(5, 16), masks.reshape(5, 16), pooled=True)
    assert planted_auroc(grid, masks) == planted_recovery(grid.reshape(5, 16), masks.reshape(5, 16)).auroc


def test_top_k_hits_keeps_the_unit_order_on_ties_and_wants_one_row():
    assert top_k_hits(np.array([0.5, 0.5, 0.1]), np.array([False, True, False]), 1) == 0
    assert top_k_hits(np.array([0.5, 0.5, 0.1]), np.array([False, True, False]), 2) == 1
    with pytest.raises(ValueError, match="one sample or of the cohort"):
        top_k_hits(np.zeros((2, 3)), np.zeros(3, bool), 1)
    with pytest.raises(ValueError, match="top_k_hits: scores"):
        top_k_hits(np.zeros((1, 3)), np.zeros((1, 4), bool), 1)


def _published_fidelity(model, cohort, top_k: int = 10) -> dict:
    """The demo's fidelity numbers as ``data.synthetic_cohort.explanation_fidelity`` computed them
    when the assets were published (commit 5409ed9), written out here as the reference."""
    data, truth = cohort.data, cohort.truth
    out = predict(model, data, batch_size=128).output
    p = truth.patch_size
    gate = out.gates["histology"][:, 0].numpy()
    per_patch = gate.reshape(gate.shape[0], gate.shape[1] // p, p, gate.shape[2] // p, p).mean(axis=(2, 4))
    result = {"heatmap_auroc": roc_auc_score(truth.patch_masks.ravel(), per_patch.ravel()),
              "heatmap_auroc_by_class": {
                  data.schema.classes[k]: roc_auc_score(truth.patch_masks[data.labels == k].ravel(),
                                                        per_patch[data.labels == k].ravel())
                  for k in range(3)}}
    tab = [m for m in data.schema.modalities if m.kind == "tabular"]
    names = [(m.name, f) for m in tab for f in m.features]
    means = np.concatenate([out.gates[m.name].numpy().mean(axis=0) for m in tab])
    planted = {(mod, f) for mod, feats in truth.informative_features.items() for f in feats}
    top = [names[i] for i in np.argsort(-means, kind="mergesort")[:top_k]]
    result[f"top{top_k}_planted"] = sum(t in planted for t in top)
    result[f"top{top_k}_gates"] = [f"{mod}:{f}" for mod, f in top]
    return result


def test_explanation_fidelity_gives_the_published_pooled_numbers():
    """The same numbers as the scorer the assets were published with, on an untrained model (its gates
    vary from patch to patch and feature to feature); tests/test_assets.py checks the stored assets."""
    cohort = make_synthetic_cohort(n=48, seed=3)
    torch.manual_seed(0)
    model = fc.create_model("mmdynamics", cohort.data.schema, image_gate="paper", hidden_dim=8, image_hidden_dim=8)
    model.preprocessing = fit_preprocessing(cohort.data)
    model.eval()
    got, want = explanation_fidelity(model, cohort), _published_fidelity(model, cohort)
    assert got["heatmap_auroc"] == pytest.approx(want["heatmap_auroc"], abs=1e-12)
    assert got["heatmap_auroc_by_class"] == pytest.approx(want["heatmap_auroc_by_class"], abs=1e-12)
    assert got["top10_planted"] == want["top10_planted"] and got["top10_gates"] == want["top10_gates"]
    assert got["n_planted"] == 10 and got["n_samples"] == 48
