"""The general layout: one table per modality keyed by a sample-id column, plus labels.

A folder::

    labels.csv        sample_id,label[,split]     (split: train / test / val; optional)
    mrna.csv          sample_id,GENE1,GENE2,...   (one modality per table; file stem = name)
    proteins.parquet  sample_id,...
    images.csv        sample_id,path              (an image modality: paths relative to the table)

or a manifest ``fusioncore.json`` in that folder (or passed directly) naming the files::

    {"labels": "labels.csv", "id_column": "sample_id", "label_column": "label",
     "modalities": {"rna": "rna.csv", "slide": {"file": "slides.csv", "kind": "image", "size": 64}},
     "test_fraction": 0.3, "seed": 0}

An image modality may say its resolution, ``"mpp": 2.0``: microns per pixel of the images as the
model takes them (after resizing to ``size``; 512-px tiles at 0.25 um/px resized to 64 px are
2.0). It is kept in the schema, so a checkpoint records its training resolution and slide
heatmaps run at it.

A sample missing from a modality's table is *absent* for that modality. Without a ``split``
column the samples are split at random, stratified by class, with the manifest's seed.

What would make a model silently wrong is said on the dataset (``warnings``, printed by the CLI
and shown by the dashboard) or refused: samples with an empty label are dropped and counted;
numeric labels are compared as numbers (``1`` and ``1.0`` are one class); a class with fewer
than :data:`SMALL_CLASS` samples is named (a typo, usually), and so is a single class (training
on it is refused); a
modality missing for many labelled samples, or whose ids do not match the labels', is named
with the share of samples without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DataSchema, ModalitySpec
from .assemble import assemble
from .dataset import DatasetSplits, MultimodalDataset
from .errors import DataError, where
from .readers import TABLE_SUFFIXES, check_readable, duplicated_ids, read_table, to_numeric_matrix
from .splits import held_out_rows, rest

MANIFEST_NAME = "fusioncore.json"
LABEL_STEMS = ("labels", "label")
IMAGE_COLUMNS = ("path", "image", "image_path", "file")
#: A class with fewer samples than this is named in a warning (cannot reach train, val and test).
SMALL_CLASS = 3
#: A modality missing for at least this share of the labelled samples is named in a warning.
MISSING_SHARE = 0.25
SPLIT_NAMES = {"train": "train", "tr": "train", "test": "test", "te": "test", "val": "val", "valid": "val", "validation": "val"}


@dataclass(frozen=True)
class ModalityFile:
    name: str
    path: Path
    kind: str = "auto"  # auto | tabular | image
    size: int = 64
    mpp: float | None = None  # microns per pixel of the images as the model takes them (after resizing to size)
    data: bytes | None = field(default=None, repr=False)  # the table's bytes (an upload); None: read ``path``


@dataclass(frozen=True)
class TableManifest:
    folder: Path
    modalities: tuple[ModalityFile, ...]
    labels: Path | None = None
    id_column: str | None = None
    label_column: str | None = None
    split_column: str = "split"
    test_fraction: float = 0.3
    seed: int = 0
    classes: tuple[str, ...] = field(default=())


def discover(path: str | Path) -> TableManifest:
    """The manifest of a folder (``fusioncore.json`` if present, else every table in it)."""
    path = Path(path)
    if path.suffix == ".json":
        check_readable(path)
        return read_manifest(path)
    check_readable(path, "folder")
    if (path / MANIFEST_NAME).is_file():
        return read_manifest(path / MANIFEST_NAME)
    tables = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    labels = [p for p in tables if p.stem.lower() in LABEL_STEMS]
    modalities = tuple(ModalityFile(p.stem, p) for p in tables if p not in labels)
    if not modalities:
        raise DataError(f"{path}: no modality tables found (expected files like mrna.csv next to labels.csv)")
    return TableManifest(folder=path, modalities=modalities, labels=labels[0] if labels else None)


def read_manifest(path: Path) -> TableManifest:
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("modalities"), dict) or not raw["modalities"]:
        raise DataError(f"{path}: expected an object with a non-empty 'modalities' mapping of name -> file")
    folder = path.parent
    mods = []
    for name, entry in raw["modalities"].items():
        entry = {"file": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "file" not in entry:
            raise DataError(f"{path}: modalities.{name} must be a file name or an object with a 'file' field")
        kind = entry.get("kind", "auto")
        if kind not in ("auto", "tabular", "image"):
            raise DataError(f"{path}: modalities.{name}.kind must be auto, tabular or image, got {kind!r}")
        mods.append(ModalityFile(name, folder / entry["file"], kind, int(entry.get("size", 64)), _mpp(path, name, entry)))
    known = {"modalities", "labels", "id_column", "label_column", "split_column", "test_fraction", "seed", "classes"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise DataError(f"{path}: unknown field(s) {unknown}; known: {sorted(known)}")
    return TableManifest(
        folder=folder,
        modalities=tuple(mods),
        labels=folder / raw["labels"] if raw.get("labels") else None,
        id_column=raw.get("id_column"),
        label_column=raw.get("label_column"),
        split_column=raw.get("split_column", "split"),
        test_fraction=float(raw.get("test_fraction", 0.3)),
        seed=int(raw.get("seed", 0)),
        classes=tuple(raw.get("classes", ())),
    )


def _mpp(path: Path, name: str, entry: dict) -> float | None:
    """``modalities.NAME.mpp``: microns per pixel of the model's input images (optional)."""
    value = entry.get("mpp")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise DataError(f"{path}: modalities.{name}.mpp must be a positive number (microns per pixel), got {value!r}")
    return float(value)


