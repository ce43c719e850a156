"""The one split function and the one table join give the rows the loaders always gave.

Each reference below is the loader's own code before it called ``data.splits`` / ``data.assemble``
(written out here), so a published split, and every number measured on it, stays reproducible.
"""

from __future__ import annotations

import numpy as np
import pytest

from fusioncore.data.assemble import assemble, join_rows, unmatched
from fusioncore.data.splits import held_out_rows, rest

LABELS = np.random.default_rng(0).choice(3, size=57, p=[0.6, 0.3, 0.1])


def old_tables_test_rows(labels, test_fraction, seed):  # data/tables.stratified_split
    rng = np.random.default_rng(seed)
    tags = np.full(len(labels), "train", dtype=object)
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        tags[idx[: int(round(len(idx) * test_fraction))]] = "test"
    return np.flatnonzero(tags == "test")


def old_tcga_test_rows(n, test_fraction, seed):  # data/tcga.split_dataset
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: max(1, int(round(test_fraction * n)))])


def old_holdout_rows(labels, fraction, seed):  # training/selection.holdout_split
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        take = min(max(int(round(fraction * len(rows))), 1), len(rows) - 1)
        held.extend(rng.permutation(rows)[:take].tolist())
    return np.sort(held)


def old_demo_test_rows(labels, test_fraction, seed):  # the demo's old _stratified_split (demo.py)
    rng = np.random.default_rng(seed + 1)
    test = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        rows = rows[rng.permutation(len(rows))]
        test.extend(rows[: max(1, int(round(len(rows) * test_fraction)))].tolist())
    return np.sort(test)


@pytest.mark.parametrize("seed", [0, 7, 43])
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_held_out_rows_are_the_loaders_old_rows(seed, fraction):
    n = len(LABELS)
    assert held_out_rows(n, fraction, seed, labels=LABELS).tolist() == old_tables_test_rows(LABELS, fraction, seed).tolist()
    assert held_out_rows(n, fraction, seed, at_least=1).tolist() == old_tcga_test_rows(n, fraction, seed).tolist()
    assert held_out_rows(n, fraction, seed, labels=LABELS, at_least=1, keep_one=True).tolist() == \
        old_holdout_rows(LABELS, fraction, seed).tolist()
    assert held_out_rows(n, fraction, seed + 1, labels=LABELS, at_least=1).tolist() == \
        old_demo_test_rows(LABELS, fraction, seed).tolist()


def test_rest_is_the_complement_in_order():
    held = held_out_rows(10, 0.3, 0)
    assert sorted(rest(10, held).tolist() + held.tolist()) == list(range(10))
    assert np.all(np.diff(rest(10, held)) > 0)


def test_join_places_rows_by_id_and_marks_the_rest_absent():
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    x, here = join_rows(["b", "z", "a"], ["a", "b", "c"], values)
    assert x.dtype == np.float32 and here.tolist() == [True, False, True]
    assert x.tolist() == [[3.0, 4.0], [0.0, 0.0], [1.0, 2.0]]
    assert unmatched(["b", "z", "a"], ["a", "b", "c"]) == ["c"]
    features, present = assemble(["a", "z"], [("m", {"a": 1}, values), ("n", ["z"], np.ones((1, 3)))])
    assert present.tolist() == [[True, False], [False, True]]
    assert features["m"].tolist() == [[3.0, 4.0], [0.0, 0.0]] and features["n"].shape == (2, 3)
    empty, none = join_rows(["a"], [], np.zeros((0, 4)))
    assert empty.shape == (1, 4) and not none.any()
