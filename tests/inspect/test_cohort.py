"""Cohort table, TCP summaries and the modality-subset robustness matrix."""

import numpy as np
import pytest

from conftest import make_tabular_dataset
from inspect_helpers import tiny_model

from fusioncore.data.dataset import DatasetSplits
from fusioncore.metrics import tcp_errors, tcp_statistics
from fusioncore.inspect import cohort_table, combine_splits, run_cohort, subset_robustness, tcp_arrays, tcp_summary
from fusioncore.inspect import figures
from fusioncore.metrics import classification_metrics
from fusioncore.training import predict


@pytest.fixture(scope="module")
def data():
    return make_tabular_dataset(n=40, missing=0.25, n_classes=2)


@pytest.fixture(scope="module")
def model(data):
    return tiny_model(data)


def test_cohort_table_matches_predict(model, data):
    result = run_cohort(model, data, batch_size=16)
    table = cohort_table(result)
    pred = predict(model, data)
    np.testing.assert_allclose(result.probabilities, pred.probabilities, rtol=1e-6)
    assert list(table["sample_id"]) == list(data.sample_ids)
    assert (table["predicted"] == [data.schema.classes[k] for k in pred.predicted]).all()
    assert (table["correct"] == (pred.predicted == data.labels)).all()
    absent = ~data.present[:, 1]
    assert table.loc[absent, "m1:confidence"].isna().all() and table.loc[absent, "m1:tcp_error"].isna().all()
    assert table.loc[~absent, "m1:confidence"].notna().all()


def test_tcp_summary_matches_the_metrics_tcp(model, data):
    result = run_cohort(model, data)
    stats, thresholds = tcp_summary(result)
    reference = tcp_errors(predict(model, data).output, data.labels, data.sample_ids, data.modality_names)
    for name, errs in reference.items():
        row = stats[stats["modality"] == name].iloc[0]
        want = tcp_statistics(errs)
        assert row["n"] == want["n"] == data.present[:, data.modality_names.index(name)].sum()
        for key in ("mse", "rmse", "mae", "r2", "mape"):
            assert row[key] == pytest.approx(want[key], rel=1e-6)
    assert sorted(thresholds["k"].unique()) == pytest.approx([0.1 * k for k in range(1, 11)])
    predicted, true = tcp_arrays(result)
    assert set(predicted) == {"m0", "m1", "m2"} and np.isnan(predicted["m1"][~data.present[:, 1]]).all()
    for view in ("tcp_scatter", "tcp_histogram", "tcp_fractions"):
        bundle = figures.cohort_figure(view, result)
        assert len(bundle.data) > 0 and bundle.figure.data


def test_robustness_covers_every_subset(model, data):
    done = []
    rob = subset_robustness(model, data, progress=lambda d, t: done.append((d, t)))
    assert len(rob.frame) == 2**3 - 1 and done[-1] == (7, 7)
    full = rob.frame[rob.frame["subset"] == "m0+m1+m2"].iloc[0]
    want = classification_metrics(data.labels, predict(model, data).probabilities)
    assert full["balanced_acc"] == pytest.approx(want["balanced_acc"]) and full["n_excluded"] == 0
    only = rob.frame[rob.frame["subset"] == "m1"].iloc[0]
    assert only["n"] == data.present[:, 1].sum() and only["n_excluded"] == (~data.present[:, 1]).sum()
    samples = rob.samples("m1")
    assert samples["evaluated"].sum() == only["n"]
    kept = np.flatnonzero(data.present[:, 1])
    sub = predict(model, data.subset(kept).with_present(np.tile([False, True, False], (len(kept), 1))))
    np.testing.assert_allclose(rob.probabilities["m1"][kept], sub.probabilities, rtol=1e-5)
    bundle = figures.robustness(rob, "acc")
    assert list(bundle.figure.data[0].x) == list(rob.frame["subset"])
    with pytest.raises(ValueError, match="unknown subset"):
        rob.samples("m9")


def test_combine_splits_tags_rows(data):
    data2, tags = combine_splits(DatasetSplits(train=data.subset(range(30)), test=data.subset(range(30, 40))))
    assert len(data2) == 40 and tags.count("test") == 10 and data2.sample_ids == data.sample_ids