def _id_column(frame: pd.DataFrame, path: Path, requested: str | None) -> str:
    if requested is not None:
        if requested not in frame.columns:
            raise DataError(f"{path}: no sample-id column {requested!r}; columns are {list(frame.columns)[:10]}")
        return requested
    for candidate in ("sample_id", "sample", "id", "ID", "patient_id"):
        if candidate in frame.columns:
            return candidate
    return str(frame.columns[0])


def read_keyed_table(path: Path, id_column: str | None, notes: list[str] | None = None,
           data: bytes | None = None) -> tuple[pd.DataFrame, list[str], str]:
    """A table (read from ``path``, or from ``data`` named ``path``), its sample ids (validated
    unique and non-empty) and the id column's name; what reading it detected (a separator, an
    encoding) is appended to ``notes``."""
    frame = read_table(path if data is None else data, name=path)
    if notes is not None:
        notes += frame.attrs.get("notes", [])
    key = _id_column(frame, path, id_column)
    ids = [str(v).strip() for v in frame[key].tolist()]
    problems = [f"{where(path, i + 2, key)}: empty sample id" for i, s in enumerate(ids) if s in ("", "nan", "None")]
    problems += duplicated_ids(ids, path)
    if problems:
        raise DataError(f"{path}: sample ids must be unique and non-empty", problems)
    return frame.drop(columns=[key]), ids, key


def read_modality_table(
    mod: ModalityFile, id_column: str | None, notes: list[str] | None = None, warned: list[str] | None = None
) -> tuple[ModalitySpec, dict[str, int], np.ndarray]:
    """One modality table -> (spec, sample id -> row, values ``(n, *shape)``); what the user
    should hear about reading it goes to ``notes`` (a detected separator) and ``warned``
    (multi-frame images of which only the first frame was used)."""
    frame, ids, key = read_keyed_table(mod.path, id_column, notes, mod.data)
    if frame.shape[1] == 0:
        what = "a column of image paths (sample_id,path)" if mod.kind == "image" else "feature columns"
        raise DataError(f"{mod.path}: only the sample-id column {key!r}; expected {what} besides it")
    image_cols = [c for c in frame.columns if str(c).lower() in IMAGE_COLUMNS]
    is_image = mod.kind == "image" or (mod.kind == "auto" and len(frame.columns) == 1 and image_cols)
    if is_image:
        from .images import load_image_column

        column = image_cols[0] if image_cols else frame.columns[0]
        values = load_image_column(mod.path, ids, [str(p) for p in frame[column]], (mod.size, mod.size),
                                   report=notes, warn=warned)
        spec = ModalitySpec(name=mod.name, kind="image", shape=tuple(values.shape[1:]), mpp=mod.mpp)
    else:
        values = to_numeric_matrix(frame, mod.path, row_offset=2)
        spec = ModalitySpec(
            name=mod.name, kind="tabular", shape=(values.shape[1],), features=tuple(str(c) for c in frame.columns)
        )
    return spec, {sid: i for i, sid in enumerate(ids)}, values


def normalise_labels(values: list[str]) -> tuple[list[str], list[str]]:
    """Numeric labels written as numbers: ``1``, ``1.0`` and ``01`` are the class ``1``.

    Only when every label is a number (a spreadsheet that wrote some as ``1.0``); text labels
    are kept as written (stripped). Returns the labels and a note per class that merged spellings.
    """
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return values, []
    if not all(np.isfinite(numbers)):
        return values, []
    canonical = [str(int(x)) if x == int(x) else repr(x) for x in numbers]
    spellings: dict[str, set[str]] = {}
    for raw, c in zip(values, canonical):
        spellings.setdefault(c, set()).add(raw)
    notes = [f"labels {', '.join(repr(v) for v in sorted(s))} read as one class {c!r}"
             for c, s in spellings.items() if len(s) > 1]
    return canonical, notes


