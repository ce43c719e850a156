"""Keyed tables joined onto one sample order: the ``(features, present)`` of a dataset, written once.

Every layout that keys its rows by sample id (the table layout, TCGA omics, CMU-MOSEI ``.csd``
files, uploaded tables and images) ends the same way: the cohort's samples are fixed (by the
labels table, or the union of ids), each modality's rows are placed at their sample's position,
and a sample with no row in a modality has that modality *absent* (presence False, zeros as
values, the dataset contract). Writing the join once keeps that contract in one place.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def join_rows(sample_ids: Sequence[str], table_ids: Sequence[str] | Mapping[str, int], values: np.ndarray,
              dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``(features (n, *shape), present (n,))``: row ``table_ids[r]`` of ``values`` at its sample's
    position in ``sample_ids``; zeros and False for a sample the table lacks.

    ``table_ids``: the table's sample id per row (unique), or a mapping sample id -> row. Ids of
    the table that are not in ``sample_ids`` are left out (callers count them, see :func:`unmatched`).
    """
    rows = table_ids if isinstance(table_ids, Mapping) else {sid: r for r, sid in enumerate(table_ids)}
    index = np.array([rows.get(sid, -1) for sid in sample_ids], dtype=np.int64)
    here = index >= 0
    out = np.zeros((len(sample_ids), *np.shape(values)[1:]), dtype=dtype)
    if here.any():
        out[here] = np.asarray(values)[index[here]]
    return out, here


def unmatched(sample_ids: Sequence[str], table_ids: Sequence[str] | Mapping[str, int]) -> list[str]:
    """Ids of a table that are none of ``sample_ids`` (in the table's order)."""
    wanted = set(sample_ids)
    return [sid for sid in table_ids if sid not in wanted]


def assemble(sample_ids: Sequence[str], tables: Sequence[tuple[str, Sequence[str] | Mapping[str, int], np.ndarray]]
             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``({name: (n, *shape) float32}, present (n, m))`` of ``(name, table ids, values)`` tables,
    modality ``j`` in column ``j`` of ``present``."""
    features, present = {}, np.zeros((len(sample_ids), len(tables)), dtype=bool)
    for j, (name, ids, values) in enumerate(tables):
        features[name], present[:, j] = join_rows(sample_ids, ids, values)
    return features, present


__all__ = ["assemble", "join_rows", "unmatched"]
