"""Modality-level contributions: exact Shapley values over modality subsets, leave-one-out deltas.

Because absence is a flag, "the model with only modalities S" is one forward pass with the
presence mask ``present & S``: the value of a coalition is the model's output (probability, or
logit, of the explained class) with that mask. With ``M`` modalities that is ``2**M`` passes per
batch, so the exact computation is offered up to 6 modalities (64 passes).

A modality absent from a sample is a *null player* for that sample (every coalition gives the
same output with or without it), so its Shapley value would be exactly 0; it is reported as
NaN ("not attributed"), and the others are the exact Shapley values over the present ones.
Efficiency holds per sample: ``sum(shapley over present) = v(all present) - v(none)``.

``v(none)``: the model's output with nothing present. A method that cannot predict without
any modality (non-finite output) gets the uninformed value instead: ``1/K`` for probabilities,
0 for logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import factorial
from typing import Any, Callable

import numpy as np
import torch

from ..data.dataset import MultimodalDataset
from ..types import Batch
from .attributions import resolve_target

MAX_EXACT_MODALITIES = 6


@dataclass
class ModalityContributions:
    """Per-sample modality contributions.

    shapley, loo: ``(N, M)``; NaN where the modality is absent.
    full, empty:  ``(N,)`` output with every present modality / with none.
    loo[:, m] = full - output without m (how much the prediction loses when m is removed).
    """

    sample_ids: list[str]
    modality_names: list[str]
    present: np.ndarray
    target: np.ndarray
    full: np.ndarray
    empty: np.ndarray
    shapley: np.ndarray
    loo: np.ndarray
    output_kind: str = "prob"

    def to_frame(self):
        """Long table: ``sample_id, modality, present, shapley, loo_delta``."""
        import pandas as pd

        n, m = self.shapley.shape
        return pd.DataFrame({
            "sample_id": np.repeat(self.sample_ids, m),
            "modality": np.tile(self.modality_names, n),
            "present": self.present.reshape(-1),
            "target": np.repeat(self.target, m),
            "shapley": self.shapley.reshape(-1),
            "loo_delta": self.loo.reshape(-1),
        })


def _coalition_output(model, batch: Batch, mask: torch.Tensor, targets: torch.Tensor, output: str) -> np.ndarray:
    """``(B,)`` output of ``targets`` with presence ``batch.present & mask``."""
    present = batch.present & mask.view(1, -1)
    with torch.no_grad():
        logits = model(batch.with_present(present)).logits
        values = torch.softmax(logits, dim=-1) if output == "prob" else logits
        out = values.gather(1, targets.view(-1, 1)).squeeze(1).double().cpu().numpy()
    fallback = 1.0 / logits.shape[-1] if output == "prob" else 0.0
    nothing = ~present.any(dim=1).cpu().numpy()
    return np.where(nothing & ~np.isfinite(out), fallback, out)


def modality_shapley_batch(model, batch: Batch, *, target: Any = "predicted", output: str = "prob") -> ModalityContributions:
    """Exact modality Shapley values and leave-one-out deltas for one batch."""
    if output not in ("prob", "logit"):
        raise ValueError(f"output: expected 'prob' or 'logit', got {output!r}")
    names = model.modality_names
    M = len(names)
    if M > MAX_EXACT_MODALITIES:
        raise ValueError(f"exact Shapley values are offered up to {MAX_EXACT_MODALITIES} modalities; the model has {M}")
    model.eval()
    model.check_batch(batch)
    targets = resolve_target(model, batch, target)
    device = batch.present.device
    value: dict[frozenset, np.ndarray] = {}
    for r in range(M + 1):
        for subset in combinations(range(M), r):
            mask = torch.zeros(M, dtype=torch.bool, device=device)
            mask[list(subset)] = True
            value[frozenset(subset)] = _coalition_output(model, batch, mask, targets, output)
    everything = frozenset(range(M))
    shap = np.zeros((batch.size, M))
    for j in range(M):
        others = [k for k in range(M) if k != j]
        for r in range(M):
            w = factorial(r) * factorial(M - r - 1) / factorial(M)
            for subset in combinations(others, r):
                s = frozenset(subset)
                shap[:, j] += w * (value[s | {j}] - value[s])
    present = batch.present.cpu().numpy()
    loo = np.stack([value[everything] - value[everything - {j}] for j in range(M)], axis=1)
    return ModalityContributions(
        sample_ids=list(batch.sample_ids or [str(i) for i in range(batch.size)]),
        modality_names=list(names),
        present=present,
        target=targets.cpu().numpy(),
        full=value[everything],
        empty=value[frozenset()],
        shapley=np.where(present, shap, np.nan),
        loo=np.where(present, loo, np.nan),
        output_kind=output,
    )


def modality_shapley(
    model,
    data: MultimodalDataset,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    target: Any = "predicted",
    output: str = "prob",
    progress: Callable[[int, int], None] | None = None,
) -> ModalityContributions:
    """:func:`modality_shapley_batch` over a cohort in batches (``progress(done, total)``)."""
    from ..device import select_device
    from ..training.evaluate import ensure_aligned, model_batches

    data = ensure_aligned(model, data)
    dev = select_device(device) if device is not None else model.device
    model.to(dev)
    n = len(data)
    target_arr = None if isinstance(target, str) else np.broadcast_to(np.asarray(target), (n,))
    parts = []
    for index, batch in model_batches(model, data, batch_size=batch_size, device=dev, progress=progress):
        parts.append(modality_shapley_batch(model, batch, target=target if target_arr is None else target_arr[index], output=output))
    cat = lambda key: np.concatenate([getattr(p, key) for p in parts])  # noqa: E731
    return ModalityContributions(
        sample_ids=[s for p in parts for s in p.sample_ids], modality_names=parts[0].modality_names,
        present=cat("present"), target=cat("target"), full=cat("full"), empty=cat("empty"),
        shapley=cat("shapley"), loo=cat("loo"), output_kind=output,
    )
