"""The trust checks' building blocks: imputation, the cascade, similarities, intervals, verdicts,
explanation discovery (gates, image maps, attention, IG) on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.data.dataset import to_batch
from fusioncore.explain.faithfulness import Interval, mean_interval, single_sample_interval, unit_ranks
from fusioncore.explain.randomisation import (cascade_order, cascade_stages, map_ssim, randomised_cascade,
                                              rank_similarity)
from fusioncore.explain.road import noisy_linear_impute
from fusioncore.explain.trust import (FAIL, PASS, UNTESTABLE, TrustThresholds, check_gap, check_randomisation,
                                      check_recovery, verdict)
from fusioncore.explain.trust_scores import Explanation, available_explanations
from fusioncore.types import Batch

from explain_helpers import random_data, tabular_schema, tiny_model

T = TrustThresholds()


def test_noisy_linear_imputation_reconstructs_a_ramp_and_keeps_known_pixels():
    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    image = np.stack([xx, yy, 0.5 * xx + 0.25 * yy]).astype(np.float32)
    removed = np.zeros((16, 16), dtype=bool)
    removed[4:12, 2:10] = True
    out = noisy_linear_impute(image, removed, noise=0.0)
    np.testing.assert_allclose(out[:, removed], image[:, removed], atol=1e-5)  # harmonic: a linear ramp is exact
    np.testing.assert_array_equal(out[:, ~removed], image[:, ~removed])
    noisy = noisy_linear_impute(image, removed, noise=0.05, rng=np.random.default_rng(1))
    assert 0.02 < np.std(noisy[:, removed] - image[:, removed]) < 0.08
    with pytest.raises(ValueError, match="every pixel"):
        noisy_linear_impute(image, np.ones((16, 16), dtype=bool))


class _Net(nn.Module):
    """first -> second -> head, registered out of order, so only the call order can rank them."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 2)
        self.first = nn.Linear(3, 4)
        self.second = nn.Linear(4, 4)
        self.unused = nn.Linear(2, 2)
        self.gives_attention = False

    def forward(self, batch, return_attention=False):
        return self.head(self.second(self.first(batch.inputs["x"])).relu())

    @property
    def device(self):
        return self.head.weight.device


def _batch(n=3):
    return Batch(inputs={"x": torch.randn(n, 3)}, present=torch.ones(n, 1, dtype=torch.bool))


def test_cascade_runs_from_the_output_layer_down_on_a_copy():
    torch.manual_seed(1)  # not the cascade's seed 0: a net drawn right after manual_seed(0) *is* its re-draw
    net = _Net()
    assert cascade_order(net, _batch()) == ["head", "second", "first", "unused"]
    stages = cascade_stages(["head", "second", "first", "unused"], 3)
    assert stages == [("head", "second"), ("first",), ("unused",)]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    copies = list(randomised_cascade(net, stages, seed=0))
    for k, v in net.state_dict().items():  # the caller's model is untouched
        assert torch.equal(v, before[k])
    last = copies[-1].state_dict()
    assert all(not torch.equal(last[k], before[k]) for k in before)  # cumulative: everything re-drawn
    with pytest.raises(ValueError, match="positive"):
        cascade_stages(["a"], 0)


def test_rank_similarity_is_absolute_spearman_with_documented_constant_rows():
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 12)), rng.random((5, 12))
    b[1] = -a[1]  # a flipped map still shows the same structure
    b[2] = 1.0  # randomised map constant: nothing of the ranking kept
    a[3] = 2.0  # original constant: nothing to compare
    b[4, 0] = np.nan
    sim = rank_similarity(a, b)
    assert sim[0] == pytest.approx(abs(spearmanr(a[0], b[0]).statistic))
    assert sim[1] == pytest.approx(1.0)
    assert sim[2] == 0.0
    assert np.isnan(sim[3]) and np.isnan(sim[4])
    grid = rng.random((2, 64))
    ssim = map_ssim(grid, np.stack([grid[0], rng.random(64)]), (8, 8))
    assert ssim[0] == pytest.approx(1.0) and ssim[1] < 0.5


def test_unit_ranks_and_intervals():
    np.testing.assert_array_equal(unit_ranks(np.array([[0.1, 0.9, np.nan, 0.5]])), [[2, 0, 3, 1]])
    iv = mean_interval(np.r_[np.full(20, 0.1), np.full(20, 0.2), np.nan])
    assert iv.mean == pytest.approx(0.15) and 0.1 < iv.low < 0.15 < iv.high < 0.2 and iv.excludes_zero()
    assert np.isnan(mean_interval(np.array([0.3])).low)
    one = single_sample_interval(np.linspace(-0.1, 0.3, 41))
    assert one.low < 0 < one.high and not one.excludes_zero()


def test_checks_and_verdicts_follow_the_thresholds():
    assert check_randomisation(0.1, None, T).status == PASS
    assert check_randomisation(0.1, 0.9, T).status == FAIL  # an image map must pass SSIM too
    assert check_randomisation(0.7, None, T).status == FAIL
    assert check_randomisation(float("nan"), None, T).status == UNTESTABLE
    good = check_gap("deletion", Interval(0.1, 0.05, 0.15), 0.2, T)
    assert good.status == PASS
    assert check_gap("deletion", Interval(0.1, -0.01, 0.2), 0.2, T).status == "borderline"  # interval reaches 0
    assert check_gap("deletion", Interval(0.0, -0.01, 0.01), 0.2, T).status == FAIL
    # judged against what removing the whole modality does: a lightly used modality can pass ...
    assert check_gap("deletion", Interval(0.014, 0.005, 0.02), 0.026, T).status == PASS
    # ... and a small share of a dominant modality's effect is only borderline
    assert check_gap("road", Interval(0.02, 0.01, 0.03), 0.5, T).status == "borderline"
    unused = check_gap("deletion", Interval(0.1, 0.05, 0.15), 0.001, T)
    assert unused.status == UNTESTABLE and "barely uses" in unused.line
    assert verdict([check_randomisation(0.1, None, T), good]) == "trustworthy"
    assert verdict([check_randomisation(0.1, None, T), good, check_recovery(0.5, T)]) == "untrustworthy"
    assert verdict([check_randomisation(0.5, None, T), good]) == "doubtful"
    assert verdict([check_randomisation(0.1, None, T), unused]) == "doubtful"


def test_explanations_are_asked_of_the_output():
    schema = tabular_schema((5, 4))
    data = random_data(schema, n=6)
    dyn = tiny_model("mmdynamics", schema)
    found = available_explanations(dyn, to_batch(data, dyn.preprocessing), "ig")
    assert found == [Explanation("gates", "m0"), Explanation("ig", "m0"), Explanation("gates", "m1"), Explanation("ig", "m1")]
    late = tiny_model("late", schema)
    assert {e.kind for e in available_explanations(late, to_batch(data, late.preprocessing), "ig")} == {"ig"}
    mca = tiny_model("mca", schema)
    kinds = {(e.kind, e.modality) for e in available_explanations(mca, to_batch(data, mca.preprocessing), None)}
    assert kinds == {("attention", "m0"), ("attention", "m1")}  # one token per feature: a unit map
    image = DataSchema((ModalitySpec("img", "image", (3, 16, 16)),), ("a", "b"))
    img_model = tiny_model("mmdynamics", image)
    found = available_explanations(img_model, to_batch(random_data(image, n=2), img_model.preprocessing), None)
    assert found == [Explanation("image_map", "img")]