def _class_order(values: list[str], declared: tuple[str, ...]) -> tuple[str, ...]:
    if declared:
        return tuple(normalise_labels([str(c).strip() for c in declared])[0])
    uniq = sorted(set(values))
    try:
        return tuple(sorted(uniq, key=float))
    except ValueError:
        return tuple(uniq)


def load_tables(path: str | Path, *, classes: tuple[str, ...] | None = None) -> DatasetSplits:
    """Load the table layout as train/test(/val) splits (see module docstring)."""
    manifest = discover(path)
    if manifest.labels is None:
        raise DataError(f"{manifest.folder}: no labels table (expected labels.csv with columns sample_id,label[,split])")
    data, tags = load_table_samples(manifest, classes=classes)
    return split_samples(data, manifest, tags)


@dataclass(frozen=True)
class _Labels:
    """The labels table as read: kept samples, their class indices, and what was said about it."""

    ids: list[str]
    labels: np.ndarray
    classes: tuple[str, ...]
    split: np.ndarray | None
    notes: list[str]
    warnings: list[str]


def _read_labels(manifest: TableManifest, classes: tuple[str, ...] | None) -> _Labels:
    """The labels table: rows with an empty label dropped (and counted), numeric labels
    normalised, unknown labels refused, small classes and a single class named."""
    path, notes, warned = manifest.labels, [], []
    frame, ids, key = read_keyed_table(path, manifest.id_column, notes)
    if frame.shape[1] == 0:
        raise DataError(f"{path}: only the sample-id column {key!r}; expected a label column too "
                        "(columns sample_id,label[,split])")
    label_col = manifest.label_column or ("label" if "label" in frame.columns else frame.columns[0])
    if label_col not in frame.columns:
        raise DataError(f"{path}: no label column {label_col!r}; columns are {list(frame.columns)}")
    raw = [str(v).strip() for v in frame[label_col].tolist()]
    keep = [i for i, v in enumerate(raw) if v not in ("", "nan", "NaN", "NA", "None")]
    if not keep:
        raise DataError(f"{path}: every label in column {label_col!r} is empty")
    if len(keep) < len(raw):
        kept = set(keep)
        rows = [str(i + 2) for i in range(len(raw)) if i not in kept]
        warned.append(f"{path.name}: {len(raw) - len(keep)} of {len(raw)} sample(s) have no label and were dropped "
                      f"(row(s) {', '.join(rows[:10])}{' ...' if len(rows) > 10 else ''})")
    values, merged = normalise_labels([raw[i] for i in keep])
    notes += [f"{path.name}: {m}" for m in merged]
    class_names = classes or _class_order(values, manifest.classes)
    lookup = {c: k for k, c in enumerate(class_names)}
    unknown = [f"{where(path, i + 2, label_col)}: label {v!r} is not one of {list(class_names)}"
               for i, v in zip(keep, values) if v not in lookup]
    if unknown:
        raise DataError(f"{path}: unknown labels", unknown)
    labels = np.array([lookup[v] for v in values], dtype=np.int64)
    warned += _class_warnings(path, labels, class_names, [i + 2 for i in keep])
    split = None
    if manifest.split_column in frame.columns:
        tags = frame[manifest.split_column].tolist()
        split = _read_split([tags[i] for i in keep], manifest, [i + 2 for i in keep])
    return _Labels([ids[i] for i in keep], labels, tuple(class_names), split, notes, warned)


def _class_warnings(path: Path, labels: np.ndarray, classes: tuple[str, ...], rows: list[int]) -> list[str]:
    """Name a single class (training on it is refused, :func:`fusioncore.data.checks.check_trainable`;
    scoring such a cohort is fine) and every class with fewer than :data:`SMALL_CLASS` samples."""
    counts = np.bincount(labels, minlength=len(classes))
    seen = np.flatnonzero(counts)
    if len(classes) < 2:
        raise DataError(f"{path}: every sample has the label {classes[0]!r}; a classifier needs samples of at least two "
                        "classes (or name the classes in the manifest's 'classes' field to score a one-class cohort)")
    if len(seen) < 2:
        return [f"{path.name}: every sample has the label {classes[seen[0]]!r} (one class only)"]
    out = []
    for k in seen:
        if counts[k] < SMALL_CLASS:
            at = ", ".join(str(rows[i]) for i in np.flatnonzero(labels == k))
            near = [c for c in classes if c != classes[k] and c.lower() == classes[k].lower()]
            hint = f"; a typo of {near[0]!r}?" if near else "; a typo?"
            out.append(f"{path.name}: class {classes[k]!r}: {counts[k]} sample{'s' if counts[k] > 1 else ''} "
                       f"(row {at}){hint} A class this small cannot be both trained on and tested")
    return out


