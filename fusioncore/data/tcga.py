"""TCGA-style multi-omics tables (spec §1b "Datasets"): one table per omics keyed by sample id,
plus a labels table.

Layout (CSV, TSV or parquet; first column = sample id unless ``id_column`` names another)::

    rna.csv      sample_id,GENE1,GENE2,...      one row per sample that has this omics
    protein.csv  sample_id,P1,P2,...            empty / NA / NaN cells = missing values
    labels.csv   sample_id,label                class names (strings) or integers

A sample listed in ``labels`` but absent from an omics table has that modality **absent**
(presence False, zeros). Missing *cells* of a present omics (RPPA has many) stay NaN in the
features: the MCA-family tokeniser key-masks them (the original stores them as -10000 and
masks them). Methods without a missing-value mask need them imputed first. ``zscore=True``
standardises every feature over the samples that have it (the original's preprocessing).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DataSchema, ModalitySpec
from .assemble import join_rows, unmatched
from .dataset import DatasetSplits, MultimodalDataset
from .errors import DataError, where
from .readers import duplicated_ids, read_table
from .splits import split_dataset

MISSING_TOKENS = {"", "na", "nan", "null", "none"}


def _numeric_allowing_missing(frame: pd.DataFrame, path: Path) -> np.ndarray:
    """Cells as float; empty/NA/NaN -> NaN (missing); anything else non-numeric is an error."""
    if all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
        values = frame.to_numpy(dtype=np.float64)
        if np.isinf(values).any():
            r, c = np.argwhere(np.isinf(values))[0]
            raise DataError(f"{where(path, int(r) + 2, str(frame.columns[c]))}: infinite value")
        return values.astype(np.float32)
    raw = frame.astype(str).apply(lambda c: c.str.strip())
    values = np.array(raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64), copy=True)
    problems = []
    for r, c in zip(*np.nonzero(~np.isfinite(values))):
        cell = raw.iat[r, c]
        if cell.lower() in MISSING_TOKENS:
            values[r, c] = np.nan
            continue
        problems.append(f"{where(path, int(r) + 2, str(frame.columns[c]))}: {cell!r} is not a number (leave it empty for a missing value)")
    if problems:
        raise DataError(f"{path}: {len(problems)} cell(s) are not numbers", problems)
    return values.astype(np.float32)


def _keyed_table(path: Path, id_column: str | None) -> tuple[list[str], pd.DataFrame]:
    frame = read_table(path)
    key = id_column or str(frame.columns[0])
    if key not in frame.columns:
        raise DataError(f"{path}: no column {key!r} (the sample id column); columns: {list(frame.columns)[:10]}")
    ids = [str(v).strip() for v in frame[key]]
    dup = duplicated_ids(ids, path)
    if dup:
        raise DataError(f"{path}: repeated sample ids", dup)
    return ids, frame.drop(columns=[key])


def _read_labels(labels_path: Path, id_column: str | None, label_column: str | None,
                 classes: tuple[str, ...] | None) -> tuple[list[str], np.ndarray, tuple[str, ...]]:
    """``(sample ids, class indices, class names)`` of the labels table; empty or unknown labels
    are refused with their rows."""
    ids, frame = _keyed_table(labels_path, id_column)
    column = label_column or (str(frame.columns[0]) if len(frame.columns) else None)
    if column is None or column not in frame.columns:
        raise DataError(f"{labels_path}: no label column {label_column!r}; columns: {list(frame.columns)}")
    raw_labels = [str(v).strip() for v in frame[column]]
    empty = [f"{where(labels_path, i + 2, column)}: empty label" for i, v in enumerate(raw_labels) if v == ""]
    if empty:
        raise DataError(f"{labels_path}: missing labels", empty)
    names = tuple(classes) if classes is not None else tuple(sorted(set(raw_labels)))
    unknown = [f"{where(labels_path, i + 2, column)}: label {v!r} is not one of {list(names)}" for i, v in enumerate(raw_labels) if v not in names]
    if unknown:
        raise DataError(f"{labels_path}: unknown labels", unknown)
    return ids, np.array([names.index(v) for v in raw_labels], dtype=np.int64), names


def _zscore(x: np.ndarray, rows: np.ndarray) -> None:
    """Standardise every feature of ``x`` over ``rows`` in place (NaN cells ignored)."""
    with warnings.catch_warnings():  # an all-missing feature has no statistics: leave it as is
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nan_to_num(np.nanmean(x[rows], axis=0))
        std = np.nan_to_num(np.nanstd(x[rows], axis=0))
    x[rows] = (x[rows] - mean) / np.where(std > 0, std, 1.0)


def _read_omics(name: str, path: Path, ids: list[str], id_column: str | None, zscore: bool, notes: list[str]):
    """``(spec, (n, d) features, present (n,))`` of one omics table joined onto the labels' ``ids``."""
    o_ids, o_frame = _keyed_table(path, id_column)
    values = _numeric_allowing_missing(o_frame, path)
    x, here = join_rows(ids, o_ids, values)
    unlabelled = len(unmatched(ids, o_ids))
    if unlabelled:
        notes.append(f"{path.name}: {unlabelled} sample(s) without a label were ignored")
    if zscore:
        _zscore(x, here)
    missing = int(np.isnan(x[here]).sum())
    if missing:
        notes.append(f"{path.name}: {missing} missing value(s) kept as NaN (key-masked by the MCA tokeniser)")
    return ModalitySpec(name, "tabular", (values.shape[1],), tuple(str(c) for c in o_frame.columns)), x, here


