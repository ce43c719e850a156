"""Simulated modality sparsity ("predrop", spec §1a) and the presence matrix that records it.

Each modality of each sample is deleted independently with probability ``p``, **once**, from a
seeded generator, **before** the train/test split, so the pattern is fixed across epochs and
the test set is as sparse as the training set. The resulting presence matrix is the truth from
then on: it is written beside the data and into the checkpoint folder (``presence.csv``) and
read back at inference, never re-sampled (the original inference script re-seeds and may draw
another pattern; this avoids that).
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .dataset import MultimodalDataset

PRESENCE_FILE = "presence.csv"


def predrop(present: np.ndarray, p: float | Sequence[float], seed: int) -> np.ndarray:
    """``(N, M)`` presence -> a copy with each entry deleted with probability ``p`` (per modality
    if a sequence). One uniform draw per cell, in row-major order, whatever is already absent, so
    the same seed always gives the same pattern for the same ``(N, M)``."""
    present = np.asarray(present, dtype=bool)
    if present.ndim != 2:
        raise ValueError(f"predrop: presence must be (samples, modalities), got shape {present.shape}")
    probs = np.broadcast_to(np.asarray(p, dtype=np.float64), (present.shape[1],))
    if np.any(probs < 0) or np.any(probs > 1):
        raise ValueError(f"predrop: probabilities must be in [0, 1], got {list(np.atleast_1d(p))}")
    draw = np.random.default_rng(seed).random(present.shape)
    return present & (draw >= probs[None, :])


def apply_predrop(data: MultimodalDataset, p: float | Sequence[float], seed: int) -> MultimodalDataset:
    """``data`` with predrop applied to its presence matrix (do this before splitting)."""
    new = predrop(data.present, p, seed)
    note = f"predrop p={p} seed={seed}: {100 * (1 - new.mean()):.1f}% of modality slots absent"
    return replace(data, present=new, notes=tuple(data.notes) + (note,))


def write_presence(path: str | Path, data: MultimodalDataset) -> Path:
    """Write ``sample_id,<modality>...`` rows of 0/1 (a folder gets ``presence.csv``)."""
    path = Path(path)
    if path.is_dir():
        path = path / PRESENCE_FILE
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sample_id", *data.modality_names])
        for sid, row in zip(data.sample_ids, data.present):
            w.writerow([sid, *(int(v) for v in row)])
    return path


def read_presence(path: str | Path, data: MultimodalDataset) -> MultimodalDataset:
    """``data`` with the stored presence matrix of ``path`` (a file or a folder holding
    ``presence.csv``). Every sample of ``data`` must be listed; the stored pattern replaces the
    current one (it can only remove modalities the data has, never invent them)."""
    path = Path(path)
    if path.is_dir():
        path = path / PRESENCE_FILE
    if not path.is_file():
        raise ValueError(f"{path}: no presence file (expected a CSV written by write_presence)")
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][:1] != ["sample_id"] or rows[0][1:] != data.modality_names:
        raise ValueError(
            f"{path}: header must be sample_id,{','.join(data.modality_names)}; got {','.join(rows[0]) if rows else '(empty file)'}"
        )
    stored = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]) or any(v not in ("0", "1") for v in row[1:]):
            raise ValueError(f"{path}, row {line}: expected a sample id and {len(data.modality_names)} values 0/1, got {row}")
        stored[row[0]] = [v == "1" for v in row[1:]]
    missing = [s for s in data.sample_ids if s not in stored]
    if missing:
        raise ValueError(f"{path}: {len(missing)} sample(s) of the data are not listed, e.g. {missing[:3]}")
    present = np.array([stored[s] for s in data.sample_ids], dtype=bool)
    return replace(data, present=present & data.present)


__all__ = ["PRESENCE_FILE", "apply_predrop", "predrop", "read_presence", "write_presence"]
