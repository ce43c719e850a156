"""The facts the dashboard states (synthetic demo, split, held-out default) and what an exported
figure is named after and records."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_tabular_dataset
from inspect_helpers import tiny_model

from fusioncore.inspect import explain_sample, model_summary, run_cohort
from fusioncore.inspect.figures import cohort_figure, sample_figure
from fusioncore.inspect.glossary import GROUPS, TERMS, help_text, terms_in
from fusioncore.inspect.notices import default_index, split_of, synthetic_notice


@pytest.fixture(scope="module")
def data():
    return make_tabular_dataset(n=24, missing=0.0)


@pytest.fixture(scope="module")
def model(data):
    return tiny_model(data, "mmdynamics", epochs=3)


def test_synthetic_notice_asks_the_checkpoint(model):
    summary = model_summary(model)
    assert not summary.synthetic_demo and synthetic_notice(summary, False) is None
    assert "Synthetic demo data" in synthetic_notice(summary, True)
    model.checkpoint_extra = {"demo": True}
    try:
        flagged = model_summary(model)
    finally:
        model.checkpoint_extra = {}
    assert flagged.synthetic_demo
    assert "model and data" in synthetic_notice(flagged, True)
    assert "never seen real tissue" in synthetic_notice(flagged, False)


def test_default_sample_is_held_out():
    assert default_index(None) == 0
    assert default_index(("train", "train", "test", "val")) == 2
    assert default_index(("train", "val", "train")) == 1
    assert default_index(("train", "train")) == 0
    assert split_of(("train", "test"), 1) == "test" and split_of(None, 0) is None


def test_cohort_split_restricts_every_number(model, data):
    split = tuple("test" if i % 3 == 0 else "train" for i in range(len(data)))
    result = run_cohort(model, data, split=split)
    assert result.splits == ("test", "train")
    test = result.on_split("test")
    rows = [i for i, s in enumerate(split) if s == "test"]
    assert list(test.data.sample_ids) == [data.sample_ids[i] for i in rows]
    np.testing.assert_array_equal(test.probabilities, result.probabilities[rows])
    for name, conf in test.output.confidence.items():
        np.testing.assert_array_equal(conf.numpy(), result.output.confidence[name].numpy()[rows])
    bundle = cohort_figure("tcp_scatter", result, split="test")
    assert bundle.rows == f"test split, {len(rows)} samples" and bundle.rows in bundle.titled_figure().layout.title.text
    assert bundle.export_stem("m").endswith("__split-test")
    with pytest.raises(ValueError, match="splits are test, train"):
        result.on_split("val")


def test_export_names_and_provenance_say_what_the_figure_shows(model, data):
    full = explain_sample(model, data, 0)
    off = explain_sample(model, data, 0, {"m1": False})
    a = sample_figure("gates", full, modality="m0", top_k=5, search="")
    b = sample_figure("gates", off, modality="m0", top_k=5, search="")
    assert a.export_stem("tiny") != b.export_stem("tiny")
    assert b.export_stem("tiny") == f"gates-m0__tiny__{off.sample_id}__predicted-{off.predicted_class}__without-m1"
    title = b.titled_figure().layout.title.text
    assert "without" not in (b.figure.layout.title.text or "")  # the page's figure stays plain
    assert off.sample_id in title and f"predicted {off.predicted_class}" in title and "without m1" in title
    extra = b.provenance_extra()
    assert extra["controls"] == {"modality": "m0", "top_k": 5, "search": ""}
    assert extra["switched_off"] == ["m1"] and extra["class"] == f"predicted {off.predicted_class}"


def test_glossary_has_a_short_and_long_text_per_term():
    assert set(GROUPS) >= {"Prediction", "Image maps", "Attributions", "Cohort"}
    for term in TERMS.values():
        assert term.short.endswith(".") or term.short.endswith(")"), term.name
        assert len(term.long) > len(term.short) / 2
        assert term in terms_in(term.group)
    assert "not a probability" in help_text("confidence")
    with pytest.raises(KeyError):
        help_text("no such term")
