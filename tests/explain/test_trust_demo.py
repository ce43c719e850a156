"""Trust verdicts on the bundled demo models against the same architectures untrained, the
planted orderings against random ones (deletion, ROAD), and the U-Net map's randomisation test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fusioncore as fc
from fusioncore.data.dataset import to_batch
from fusioncore.demo import demo_checkpoint, load_demo_cohort
from fusioncore.explain.faithfulness import deletion_insertion, mean_interval
from fusioncore.explain.planted import truth_masks
from fusioncore.explain.road import road_curves
from fusioncore.explain.trust import PASS, TrustThresholds, check_gap
from fusioncore.explain.trust_assess import TrustSettings, assess_trust
from fusioncore.explain.trust_scores import Explanation
from fusioncore.explain.attributions import modality_baselines
from fusioncore.inspect.session import ensure_aligned

T = TrustThresholds()
FAST = TrustSettings(attribution=None, randomisation_samples=8)
#: The image model runs a U-Net and a ResNet per forward: fewer steps and fractions, and the whole
#: cascade in one stage (the final state, every layer re-initialised, is the same).
FAST_IMAGE = TrustSettings(attribution=None, randomisation_samples=8, n_stages=1, steps=4, n_random=1,
                           road_fractions=(0.25, 0.5, 0.75))


@pytest.fixture(scope="module")
def test_split():
    return load_demo_cohort().test


def untrained_twin(model, seed: int = 0):
    """The same method, config and preprocessing, freshly initialised (never trained)."""
    torch.manual_seed(seed)
    twin = fc.create_model(model.method, model.schema, **vars(model.config))
    twin.preprocessing = model.preprocessing
    return twin.eval()


def informative(split, n: int):
    """The first ``n`` samples whose tile holds planted evidence."""
    rows = np.flatnonzero(split.truth.patch_masks.reshape(len(split.data), -1).any(axis=1))[:n]
    return split.subset(rows)


def test_trained_omics_gates_are_trustworthy_and_untrained_ones_are_not(test_split):
    model = fc.load(demo_checkpoint("mmdynamics_omics"), device="cpu")
    sub = test_split.subset(np.arange(40))
    for truth in (sub.truth, None):
        trained = assess_trust(model, sub.data, truth=truth, settings=FAST)
        for name in ("mrna", "methylation"):
            assert trained.record(Explanation("gates", name)).verdict == "trustworthy"
        noisy = trained.record(Explanation("gates", "noisy"))  # the model ignores it: no order can be tested
        assert noisy.verdict == "doubtful" and any("barely uses" in c.line for c in noisy.checks)
        fresh = assess_trust(untrained_twin(model), sub.data, truth=truth, settings=FAST)
        assert {r.verdict for r in fresh.records} <= {"untrustworthy", "doubtful"}
    per_sample = trained.per_sample[Explanation("gates", "mrna")]
    assert np.nanmean(per_sample.values["deletion_gap"]) == pytest.approx(trained.record(Explanation("gates", "mrna")).deletion_gap.mean)
    assert per_sample.verdicts.count("trustworthy") > len(sub.data) / 2, per_sample.verdicts


@pytest.fixture(scope="module")
def image_model():
    return fc.load(demo_checkpoint("mmdynamics_image_omics"), device="cpu")


def test_trained_unet_map_is_trustworthy_and_passes_randomisation(image_model, test_split):
    sub = informative(test_split, 8)
    only = [Explanation("image_map", "histology")]
    report = assess_trust(image_model, sub.data, truth=sub.truth, settings=FAST_IMAGE, only=only)
    record = report.record(only[0])
    assert record.randomisation_similarity < T.randomisation_pass
    assert record.randomisation_ssim < T.ssim_pass
    assert record.road_gap.low > 0 and record.recovery_auroc > 0.9
    assert record.verdict == "trustworthy", [c.line for c in record.checks]
    fresh = assess_trust(untrained_twin(image_model), sub.data, truth=sub.truth, settings=FAST_IMAGE, only=only)
    assert fresh.record(only[0]).verdict in ("untrustworthy", "doubtful")


def _inputs(model, data):
    batch = to_batch(ensure_aligned(model, data), model.preprocessing)
    base = modality_baselines(batch, model.modality_names)
    return batch, base, batch.labels


def test_planted_feature_order_beats_random_in_deletion(test_split):
    model = fc.load(demo_checkpoint("mmdynamics_omics"), device="cpu")
    sub = test_split.subset(np.arange(40))
    batch, base, target = _inputs(model, sub.data)
    planted = truth_masks(sub.truth, model.schema, len(sub.data))["mrna"].astype(float)
    curves = deletion_insertion(model, batch, "mrna", planted, target, base["mrna"], steps=10, n_random=2)
    gap, effect = mean_interval(curves.gap("deletion")), float(np.mean(curves.modality_effect()))
    assert gap.low > 0 and check_gap("deletion", gap, effect, T).status == PASS
    shuffled = np.random.default_rng(3).random(planted.shape)
    chance_curves = deletion_insertion(model, batch, "mrna", shuffled, target, base["mrna"], steps=10, n_random=2)
    chance = mean_interval(chance_curves.gap("deletion"))
    assert chance.low < 0 < chance.high and abs(chance.mean) < gap.mean / 4
    assert check_gap("deletion", chance, effect, T).status != PASS


def test_road_on_planted_truth_image(image_model, test_split):
    sub = informative(test_split, 8)
    batch, _, target = _inputs(image_model, sub.data)
    planted = sub.truth.patch_masks.reshape(len(sub.data), -1).astype(float)
    fractions = (0.2, 0.4, 0.6, 0.8)
    road = road_curves(image_model, batch, "histology", planted, target, fractions=fractions, seed=0)
    gap = mean_interval(road.gap())
    assert gap.low > 0.05
    assert (road.lerf.mean(axis=0) > road.morf.mean(axis=0)).all()
    shuffled = np.random.default_rng(5).random(planted.shape)
    chance = mean_interval(road_curves(image_model, batch, "histology", shuffled, target, fractions=fractions, seed=0).gap())
    assert abs(chance.mean) < gap.mean / 3