def load_tcga_tables(
    omics: dict[str, str | Path],
    labels: str | Path,
    *,
    id_column: str | None = None,
    label_column: str | None = None,
    classes: tuple[str, ...] | None = None,
    zscore: bool = False,
) -> MultimodalDataset:
    """Read the omics tables and the labels table into one :class:`MultimodalDataset`.

    Samples (and their order) are those of the labels table; ``classes`` fixes the class order
    (default: sorted distinct labels).
    """
    if not omics:
        raise ValueError("load_tcga_tables: give at least one omics table")
    labels_path = Path(labels)
    ids, y, names = _read_labels(labels_path, id_column, label_column, classes)
    specs, features, present, notes = [], {}, np.zeros((len(ids), len(omics)), dtype=bool), []
    for j, (name, path) in enumerate(omics.items()):
        spec, features[name], present[:, j] = _read_omics(name, Path(path), ids, id_column, zscore, notes)
        specs.append(spec)
    if len(names) < 2:
        raise DataError(f"{labels_path}: a classification needs at least 2 classes, found {list(names)}")
    return MultimodalDataset(
        schema=DataSchema(tuple(specs), names),
        features=features,
        present=present,
        labels=y,
        sample_ids=tuple(ids),
        source=f"tcga:{labels_path.parent}",
        notes=tuple(notes),
    )


def load_tcga(
    path: str | Path,
    *,
    test_fraction: float = 0.1,
    seed: int = 43,
    predrop: float = 0.0,
    zscore: bool = False,
    label_column: str | None = None,
) -> DatasetSplits:
    """The CLI's ``tcga:DIR``: every table in ``DIR`` is one omics (named by its file stem)
    except ``labels.*``; predrop (if any) is applied once, then the seeded split."""
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected omics tables and a labels table)")
    tables = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".tsv", ".txt", ".parquet", ".pq"))
    labels = [p for p in tables if p.stem.lower() == "labels"]
    if not labels:
        raise DataError(f"{folder}: no labels table (expected labels.csv / labels.tsv / labels.parquet)")
    omics = {p.stem: p for p in tables if p not in labels}
    if not omics:
        raise DataError(f"{folder}: no omics table beside {labels[0].name}")
    data = load_tcga_tables(omics, labels[0], label_column=label_column, zscore=zscore)
    if predrop > 0:
        from .predrop import apply_predrop

        data = apply_predrop(data, predrop, seed)
    return split_dataset(data, test_fraction, seed)


__all__ = ["load_tcga", "load_tcga_tables"]
