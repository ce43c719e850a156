"""Faithfulness of an explanation: deletion / insertion against random orderings, with intervals.

Deletion (Petsiuk et al. 2018) replaces a modality's units by the baseline in the explanation's
order and tracks the probability of the explained class; insertion starts from the baseline and
puts units back in the same order. One curve alone says little (how fast the probability falls
depends on the model and the sample), so each sample is also run under ``n_random`` seeded random
orderings of the same units, and the **gap** is what the explanation adds over chance:

* ``deletion_gap = mean_r AUC_del(random_r) - AUC_del(explanation)`` (> 0: the explanation's
  units matter more than random ones);
* ``insertion_gap = AUC_ins(explanation) - mean_r AUC_ins(random_r)``.

AUCs are over the removed fraction in [0, 1], in probability units. The interval of a cohort's
mean gap is a bootstrap over samples (:func:`mean_interval`); for a single sample it is the spread
over its random orderings (:func:`single_sample_interval`).

Every perturbed copy of a chunk of samples is built up front and run in forward passes of
``rows_per_forward`` rows, so a GPU gets large batches (device: the batch's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from ..types import Batch
from .units import expand_units


class Interval(NamedTuple):
    """A mean with a two-sided interval (NaN where it cannot be computed)."""

    mean: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)


def mean_interval(values: np.ndarray, *, confidence: float = 0.95, seed: int = 0, n_resamples: int = 2000) -> Interval:
    """Mean of the finite ``values`` with a percentile bootstrap interval over them (scipy)."""
    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return Interval(np.nan, np.nan, np.nan)
    mean = float(v.mean())
    if len(v) == 1:
        return Interval(mean, np.nan, np.nan)
    if np.ptp(v) == 0:
        return Interval(mean, mean, mean)
    res = bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                    rng=np.random.default_rng(seed))
    return Interval(mean, float(res.confidence_interval.low), float(res.confidence_interval.high))


def single_sample_interval(per_random: np.ndarray, *, confidence: float = 0.95) -> Interval:
    """Mean and percentile interval of one sample's ``(R,)`` gaps against each random ordering."""
    v = np.asarray(per_random, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return Interval(np.nan, np.nan, np.nan)
    tail = 100 * (1 - confidence) / 2
    return Interval(float(v.mean()), float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail)))


def unit_ranks(scores: np.ndarray) -> np.ndarray:
    """``(N, U)`` position of each unit when sorted by decreasing score (ties: unit order; NaN last)."""
    order = np.argsort(-np.nan_to_num(np.asarray(scores, float), nan=-np.inf), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None].repeat(order.shape[0], 0), axis=1)
    return ranks


def evaluate_variants(model, batch: Batch, modality: str, variants: Tensor, target: Tensor, rows_per_forward: int = 256) -> Tensor:
    """``(V, B)`` probability of ``target`` with ``batch.inputs[modality]`` replaced by each of
    ``variants`` ``(V, B, *shape)`` (the other inputs, presence and padding unchanged)."""
    V, B = variants.shape[:2]
    flat = variants.reshape(V * B, *variants.shape[2:])
    sample = torch.arange(B, device=flat.device).repeat(V)
    out = torch.empty(V * B, dtype=torch.float64, device=flat.device)
    for start in range(0, V * B, rows_per_forward):
        idx = sample[start:start + rows_per_forward]
        inputs = {n: flat[start:start + rows_per_forward] if n == modality else x[idx] for n, x in batch.inputs.items()}
        padding = None if batch.padding is None else {k: v[idx] for k, v in batch.padding.items()}
        with torch.no_grad():
            prob = torch.softmax(model(Batch(inputs=inputs, present=batch.present[idx], padding=padding)).logits, -1)
        out[start:start + rows_per_forward] = prob.gather(1, target[idx].view(-1, 1)).squeeze(1).double()
    return out.view(V, B)


