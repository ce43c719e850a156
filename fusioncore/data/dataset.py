"""In-memory multimodal datasets and their conversion to model batches.

Loaders of every layout (MOGONET, tables, images, synthetic cohorts) return the same
:class:`MultimodalDataset`, so training, evaluation, explanations and the dashboard never care
where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np
import torch

from ..config import DataSchema
from ..types import Batch


@dataclass(frozen=True)
class MultimodalDataset:
    """Samples with named modalities, a presence matrix and (optionally) labels.

    features: modality name -> ``(N, *shape)`` float32 array of *raw* values (before the
              checkpoint's preprocessing). Rows of absent modalities hold zeros.
    present:  ``(N, M)`` bool, column order = ``schema.modalities``.
    labels:   ``(N,)`` int64 class indices into ``schema.classes``, or None (unlabelled).
    padding:  optional modality name -> ``(N, L)`` bool, True = a real token (sequence
              modalities padded to a fixed length), passed on as ``Batch.padding``.
    notes:    what the loader did that a user should know (a separator it detected, extra
              columns it ignored); printed by the CLI and shown by the dashboard.
    warnings: what makes a result built on this data suspect (samples dropped, a modality
              missing for many samples, a one-sample class); the CLI prints them on stderr as
              warnings and the dashboard shows them with ``st.warning`` — the one path every
              data warning takes (:func:`fusioncore.cli.args.report_data`).
    """

    schema: DataSchema
    features: dict[str, np.ndarray]
    present: np.ndarray
    labels: np.ndarray | None
    sample_ids: tuple[str, ...]
    source: str = ""
    notes: tuple[str, ...] = field(default=())
    padding: dict[str, np.ndarray] | None = None
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.sample_ids)
        if self.present.shape != (n, len(self.schema.modalities)):
            raise ValueError(
                f"{self.source or 'dataset'}: presence matrix shape {self.present.shape} does not match "
                f"{n} samples x {len(self.schema.modalities)} modalities"
            )
        for spec in self.schema.modalities:
            arr = self.features.get(spec.name)
            if arr is None:
                raise ValueError(f"{self.source or 'dataset'}: no array for modality {spec.name!r}")
            if arr.shape[0] != n or tuple(arr.shape[1:]) != tuple(spec.shape):
                raise ValueError(
                    f"{self.source or 'dataset'}: modality {spec.name!r} has shape {arr.shape}, "
                    f"expected ({n}, {', '.join(map(str, spec.shape))})"
                )
        if self.labels is not None and self.labels.shape != (n,):
            raise ValueError(f"{self.source or 'dataset'}: {self.labels.shape[0]} labels for {n} samples")

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def modality_names(self) -> list[str]:
        return self.schema.modality_names

    def subset(self, index: np.ndarray | list[int]) -> "MultimodalDataset":
        """Rows ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        return replace(
            self,
            features={k: v[index] for k, v in self.features.items()},
            present=self.present[index],
            labels=None if self.labels is None else self.labels[index],
            sample_ids=tuple(self.sample_ids[i] for i in index),
            padding=None if self.padding is None else {k: v[index] for k, v in self.padding.items()},
        )

    def with_present(self, present: np.ndarray) -> "MultimodalDataset":
        """The same samples with another presence matrix (modality removal at test time)."""
        present = np.asarray(present, dtype=bool)
        return replace(self, present=present & self.present)

    def class_counts(self) -> np.ndarray:
        if self.labels is None:
            raise ValueError(f"{self.source or 'dataset'} has no labels")
        return np.bincount(self.labels, minlength=self.schema.n_classes)


def select_modalities(data: MultimodalDataset, modalities) -> MultimodalDataset:
    """``data`` restricted to the named modalities, in the given order.

    Samples left with no modality keep their rows (an all-False presence row), so split sizes
    and sample order do not change.
    """
    names = [n.strip() for n in modalities.split(",")] if isinstance(modalities, str) else list(modalities)
    unknown = [n for n in names if n not in data.modality_names]
    if unknown or not names:
        raise ValueError(f"cannot select modalities {names}: the data has {data.modality_names}")
    schema = DataSchema(tuple(data.schema.modality(n) for n in names), data.schema.classes)
    cols = [data.schema.index(n) for n in names]
    padding = None if data.padding is None else {k: v for k, v in data.padding.items() if k in names}
    return replace(data, schema=schema, features={n: data.features[n] for n in names}, present=data.present[:, cols],
                   padding=padding or None)


@dataclass(frozen=True)
class DatasetSplits:
    """A train split and a test split (and an optional validation split)."""

    train: MultimodalDataset
    test: MultimodalDataset
    val: MultimodalDataset | None = None

    @property
    def schema(self) -> DataSchema:
        return self.train.schema

    def select(self, modalities) -> "DatasetSplits":
        """Every split restricted to ``modalities`` (see :func:`select_modalities`)."""
        pick = lambda d: None if d is None else select_modalities(d, modalities)  # noqa: E731
        return DatasetSplits(train=pick(self.train), test=pick(self.test), val=pick(self.val))


def to_batch(
    data: MultimodalDataset,
    preprocessing: dict | None = None,
    device: torch.device | str = "cpu",
    index: np.ndarray | None = None,
) -> Batch:
    """Turn (rows ``index`` of) a dataset into a model :class:`Batch`.

    ``preprocessing`` (modality -> fitted transform, usually the checkpoint's) is applied to
    the raw features; absent rows are zeroed *after* scaling, so they are finite whatever the
    scaling does, and the model learns nothing from them because ``present`` says they are absent.
    """
    rows = np.arange(len(data)) if index is None else np.asarray(index)
    present = data.present[rows]
    inputs = {}
    for j, name in enumerate(data.modality_names):
        x = data.features[name][rows]
        if preprocessing is not None and name in preprocessing:
            x = preprocessing[name].transform(x)
        x = np.array(x, dtype=np.float32, copy=True)
        x[~present[:, j]] = 0.0
        inputs[name] = torch.from_numpy(x).to(device)
    labels = None if data.labels is None else torch.from_numpy(data.labels[rows].astype(np.int64)).to(device)
    padding = None
    if data.padding:
        padding = {k: torch.from_numpy(np.array(v[rows], dtype=bool)).to(device) for k, v in data.padding.items()}
    return Batch(
        inputs=inputs,
        present=torch.from_numpy(present.copy()).to(device),
        labels=labels,
        sample_ids=[data.sample_ids[i] for i in rows],
        padding=padding,
    )


def iter_batches(
    data: MultimodalDataset,
    batch_size: int | None,
    preprocessing: dict | None = None,
    device: torch.device | str = "cpu",
    shuffle: bool = False,
    generator: np.random.Generator | None = None,
) -> Iterator[Batch]:
    """Mini-batches over ``data`` (one full batch when ``batch_size`` is None)."""
    n = len(data)
    order = np.arange(n)
    if shuffle:
        order = (generator or np.random.default_rng()).permutation(n)
    step = n if not batch_size else batch_size
    for start in range(0, n, max(step, 1)):
        yield to_batch(data, preprocessing, device, order[start : start + step])
