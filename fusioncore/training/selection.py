"""Epoch selection on a validation split carved from the training split.

Why: the published MM-dynamics procedure keeps the final epoch, and its published accuracy
behaves like the best of the test metrics printed during training (docs/results.md, section 1).
A default recipe must pick its epoch without the test split, so it holds out a stratified,
seeded part of the *training* split, scores the model on it after every epoch, keeps the best
epoch's weights and stops once they stop improving (:class:`EpochSelector`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import SelectionConfig
from ..data.dataset import MultimodalDataset
from ..data.splits import held_out_rows, rest


def holdout_split(data: MultimodalDataset, fraction: float, seed: int) -> tuple[MultimodalDataset, MultimodalDataset]:
    """``(train, validation)``: a stratified ``fraction`` of ``data`` per class, drawn with ``seed``.

    Each class gives ``round(fraction * n)`` samples (at least 1 when it has 2 or more, never its
    last one), so every class stays in training; rows keep their original order in both parts.
    """
    if data.labels is None:
        raise ValueError(f"{data.source or 'training data'} has no labels: a stratified validation split needs them")
    held = held_out_rows(len(data), fraction, seed, labels=data.labels, at_least=1, keep_one=True)
    if not len(held):
        raise ValueError(f"{data.source or 'training data'}: {len(data)} samples are too few to hold out a "
                         "validation split (every class needs 2 or more); use --recipe paper")
    return data.subset(rest(len(data), held)), data.subset(held)


def validation_scores(model, data: MultimodalDataset) -> dict[str, float]:
    """Fused cross-entropy (``loss``), accuracy and balanced accuracy of ``model`` on ``data``."""
    from .evaluate import predict

    was_training = model.training
    probabilities = predict(model, data).probabilities.astype(np.float64)
    model.train(was_training)
    labels = data.labels
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    predicted = probabilities.argmax(axis=1)
    recalls = [float((predicted[labels == c] == c).mean()) for c in np.unique(labels)]
    return {"loss": float(-np.log(picked).mean()), "acc": float((predicted == labels).mean()),
            "balanced_acc": float(np.mean(recalls))}


class EpochSelector:
    """Tracks the best epoch by ``selection.monitor`` and keeps a copy of its weights.

    ``state()`` / ``load_state()`` carry it through a training-state checkpoint (tensors
    included), so a resumed run selects exactly as an uninterrupted one.
    """

    def __init__(self, selection: SelectionConfig) -> None:
        self.selection = selection
        self.lower_is_better = selection.monitor == "loss"
        self.best_epoch: int | None = None
        self.best_score = math.inf if self.lower_is_better else -math.inf
        self.best_scores: dict[str, float] = {}
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.stale = 0
        self.stopped = False

    def _better(self, score: float) -> bool:
        return score < self.best_score if self.lower_is_better else score > self.best_score

    def update(self, epoch: int, scores: dict[str, float], model: torch.nn.Module) -> bool:
        """Record epoch ``epoch`` (1-based) scores; True when training should stop now."""
        if epoch < self.selection.min_epochs:
            return False
        score = scores[self.selection.monitor]
        if self.best_epoch is None or (math.isfinite(score) and self._better(score)):
            self.best_epoch, self.best_score, self.best_scores = epoch, score, dict(scores)
            self.best_weights = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
            self.stale = 0
        else:
            self.stale += 1
        self.stopped = bool(self.selection.patience) and self.stale >= self.selection.patience
        return self.stopped

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best epoch's weights into ``model`` (no-op when nothing was selected)."""
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights, strict=True)

    def state(self) -> dict:
        return {"best_epoch": self.best_epoch, "best_score": self.best_score, "best_scores": self.best_scores,
                "stale": self.stale, "stopped": self.stopped, "weights": self.best_weights or {}}

    def load_state(self, state: dict) -> None:
        self.best_epoch, self.best_score = state["best_epoch"], float(state["best_score"])
        self.best_scores, self.stale, self.stopped = dict(state["best_scores"]), state["stale"], state["stopped"]
        self.best_weights = dict(state["weights"]) or None

    def summary(self, validation: MultimodalDataset, stopped_epoch: int) -> dict:
        """What the checkpoint records: the split's ids and which epoch was kept, and why."""
        return {"monitor": self.selection.monitor, "selected_epoch": self.best_epoch,
                "stopped_epoch": stopped_epoch, "early_stopped": self.stopped,
                "validation": self.best_scores, "validation_ids": list(validation.sample_ids)}


__all__ = ["EpochSelector", "holdout_split", "validation_scores"]