def _coverage_warnings(
    tables: list[tuple[ModalitySpec, dict[str, int], np.ndarray]], manifest: TableManifest, sample_ids: list[str],
    present: np.ndarray,
) -> list[str]:
    """Per modality: labelled samples without it (their share), and table ids with no label.

    Both together usually mean ids spelled differently (``S7`` vs ``S0007``); a large share
    alone is worth a warning too, because the model then learns that modality from few samples.
    """
    out, labelled = [], set(sample_ids)
    for j, (spec, rows, _) in enumerate(tables):
        file = next(m.path.name for m in manifest.modalities if m.name == spec.name)
        missing = int((~present[:, j]).sum())
        share = missing / max(len(sample_ids), 1)
        extra = sorted(set(rows) - labelled)
        if extra:
            shown = ", ".join(repr(x) for x in extra[:3])
            out.append(f"{file}: {len(extra)} sample id(s) have no label and were dropped (e.g. {shown})")
        if missing and (extra or share >= MISSING_SHARE):
            absent = [sid for i, sid in enumerate(sample_ids) if not present[i, j]][:3]
            out.append(f"modality {spec.name!r}: {100 * share:.0f}% of the labelled samples ({missing} of "
                       f"{len(sample_ids)}) have no row in {file} (e.g. {', '.join(map(repr, absent))})"
                       + ("; do the ids match the labels' spelling?" if extra else ""))
    return out


def load_table_samples(
    manifest: TableManifest, *, classes: tuple[str, ...] | None = None
) -> tuple[MultimodalDataset, np.ndarray | None]:
    """All samples of a manifest as one dataset (labelled when the manifest has labels), and the
    per-sample split tags of the labels table's split column (None when it has none)."""
    notes: list[str] = []
    warned: list[str] = []
    read = _read_labels(manifest, classes) if manifest.labels is not None else None
    image_warnings: list[str] = []
    tables = [read_modality_table(m, manifest.id_column, notes, image_warnings) for m in manifest.modalities]
    if read is None:
        sample_ids = sorted(set().union(*(t[1] for t in tables)))
        class_names = classes or manifest.classes or ("class 0", "class 1")
        labels, split = None, None
    else:
        sample_ids, labels, class_names, split = read.ids, read.labels, read.classes, read.split
        notes, warned = read.notes + notes, list(read.warnings)
    warned += image_warnings
    features, present = assemble(sample_ids, [(spec.name, rows, values) for spec, rows, values in tables])
    schema = DataSchema(modalities=tuple(t[0] for t in tables), classes=tuple(class_names))
    orphans = [sid for i, sid in enumerate(sample_ids) if not present[i].any()]
    if orphans:
        raise DataError(
            f"{manifest.labels}: {len(orphans)} labelled sample(s) appear in no modality table "
            f"({', '.join(m.path.name for m in manifest.modalities)}); check the ids (they are case-sensitive)",
            [f"sample id {sid!r}" for sid in orphans],
        )
    if read is not None:
        warned += _coverage_warnings(tables, manifest, sample_ids, present)
    data = MultimodalDataset(
        schema=schema,
        features=features,
        present=present,
        labels=labels,
        sample_ids=tuple(sample_ids),
        source=f"table:{manifest.folder}",
        notes=tuple(dict.fromkeys(notes)),
        warnings=tuple(dict.fromkeys(warned)),
    )
    return data, split


def _read_split(values: list, manifest: TableManifest, rows: list[int]) -> np.ndarray:
    """Split tags of the kept rows; ``rows`` are their line numbers in the labels file."""
    out, bad = [], []
    for row, v in zip(rows, values):
        tag = SPLIT_NAMES.get(str(v).strip().lower())
        if tag is None:
            bad.append(f"{where(manifest.labels, row, manifest.split_column)}: {v!r} is not train, test or val")
        out.append(tag)
    if bad:
        raise DataError(f"{manifest.labels}: unknown split names", bad)
    return np.array(out)


def split_samples(data: MultimodalDataset, manifest: TableManifest, tags: np.ndarray | None) -> DatasetSplits:
    """Train/test(/val) by the given tags, else a stratified random split."""
    if tags is None:
        if not 0.0 < manifest.test_fraction < 1.0:
            raise DataError(f"test_fraction must be between 0 and 1, got {manifest.test_fraction}")
        test = held_out_rows(len(data), manifest.test_fraction, manifest.seed, labels=data.labels)
        parts = {"train": rest(len(data), test), "test": test, "val": np.zeros(0, dtype=np.int64)}
    else:
        parts = {t: np.flatnonzero(tags == t) for t in ("train", "test", "val")}
    for t in ("train", "test"):
        if len(parts[t]) == 0:
            raise DataError(f"{manifest.labels}: the {t} split is empty")
    return DatasetSplits(
        train=data.subset(parts["train"]),
        test=data.subset(parts["test"]),
        val=data.subset(parts["val"]) if len(parts["val"]) else None,
    )
