"""Classification metrics, named as the papers report them, and the TCP-error statistics.

Binary tasks: ``f1`` is the F1 of the positive class 1 and ``auc`` uses the probability of
class 1 (MM-dynamics' ROSMAP convention). Multi-class: ``auc`` is one-vs-rest macro AUC.
A metric that is undefined on the given labels (e.g. AUC with one class present) is NaN and
never an exception, so a benchmark over sparse subsets keeps going.

scikit-learn is imported when a metric is computed, not with this module, so that the figure
code can read :func:`all_subsets` without loading it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """All reported metrics for labels ``(N,)`` and class probabilities ``(N, K)``."""
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(y_true) == 0:
        raise ValueError("cannot compute metrics on zero samples")
    k = probabilities.shape[1]
    y_pred = probabilities.argmax(axis=1)
    labels = np.arange(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "acc": skm.accuracy_score(y_true, y_pred),
            "balanced_acc": skm.balanced_accuracy_score(y_true, y_pred),
            "f1_macro": skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
            "f1_weighted": skm.f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0),
            "recall_weighted": skm.recall_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0),
            "precision_weighted": skm.precision_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0),
        }
        if k == 2:
            out["f1"] = skm.f1_score(y_true, y_pred, pos_label=1, average="binary", zero_division=0)
        else:
            out["f1"] = out["f1_weighted"]
        out["auc"] = _auc(y_true, probabilities)
    out["n"] = int(len(y_true))
    return {key: float(v) if key != "n" else v for key, v in out.items()}


def all_subsets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``modalities``, smallest first, in schema order: the rows of a
    robustness table (a metric per subset of modalities kept) and the order its figure draws them."""
    return [c for r in range(1, len(modalities) + 1) for c in combinations(modalities, r)]


def binary_auroc(scores, positives) -> float:
    """AUROC of ``scores`` separating ``positives`` from the rest (both flattened; ties count 1/2).

    scikit-learn's ``roc_auc_score``, but NaN instead of an exception when only one class occurs
    (a sample with no planted unit, a cohort slice with one label): the scorer of planted-truth
    recovery (``explain/planted.py``) and of probes on embeddings.
    """
    from sklearn import metrics as skm

    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = np.asarray(positives, dtype=bool).ravel()
    if scores.shape != positives.shape:
        raise ValueError(f"binary_auroc: {scores.size} scores for {positives.size} labels")
    if positives.all() or not positives.any():
        return float("nan")
    return float(skm.roc_auc_score(positives, scores))


def _auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    from sklearn import metrics as skm

    k = probabilities.shape[1]
    if len(np.unique(y_true)) < 2:
        return float("nan")
    if k == 2:
        return float(skm.roc_auc_score(y_true, probabilities[:, 1]))
    present = np.unique(y_true)
    if len(present) == 2:
        # Two of K classes occur: a binary AUC between them (sklearn refuses a 2-column OvR).
        p = probabilities[:, present]
        return float(skm.roc_auc_score(y_true == present[1], p[:, 1] / p.sum(axis=1).clip(1e-12)))
    if len(present) < k:
        # One-vs-rest over the classes that occur; renormalise so rows still sum to 1.
        p = probabilities[:, present]
        p = p / p.sum(axis=1, keepdims=True).clip(1e-12)
        return float(skm.roc_auc_score(np.searchsorted(present, y_true), p, multi_class="ovr", average="macro"))
    return float(skm.roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro"))


# -- TCP errors: MM-dynamics' predicted confidence against the true-class probability ---------------
#
# MM-dynamics weights each modality by a *predicted* TCP (its confidence). How far that prediction is
# from the true TCP = softmax(unimodal logits)[true class] decides whether the weighting helps; the
# follow-up paper found relative errors up to 100 % (Wenderoth's ``tcp_explain.py``). The maths lives
# here, below training and explain, because evaluation reports it and the figures and the dashboard
# draw it: ``training.evaluate``, ``explain.tcp`` (its tables), ``viz`` and ``inspect`` all read it.

THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 11))


@dataclass(frozen=True)
class TCPErrors:
    """Per-sample predicted vs true TCP of one modality (present samples only)."""

    modality: str
    sample_ids: tuple[str, ...]
    predicted: np.ndarray
    true: np.ndarray

    @property
    def error(self) -> np.ndarray:
        return self.predicted - self.true

    @property
    def relative_error(self) -> np.ndarray:
        return relative_error(self.error, self.true)


def relative_error(error: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``|predicted - TCP| / TCP`` (a TCP of exactly 0 is taken as 1e-12, so the error stays finite)."""
    return np.abs(error) / np.clip(true, 1e-12, None)


def fraction_above(error: np.ndarray, true: np.ndarray, k: float) -> float:
    """Share of samples with ``|predicted - TCP| > k * TCP`` (tcp_explain.py's table); NaN for none."""
    return float(np.mean(np.abs(error) > k * true)) if len(error) else float("nan")


def true_tcp(modality_logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``softmax(logits)[label]`` per row: the probability the unimodal head gives the truth."""
    z = modality_logits - modality_logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p[np.arange(len(labels)), labels]


def tcp_errors(output, labels: np.ndarray, sample_ids, modality_names: list[str]) -> dict[str, TCPErrors]:
    """Predicted (confidence) vs true TCP per modality, from a CPU ``FusionOutput``.

    Only modalities with both a confidence and unimodal logits take part (MM-dynamics), and
    only the samples where the modality is present.
    """
    result = {}
    present = output.present.numpy()
    for j, name in enumerate(modality_names):
        if name not in output.confidence or name not in output.modality_logits:
            continue
        rows = present[:, j]
        conf = output.confidence[name].numpy()[rows]
        tcp = true_tcp(output.modality_logits[name].numpy()[rows], labels[rows])
        ids = tuple(s for s, r in zip(sample_ids, rows) if r)
        result[name] = TCPErrors(name, ids, conf.astype(np.float64), tcp.astype(np.float64))
    return result


def tcp_statistics(errors: TCPErrors) -> dict[str, float]:
    """MSE, RMSE, MAE, R², MAPE (%) and the fraction of samples with |error| > k·TCP."""
    err, true = errors.error, errors.true
    n = len(err)
    if n == 0:
        return {"n": 0}
    mse = float(np.mean(err**2))
    ss_tot = float(np.sum((true - true.mean()) ** 2))
    stats = {
        "n": n,
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1.0 - np.sum(err**2) / ss_tot) if ss_tot > 0 else float("nan"),
        "mape": float(np.mean(errors.relative_error) * 100.0),
    }
    for k in THRESHOLDS:
        stats[f"frac_err_gt_{k:.1f}tcp"] = fraction_above(err, true, k)
    return stats
