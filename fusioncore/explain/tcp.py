"""True-class-probability (TCP) error analysis (Wenderoth's ``tcp_explain.py``).

MM-dynamics weights each modality by a *predicted* TCP (its confidence). How far that
prediction is from the true TCP = softmax(unimodal logits)[true class] decides whether the
weighting helps; the follow-up paper found relative errors up to 100 %. These statistics let a
user see that for their own model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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


def tcp_table(errors: dict[str, TCPErrors]) -> pd.DataFrame:
    """One row per (modality, sample): predicted, true, error, relative error."""
    frames = [
        pd.DataFrame(
            {
                "modality": e.modality,
                "sample_id": list(e.sample_ids),
                "predicted_tcp": e.predicted,
                "true_tcp": e.true,
                "error": e.error,
                "relative_error": e.relative_error,
            }
        )
        for e in errors.values()
    ]
    columns = ["modality", "sample_id", "predicted_tcp", "true_tcp", "error", "relative_error"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def threshold_table(errors: dict[str, TCPErrors]) -> pd.DataFrame:
    """Fraction of samples with |error| > k·TCP, k = 0.1 … 1.0, per modality."""
    rows = []
    for e in errors.values():
        for k in THRESHOLDS:
            rows.append({"modality": e.modality, "k": k, "fraction": fraction_above(e.error, e.true, k)})
    return pd.DataFrame(rows, columns=["modality", "k", "fraction"])
