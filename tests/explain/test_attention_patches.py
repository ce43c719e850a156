"""Patch attention (fusioncore.explain.attention_patches): per-reader maps from hand-built attention
with known answers, from real MCA / hybrid forwards, and scored against a planted truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fusioncore as fc
from fusioncore.data.dataset import to_batch
from fusioncore.data.synthetic_cohort import make_synthetic_cohort
from fusioncore.metrics import binary_auroc
from fusioncore.explain.attention_patches import (
    cohort_patch_attention,
    image_grid,
    patch_attention,
    patch_attention_fidelity,
    reader_names,
)
from fusioncore.training.loop import fit_preprocessing
from fusioncore.types import AttentionMaps

# tokens: image patches 0-3 (a 2 x 2 grid), one tabular token, channel 0 (sees the image), channel 1 (does not)
TYPES = torch.tensor([0, 0, 0, 0, 1, -1, -2])


def _maps(pooling: torch.Tensor | None = None) -> AttentionMaps:
    s = len(TYPES)
    mask = torch.zeros(s, s, dtype=torch.bool)
    mask[:4, :4] = True
    mask[4, 4] = True
    mask[5, :] = True  # channel 0 sees everything
    mask[6, 4:5] = True
    mask[6, 6] = True  # channel 1 sees the tabular token and itself
    layer = torch.zeros(1, 2, s, s)
    layer[0, :, :4, :4] = 0.25  # patches attend uniformly to each other
    layer[0, :, 4, 4] = 1.0
    layer[0, 0, 5, :] = torch.tensor([0.4, 0.1, 0.0, 0.0, 0.3, 0.2, 0.0])  # head 0: image mass 0.5
    layer[0, 1, 5, :] = torch.tensor([0.0, 0.0, 0.2, 0.0, 0.6, 0.2, 0.0])  # head 1: image mass 0.2
    layer[0, :, 6, 4] = 0.5
    layer[0, :, 6, 6] = 0.5
    return AttentionMaps(mask=mask, layers=[layer], token_modality=TYPES, channel_names=["img+tab", "tab"],
                         pooling=pooling)


def test_readers_and_shares_by_hand():
    pa = patch_attention(_maps(), 0, (2, 2), modality_name="img")
    assert pa.readers == ("img+tab", "img tokens")  # channel "tab" may not read the image
    # head mean: patch mass (0.2, 0.05, 0.1, 0) of total 0.35
    assert np.allclose(pa.reader("img+tab")[0], np.array([[0.2, 0.05], [0.1, 0.0]]) / 0.35)
    assert np.isclose(pa.mass[0, 0], 0.35)
    assert np.allclose(pa.reader("img tokens")[0], 0.25) and np.isclose(pa.mass[0, 1], 1.0)
    one = patch_attention(_maps(), 0, (2, 2), modality_name="img", head=1)
    assert np.allclose(one.reader("img+tab")[0], [[0.0, 0.0], [1.0, 0.0]]) and np.isclose(one.mass[0, 0], 0.2)


def test_return_token_and_readout_readers():
    pool = torch.zeros(1, 2, 4, len(TYPES))  # (B, H, M + C, S): query 0 = the image's return token
    pool[0, :, 0, :4] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    pa = patch_attention(_maps(pool), 0, (2, 2), modality_name="img")
    assert pa.readers == ("img+tab", "img return token", "img tokens")
    assert np.allclose(pa.reader("img return token")[0].ravel(), [0.1, 0.2, 0.3, 0.4])
    readout = torch.zeros(1, 2, len(TYPES))  # hybrid: (B, H, S)
    readout[0, :, :4] = 0.1
    readout[0, :, 4] = 0.6
    pa = patch_attention(_maps(readout), 0, (2, 2), modality_name="img")
    assert "readout" in pa.readers and np.isclose(pa.mass[0, pa.readers.index("readout")], 0.4)
    assert reader_names(_maps(readout), 0, "img") == list(pa.readers)


def test_an_image_nobody_attends_gets_zero_maps_not_nan():
    maps = _maps()
    maps.layers[0][:, :, :, :4] = 0.0
    pa = patch_attention(maps, 0, (2, 2))
    assert np.all(pa.maps == 0) and np.all(pa.mass == 0)


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="not the 3 x 3 patch grid"):
        patch_attention(_maps(), 0, (3, 3))
    with pytest.raises(ValueError, match="layer: 2 out of range"):
        patch_attention(_maps(), 0, (2, 2), layer=2)
    with pytest.raises(ValueError, match="head: 5 out of range"):
        patch_attention(_maps(), 0, (2, 2), head=5)
    with pytest.raises(ValueError, match="no attention reader 'x'"):
        patch_attention(_maps(), 0, (2, 2)).reader("x")


@pytest.fixture(scope="module")
def cohort():
    return make_synthetic_cohort(n=24, seed=3, image_size=16, patch_size=4, evidence_patches=(2, 4), n_mrna=6,
                                 n_methylation=5, n_noisy=4)


@pytest.mark.parametrize("method", ["mca", "zorro", "eao", "hybrid"])
def test_real_models_give_a_share_per_patch(cohort, method):
    torch.manual_seed(0)
    kw = {"image_tokens": "patches", "image_patch_size": 4} if method == "hybrid" else {"image_patch_size": 4, "dim": 16}
    model = fc.create_model(method, cohort.data.schema, **kw)
    model.preprocessing = fit_preprocessing(cohort.data)  # untrained: only the plumbing is tested
    assert image_grid(model, "histology") == (4, 4)
    with pytest.raises(ValueError, match="does not tokenise 'mrna'"):
        image_grid(model, "mrna")
    att = cohort_patch_attention(model, cohort.data, "histology", batch_size=5)
    assert att.maps.shape == (24, len(att.readers), 4, 4)
    assert np.allclose(att.maps.sum(axis=(2, 3)), 1.0, atol=1e-5), "each present reader's shares sum to 1"
    with torch.no_grad():  # the batched result equals a one-sample forward
        out = model(to_batch(cohort.data, model.preprocessing, index=np.array([7])), return_attention=True)
    one = patch_attention(out.attention, 0, (4, 4), modality_name="histology")
    assert np.allclose(one.maps[0], att.maps[7], atol=1e-5)
    fid = patch_attention_fidelity(model, cohort)
    for i, reader in enumerate(att.readers):
        assert fid["patch_attention_auroc"][reader] == pytest.approx(binary_auroc(att.maps[:, i], cohort.truth.patch_masks))


def test_fidelity_needs_patch_tokens(cohort):
    model = fc.create_model("hybrid", cohort.data.schema)  # the image through the SmallCNN, not patches
    with pytest.raises(ValueError, match="no image modality tokenised into patches"):
        patch_attention_fidelity(model, cohort)


def test_dashboard_view_draws_every_reader_or_one(cohort):
    from fusioncore.inspect import explain_sample
    from fusioncore.inspect.figures import sample_figure

    torch.manual_seed(0)
    model = fc.create_model("mca", cohort.data.schema, image_patch_size=4, dim=16)
    model.preprocessing = fit_preprocessing(cohort.data)
    exp = explain_sample(model, cohort.data, 2)
    assert exp.patch_size == 4
    every = sample_figure("patch_attention", exp, modality="histology", top_k=2)
    readers = reader_names(exp.attention, 0, "histology")
    assert sorted(set(every.data["reader"])) == sorted(readers) and len(every.data) == 16 * len(readers)
    assert every.view == "patch-attention-histology" and every.sample_id == exp.sample_id
    one = sample_figure("patch_attention", exp, modality="histology", reader=readers[0], layer=0, head=1)
    assert set(one.data["reader"]) == {readers[0]}
    assert (one.controls["layer"], one.controls["head"], one.controls["reader"]) == (0, 1, readers[0])
    with pytest.raises(ValueError, match="no attention reader 'nobody'"):
        sample_figure("patch_attention", exp, modality="histology", reader="nobody")
    off = sample_figure("patch_attention", explain_sample(model, cohort.data, 2, {"histology": False}), modality="histology")
    assert off.data.empty and "absent" in off.figure.layout.annotations[0].text
