"""The metric of a model for every non-empty subset of its modalities.

``2^M - 1`` subsets, each one batched forward pass over the cohort with the other modalities
switched off (the presence flag, never zeroed values). A sample that keeps none of the subset's
modalities has no evidence to predict from and is left out of that subset's metric (counted in
``n_excluded``), so a subset's number is never diluted by bias-only guesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..data.dataset import MultimodalDataset
from .session import ensure_aligned

METRICS = ("acc", "balanced_acc", "f1_macro", "auc")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RobustnessResult:
    """frame: one row per subset (``subset``, a 0/1 column per modality, ``n``, ``n_excluded``,
    one column per metric); probabilities: subset label -> ``(N, K)`` (NaN rows = excluded)."""

    modalities: tuple[str, ...]
    frame: pd.DataFrame
    probabilities: dict[str, np.ndarray]
    data: MultimodalDataset

    @property
    def subsets(self) -> list[str]:
        """Subset labels (``"a+b"``) in the order computed: single modalities first."""
        return list(self.frame["subset"])

    def subset_pattern(self, subset: str) -> dict[str, bool]:
        """modality -> whether it is in ``subset`` (read from the frame's 0/1 columns, not by
        splitting the label, so a ``+`` inside a modality name cannot confuse it)."""
        rows = self.frame[self.frame["subset"] == subset]
        if rows.empty:
            raise ValueError(f"unknown subset {subset!r}; subsets are {self.subsets}")
        return {m: bool(rows.iloc[0][m]) for m in self.modalities}

    def values(self, metric: str) -> dict[str, float]:
        """subset label -> metric (the mapping ``fusioncore.viz.robustness_figure`` draws)."""
        if metric not in self.frame.columns:
            raise ValueError(f"metric {metric!r} not computed; available: {[m for m in METRICS if m in self.frame]}")
        return dict(zip(self.frame["subset"], self.frame[metric]))

    def samples(self, subset: str) -> pd.DataFrame:
        """Per-sample predictions under ``subset`` (``"a+b"``): kept or excluded, truth,
        prediction and its probability."""
        if subset not in self.probabilities:
            raise ValueError(f"unknown subset {subset!r}; subsets are {list(self.probabilities)}")
        probs = self.probabilities[subset]
        kept = np.isfinite(probs).all(axis=1)
        classes = list(self.data.schema.classes)
        pred = np.where(kept, np.nan_to_num(probs, nan=-1.0).argmax(axis=1), -1)
        frame = pd.DataFrame({"sample_id": list(self.data.sample_ids), "evaluated": kept,
                              "predicted": [classes[k] if k >= 0 else "" for k in pred],
                              "p_predicted": np.where(kept, np.nan_to_num(probs).max(axis=1), np.nan)})
        if self.data.labels is not None:
            frame.insert(1, "true", [classes[k] for k in self.data.labels])
            frame["correct"] = kept & (pred == self.data.labels)
        return frame


def subset_robustness(model, data: MultimodalDataset, *, batch_size: int = 256,
                      progress: Progress | None = None) -> RobustnessResult:
    """Metrics for every non-empty modality subset of ``model`` on the labelled cohort ``data``."""
    from ..metrics import all_subsets, classification_metrics
    from ..training import predict

    data = ensure_aligned(model, data)
    if data.labels is None:
        raise ValueError(f"{data.source or 'the cohort'} has no labels: the robustness matrix needs them")
    names = list(model.modality_names)
    subsets = all_subsets(names)
    rows, probabilities = [], {}
    for done, subset in enumerate(subsets, start=1):
        mask = np.array([n in subset for n in names])
        view = data.with_present(np.broadcast_to(mask, data.present.shape))
        kept = view.present.any(axis=1)
        label = "+".join(subset)
        probs = np.full((len(data), data.schema.n_classes), np.nan)
        row = {"subset": label, "n_modalities": len(subset), **{n: int(n in subset) for n in names},
               "n": int(kept.sum()), "n_excluded": int((~kept).sum())}
        if kept.any():
            part = view.subset(np.flatnonzero(kept))
            probs[kept] = predict(model, part, batch_size=batch_size).probabilities
            scores = classification_metrics(part.labels, probs[kept])
            row.update({m: scores[m] for m in METRICS})
        else:
            row.update({m: float("nan") for m in METRICS})
        rows.append(row)
        probabilities[label] = probs
        if progress is not None:
            progress(done, len(subsets))
    return RobustnessResult(tuple(names), pd.DataFrame(rows), probabilities, data)
