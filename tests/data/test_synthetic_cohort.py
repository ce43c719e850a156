"""The demo cohort generator: planted truth, determinism, the scoring of explanations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusioncore.data.synthetic_cohort import (
    CLASSES,
    make_synthetic_cohort,
    render_tile,
    select_modalities,
)
from fusioncore.demo import make_demo_cohort, read_demo_cohort, save_demo_cohort
from fusioncore.explain.planted import explanation_fidelity, planted_auroc


@pytest.fixture(scope="module")
def cohort():
    return make_synthetic_cohort(n=30, seed=5)


def test_shapes_and_schema(cohort):
    d = cohort.data
    assert d.schema.classes == CLASSES
    assert d.features["histology"].shape == (30, 3, 64, 64) and d.features["histology"].dtype == np.float32
    assert 0.0 <= d.features["histology"].min() and d.features["histology"].max() <= 1.0
    assert d.features["mrna"].shape == (30, 100) and d.features["noisy"].shape == (30, 40)
    assert np.all((d.features["methylation"] > 0) & (d.features["methylation"] < 1))
    assert cohort.truth.patch_masks.shape == (30, 8, 8)
    assert set(np.unique(d.labels)) == {0, 1, 2}
    counts = cohort.truth.patch_masks.sum(axis=(1, 2))
    assert counts.min() >= 4 and counts.max() <= 7
    assert cohort.truth.pixel_masks().shape == (30, 64, 64)
    for mod, feats in cohort.truth.informative_features.items():
        assert len(feats) == 5 and set(feats) <= set(d.schema.modality(mod).features)


def test_same_seed_same_bytes_other_seed_differs():
    a, b, c = (make_synthetic_cohort(n=8, seed=s) for s in (1, 1, 2))
    for name in a.data.features:
        assert a.data.features[name].tobytes() == b.data.features[name].tobytes()
    assert not np.array_equal(a.data.features["histology"], c.data.features["histology"])
    assert np.array_equal(a.truth.patch_masks, b.truth.patch_masks)


def test_evidence_is_where_the_truth_says(cohort):
    """Planted patches hold more hematoxylin (darker, bluer) than the rest of the tile."""
    img = cohort.data.features["histology"]
    od = -np.log10(np.clip(img, 1 / 255, 1)).mean(axis=1)  # (N, 64, 64) mean optical density
    per_patch = od.reshape(30, 8, 8, 8, 8).mean(axis=(2, 4))
    assert planted_auroc(per_patch, cohort.truth.patch_masks, pooled=True) > 0.75


def test_informative_features_separate_classes(cohort):
    big = make_synthetic_cohort(n=150, seed=0)
    x, y = big.data.features["mrna"], big.data.labels
    spec = big.data.schema.modality("mrna")
    cols = [spec.features.index(f) for f in big.truth.informative_features["mrna"]]
    between = np.array([np.ptp([x[y == c, j].mean() for c in range(3)]) for j in range(x.shape[1])]) / x.std(axis=0)
    others = np.setdiff1d(np.arange(x.shape[1]), cols)
    assert between[cols].min() > between[others].max()
    noisy = big.data.features["noisy"]
    noisy_between = [np.ptp([noisy[y == c, j].mean() for c in range(3)]) / noisy[:, j].std() for j in range(noisy.shape[1])]
    assert np.mean(noisy_between) < 0.5 * between[cols].min()


def test_render_tile_is_uint8_rgb():
    tile = render_tile(np.random.default_rng(0), 1, np.eye(8, dtype=bool))
    assert tile.shape == (64, 64, 3) and tile.dtype == np.uint8


def test_select_modalities(cohort):
    sub = select_modalities(cohort.data, ["mrna", "histology"])
    assert sub.modality_names == ["mrna", "histology"] and sub.present.shape == (30, 2)
    with pytest.raises(ValueError, match="cannot select"):
        select_modalities(cohort.data, ["rna"])


def test_demo_cohort_round_trips_byte_for_byte(tmp_path):
    demo = make_demo_cohort(seed=3, n=20)
    assert len(np.intersect1d(demo.train_index, demo.test_index)) == 0
    assert len(demo.train_index) + len(demo.test_index) == 20
    save_demo_cohort(demo, tmp_path / "a")
    save_demo_cohort(demo, tmp_path / "b")
    assert (tmp_path / "a" / "cohort.npz").read_bytes() == (tmp_path / "b" / "cohort.npz").read_bytes()
    back = read_demo_cohort(tmp_path / "a")
    for name in demo.data.features:
        assert np.array_equal(back.data.features[name], demo.data.features[name])
    assert np.array_equal(back.truth.patch_masks, demo.truth.patch_masks)
    assert back.truth.informative_features == demo.truth.informative_features
    assert back.splits().test.sample_ids == demo.splits().test.sample_ids


def test_fidelity_scores_a_model(cohort):
    import fusioncore as fc

    torch.manual_seed(0)
    model = fc.create_model("mmdynamics", cohort.data.schema, image_gate="paper", hidden_dim=8, image_hidden_dim=8).eval()
    fid = explanation_fidelity(model, cohort)
    assert 0.0 <= fid["heatmap_auroc"] <= 1.0
    assert fid["n_planted"] == 10 and 0 <= fid["top10_planted"] <= 10 and len(fid["top10_gates"]) == 10
    assert set(fid["mean_confidence"]) == {"histology", "mrna", "methylation", "noisy"}
    assert isinstance(fid["noisy_lowest_confidence"], bool)


def test_load_demo_splits_selects_modalities(monkeypatch, tmp_path):
    import fusioncore.demo as ds

    demo = make_demo_cohort(seed=0, n=12)
    monkeypatch.setattr(ds, "load_demo_cohort", lambda: demo)
    assert ds.load_demo_splits().train.modality_names == ["histology", "mrna", "methylation", "noisy"]
    image_only = ds.load_demo_splits("image")
    assert image_only.train.modality_names == ["histology"] and len(image_only.test) == len(demo.test_index)
    assert ds.load_demo_splits("histology+mrna").test.modality_names == ["histology", "mrna"]
    assert ds.load_demo_splits("omics").train.modality_names == ["mrna", "methylation", "noisy"]
    with pytest.raises(ValueError, match="unknown modality"):
        ds.load_demo_splits("rna")


def test_uninformative_tiles_hold_no_evidence_in_every_class():
    from fusioncore.data.synthetic_cohort import make_synthetic_cohort

    plain = make_synthetic_cohort(n=40, seed=2)
    mixed = make_synthetic_cohort(n=200, seed=2, uninformative_images=0.3)
    assert plain.truth.patch_masks.sum(axis=(1, 2)).min() >= 4
    blank = mixed.truth.patch_masks.sum(axis=(1, 2)) == 0
    assert 0.2 < blank.mean() < 0.4
    assert set(mixed.data.labels[blank]) == {0, 1, 2}  # "nothing visible" says nothing about the class
    assert (mixed.truth.patch_masks.sum(axis=(1, 2))[~blank] >= 4).all()
    with pytest.raises(ValueError, match="uninformative_images"):
        make_synthetic_cohort(n=10, uninformative_images=1.0)
