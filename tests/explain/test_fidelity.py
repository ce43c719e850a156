"""Fidelity: deletion of a planted-truth ordering beats a random ordering on a trained model,
planted recovery metrics, agreement between kinds, image patch curves, the CLI entry point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fusioncore.config import DataSchema, ModalitySpec, TrainConfig
from fusioncore.data.dataset import MultimodalDataset
from fusioncore.explain.fidelity import (
    auc_table,
    curves_frame,
    explanation_scores,
    perturbation_curves,
    rank_agreement,
)
from fusioncore.explain.planted import planted_recovery, truth_masks
from fusioncore.explain.units import unit_scores
from fusioncore.reports.fidelity import run_fidelity
from fusioncore.training import fit

try:
    from .explain_helpers import random_data, tiny_model
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from explain_helpers import random_data, tiny_model

PLANTED = [1, 4, 6]


def planted_data(n: int = 120, seed: int = 0) -> MultimodalDataset:
    """Modality ``a`` (10 features): the class is the sign of the planted features' sum;
    modality ``b`` (6 features) is noise. A few samples lack ``b``."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 10)).astype(np.float32)
    b = rng.normal(size=(n, 6)).astype(np.float32)
    labels = (a[:, PLANTED].sum(1) > 0).astype(np.int64)
    present = np.ones((n, 2), dtype=bool)
    present[::10, 1] = False
    b[~present[:, 1]] = 0
    schema = DataSchema((ModalitySpec("a", "tabular", (10,), tuple(f"a{i}" for i in range(10))),
                         ModalitySpec("b", "tabular", (6,), tuple(f"b{i}" for i in range(6)))), ("neg", "pos"))
    return MultimodalDataset(schema, {"a": a, "b": b}, present, labels, tuple(f"p{i}" for i in range(n)))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    data = planted_data()
    model = tiny_model("mmdynamics", data.schema)
    fit(model, data, TrainConfig(epochs=60, lr=2e-2, scheduler="none", seed=0), progress=False)
    return model.eval(), data


def test_planted_ordering_beats_random_deletion(trained):
    model, data = trained
    truth = np.zeros((len(data), 10))
    truth[:, PLANTED] = 1.0
    rng = np.random.default_rng(1)
    curves = perturbation_curves(model, data, "a", truth, kind="truth", steps=10)
    random = perturbation_curves(model, data, "a", rng.random((len(data), 10)), kind="random", steps=10)
    assert curves["deletion"].auc().mean() < random["deletion"].auc().mean() - 0.05
    assert curves["insertion"].auc().mean() > random["insertion"].auc().mean() + 0.05
    # removing nothing gives the model's own probability of the true class
    with torch.no_grad():
        from fusioncore.data.dataset import to_batch

        p = torch.softmax(model(to_batch(data, model.preprocessing)).logits, -1).numpy()[np.arange(len(data)), data.labels]
    np.testing.assert_allclose(curves["deletion"].probability[:, 0], p, atol=1e-6)
    table = auc_table([*curves.values(), *random.values()])
    assert set(table["kind"]) == {"truth", "random"} and (table["n_samples"] == len(data)).all()


def test_explanations_recover_planted_features(trained):
    model, data = trained
    scores = explanation_scores(model, data, methods=("ig",), batch_size=64)
    assert set(scores) == {"gates", "ig", "random"}
    ig = planted_recovery(scores["ig"]["a"], np.isin(np.arange(10), PLANTED))
    rnd = planted_recovery(scores["random"]["a"], np.isin(np.arange(10), PLANTED))
    assert ig.auroc > 0.85 and ig.top_k_hit_rate > 0.7
    assert ig.auroc > rnd.auroc
    # absent rows have no scores
    assert np.isnan(scores["ig"]["b"][::10]).all() and np.isnan(scores["gates"]["b"][::10]).all()


def test_planted_recovery_metrics():
    truth = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 1, 1]], dtype=bool)
    perfect = truth.astype(float) + 0.01 * np.arange(5)
    assert planted_recovery(perfect, truth) == (1.0, 1.0)
    assert planted_recovery(-perfect, truth).auroc == 0.0
    half = np.array([[1.0, 0.0, 0.5, 0.2, 0.1], [0.9, 0.0, 0.0, 1.0, 0.0]])
    r = planted_recovery(half, truth)
    assert r.top_k_hit_rate == pytest.approx(0.5)
    # sample 0: planted {1.0, 0.0} vs {0.5, 0.2, 0.1} -> 3/6; sample 1: {1.0, 0.0} vs {0.9, 0, 0} -> (3 + 0.5*2)/6
    assert r.auroc == pytest.approx((3 / 6 + 4 / 6) / 2)
    assert planted_recovery(np.array([0.3, 0.9, 0.1]), np.array([False, True, False])) == (1.0, 1.0)
    with pytest.raises(ValueError, match="shape"):
        planted_recovery(np.zeros((2, 3)), np.zeros((2, 4), bool))


