"""CMU-MOSEI computational-sequence (``.csd``, HDF5) files, word-aligned (spec §1b "Datasets").

A CMU-MultimodalSDK computational sequence is an HDF5 file with one top-level group (e.g.
``"COVAREP"`` or ``"All Labels"``) holding ``data/<segment id>/features`` ``(T, d)`` and
``data/<segment id>/intervals`` ``(T, 2)`` plus a ``metadata`` group. After word alignment
every modality has one feature row per word of a segment; the labels sequence has one
``(1, 7)`` row per segment: sentiment in [-3, 3] and six emotion intensities in [0, 3]
(SDK order: happy, sad, anger, surprise, disgust, fear).

:func:`load_cmu_mosei` returns the segments of the labels file as a :class:`CMUMosei`: a
``MultimodalDataset`` of sequence modalities (padded / truncated to ``max_lengths``, the
paper's 1500 / 450 / 450 / 50 for COVAREP / FACET / OpenFace / GloVe), the per-token
``padding`` masks (True = real token) that MCA needs, and the 7-dim ``targets``. The
dataset's class label is binary sentiment (``sentiment >= 0`` -> ``"non-negative"``), a common
MOSEI convention; probes can use ``targets`` directly. Non-finite feature values (COVAREP
holds ``-inf``) are set to 0, as the SDK's usual preprocessing does, and counted in the notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import DataSchema, ModalitySpec
from ..types import Batch
from .assemble import join_rows
from .dataset import DatasetSplits, MultimodalDataset, to_batch
from .errors import DataError
from .splits import split_dataset

PAPER_MAX_LENGTHS = {"covarep": 1500, "facet": 450, "openface": 450, "glove": 50}
LABEL_NAMES = ("sentiment", "happy", "sad", "anger", "surprise", "disgust", "fear")


def _h5py():
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading CMU-MOSEI .csd files needs h5py: pip install h5py") from err
    return h5py


def read_csd(path: str | Path) -> dict[str, np.ndarray]:
    """``{segment id: features (T, d)}`` of a computational-sequence file."""
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: not an HDF5 computational-sequence file ({err})") from err
    with fh:
        roots = list(fh.keys())
        if len(roots) != 1:
            raise DataError(f"{path}: expected one top-level group (the sequence name), found {roots}")
        root = fh[roots[0]]
        if "data" not in root:
            raise DataError(f"{path}: group {roots[0]!r} has no 'data' group (not a computational sequence)")
        out = {}
        dims = set()
        for sid, group in root["data"].items():
            if "features" not in group:
                raise DataError(f"{path}: segment {sid!r} has no 'features' dataset")
            x = np.asarray(group["features"][()], dtype=np.float32)
            if x.ndim != 2:
                raise DataError(f"{path}: segment {sid!r} features have shape {x.shape}, expected (tokens, features)")
            dims.add(x.shape[1])
            out[sid] = x
        if len(dims) > 1:
            raise DataError(f"{path}: segments have different feature sizes {sorted(dims)}")
    return out


@dataclass(frozen=True)
class CMUMosei:
    """Word-aligned CMU-MOSEI segments.

    dataset: sequence modalities ``(N, L_m, d_m)``, presence, binary-sentiment labels.
    padding: modality -> ``(N, L_m)`` bool, True = a real (word) token.
    targets: ``(N, 7)`` float labels (sentiment, 6 emotions).
    """

    dataset: MultimodalDataset
    padding: dict[str, np.ndarray]
    targets: np.ndarray

    def batch(self, index: np.ndarray | None = None, device: str | torch.device = "cpu") -> Batch:
        """A model batch of rows ``index`` with the padding masks attached."""
        rows = np.arange(len(self.dataset)) if index is None else np.asarray(index)
        b = to_batch(self.dataset, None, device, rows)
        b.padding = {k: torch.from_numpy(v[rows].copy()).to(device) for k, v in self.padding.items()}
        return b


def _read_modality(name: str, path, ids: list[str], max_lengths: dict[str, int] | None, notes: list[str]):
    """``(spec, (n, L, d) tokens, (n, L) real-token mask, present (n,))`` of one ``.csd`` file joined
    onto the label segments ``ids``: tokens beyond ``L`` dropped, non-finite values set to 0, a
    segment with no token absent."""
    seq = read_csd(path)
    if not seq:
        raise DataError(f"{path}: no segments")
    d = next(iter(seq.values())).shape[1]
    longest = max(v.shape[0] for v in seq.values())
    length = int((max_lengths or {}).get(name, longest))
    if length < 1:
        raise ValueError(f"max_lengths[{name!r}] must be >= 1, got {length}")
    wanted = set(ids)
    kept = [sid for sid in seq if sid in wanted]
    tokens = np.zeros((len(kept), length, d), dtype=np.float32)
    lengths = np.array([seq[sid].shape[0] for sid in kept], dtype=np.int64)
    nonfinite, truncated = 0, int((lengths > length).sum())
    for r, sid in enumerate(kept):
        v = seq[sid][:length]
        bad = ~np.isfinite(v)
        nonfinite += int(bad.sum())
        tokens[r, : v.shape[0]] = np.where(bad, 0.0, v)
    real = np.arange(length)[None, :] < lengths[:, None]
    x, _ = join_rows(ids, kept, tokens)
    mask, _ = join_rows(ids, kept, real, dtype=bool)
    if nonfinite:
        notes.append(f"{Path(path).name}: {nonfinite} non-finite value(s) set to 0")
    if truncated:
        notes.append(f"{Path(path).name}: {truncated} segment(s) truncated to {length} tokens")
    return ModalitySpec(name, "sequence", (length, d)), x, mask, mask.any(axis=1)


def read_cmu_mosei(
    features: dict[str, str | Path],
    labels: str | Path,
    *,
    max_lengths: dict[str, int] | None = None,
) -> CMUMosei:
    """Read the modality ``.csd`` files (name -> path) and the labels ``.csd``.

    Segments are those of the labels file, sorted by id. A segment missing from a modality's
    file, or with no token there, has that modality absent. Tokens beyond ``max_lengths[name]``
    (default: the longest segment) are dropped from the end.
    """
    label_seq = read_csd(labels)
    bad = [f"{labels}: segment {sid!r} has label shape {v.shape}, expected (1, 7)" for sid, v in label_seq.items() if v.shape != (1, 7)]
    if bad:
        raise DataError(f"{labels}: labels must be one row of 7 values per segment", bad)
    ids = sorted(label_seq)
    if not ids:
        raise DataError(f"{labels}: no segments")
    targets = np.stack([label_seq[s][0] for s in ids]).astype(np.float32)
    n = len(ids)
    specs, arrays, padding = [], {}, {}
    present = np.zeros((n, len(features)), dtype=bool)
    notes = []
    for j, (name, path) in enumerate(features.items()):
        spec, arrays[name], padding[name], present[:, j] = _read_modality(name, path, ids, max_lengths, notes)
        specs.append(spec)
    data = MultimodalDataset(
        schema=DataSchema(tuple(specs), ("negative", "non-negative")),
        features=arrays,
        present=present,
        labels=(targets[:, 0] >= 0).astype(np.int64),
        sample_ids=tuple(ids),
        source=f"cmu_mosei:{Path(labels).parent}",
        notes=tuple(notes),
        padding=padding,
    )
    return CMUMosei(dataset=data, padding=padding, targets=targets)


def load_cmu_mosei(
    path: str | Path,
    *,
    max_lengths: dict[str, int] | None = None,
    test_fraction: float = 0.1,
    seed: int = 43,
    predrop: float = 0.0,
) -> DatasetSplits:
    """The CLI's ``cmu:DIR``: every ``.csd`` in ``DIR`` is a modality except the one whose name
    contains ``label``. Modalities named after COVAREP / FACET / OpenFace / GloVe get the
    paper's lengths (1500 / 450 / 450 / 50) unless ``max_lengths`` says otherwise.

    The splits carry the per-token padding masks (``MultimodalDataset.padding``), which
    ``to_batch`` passes to the model as ``Batch.padding``.
    """
    folder = Path(path)
    files = sorted(folder.glob("*.csd")) if folder.is_dir() else []
    labels = [p for p in files if "label" in p.stem.lower()]
    if len(labels) != 1:
        raise DataError(f"{folder}: expected exactly one labels .csd (a name containing 'label'), found {[p.name for p in labels]}")
    features = {}
    for p in files:
        if p in labels:
            continue
        short = next((k for k in PAPER_MAX_LENGTHS if k in p.stem.lower()), p.stem.lower())
        features[short] = p
    if not features:
        raise DataError(f"{folder}: no modality .csd file beside {labels[0].name}")
    lengths = {k: v for k, v in PAPER_MAX_LENGTHS.items() if k in features}
    lengths.update(max_lengths or {})
    data = read_cmu_mosei(features, labels[0], max_lengths=lengths).dataset
    if predrop > 0:
        from .predrop import apply_predrop

        data = apply_predrop(data, predrop, seed)
    return split_dataset(data, test_fraction, seed)


__all__ = ["CMUMosei", "LABEL_NAMES", "PAPER_MAX_LENGTHS", "load_cmu_mosei", "read_cmu_mosei", "read_csd"]
