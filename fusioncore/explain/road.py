"""ROAD, RemOve And Debias (Rong et al., ICML 2022), for image maps.

Deleting patches by painting them a flat colour creates edges and blocks the model has never
seen, so the probability can fall because the image is out of distribution, not because the
evidence is gone. ROAD removes pixels by **noisy linear imputation** instead: every removed
pixel becomes the weighted mean of its 8 neighbours (1/6 for the 4 direct ones, 1/12 for the
diagonals), solved jointly for all removed pixels as one sparse linear system (removed pixels
next to each other depend on each other), plus Gaussian noise so that the imputation itself
carries no shape information. The paper's reference code does the same.

Patches are removed in two orders: most relevant first (MoRF, the probability of the explained
class should fall fast) and least relevant first (LeRF, it should stay). Under a random order
the two curves are the same in expectation, so their gap needs no random reference:
``road_gap = mean over fractions of (p_LeRF - p_MoRF)`` (> 0: the map separates evidence from
background). Fractions exclude 0 and 1 (nothing to compare, nothing left to impute from).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..types import Batch
from .faithfulness import evaluate_variants, unit_ranks

#: (row offset, column offset) -> weight of a neighbour in the imputed mean (Rong et al.).
NEIGHBOURS = (((-1, 0), 1 / 6), ((1, 0), 1 / 6), ((0, -1), 1 / 6), ((0, 1), 1 / 6),
              ((-1, -1), 1 / 12), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((1, 1), 1 / 12))
FRACTIONS = tuple(np.round(np.arange(1, 10) / 10, 2))


def noisy_linear_impute(image: np.ndarray, removed: np.ndarray, *, noise: float = 0.01,
                        rng: np.random.Generator | None = None) -> np.ndarray:
    """``image`` ``(C, H, W)`` with the ``removed`` ``(H, W)`` pixels imputed from their neighbours.

    Each removed pixel ``i`` satisfies ``sum_n w_n (x_n - x_i) = 0`` over its in-image
    neighbours ``n``; known neighbours move to the right-hand side. The system is solved once
    for all channels (scipy's sparse LU), then ``N(0, noise)`` is added to the imputed pixels.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    C, H, W = image.shape
    removed = np.asarray(removed, dtype=bool)
    if not removed.any():
        return image.copy()
    if removed.all():
        raise ValueError("noisy_linear_impute: every pixel is removed, there is nothing to impute from")
    flat = image.reshape(C, -1).astype(np.float64)
    unknown = np.flatnonzero(removed.reshape(-1))
    var = np.full(H * W, -1)
    var[unknown] = np.arange(len(unknown))
    r, c = np.divmod(unknown, W)
    rows, cols, vals = [], [], []
    rhs = np.zeros((len(unknown), C))
    diag = np.zeros(len(unknown))
    for (dr, dc), w in NEIGHBOURS:
        rr, cc = r + dr, c + dc
        inside = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
        eq = np.flatnonzero(inside)
        nb = rr[inside] * W + cc[inside]
        diag[eq] -= w
        known = var[nb] < 0
        rhs[eq[known]] -= w * flat[:, nb[known]].T
        rows.append(eq[~known])
        cols.append(var[nb[~known]])
        vals.append(np.full(int((~known).sum()), w))
    n = len(unknown)
    A = coo_matrix((np.concatenate(vals + [diag]), (np.concatenate(rows + [np.arange(n)]), np.concatenate(cols + [np.arange(n)]))),
                   shape=(n, n)).tocsc()
    solved = spsolve(A, rhs).reshape(n, C)
    rng = rng if rng is not None else np.random.default_rng(0)
    out = flat.copy()
    out[:, unknown] = solved.T + noise * rng.standard_normal((C, n))
    return out.reshape(C, H, W).astype(image.dtype)


@dataclass
class RoadCurves:
    """ROAD curves of one image map: ``(N, F)`` probability of the explained class after
    imputing the ``fractions[i]`` most (MoRF) / least (LeRF) relevant patches; NaN = absent."""

    fractions: np.ndarray
    morf: np.ndarray
    lerf: np.ndarray

    def gap(self) -> np.ndarray:
        """``(N,)`` mean over fractions of ``LeRF - MoRF``."""
        return np.trapezoid(self.lerf - self.morf, self.fractions, axis=1) / (self.fractions[-1] - self.fractions[0])


def road_curves(model, batch: Batch, modality: str, scores: np.ndarray, target: Tensor, *, patch_size: int = 8,
                fractions: Sequence[float] = FRACTIONS, noise: float = 0.01, seed: int = 0,
                rows_per_forward: int = 256) -> RoadCurves:
    """MoRF / LeRF curves of image ``modality`` ordered by patch ``scores`` ``(N, U)``.

    Imputation runs on the CPU (a sparse solve per image and fraction, milliseconds at 64 x 64);
    the forward passes run batched on the batch's device.
    """
    spec = model.schema.modality(modality)
    if spec.kind != "image":
        raise ValueError(f"ROAD needs an image modality; {modality!r} is {spec.kind}")
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or len(fr) < 2 or not ((fr > 0) & (fr < 1)).all():
        raise ValueError(f"ROAD fractions: expected at least two values strictly between 0 and 1, got {list(fractions)}")
    N = scores.shape[0]
    ranks = unit_ranks(scores)
    rng = np.random.default_rng(seed)
    morf = np.full((N, len(fr)), np.nan)
    lerf = np.full((N, len(fr)), np.nan)
    images = batch.inputs[modality].detach().cpu().numpy()
    dev = batch.present.device
    rows = np.flatnonzero(np.isfinite(scores).all(axis=1))
    chunk = max(1, rows_per_forward // (2 * len(fr)))
    for start in range(0, len(rows), chunk):
        idx = rows[start:start + chunk]
        variants = np.stack([_removals(images[i], ranks[i], fr, patch_size, noise, rng) for i in idx], axis=1)
        picked = torch.as_tensor(idx, device=dev)
        p = evaluate_variants(model, batch.select(picked), modality, torch.as_tensor(variants, device=dev), target[picked],
                              rows_per_forward).cpu().numpy()
        morf[idx], lerf[idx] = p[: len(fr)].T, p[len(fr):].T
    return RoadCurves(fr, morf, lerf)


def _removals(image: np.ndarray, ranks: np.ndarray, fractions: np.ndarray, patch_size: int, noise: float,
              rng: np.random.Generator) -> np.ndarray:
    """``(2F, C, H, W)``: ``image`` with the most (then the least) relevant ``fractions`` of its
    patches imputed; ``ranks`` ``(U,)`` position of each patch in decreasing relevance."""
    _, H, W = image.shape
    U = ranks.shape[0]
    out = []
    for order in (ranks, U - 1 - ranks):
        for f in fractions:
            units = (order < int(round(f * U))).reshape(H // patch_size, W // patch_size)
            out.append(noisy_linear_impute(image, units.repeat(patch_size, 0).repeat(patch_size, 1), noise=noise, rng=rng))
    return np.stack(out)
