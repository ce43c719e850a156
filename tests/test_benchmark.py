"""The cross-method benchmark: the removed pattern, argument parsing, and a tiny end-to-end run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusioncore.benchmark import (
    BenchmarkSettings,
    parse_methods,
    parse_rates,
    parse_seeds,
    removal_masks,
    run_benchmark,
    train_config_for,
)
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.data.dataset import DatasetSplits, MultimodalDataset


# -- removal_masks ------------------------------------------------------------------------------
def test_removal_removes_the_exact_quota_and_never_the_last_modality():
    present = np.ones((50, 3), dtype=bool)
    present[:5, 1] = False  # some entries are already missing
    for rate in (0.0, 0.3, 0.6):
        out = removal_masks(present, rate, seed=1)
        assert out.dtype == bool and out.shape == present.shape
        assert not (out & ~present).any(), "removal must never add a modality"
        assert (present.sum() - out.sum()) == round(rate * present.sum())
        assert out.any(axis=1).all(), "a sample lost its last modality"


def test_removal_is_seeded_nested_and_method_independent():
    present = np.ones((40, 3), dtype=bool)
    a, b = removal_masks(present, 0.4, seed=7), removal_masks(present, 0.4, seed=7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, removal_masks(present, 0.4, seed=8))
    low, high = removal_masks(present, 0.2, seed=3), removal_masks(present, 0.6, seed=3)
    assert not (high & ~low).any(), "entries removed at 0.2 must stay removed at 0.6"


def test_removal_refuses_impossible_rates():
    present = np.ones((10, 3), dtype=bool)
    with pytest.raises(ValueError, match="max rate 0.667"):
        removal_masks(present, 0.7, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        removal_masks(present, 1.0, seed=0)
    with pytest.raises(ValueError, match="bool"):
        removal_masks(present.astype(int), 0.1, seed=0)


# -- parsing ------------------------------------------------------------------------------------
def test_argument_parsing():
    assert parse_methods("early, late") == ["early", "late"]
    assert parse_rates("0.6,0,0.3") == [0.0, 0.3, 0.6]
    assert parse_seeds(3) == [0, 1, 2] and parse_seeds([4, 9]) == [4, 9]
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        parse_methods("early,nope")
    with pytest.raises(ValueError, match="more than once"):
        parse_methods("late,late")
    with pytest.raises(ValueError, match="not a number"):
        parse_rates("0,x")
    with pytest.raises(ValueError, match="outside"):
        parse_rates("0,1.5")
    with pytest.raises(ValueError, match="at least 1 seed"):
        parse_seeds(0)


def test_train_overrides_apply_and_are_validated():
    cfg = train_config_for("early", 3, {"*": {"epochs": 2}, "early": {"lr": 0.5}})
    assert (cfg.epochs, cfg.lr, cfg.seed) == (2, 0.5, 3)
    with pytest.raises(ValueError, match="epochz"):
        train_config_for("early", 0, {"early": {"epochz": 2}})


# -- end to end ---------------------------------------------------------------------------------
def _tiny_splits(n_train: int = 48, n_test: int = 24) -> DatasetSplits:
    """Three tabular modalities with a planted class signal in each, complete data."""
    rng = np.random.default_rng(0)
    dims = {"a": 5, "b": 4, "c": 3}
    schema = DataSchema(tuple(ModalitySpec(n, "tabular", (d,)) for n, d in dims.items()), ("neg", "pos"))

    def split(n: int, prefix: str) -> MultimodalDataset:
        y = np.arange(n) % 2
        feats = {k: (rng.normal(size=(n, d)) + 1.5 * y[:, None]).astype(np.float32) for k, d in dims.items()}
        return MultimodalDataset(schema, feats, np.ones((n, 3), bool), y.astype(np.int64),
                                 tuple(f"{prefix}{i}" for i in range(n)), source="tiny")

    return DatasetSplits(train=split(n_train, "tr"), test=split(n_test, "te"))


def test_benchmark_on_a_tiny_dataset_writes_a_well_formed_table(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONCORE_STATIC_RENDERER", "matplotlib")  # no browser in the test
    lines = []
    result = run_benchmark(_tiny_splits(), BenchmarkSettings(
        "early,late", [0.0, 0.5], 2, tmp_path,
        train_overrides={"*": {"epochs": 3, "batch_size": 16}}, progress=lines.append,
        figure_formats=("png", "html", "csv"), num_threads=1,
    ))
    rec = result.records
    assert len(rec) == 2 * 2 * 2 and len(lines) == 4
    assert set(rec.columns) >= {"method", "seed", "missing_rate", "removed_fraction", "acc", "f1", "auc"}
    assert np.isfinite(rec[["acc", "f1", "auc", "f1_macro"]].to_numpy()).all()
    # Same removed pattern for every method: the realised fractions agree per (seed, rate).
    pivot = rec.pivot_table(index=["seed", "missing_rate"], columns="method", values="removed_fraction")
    assert np.allclose(pivot["early"], pivot["late"])
    assert np.allclose(rec.loc[rec.missing_rate == 0.5, "removed_fraction"], 0.5)

    summary = pd.read_csv(result.paths["summary"])
    assert len(summary) == 2 * 2 * (4 + 1)  # methods x rates x (metrics + train seconds)
    assert (summary["n"] == 2).all()
    assert pd.read_csv(result.paths["records"]).shape == rec.shape

    table = [l for l in result.paths["markdown"].read_text().splitlines() if l.startswith("|")]
    assert table[0] == "| method | missing rate | removed | acc | f1 | f1_macro | auc | train s |"
    assert len(table) == 2 + 4 and all(l.count("|") == table[0].count("|") for l in table)
    assert all("±" in l for l in table[2:])
    assert "- `early`: 3 epochs" in result.markdown

    for metric in ("acc", "f1", "f1_macro", "auc"):
        paths = result.figures[metric]
        assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "plotly" in paths["html"].read_text()[:100000].lower()


def test_benchmark_refuses_unsupported_modalities(tmp_path):
    splits = _tiny_splits(8, 4)
    schema = DataSchema((ModalitySpec("seq", "sequence", (3, 4)),), ("neg", "pos"))
    seq = MultimodalDataset(schema, {"seq": np.zeros((4, 3, 4), np.float32)}, np.ones((4, 1), bool),
                            np.array([0, 1, 0, 1]), tuple("abcd"))
    with pytest.raises(ValueError, match="'early' supports tabular, image modalities; the data also has sequence"):
        run_benchmark(DatasetSplits(seq, seq), BenchmarkSettings(["early"], [0.0], 1, tmp_path))
    with pytest.raises(ValueError, match="max rate"):
        run_benchmark(splits, BenchmarkSettings(["early"], [0.0, 0.9], 1, tmp_path))


def test_benchmark_settings_are_checked_and_normalised_when_made(tmp_path):
    made = BenchmarkSettings("early, late", "0.6,0,0.3", 3, str(tmp_path), epochs=4,
                             train_overrides={"*": {"batch_size": 8}, "late": {"lr": 0.1}})
    assert made.methods == ("early", "late") and made.missing_rates == (0.0, 0.3, 0.6) and made.seeds == (0, 1, 2)
    assert made.out_dir == tmp_path
    assert made.train_overrides_for_run() == {"*": {"batch_size": 8, "epochs": 4}, "late": {"lr": 0.1}}
    assert made.train_overrides == {"*": {"batch_size": 8}, "late": {"lr": 0.1}}  # the caller's mapping is kept
    with pytest.raises(ValueError, match="--missing: 'x' is not a number"):
        BenchmarkSettings("early", "0,x")
    with pytest.raises(ValueError, match="unknown method|available"):
        BenchmarkSettings("early,nosuch")
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        BenchmarkSettings("early", epochs=0)
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        BenchmarkSettings("early", num_threads=0)


def test_select_modalities_keeps_rows_and_order():
    from fusioncore.benchmark import select_modalities

    splits = _tiny_splits(6, 4)
    sub = select_modalities(splits, "c,a")
    assert sub.schema.modality_names == ["c", "a"]
    assert sub.train.present.shape == (6, 2) and len(sub.test) == 4
    assert np.array_equal(sub.train.features["c"], splits.train.features["c"])
    with pytest.raises(ValueError, match="'zz'"):
        select_modalities(splits, ["a", "zz"])
