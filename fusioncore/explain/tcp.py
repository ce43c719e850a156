"""True-class-probability (TCP) error tables (Wenderoth's ``tcp_explain.py``): per sample and per threshold.

MM-dynamics weights each modality by a *predicted* TCP (its confidence); these tables let a user
see, for their own model, how far it is from the true TCP. The maths (``true_tcp``,
``tcp_errors``, ``tcp_statistics``, the thresholds) is :mod:`fusioncore.metrics`', one home
below training, which reports the statistics, and the figures, which draw them.
"""

from __future__ import annotations

import pandas as pd

from ..metrics import THRESHOLDS, TCPErrors, fraction_above


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
