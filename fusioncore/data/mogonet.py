"""The MOGONET layout (ROSMAP, BRCA): ``{v}_tr.csv``, ``{v}_te.csv``, ``labels_{tr,te}.csv``.

Feature files have no header and no index; row *i* of every view file and of the labels file
is the same sample. The published MM-dynamics numbers need per-feature min-max scaling with
*train* statistics: that scaling is fitted by the trainer and stored in the checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..config import DataSchema, ModalitySpec
from .dataset import DatasetSplits, MultimodalDataset
from .errors import DataError, where
from .readers import check_readable, read_lines, read_numeric_matrix

VIEW_NAMES = {1: "mRNA", 2: "methylation", 3: "miRNA"}
KNOWN_CLASSES = {
    "rosmap": ("NC", "AD"),
    "brca": ("Normal-like", "Basal-like", "HER2-enriched", "Luminal A", "Luminal B"),
}


def find_views(folder: Path) -> list[int]:
    """View numbers that have both a train and a test file."""
    views = sorted(int(m.group(1)) for p in folder.glob("*_tr.csv") if (m := re.fullmatch(r"(\d+)_tr\.csv", p.name)))
    missing = [v for v in views if not (folder / f"{v}_te.csv").is_file()]
    if missing:
        raise DataError(f"{folder}: view(s) {missing} have a _tr.csv file but no _te.csv file")
    if not views:
        raise DataError(f"{folder}: no MOGONET view files found (expected 1_tr.csv, 1_te.csv, 2_tr.csv, ...)")
    return views


def read_labels(path: Path) -> np.ndarray:
    """One class index per line (stored as floats by MOGONET): integer, non-negative."""
    values, _ = read_numeric_matrix(path, header=False)
    if values.shape[1] != 1:
        raise DataError(f"{path}: expected one label per line, found {values.shape[1]} columns")
    labels = values[:, 0]
    bad = [
        f"{where(path, i + 1)}: label {v:g} is not a non-negative whole number"
        for i, v in enumerate(labels)
        if v < 0 or v != np.floor(v)
    ]
    if bad:
        raise DataError(f"{path}: labels must be class indices 0, 1, ...", bad)
    return labels.astype(np.int64)


def class_names(folder: Path, n_classes: int) -> tuple[str, ...]:
    """Names from ``classes.txt`` if present, the known dataset's names, else ``class 0..K-1``."""
    custom = folder / "classes.txt"
    if custom.is_file():
        names = tuple(read_lines(custom))
        if len(names) < n_classes:
            raise DataError(f"{custom}: {len(names)} class names, but labels go up to {n_classes - 1}")
        return names
    known = KNOWN_CLASSES.get(folder.name.lower())
    if known and len(known) >= n_classes:
        return known
    return tuple(f"class {k}" for k in range(n_classes))


def load_mogonet(path: str | Path, *, view_names: dict[int, str] | None = None) -> DatasetSplits:
    """Load a MOGONET-format folder as train/test splits of raw (unscaled) features."""
    folder = Path(path)
    check_readable(folder, "folder")
    views = find_views(folder)
    names = {**VIEW_NAMES, **(view_names or {})} if len(views) <= 3 else dict(view_names or {})
    labels = {s: read_labels(folder / f"labels_{s}.csv") for s in ("tr", "te")}
    counts = np.bincount(labels["tr"])
    if np.count_nonzero(counts) < 2:
        raise DataError(f"{folder / 'labels_tr.csv'}: every training sample has the label {int(labels['tr'][0])}; "
                        "a classifier needs training samples of at least two classes")
    n_classes = int(labels["tr"].max()) + 1
    unknown = [
        f"{where(folder / 'labels_te.csv', i + 1)}: label {v} does not occur in labels_tr.csv"
        for i, v in enumerate(labels["te"])
        if v >= n_classes
    ]
    if unknown:
        raise DataError(f"{folder / 'labels_te.csv'}: unknown labels", unknown)

    specs, feats = [], {"tr": {}, "te": {}}
    for v in views:
        name = names.get(v, f"view{v}")
        for split in ("tr", "te"):
            file = folder / f"{v}_{split}.csv"
            x, _ = read_numeric_matrix(file)
            if x.shape[0] != len(labels[split]):
                raise DataError(
                    f"{file}: {x.shape[0]} rows, but labels_{split}.csv has {len(labels[split])} (rows must be the same samples)"
                )
            feats[split][name] = x
        d_tr, d_te = feats["tr"][name].shape[1], feats["te"][name].shape[1]
        if d_tr != d_te:
            raise DataError(f"{folder / f'{v}_te.csv'}: {d_te} columns, but {v}_tr.csv has {d_tr}")
        featfile = folder / f"{v}_featname.csv"
        features = tuple(read_lines(featfile)) if featfile.is_file() else tuple(f"{name}_{j}" for j in range(d_tr))
        if len(features) != d_tr:
            raise DataError(f"{featfile}: {len(features)} feature names for {d_tr} columns in {v}_tr.csv")
        specs.append(ModalitySpec(name=name, kind="tabular", shape=(d_tr,), features=features))

    schema = DataSchema(modalities=tuple(specs), classes=class_names(folder, n_classes))
    small = [f"labels_tr.csv: class {schema.classes[k]!r} ({k}): {counts[k]} sample{'s' if counts[k] > 1 else ''}"
             for k in np.flatnonzero(counts) if counts[k] < 3]
    gaps = [f"labels_tr.csv: class {schema.classes[k]!r} ({k}) has no training sample, but labels go up to "
            f"{n_classes - 1}" for k in np.flatnonzero(counts == 0)]

    def split(tag: str, prefix: str) -> MultimodalDataset:
        n = len(labels[tag])
        return MultimodalDataset(
            schema=schema,
            features=feats[tag],
            present=np.ones((n, len(specs)), dtype=bool),
            labels=labels[tag],
            sample_ids=tuple(f"{prefix}{i:04d}" for i in range(n)),
            source=f"mogonet:{folder}",
            warnings=tuple(small + gaps),
        )

    return DatasetSplits(train=split("tr", "train_"), test=split("te", "test_"))
