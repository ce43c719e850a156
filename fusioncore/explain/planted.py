"""Planted truth: which units carry the class evidence, and how well an explanation finds them.

The synthetic cohorts know where their evidence is (``data.synthetic_cohort.GroundTruth``: planted
image patches, informative omics features). Every score of an explanation against that truth goes
through this module, so that "recovers the planted truth" means one thing:

* the AUROC of the scores separating planted from other units (:func:`planted_auroc`), either
  **per sample** (one AUROC per sample, then their mean: does each explanation rank its own
  sample's evidence first? — ``fusioncore explain fidelity`` and the trust report) or **pooled**
  (one AUROC over every unit of every sample: are evidence units scored above all others across
  the cohort? — the demo's published ``heatmap_auroc`` and the patch-attention AUROCs);
* the top-k hits (:func:`top_k_hits`): how many planted units are among the ``k`` highest scores.

Rows with a non-finite score (a modality the sample lacks) take part in neither mode.
:func:`explanation_fidelity` is the demo cohort's summary (``fidelity_*`` in the checkpoints'
``metrics.json``, ``assets/demo/fidelity.json`` and docs/results.md).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..data.synthetic_cohort import SyntheticCohort
from ..metrics import binary_auroc
from ..training import predict
from .units import pool_patches


class Recovery(NamedTuple):
    """How well scores rank the planted units: mean per-sample AUROC and top-k hit rate."""

    auroc: float
    top_k_hit_rate: float


def _rows(scores, truth_mask, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(N, U)`` float scores and bool mask (a ``(U,)`` mask is the same for every sample)."""
    s = np.asarray(scores, dtype=float)
    t = np.asarray(truth_mask, dtype=bool)
    if s.ndim == 1:
        s = s[None]
    s = s.reshape(s.shape[0], -1)
    t = np.broadcast_to(t, s.shape) if t.ndim == 1 else t.reshape(t.shape[0], -1)
    if s.shape != t.shape:
        raise ValueError(f"{name}: scores {s.shape} and truth_mask {t.shape} differ in shape")
    return s, t


def sample_aurocs(scores, truth_mask) -> np.ndarray:
    """``(N,)`` AUROC of each sample's scores separating its planted units from the others; NaN
    for a sample with non-finite scores or without both planted and other units."""
    s, t = _rows(scores, truth_mask, "sample_aurocs")
    return np.array([binary_auroc(si, ti) if np.isfinite(si).all() else np.nan for si, ti in zip(s, t)])


def planted_auroc(scores, truth_mask, *, pooled: bool = False) -> float:
    """AUROC of ``(N, U)`` scores (higher = more important) against the planted ``truth_mask``.

    ``pooled=False``: the mean of :func:`sample_aurocs` over the samples where it is defined.
    ``pooled=True``: one AUROC over every unit of every sample with finite scores (ties count 1/2).
    NaN when nothing is defined.
    """
    s, t = _rows(scores, truth_mask, "planted_auroc")
    if pooled:
        keep = np.isfinite(s).all(axis=1)
        return binary_auroc(s[keep], t[keep])
    a = sample_aurocs(s, t)
    a = a[np.isfinite(a)]
    return float(a.mean()) if len(a) else float("nan")


def top_k_hits(scores, truth_mask, k: int) -> int:
    """How many of the ``k`` highest ``(U,)`` scores are planted units (ties keep the unit order)."""
    s, t = _rows(scores, truth_mask, "top_k_hits")
    if s.shape[0] != 1:
        raise ValueError(f"top_k_hits: expected the scores of one sample or of the cohort, got {s.shape[0]} rows")
    return int(t[0][np.argsort(-s[0], kind="stable")[: int(k)]].sum())


def planted_recovery(scores: np.ndarray, truth_mask: np.ndarray, *, k: int | None = None) -> Recovery:
    """Per-sample recovery of planted units from ``(N, U)`` scores (higher = more important).

    truth_mask: ``(N, U)`` bool (or ``(U,)``, the same planted units for every sample).
    auroc: :func:`planted_auroc` per sample (the mean over samples with both planted and other
           units and finite scores).
    top_k_hit_rate: mean of |top-k ∩ planted| / min(k, #planted); ``k`` defaults to the number
           of planted units of each sample (then it is precision = recall at k).
    """
    s, t = _rows(scores, truth_mask, "planted_recovery")
    hits = []
    for si, ti in zip(s, t):
        n_planted = int(ti.sum())
        if not np.isfinite(si).all() or n_planted == 0:
            continue
        kk = n_planted if k is None else int(k)
        hits.append(top_k_hits(si, ti, kk) / min(kk, n_planted))
    return Recovery(planted_auroc(s, t), float(np.mean(hits)) if hits else float("nan"))


