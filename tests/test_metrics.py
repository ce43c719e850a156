"""Metrics and TCP-error statistics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusioncore.explain.tcp import threshold_table
from fusioncore.metrics import TCPErrors, all_subsets, binary_auroc, classification_metrics, tcp_errors, tcp_statistics, true_tcp
from fusioncore.types import FusionOutput


def test_binary_metrics_by_hand():
    y = np.array([0, 0, 1, 1, 1])
    p1 = np.array([0.1, 0.6, 0.7, 0.4, 0.9])
    m = classification_metrics(y, np.stack([1 - p1, p1], 1))
    assert m["acc"] == pytest.approx(3 / 5)
    # positives predicted: rows 1,2,4 -> TP 2, FP 1, FN 1 -> F1 = 2/3
    assert m["f1"] == pytest.approx(2 / 3)
    # AUC: pairs (neg, pos) ranked correctly: 0.1<all (3), 0.6<0.7,0.9 (2), 0.6>0.4 -> 5/6
    assert m["auc"] == pytest.approx(5 / 6)
    assert m["balanced_acc"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_auc_undefined_is_nan_not_an_error():
    m = classification_metrics(np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]]))
    assert np.isnan(m["auc"]) and m["acc"] == 0.5


def test_multiclass_auc_is_ovr_macro():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 5)
    p = rng.dirichlet(np.ones(3), size=15)
    from sklearn.metrics import roc_auc_score

    assert classification_metrics(y, p)["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))


def test_tcp_statistics_by_hand():
    e = TCPErrors("m", ("a", "b", "c", "d"), predicted=np.array([0.5, 0.9, 0.2, 1.0]), true=np.array([0.5, 0.6, 0.4, 0.8]))
    s = tcp_statistics(e)
    err = np.array([0.0, 0.3, -0.2, 0.2])
    assert s["mse"] == pytest.approx(np.mean(err**2)) and s["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert s["mae"] == pytest.approx(0.175)
    assert s["mape"] == pytest.approx(100 * np.mean([0, 0.5, 0.5, 0.25]))
    assert s["frac_err_gt_0.3tcp"] == pytest.approx(0.5)  # 0.3 > 0.18 and 0.2 > 0.12, not 0.2 > 0.24
    assert s["frac_err_gt_0.6tcp"] == pytest.approx(0.0)
    table = threshold_table({"m": e})
    assert list(table["k"]) == [round(0.1 * k, 1) for k in range(1, 11)]


def test_tcp_errors_skip_absent_rows():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    out = FusionOutput(
        logits=logits, present=torch.tensor([[True], [False], [True]]),
        modality_logits={"m": logits}, confidence={"m": torch.tensor([0.5, float("nan"), 0.4])},
    )
    errs = tcp_errors(out, np.array([0, 1, 1]), ["a", "b", "c"], ["m"])["m"]
    assert errs.sample_ids == ("a", "c")
    assert np.allclose(errs.true, true_tcp(logits.numpy()[[0, 2]], np.array([0, 1])))


def test_auc_with_two_of_three_classes_present_is_binary():
    y = np.array([0, 0, 2, 2])
    p = np.array([[0.7, 0.1, 0.2], [0.5, 0.2, 0.3], [0.2, 0.1, 0.7], [0.3, 0.3, 0.4]])
    assert classification_metrics(y, p)["auc"] == pytest.approx(1.0)


def rank_auroc(scores, truth) -> float:
    """The Mann-Whitney definition, pair by pair: P(planted > other) + 1/2 P(tie)."""
    s, t = np.ravel(scores), np.ravel(truth).astype(bool)
    pos, neg = s[t][:, None], s[~t][None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def test_binary_auroc_is_the_rank_auroc_with_ties_and_nan_for_one_class():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(20, 6)).astype(float)  # many ties
    truth = rng.random((20, 6)) < 0.3
    assert binary_auroc(scores, truth) == pytest.approx(rank_auroc(scores, truth), abs=1e-12)
    assert binary_auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert np.isnan(binary_auroc([1.0, 2.0], [1, 1])) and np.isnan(binary_auroc([1.0, 2.0], [0, 0]))
    with pytest.raises(ValueError, match="3 scores for 2 labels"):
        binary_auroc([1.0, 2.0, 3.0], [0, 1])


def test_all_subsets_smallest_first_in_schema_order():
    assert all_subsets(["a", "b", "c"]) == [("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")]
