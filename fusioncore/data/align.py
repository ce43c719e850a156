"""Matching a dataset to the schema a model was trained on.

Users score new samples with a saved model: their tables may order columns differently, lack
a modality, or carry extra columns. Columns are matched by *name* (reordered when needed);
anything that cannot be matched is reported by name, never silently mis-aligned.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..config import DataSchema, ModalitySpec
from .dataset import MultimodalDataset
from .errors import DataError


def _positional_names(spec: ModalitySpec) -> bool:
    """True when a modality's feature names are generated placeholders (``name_0, name_1, ...``)."""
    return all(f == f"{spec.name}_{j}" for j, f in enumerate(spec.features))


def _align_tabular(data_spec: ModalitySpec, model_spec: ModalitySpec, x: np.ndarray, source: str) -> tuple[np.ndarray, list[str]]:
    notes: list[str] = []
    if not model_spec.features or _positional_names(data_spec) or data_spec.features == model_spec.features:
        if data_spec.dim != model_spec.dim:
            raise DataError(
                f"{source}: modality {model_spec.name!r} has {data_spec.dim} columns, the model expects {model_spec.dim}"
            )
        return x, notes
    index = {f: j for j, f in enumerate(data_spec.features)}
    missing = [f for f in model_spec.features if f not in index]
    if missing:
        raise DataError(
            f"{source}: modality {model_spec.name!r} lacks {len(missing)} of the model's {model_spec.dim} feature columns",
            [f"missing column {f!r}" for f in missing],
        )
    extra = [f for f in data_spec.features if f not in set(model_spec.features)]
    if extra:
        shown = ", ".join(repr(f) for f in extra[:10]) + (" ..." if len(extra) > 10 else "")
        notes.append(f"{model_spec.name}: {len(extra)} extra column(s) ignored ({shown})")
    return x[:, [index[f] for f in model_spec.features]], notes


def align_to_schema(data: MultimodalDataset, schema: DataSchema) -> MultimodalDataset:
    """``data`` re-expressed in ``schema``'s modality order, feature order and class indices.

    A model modality missing from the data becomes absent for every sample (and is noted);
    data modalities the model does not know are ignored (and noted). No modality in common,
    a missing feature column, a wrong image size or an unknown class name is an error.
    """
    source = data.source or "data"
    known = set(data.modality_names)
    common = [m.name for m in schema.modalities if m.name in known]
    if not common:
        raise DataError(
            f"{source}: none of its modalities ({', '.join(data.modality_names)}) is one the model uses "
            f"({', '.join(schema.modality_names)})"
        )
    notes = list(data.notes)
    features, present = {}, np.zeros((len(data), len(schema.modalities)), dtype=bool)
    for j, spec in enumerate(schema.modalities):
        if spec.name not in known:
            features[spec.name] = np.zeros((len(data), *spec.shape), dtype=np.float32)
            notes.append(f"{spec.name}: not in the data, treated as absent for every sample")
            continue
        dspec = data.schema.modality(spec.name)
        x = data.features[spec.name]
        if dspec.kind != spec.kind:
            raise DataError(f"{source}: modality {spec.name!r} is {dspec.kind} in the data but {spec.kind} in the model")
        if spec.kind == "tabular":
            x, more = _align_tabular(dspec, spec, x, source)
            notes += more
        elif tuple(dspec.shape) != tuple(spec.shape):
            raise DataError(f"{source}: modality {spec.name!r} has shape {dspec.shape}, the model expects {spec.shape}")
        features[spec.name] = x
        present[:, j] = data.present[:, data.schema.index(spec.name)]
    ignored = [m for m in data.modality_names if m not in set(schema.modality_names)]
    if ignored:
        notes.append(f"modalities not used by the model, ignored: {', '.join(ignored)}")
    labels = None
    if data.labels is not None:
        lookup = {c: k for k, c in enumerate(schema.classes)}
        generic = all(c == f"class {k}" for k, c in enumerate(data.schema.classes))
        if generic and data.schema.classes != schema.classes and len(data.schema.classes) <= len(schema.classes):
            # Layouts without class names (MOGONET outside the known folders) store indices:
            # index k of the data is class k of the model.
            notes.append(f"labels are class indices; read as the model's classes {list(schema.classes)}")
            return replace(data, schema=schema, features=features, present=present,
                           labels=data.labels.astype(np.int64), notes=tuple(notes))
        names = [data.schema.classes[k] for k in data.labels]
        unknown = sorted({n for n in names if n not in lookup})
        if unknown:
            raise DataError(
                f"{source}: label(s) {unknown} are not classes of the model ({list(schema.classes)})"
            )
        labels = np.array([lookup[n] for n in names], dtype=np.int64)
    return replace(data, schema=schema, features=features, present=present, labels=labels, notes=tuple(notes))
