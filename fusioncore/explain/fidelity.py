"""Fidelity of explanations: deletion/insertion curves and agreement between kinds.

* **Deletion** (Petsiuk et al. 2018, RISE): replace a modality's units (tabular features, image
  patches, sequence tokens) by the baseline in order of decreasing importance and track the
  probability of the explained class; a faithful ordering makes it fall fast (low AUC).
  **Insertion** starts from the baseline and puts units back in the same order (high AUC).
  Only the explained modality is perturbed; samples where it is absent are NaN, never scored.
* **Agreement**: per-sample Spearman rank correlation and top-k overlap between two kinds (e.g.
  gates vs |Integrated Gradients|).
* **Planted recovery** (when the data say which units carry the signal) is scored by
  :mod:`fusioncore.explain.planted`, the one planted-truth scorer.

Score arrays are ``(N, U)`` per modality: ``U = d`` features, ``(H/p)*(W/p)`` patches (a
``(N, h, w)`` patch grid or ``(N, H, W)`` pixel map is accepted and pooled), or ``L`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..data.dataset import MultimodalDataset, to_batch
from ..types import Batch
from .attributions import modality_baselines, resolve_target
from .units import expand_units, n_units, unit_scores

MODES = ("deletion", "insertion")


# -- deletion / insertion -------------------------------------------------------------------------


@dataclass
class FidelityCurves:
    """Curves of one explanation kind on one modality.

    probability: ``(N, S+1)`` probability of the explained class after removing (deletion) or
    inserting (insertion) the top ``fractions[i]`` of units; NaN rows = modality absent.
    """

    kind: str
    modality: str
    mode: str
    fractions: np.ndarray
    probability: np.ndarray
    sample_ids: list[str]

    def auc(self) -> np.ndarray:
        """``(N,)`` area under each sample's curve (fraction axis in [0, 1])."""
        return np.trapezoid(self.probability, self.fractions, axis=1)


@torch.no_grad()
def _perturbed_probability(model, batch: Batch, modality: str, top: torch.Tensor, mode: str, base: torch.Tensor,
                           target: torch.Tensor, patch_size: int) -> np.ndarray:
    """``(B,)`` probability of ``target`` once the units ``top`` ``(B, U)`` of ``modality`` are deleted
    (set to ``base``) or, for insertion, once every other unit is."""
    spec = model.schema.modality(modality)
    x = batch.inputs[modality]
    sel = expand_units(top, spec.kind, spec.shape, patch_size)
    xp = torch.where(sel, base.expand_as(x), x) if mode == "deletion" else torch.where(sel, x, base.expand_as(x))
    inputs = dict(batch.inputs, **{modality: xp})
    prob = torch.softmax(model(type(batch)(inputs=inputs, present=batch.present, padding=batch.padding)).logits, -1)
    return prob.gather(1, target.view(-1, 1)).squeeze(1).double().cpu().numpy()


def perturbation_curves(
    model,
    data: MultimodalDataset,
    modality: str,
    scores: np.ndarray,
    *,
    kind: str = "explanation",
    modes: Sequence[str] = MODES,
    steps: int = 10,
    patch_size: int = 8,
    target: Any = "label",
    baseline: str = "mean",
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> dict[str, FidelityCurves]:
    """Deletion and/or insertion curves of ``modality`` ordered by ``scores`` (higher = more important).

    ``target``: ``"label"`` (true class; falls back to ``"predicted"`` without labels),
    ``"predicted"``, or an ``(N,)`` array. Ties keep the unit order (stable sort).
    """
    from ..device import select_device
    from ..training.evaluate import ensure_aligned, model_batches

    bad = sorted(set(modes) - set(MODES))
    if bad:
        raise ValueError(f"modes: unknown {bad}; choose from {list(MODES)}")
    if steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps}")
    data = ensure_aligned(model, data)
    spec = model.schema.modality(modality)
    j = model.schema.index(modality)
    s = unit_scores(scores, spec.kind, spec.shape, patch_size)
    if s.shape[0] != len(data):
        raise ValueError(f"scores: {s.shape[0]} rows for {len(data)} samples")
    if target == "label" and data.labels is None:
        target = "predicted"
    dev = select_device(device) if device is not None else model.device
    model.to(dev).eval()
    base = modality_baselines(to_batch(data, model.preprocessing, "cpu"), model.modality_names, baseline)[modality].to(dev)
    U = s.shape[1]
    fractions = np.arange(steps + 1) / steps
    counts = np.round(fractions * U).astype(int)
    order_all = np.argsort(-np.nan_to_num(s, nan=-np.inf), axis=1, kind="stable")
    out = {m: np.full((len(data), steps + 1), np.nan) for m in modes}
    n = len(data)
    target_arr = None if isinstance(target, str) else np.broadcast_to(np.asarray(target), (n,))
    for index, batch in model_batches(model, data, batch_size=batch_size, device=dev):
        tgt = resolve_target(model, batch, target if target_arr is None else target_arr[index])
        order = torch.as_tensor(order_all[index], device=dev)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(U, device=dev).expand_as(order).contiguous())
        here = data.present[index, j]
        for mode in modes:
            for i, k in enumerate(counts):
                p = _perturbed_probability(model, batch, modality, rank < int(k), mode, base, tgt, patch_size)
                out[mode][index, i] = np.where(here, p, np.nan)
    return {m: FidelityCurves(kind, modality, m, fractions, out[m], list(data.sample_ids)) for m in modes}


