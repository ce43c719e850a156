"""``fusioncore explain attributions``: a cohort's captum attributions written as tables and figures.

:mod:`fusioncore.explain.attributions` computes the :class:`Attributions`; this module only writes
them (CSV tables, one figure per modality and a samples x modalities heatmap, each exported with its
CSV and provenance JSON through :mod:`fusioncore.viz`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from .. import viz
from ..checkpoint import checkpoint_hash
from ..data.align import align_to_schema
from ..data.dataset import MultimodalDataset
from ..explain.attributions import METHOD_LABELS, Attributions, Progress, attribute_dataset, load_model


def run_attributions(
    checkpoint: Any,
    data: MultimodalDataset,
    method: str = "ig",
    out_dir: Any = "attributions",
    batch_size: int = 32,
    device: str | torch.device | None = "auto",
    *,
    target: Any = "predicted",
    n_steps: int = 32,
    top_k: int = 20,
    figure_formats: Sequence[str] = ("png", "html", "csv", "json"),
    progress: Progress | None = None,
):
    """``fusioncore explain attributions``: attribute a cohort and write tables and figures.

    Writes into ``out_dir``: ``attributions_<method>.csv`` (long table: sample, modality, unit
    = feature / image patch / token, attribution), ``modality_totals_<method>.csv`` (per-sample
    sum per modality, the explained class, the output and captum's convergence delta), and per
    modality a figure of the cohort's mean |attribution| (tabular: top-``top_k`` features; image:
    the first sample's map over its image) plus a samples x modalities heatmap, each exported
    with its CSV and provenance JSON. Returns the path of the main table.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(checkpoint, device)
    if data.schema != model.schema:
        data = align_to_schema(data, model.schema)
    patch = model.explanation_patch_size
    attrs = attribute_dataset(model, data, method, batch_size=batch_size, target=target, n_steps=n_steps,
                              patch_size=patch, progress=progress)
    table = out / f"attributions_{method}.csv"
    attrs.to_frame(patch_size=patch).to_csv(table, index=False)
    _totals_frame(attrs).to_csv(out / f"modality_totals_{method}.csv", index=False)

    ckpt = model.checkpoint_path or (checkpoint if not hasattr(checkpoint, "forward") else None)
    digest = checkpoint_hash(ckpt) if ckpt is not None else None

    def export(fig, frame, view: str, sample_id=None, active=None) -> None:
        prov = viz.provenance(view=view, method=model.method, checkpoint=ckpt, checkpoint_sha256=digest, config=model.config,
                              sample_id=sample_id, active_modalities=active,
                              extra={"attribution_method": method, "target": str(target), "n_samples": len(attrs.sample_ids)})
        viz.export_figure(fig, frame, prov, out, viz.make_export_stem(view, model.method, sample_id), formats=figure_formats)

    _figures(attrs, data, export, patch=patch, top_k=top_k)
    return table


def _totals_frame(attrs: Attributions) -> pd.DataFrame:
    """Per sample: the summed attribution per modality, the explained class, the output, captum's delta."""
    totals = pd.DataFrame(attrs.modality_totals(), columns=attrs.modality_names)
    totals.insert(0, "sample_id", attrs.sample_ids)
    totals["target"] = attrs.target
    totals[f"output_{attrs.output_kind}"] = attrs.output
    totals["convergence_delta"] = attrs.delta
    return totals


def _figures(attrs: Attributions, data: MultimodalDataset, export: Callable, *, patch: int, top_k: int) -> None:
    """Per modality the cohort's mean |attribution| (an image: its first sample's map), then the
    samples x modalities heatmap, each handed to ``export(fig, frame, view, sample_id, active)``."""
    method, label = attrs.method, METHOD_LABELS[attrs.method]
    for j, name in enumerate(attrs.modality_names):
        rows = np.flatnonzero(attrs.present[:, j])
        if not len(rows):
            continue
        kind = attrs.kinds[name]
        if kind == "image":
            i = int(rows[0])
            image = data.features[name][i]  # raw pixels, the view a user recognises
            heat = np.abs(attrs.scores(name)[i])
            fig = viz.image_heatmap_figure(image, heat, clip_percentiles=(1, 99), top_k=5, patch_size=patch,
                                           title=f"{label}: |attribution| ({name}, sample {attrs.sample_ids[i]})")
            export(fig, viz.image_heatmap_data(image, heat, patch_size=patch, top_k=5), f"attr-{method}-{name}",
                   attrs.sample_ids[i], [n for n, p in zip(attrs.modality_names, attrs.present[i]) if p])
        else:
            scores = np.nanmean(np.abs(attrs.scores(name)[rows]), axis=0)
            names = attrs.feature_names.get(name) if kind == "tabular" else None
            fig = viz.attribution_bar_figure(scores, names, top_k=top_k, method=f"{label}, mean |attribution| over {len(rows)} samples, {name}")
            export(fig, viz.attribution_bar_data(scores, names, top_k=None), f"attr-{method}-{name}")
    matrix = attrs.modality_totals()
    fig = viz.attribution_heatmap_figure(matrix, attrs.sample_ids, attrs.modality_names,
                                         title=f"{label}: summed attribution per modality (blank = absent)")
    export(fig, viz.attribution_heatmap_data(matrix, attrs.sample_ids, attrs.modality_names), f"attr-{method}-modalities")


__all__ = ["run_attributions"]