def test_rank_agreement():
    a = np.array([[0.1, 0.5, 0.9, 0.3], [np.nan] * 4])
    rho, overlap = rank_agreement(a, a * 2, k=2)
    assert rho[0] == pytest.approx(1.0) and overlap[0] == 1.0 and np.isnan(rho[1])
    rho, overlap = rank_agreement(a[:1], -a[:1], k=2)
    assert rho[0] == pytest.approx(-1.0) and overlap[0] == 0.0


def test_image_patch_curves_and_unit_scores():
    schema = DataSchema((ModalitySpec("img", "image", (3, 16, 16)), ModalitySpec("t", "tabular", (4,))), ("a", "b"))
    model = tiny_model("mmdynamics", schema)
    data = random_data(schema, n=4, absent={3: 0})
    pixel = np.random.default_rng(0).random((4, 16, 16))
    units = unit_scores(pixel, "image", (3, 16, 16), 8)
    assert units.shape == (4, 4)
    assert units[0, 1] == pytest.approx(pixel[0, :8, 8:].mean())
    curves = perturbation_curves(model, data, "img", units, steps=4, patch_size=8)
    dele, ins = curves["deletion"], curves["insertion"]
    assert np.isnan(dele.probability[3]).all() and np.isfinite(dele.probability[:3]).all()
    np.testing.assert_allclose(dele.probability[:3, -1], ins.probability[:3, 0], atol=1e-6)  # both = all-baseline
    np.testing.assert_allclose(dele.probability[:3, 0], ins.probability[:3, -1], atol=1e-6)  # both = the input
    frame = curves_frame(curves.values())
    assert set(frame["sample_id"]) == {"s0", "s1", "s2"}
    with pytest.raises(ValueError, match="patch grid"):
        unit_scores(np.zeros((4, 5, 5)), "image", (3, 16, 16), 8)


def test_truth_masks_from_ground_truth_like():
    class Truth:
        patch_masks = np.zeros((2, 2, 2), bool)
        informative_features = {"t": ("t_1",)}

    schema = DataSchema((ModalitySpec("img", "image", (3, 16, 16)),
                         ModalitySpec("t", "tabular", (3,), ("t_0", "t_1", "t_2"))), ("a", "b"))
    masks = truth_masks(Truth(), schema, 2)
    assert masks["img"].shape == (2, 4) and masks["t"].tolist() == [[False, True, False]] * 2
    Truth.informative_features = {"t": ("nope",)}
    with pytest.raises(ValueError, match="nope"):
        truth_masks(Truth(), schema, 2)


def test_run_fidelity_writes_tables(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONCORE_STATIC_RENDERER", "matplotlib")
    model, data = trained
    ckpt = model.save(tmp_path / "ckpt")
    truth = {"a": np.isin(np.arange(10), PLANTED)}
    path = run_fidelity(ckpt, data, tmp_path / "fid", truth=truth, steps=4, max_samples=40, device="cpu",
                        figure_formats=("png", "csv", "json"))
    table = pd.read_csv(path)
    assert set(table["kind"]) == {"gates", "ig", "random", "truth"}
    assert set(table["mode"]) == {"deletion", "insertion"}
    rec = pd.read_csv(tmp_path / "fid" / "recovery.csv")
    assert rec.set_index("kind").loc["truth", "auroc"] == 1.0
    agree = pd.read_csv(tmp_path / "fid" / "agreement.csv")
    assert set(agree["modality"]) == {"a", "b"} and agree["spearman_mean"].between(-1, 1).all()
    assert (tmp_path / "fid" / "fidelity-a__mmdynamics.png").is_file()


def test_units_are_the_same_for_captum_and_the_curves():
    """A unit (feature / patch / token) means one thing: captum's ablation groups, the occlusion
    window, the curves' unit mask and the unit labels agree on it for every modality kind."""
    from fusioncore.explain.units import expand_units, feature_mask, occlusion_window, unit_labels

    for kind, shape, units in (("tabular", (5,), 5), ("image", (3, 16, 16), 4), ("sequence", (6, 2), 6)):
        ids, n = feature_mask(torch.zeros(1, *shape), kind, 8, 0)
        assert n == units and ids.shape == (1, *shape)
        for u in range(units):  # expanding unit u's one-hot mask selects exactly the elements with id u
            mask = torch.zeros(1, units, dtype=torch.bool)
            mask[0, u] = True
            assert torch.equal(expand_units(mask, kind, shape, 8).expand(1, *shape), ids == u)
        assert len(unit_labels(kind, units, grid_width=2)) == units
        window, stride = occlusion_window(kind, shape, 8)
        assert len(window) == len(stride) == len(shape)
    assert unit_labels("image", 4, grid_width=2) == ["r0c0", "r0c1", "r1c0", "r1c1"]
    assert unit_labels("tabular", 2, feature_names=("g1", "g2")) == ["g1", "g2"]