def curves_frame(curves: Sequence[FidelityCurves]):
    """Tidy long table ``kind, modality, mode, sample_id, fraction, probability`` (present rows
    only), the input of :func:`fusioncore.viz.fidelity_curve_figure`."""
    import pandas as pd

    parts = []
    for c in curves:
        keep = np.isfinite(c.probability).all(axis=1)
        ids = np.asarray(c.sample_ids)[keep]
        S = len(c.fractions)
        parts.append(pd.DataFrame({
            "kind": c.kind, "modality": c.modality, "mode": c.mode,
            "sample_id": np.repeat(ids, S), "fraction": np.tile(c.fractions, len(ids)),
            "probability": c.probability[keep].reshape(-1),
        }))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["kind", "modality", "mode", "sample_id", "fraction", "probability"])


def auc_table(curves: Sequence[FidelityCurves]):
    """One row per (kind, modality, mode): mean/std AUC over the samples where it is present."""
    import pandas as pd

    rows = []
    for c in curves:
        a = c.auc()
        a = a[np.isfinite(a)]
        rows.append({"kind": c.kind, "modality": c.modality, "mode": c.mode, "auc_mean": float(a.mean()) if len(a) else np.nan,
                     "auc_std": float(a.std(ddof=1)) if len(a) > 1 else np.nan, "n_samples": int(len(a))})
    return pd.DataFrame(rows)


# -- agreement and recovery -------------------------------------------------------------------------


def rank_agreement(a: np.ndarray, b: np.ndarray, *, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample Spearman correlation and top-``k`` overlap (|top_k(a) & top_k(b)| / k) of two
    ``(N, U)`` score arrays; NaN rows (absent) give NaN. Pass magnitudes for signed attributions."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"rank_agreement: expected two (N, U) arrays of one shape, got {a.shape} and {b.shape}")
    k = min(k, a.shape[1])
    rho = np.full(a.shape[0], np.nan)
    overlap = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        if not (np.isfinite(a[i]).all() and np.isfinite(b[i]).all()):
            continue
        if np.ptp(a[i]) > 0 and np.ptp(b[i]) > 0:
            rho[i] = spearmanr(a[i], b[i]).statistic
        ta = set(np.argsort(-a[i], kind="stable")[:k])
        tb = set(np.argsort(-b[i], kind="stable")[:k])
        overlap[i] = len(ta & tb) / k
    return rho, overlap


def explanation_scores(model, data: MultimodalDataset, *, methods: Sequence[str] = ("ig",), batch_size: int = 32,
                       include_gates: bool = True, seed: int = 0, progress: Callable[[int, int], None] | None = None,
                       **attribution_kwargs: Any) -> dict[str, dict[str, np.ndarray]]:
    """kind -> modality -> ``(N, U)`` importance scores (NaN rows where absent).

    Kinds: ``"gates"`` (the model's own feature gates / image patch maps, when it fills them),
    each attribution method in ``methods`` (by magnitude: a strongly negative attribution is
    important too) and ``"random"`` (a seeded random ordering, the chance reference).
    """
    from ..training import predict
    from .attributions import attribute_dataset

    patch = model.explanation_patch_size
    specs = {m.name: m for m in model.schema.modalities}
    present = {n: data.present[:, model.schema.index(n)] for n in specs}
    out: dict[str, dict[str, np.ndarray]] = {}
    if include_gates:
        gates = predict(model, data, batch_size=batch_size).output.gates
        if gates:
            out["gates"] = {}
            for n, g in gates.items():
                s = unit_scores(g.numpy(), specs[n].kind, specs[n].shape, patch)
                out["gates"][n] = np.where(present[n][:, None], s, np.nan)
    for method in methods:
        attrs = attribute_dataset(model, data, method, batch_size=batch_size, patch_size=patch, **attribution_kwargs)
        out[method] = {}
        for n, spec in specs.items():
            out[method][n] = unit_scores(np.abs(attrs.scores(n)), spec.kind, spec.shape, patch, reduce="sum")
        if progress is not None:
            progress(len(out), len(methods) + 1)
    rng = np.random.default_rng(seed)
    out["random"] = {n: np.where(present[n][:, None], rng.random((len(data), n_units(spec, patch))), np.nan)
                     for n, spec in specs.items()}
    return out


def agreement_table(scores: dict[str, dict[str, np.ndarray]], methods: Sequence[str], *, top_k: int = 5):
    """Gates vs each attribution method per modality: mean Spearman and mean top-``top_k`` overlap.

    ``scores``: kind -> modality -> ``(N, U)`` (as :func:`explanation_scores`); empty without gates.
    """
    import pandas as pd

    rows = []
    for method in methods if "gates" in scores else ():
        for n in scores["gates"]:
            rho, overlap = rank_agreement(scores["gates"][n], scores[method][n], k=top_k)
            rows.append({"kind_a": "gates", "kind_b": method, "modality": n,
                         "spearman_mean": np.nanmean(rho) if np.isfinite(rho).any() else np.nan,
                         f"top{top_k}_overlap_mean": np.nanmean(overlap) if np.isfinite(overlap).any() else np.nan,
                         "n_samples": int(np.isfinite(overlap).sum())})
    return pd.DataFrame(rows)


def cohort_curves(model, data: MultimodalDataset, scores: dict[str, dict[str, np.ndarray]], *, steps: int = 10,
                  patch_size: int = 8, batch_size: int = 32,
                  progress: Callable[[int, int], None] | None = None) -> list[FidelityCurves]:
    """:func:`perturbation_curves` for every (kind, modality) of ``scores`` whose modality some sample has."""
    pairs = [(kind, n) for kind, per in scores.items() for n in per if data.present[:, model.schema.index(n)].any()]
    curves: list[FidelityCurves] = []
    for i, (kind, n) in enumerate(pairs):
        res = perturbation_curves(model, data, n, scores[kind][n], kind=kind, steps=steps, patch_size=patch_size,
                                  batch_size=batch_size)
        curves.extend(res.values())
        if progress is not None:
            progress(i + 1, len(pairs))
    return curves