def truth_masks(truth: Any, schema, n: int) -> dict[str, np.ndarray]:
    """Planted-truth unit masks per modality, ``(N, U)`` bool.

    ``truth`` is a mapping modality -> ``(N, U)``/``(U,)`` bool mask, or the demo cohort's
    ``GroundTruth`` (``patch_masks`` for the image modality, ``informative_features`` names).
    """
    if isinstance(truth, dict):
        out = {}
        for name, m in truth.items():
            schema.modality(name)  # a KeyError naming the modalities when unknown
            m = np.asarray(m, dtype=bool)
            out[name] = np.broadcast_to(m, (n, m.size)) if m.ndim == 1 else m.reshape(n, -1)
        return out
    out = {}
    images = [m for m in schema.modalities if m.kind == "image"]
    patch = getattr(truth, "patch_masks", None)
    if patch is not None and images:
        if len(images) > 1:
            raise ValueError("truth.patch_masks is ambiguous: the schema has several image modalities; pass a dict")
        out[images[0].name] = np.asarray(patch, dtype=bool).reshape(n, -1)
    for name, feats in (getattr(truth, "informative_features", None) or {}).items():
        spec = schema.modality(name)
        if not spec.features:
            raise ValueError(f"truth names informative features of {name!r}, but the schema has no feature names for it")
        unknown = sorted(set(feats) - set(spec.features))
        if unknown:
            raise ValueError(f"truth: informative feature(s) {unknown[:5]} are not columns of {name!r}")
        mask = np.isin(np.asarray(spec.features), list(feats))
        out[name] = np.broadcast_to(mask, (n, mask.size))
    return out


def recovery_table(scores: dict[str, dict[str, np.ndarray]], masks: dict[str, np.ndarray]):
    """Per explanation kind and modality with planted units: :func:`planted_recovery`'s AUROC and hit rate."""
    import pandas as pd

    rows = []
    for kind, per in scores.items():
        for n, m in masks.items():
            if n in per:
                r = planted_recovery(per[n], m)
                rows.append({"kind": kind, "modality": n, "auroc": r.auroc, "top_k_hit_rate": r.top_k_hit_rate})
    return pd.DataFrame(rows)


def _heatmap_fidelity(out, cohort: SyntheticCohort) -> dict:
    """Pooled AUROC of the first image modality's map (mean per planted patch) against the
    planted patches, over the cohort and within each true class."""
    data, truth = cohort.data, cohort.truth
    images = [m.name for m in data.schema.modalities if m.kind == "image" and m.name in out.gates]
    if not images:
        return {}
    per_patch = pool_patches(out.gates[images[0]][:, 0].numpy(), truth.patch_size, reduce="mean")
    result: dict = {"heatmap_auroc": planted_auroc(per_patch, truth.patch_masks, pooled=True)}
    if data.labels is not None:
        # Per true class: a gate can learn a "default class" shortcut (close everything -> the
        # class whose evidence it never needed to see), which the pooled AUROC hides.
        result["heatmap_auroc_by_class"] = {
            data.schema.classes[k]: planted_auroc(per_patch[data.labels == k], truth.patch_masks[data.labels == k],
                                                  pooled=True)
            for k in range(len(data.schema.classes)) if (data.labels == k).any()
        }
    return result


def _gate_fidelity(out, cohort: SyntheticCohort, top_k: int) -> dict:
    """Top-``top_k`` hits of the cohort-mean feature gates (all tabular modalities ranked together)."""
    data, truth = cohort.data, cohort.truth
    tab = [m for m in data.schema.modalities if m.kind == "tabular" and m.name in out.gates]
    if not tab:
        return {}
    names = [(m.name, f) for m in tab for f in m.features]
    means = np.concatenate([out.gates[m.name].numpy().mean(axis=0) for m in tab])
    planted = {(mod, f) for mod, feats in truth.informative_features.items() for f in feats} & set(names)
    mask = np.array([name in planted for name in names])
    top = [names[i] for i in np.argsort(-means, kind="stable")[:top_k]]
    return {f"top{top_k}_planted": top_k_hits(means, mask, top_k), "n_planted": len(planted),
            f"top{top_k}_gates": [f"{mod}:{f}" for mod, f in top]}


def explanation_fidelity(model, cohort: SyntheticCohort, *, top_k: int = 10, batch_size: int = 128) -> dict:
    """Score a trained model's own explanations (gates, confidence) against the planted truth.

    * ``heatmap_auroc``: pooled :func:`planted_auroc` of the image map's per-patch values against
      the planted patch masks (image models only); ``heatmap_auroc_by_class`` the same within
      the samples of each true class.
    * ``top{k}_planted``: how many of the planted omics features are among the ``k`` highest
      mean gates across all tabular modalities (``k`` = number planted by default 10).
    * ``mean_confidence``: per modality; ``noisy_lowest_confidence`` says whether the noisy
      modality got the lowest.
    """
    out = predict(model, cohort.data, batch_size=batch_size).output
    result: dict = {"n_samples": len(cohort.data)}
    result.update(_heatmap_fidelity(out, cohort))
    result.update(_gate_fidelity(out, cohort, top_k))
    if out.confidence:
        conf = {k: float(np.nanmean(v.numpy())) for k, v in out.confidence.items()}
        result["mean_confidence"] = conf
        if cohort.truth.noisy_modality in conf:
            result["noisy_lowest_confidence"] = min(conf, key=conf.get) == cohort.truth.noisy_modality
    return result
