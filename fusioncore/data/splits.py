"""Seeded random splits of a cohort's rows (train/test, training/validation), written once.

Which rows are held out is what makes a published number reproducible, so every loader that
splits at random and the validation hold-out of training draw their rows here, in one way: per
group (all rows, or each class in sorted order when stratified), a seeded permutation of the
group's rows and its first ``round(fraction * len(group))`` of them. The options say what the
callers have always differed in: at least ``at_least`` rows per group, and ``keep_one`` (never a
group's last row, so every class stays in training).
"""

from __future__ import annotations

import numpy as np

from .dataset import DatasetSplits, MultimodalDataset


def held_out_rows(n: int, fraction: float, seed: int, *, labels: np.ndarray | None = None, at_least: int = 0,
                  keep_one: bool = False) -> np.ndarray:
    """Sorted indices of the held-out rows of ``n`` (stratified by ``labels`` when given)."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == k) for k in np.unique(labels)]
    held = []
    for rows in groups:
        take = max(int(round(fraction * len(rows))), at_least)
        if keep_one:
            take = min(take, len(rows) - 1)
        held.append(rng.permutation(rows)[:take])
    return np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)


def rest(n: int, held: np.ndarray) -> np.ndarray:
    """The rows of ``n`` that are not ``held``, in order."""
    keep = np.ones(n, dtype=bool)
    keep[held] = False
    return np.flatnonzero(keep)


def split_dataset(data: MultimodalDataset, test_fraction: float, seed: int, *, stratified: bool = False) -> DatasetSplits:
    """Train/test splits with a seeded ``test_fraction`` of the samples (at least one) as the test
    split (TCGA and CMU-MOSEI: the original's ``train_test_split(0.1, seed=43)``)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    test = held_out_rows(len(data), test_fraction, seed, labels=data.labels if stratified else None, at_least=1)
    return DatasetSplits(train=data.subset(rest(len(data), test)), test=data.subset(test))


__all__ = ["held_out_rows", "rest", "split_dataset"]
