"""What the dashboard pages used to decide themselves, now in ``fusioncore.inspect`` (no Streamlit):
the cohort filters, the robustness subsets' patterns, the reference reuse, the split choices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import make_tabular_dataset
from inspect_helpers import tiny_model

from fusioncore.inspect import (HEADLINE_METRICS, explain_sample, filter_table, fraction_table, reference_pattern,
                                run_cohort, subset_robustness, tcp_summary)


@pytest.fixture(scope="module")
def data():
    return make_tabular_dataset(n=30, missing=0.25, n_classes=2)


@pytest.fixture(scope="module")
def model(data):
    return tiny_model(data, epochs=10)


def _table():
    return pd.DataFrame({"sample_id": ["S1", "s12", "T3", "x.1"], "predicted": ["a", "b", "a", "b"],
                         "correct": [True, False, False, True]})


def test_filter_table_combines_id_text_class_and_errors():
    table = _table()
    assert list(filter_table(table)["sample_id"]) == ["S1", "s12", "T3", "x.1"]
    assert list(filter_table(table, "s1")["sample_id"]) == ["S1", "s12"]  # case-insensitive
    assert list(filter_table(table, ".")["sample_id"]) == ["x.1"]  # literal text, not a pattern
    assert list(filter_table(table, predicted=["a"])["sample_id"]) == ["S1", "T3"]
    assert list(filter_table(table, "s", ["b"], wrong_only=True)["sample_id"]) == ["s12"]
    unlabelled = table.drop(columns="correct")
    assert len(filter_table(unlabelled, wrong_only=True)) == 4  # no labels: nothing is known to be wrong


def test_reference_pattern_reuses_the_all_present_explanation():
    assert reference_pattern([True, True, False], (True, True, True)) is None  # asking for an absent one changes nothing
    assert reference_pattern([True, True, False], (True, False, False)) == (True, True, False)
    assert reference_pattern(np.array([True, True]), (True, True)) is None
    with pytest.raises(ValueError, match="3 flags for 2 modalities"):
        reference_pattern([True, True], (True, True, True))


def test_reference_pattern_gives_the_same_explanation_as_two_rows(model, data):
    index = int(np.flatnonzero(data.present.all(axis=1))[0])
    pattern = (True, False) + (True,) * (len(model.modality_names) - 2)
    full = reference_pattern(data.present[index], pattern)
    reference = explain_sample(model, data, index, list(full)).probabilities
    reused = explain_sample(model, data, index, list(pattern), reference=reference)
    direct = explain_sample(model, data, index, list(pattern))
    np.testing.assert_allclose(reused.reference, direct.reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reused.probabilities, direct.probabilities, rtol=1e-5, atol=1e-6)
    assert reused.switched_off == [model.modality_names[1]]
    assert reused.modalities_of("tabular") == list(model.modality_names)
    assert reused.modalities_of("tabular", gated=True) == [m for m in model.modality_names if m in reused.gates]
    assert model.modality_names[1] not in reused.modalities_of("tabular", gated=True)  # switched off: no gates
    assert reused.modalities_of("image") == []


def test_robustness_subsets_open_as_presence_patterns(model, data):
    rob = subset_robustness(model, data)
    names = list(model.modality_names)
    assert len(rob.subsets) == 2 ** len(names) - 1
    for subset in rob.subsets:
        pattern = rob.subset_pattern(subset)
        assert list(pattern) == names
        assert "+".join(n for n in names if pattern[n]) == subset
    with pytest.raises(ValueError, match="unknown subset"):
        rob.subset_pattern("nope")


def test_split_choices_and_the_fraction_table(model, data):
    tags = tuple("test" if i % 3 == 0 else "train" for i in range(len(data)))
    result = run_cohort(model, data, split=tags)
    assert result.split_choices() == ["test", "train", "all"]
    assert run_cohort(model, data).split_choices() == ["all"]
    stats, fractions = tcp_summary(result)
    wide = fraction_table(fractions, list(stats["modality"])[::-1])
    assert list(wide.columns) == list(stats["modality"])[::-1]
    assert len(wide) == fractions["k"].nunique()
    assert {key for key, _, _ in HEADLINE_METRICS} <= set(result.metrics())
