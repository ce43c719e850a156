"""``fusioncore explain fidelity``: deletion / insertion curves, agreement and planted recovery as files.

:mod:`fusioncore.explain.fidelity` computes the curves, scores and recoveries; this module writes
them (CSV tables and one curve figure per modality through :mod:`fusioncore.viz`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .. import viz
from ..data.align import align_to_schema
from ..data.dataset import MultimodalDataset
from ..explain.attributions import load_model
from ..explain.fidelity import (
    agreement_table,
    auc_table,
    cohort_curves,
    curves_frame,
    explanation_scores,
)
from ..explain.planted import recovery_table, truth_masks


def run_fidelity(
    checkpoint: Any,
    data: MultimodalDataset,
    out_dir: Any = "fidelity",
    *,
    truth: Any = None,
    methods: Sequence[str] = ("ig",),
    steps: int = 10,
    batch_size: int = 32,
    device: str | torch.device | None = "auto",
    max_samples: int | None = None,
    top_k: int = 5,
    seed: int = 0,
    figure_formats: Sequence[str] = ("png", "html", "csv", "json"),
    progress: Callable[[int, int], None] | None = None,
):
    """``fusioncore explain fidelity``: deletion/insertion AUCs, agreement and planted recovery.

    Writes into ``out_dir``: ``fidelity.csv`` (kind, modality, mode, mean/std AUC, n),
    ``fidelity_curves.csv`` (mean curve per kind/modality/mode), ``agreement.csv`` (gates vs each
    attribution method per modality: mean Spearman, mean top-``top_k`` overlap),
    ``recovery.csv`` when ``truth`` is given (the demo cohort's ``GroundTruth`` or a dict of
    unit masks; per kind and modality: AUROC, top-k hit rate; the planted ordering is then also
    a curve kind, ``truth``), and one curve figure per modality. The explained class is the true
    label (the predicted one without labels). ``max_samples`` keeps the first N samples.
    Returns the path of ``fidelity.csv``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(checkpoint, device)
    if data.schema != model.schema:
        data = align_to_schema(data, model.schema)
    masks = truth_masks(truth, model.schema, len(data)) if truth is not None else {}
    if max_samples is not None and max_samples < len(data):
        keep = np.arange(max_samples)
        data = data.subset(keep)
        masks = {k: v[keep] for k, v in masks.items()}
    patch = model.explanation_patch_size
    scores = explanation_scores(model, data, methods=methods, batch_size=batch_size, seed=seed)
    if masks:
        scores["truth"] = {n: m.astype(float) for n, m in masks.items()}
    curves = cohort_curves(model, data, scores, steps=steps, patch_size=patch, batch_size=batch_size, progress=progress)
    table = out / "fidelity.csv"
    auc_table(curves).to_csv(table, index=False)
    frame = curves_frame(curves)
    mean_curves = frame.groupby(["kind", "modality", "mode", "fraction"], sort=False)["probability"].mean().reset_index()
    mean_curves.to_csv(out / "fidelity_curves.csv", index=False)
    agreement_table(scores, methods, top_k=top_k).to_csv(out / "agreement.csv", index=False)
    if masks:
        recovery_table(scores, masks).to_csv(out / "recovery.csv", index=False)
    ckpt = model.checkpoint_path
    for n in dict.fromkeys(c.modality for c in curves):
        part = frame[frame["modality"] == n]
        if part.empty:
            continue
        fig = viz.fidelity_curve_figure(part, title=f"Deletion and insertion curves ({n})")
        prov = viz.provenance(view=f"fidelity-{n}", method=model.method, checkpoint=ckpt, config=model.config, seed=seed,
                              extra={"kinds": list(scores), "steps": steps, "n_samples": len(data)})
        viz.export_figure(fig, part, prov, out, viz.make_export_stem(f"fidelity-{n}", model.method), formats=figure_formats)
    return table


__all__ = ["run_fidelity"]
