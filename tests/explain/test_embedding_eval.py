"""Retrieval, probes, uniformity and alignment of fusion embeddings (spec §1a "Downstream evaluation")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import fusioncore as fc
from fusioncore.config import TrainConfig
from fusioncore.data.synthetic_sparse import make_synthetic_sparse
from fusioncore.explain.embeddings import (
    alignment,
    embedding_metrics,
    evaluate_embedding_model,
    retrieval_metrics,
    train_probe,
    uniformity,
)


def test_retrieval_ranks_by_hand():
    candidates = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    query = np.array([[1.0, 0.0],    # own candidate is the most similar -> rank 0
                      [1.0, 0.1],    # own = [0,1]: both [1,0] and [1,1] are more similar -> rank 2
                      [0.0, 1.0]])   # own = [1,1] (cos .71) loses only to [0,1] -> rank 1
    m = retrieval_metrics(query, candidates)
    assert m == {"median_rank": 1.0, "r1": pytest.approx(1 / 3), "r5": 1.0, "r10": 1.0, "n": 3}
    only = retrieval_metrics(query, candidates, rows=np.array([True, False, False]))
    assert only["n"] == 1 and only["r1"] == 1.0  # the pool still holds every candidate
    assert math.isnan(retrieval_metrics(query, candidates, rows=np.zeros(3, bool))["r1"])


def test_uniformity_and_alignment_formulas():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    d2 = np.array([1.0, 4.0, 5.0])
    assert uniformity(x) == pytest.approx(np.log(np.mean(np.exp(-2 * d2))), rel=1e-5)
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    assert uniformity(x, normalize=True) == pytest.approx(uniformity(xn), rel=1e-5)
    a, b = np.array([[1.0, 0.0], [0.0, 3.0]]), np.array([[0.0, 0.0], [0.0, 1.0]])
    assert alignment(a, b) == pytest.approx((1 + 4) / 2)
    assert alignment(a, b, rows=np.array([False, True])) == pytest.approx(4.0)
    assert alignment(a, b, rows=np.array([False, True]), normalize=True) == pytest.approx(0.0)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_probes_learn_separable_and_linear_targets(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    res = train_probe(x[:200], y[:200], x[200:], y[200:], kind=kind, epochs=60, lr=3e-2, batch_size=50)
    assert res["auroc"] > 0.9 and res["f1"] > 0.8
    t = x[:, 2] * 2 - x[:, 3]
    reg = train_probe(x[:200], t[:200], x[200:], t[200:], kind=kind, task="regression", epochs=60, lr=3e-2, batch_size=50)
    assert reg["pcc"] > 0.9
    y3 = np.argmax(x[:, :3], axis=1)
    multi = train_probe(x[:200], y3[:200], x[200:], y3[200:], kind=kind, epochs=60, lr=3e-2, batch_size=50)
    assert multi["auroc"] > 0.85  # micro over one-hot cells


def test_probe_argument_errors():
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="probe kind"):
        train_probe(x, np.array([0, 1, 0, 1]), x, np.array([0, 1, 0, 1]), kind="svm")


def test_embedding_metrics_keys_and_evaluate_on_a_trained_model():
    from fusioncore.training import fit

    syn = make_synthetic_sparse(48, sparsity=0.4, seed=0)
    data = syn.splits
    torch.manual_seed(0)
    model = fc.create_model("mca", data.schema, dim=16, depth=1, heads=2, dim_head=8, tokens_per_channel=1, lambda_supervised=0.0)
    fit(model, data.train, TrainConfig(epochs=1, lr=3e-3, optimizer="adamw", scheduler="none", batch_size=36), preprocessing="none", progress=False)
    out = evaluate_embedding_model(
        model, data.train, data.test, probe_epochs=5, regression_targets=(syn.latent_train[:, 0], syn.latent_test[:, 0])
    )
    for name in data.schema.modality_names:
        assert 0.0 <= out[f"retrieval/{name}/r1"] <= out[f"retrieval/{name}/r10"] <= 1.0
        assert f"norm_alignment/{name}" in out
    for key in ("probe/linear/f1", "probe/linear/auroc", "probe/mlp/f1", "probe/linear/pcc", "uniformity/fusion", "norm_uniformity/fusion"):
        assert key in out and np.isfinite(out[key]), key
    assert out["norm_uniformity/fusion"] <= 0.0


def test_embedding_metrics_use_presence():
    emb = {"a": np.eye(3), "fusion": np.eye(3)}
    out = embedding_metrics(emb, np.array([[True], [True], [False]]), ["a"])
    assert out["retrieval/a/n"] == 2 and out["retrieval/a/r1"] == 1.0 and out["alignment/a"] == 0.0