@dataclass
class DeletionInsertion:
    """Deletion and insertion curves of one explanation and of random orderings.

    fractions: ``(S+1,)``; deletion / insertion: ``(1 + R, N, S+1)`` probability of the explained
    class, ordering 0 = the explanation, 1..R = random; NaN rows = modality absent.
    """

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    def auc(self, mode: str) -> np.ndarray:
        """``(1 + R, N)`` area under each curve."""
        return np.trapezoid(self.deletion if mode == "deletion" else self.insertion, self.fractions, axis=-1)

    def gaps(self, mode: str) -> np.ndarray:
        """``(N, R)`` the explanation's advantage over each random ordering (> 0 = better)."""
        a = self.auc(mode)
        diff = a[1:] - a[0] if mode == "deletion" else a[0] - a[1:]
        return diff.T

    def gap(self, mode: str) -> np.ndarray:
        """``(N,)`` mean advantage over the random orderings."""
        return self.gaps(mode).mean(axis=1)

    def modality_effect(self) -> np.ndarray:
        """``(N,)`` probability with the modality intact minus with all of it at the baseline: how
        much the model uses the modality at all (no ordering can be tested when it is ~0)."""
        return self.deletion[0, :, 0] - self.deletion[0, :, -1]


def _variants(x: Tensor, base: Tensor, ranks: Tensor, counts: Sequence[int], kind: str, shape, patch_size: int) -> Tensor:
    """``(2 * O * len(counts), B, *shape)``: deletion then insertion copies for every ordering
    ``ranks`` ``(O, B, U)`` and count of units."""
    out = []
    for mode in ("deletion", "insertion"):
        for o in range(ranks.shape[0]):
            for k in counts:
                sel = expand_units(ranks[o] < int(k), kind, shape, patch_size)
                out.append(torch.where(sel, base.expand_as(x), x) if mode == "deletion" else torch.where(sel, x, base.expand_as(x)))
    return torch.stack(out)


def deletion_insertion(model, batch: Batch, modality: str, scores: np.ndarray, target: Tensor, baseline: Tensor, *,
                       patch_size: int = 8, steps: int = 10, n_random: int = 2, seed: int = 0,
                       rows_per_forward: int = 256) -> DeletionInsertion:
    """Deletion / insertion curves of ``modality`` ordered by ``scores`` ``(N, U)`` (higher = more
    important) and by ``n_random`` random orderings, for every row of ``batch``.

    target: ``(N,)`` explained class; baseline: ``(*shape)`` what a removed unit becomes.
    """
    if steps < 2:
        raise ValueError(f"steps: expected an integer >= 2, got {steps}")
    if n_random < 1:
        raise ValueError(f"n_random: expected a positive integer, got {n_random}")
    spec = model.schema.modality(modality)
    N, U = scores.shape
    fractions = np.arange(steps + 1) / steps
    counts = np.round(fractions * U).astype(int)
    rng = np.random.default_rng(seed)
    ranks = np.stack([unit_ranks(scores)] + [unit_ranks(rng.random((N, U))) for _ in range(n_random)])
    O = ranks.shape[0]
    deletion = np.full((O, N, steps + 1), np.nan)
    insertion = np.full((O, N, steps + 1), np.nan)
    rows = np.flatnonzero(np.isfinite(scores).all(axis=1))
    interior = counts[1:-1]
    chunk = max(1, rows_per_forward // (2 + 2 * O * len(interior)))
    dev = batch.present.device
    for start in range(0, len(rows), chunk):
        idx = rows[start:start + chunk]
        sub = batch.select(torch.as_tensor(idx, device=dev))
        x = sub.inputs[modality]
        ends = torch.stack([x, baseline.to(x.dtype).expand_as(x)])  # 0 units removed, all removed
        inner = _variants(x, baseline.to(x.dtype), torch.as_tensor(ranks[:, idx], device=dev), interior, spec.kind, spec.shape, patch_size)
        p = evaluate_variants(model, sub, modality, torch.cat([ends, inner]), target[torch.as_tensor(idx, device=dev)],
                              rows_per_forward).cpu().numpy()
        full, empty, inner_p = p[0], p[1], p[2:].reshape(2, O, len(interior), len(idx))
        deletion[:, idx, 0], deletion[:, idx, -1] = full, empty
        insertion[:, idx, 0], insertion[:, idx, -1] = empty, full
        deletion[:, idx, 1:-1] = inner_p[0].transpose(0, 2, 1)
        insertion[:, idx, 1:-1] = inner_p[1].transpose(0, 2, 1)
    return DeletionInsertion(fractions, deletion, insertion)
