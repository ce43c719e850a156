"""Batched inference and evaluation of any registered method: the one pass of a model over a dataset.

:func:`model_batches` is how every whole-dataset computation walks the rows (here ``predict``;
explain's attention maps, Shapley values and perturbation curves), so alignment, preprocessing,
device and eval mode are decided once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from ..data.align import align_to_schema
from ..data.dataset import MultimodalDataset, to_batch
from ..metrics import classification_metrics, tcp_errors, tcp_statistics
from ..types import Batch, FusionOutput


@dataclass
class Prediction:
    """Model outputs for a whole dataset (on CPU, detached, rows in dataset order)."""

    data: MultimodalDataset
    output: FusionOutput

    @property
    def probabilities(self) -> np.ndarray:
        return self.output.probabilities.numpy()

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)


def ensure_aligned(model, data: MultimodalDataset) -> MultimodalDataset:
    """``data`` in the model's schema (columns matched by name; the same object when it already is)."""
    return data if data.schema == model.schema else align_to_schema(data, model.schema)


def model_batches(model, data: MultimodalDataset, *, batch_size: int, device: str | torch.device | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[np.ndarray, Batch]]:
    """``(row indices, batch)`` over ``data`` (in the model's schema) in row order, with the model's
    preprocessing, on ``device`` (default: the model's), the model in eval mode.

    Every pass of a model over a dataset (predictions, attention maps, Shapley values, perturbation
    curves) walks the rows this way; ``progress(done, total)`` is called after each batch's work.
    """
    device = torch.device(device) if device is not None else model.device
    model.eval()
    n = len(data)
    for start in range(0, n, batch_size):
        index = np.arange(start, min(start + batch_size, n))
        yield index, to_batch(data, model.preprocessing, device, index)
        if progress is not None:
            progress(int(index[-1]) + 1, n)


@torch.no_grad()
def predict(
    model,
    data: MultimodalDataset,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress=None,
) -> Prediction:
    """Run ``model`` (eval mode) over ``data`` in batches, applying the model's preprocessing.

    ``data`` is first aligned to the model's schema (columns matched by name). ``progress`` is
    an optional callable ``(done, total)`` for long cohorts (the dashboard's progress bar).
    """
    data = ensure_aligned(model, data)
    outputs = [model(batch).cpu() for _, batch in model_batches(model, data, batch_size=batch_size, device=device,
                                                                progress=progress)]
    return Prediction(data=data, output=FusionOutput.cat(outputs))


def evaluate_model(model, data: MultimodalDataset, *, batch_size: int = 256, tcp: bool = True) -> dict:
    """Classification metrics and (for methods with TCP confidence) TCP-error statistics."""
    pred = predict(model, data, batch_size=batch_size)
    if pred.data.labels is None:
        raise ValueError(f"{data.source or 'data'} has no labels: cannot evaluate")
    result = classification_metrics(pred.data.labels, pred.probabilities)
    if tcp and pred.output.confidence:
        errors = tcp_errors(pred.output, pred.data.labels, pred.data.sample_ids, pred.data.modality_names)
        result["tcp"] = {name: tcp_statistics(e) for name, e in errors.items()}
    return result
