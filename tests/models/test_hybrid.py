"""Hybrid (transformer) fusion specifics: masks, attention, explanations.

The model contract itself is tested for every method in ``test_registered.py``.
"""

from __future__ import annotations

import pytest
import torch

import fusioncore as fc
from fusioncore.models.hybrid import (
    HybridFusionConfig,
    attend,
    readout_mask,
    self_attention_mask,
    token_modality_index,
    token_validity,
)

from .base import make_batch, mixed_presence, tiny_schema


def test_token_modality_index():
    assert token_modality_index([2, 2, 2]).tolist() == [-1, 0, 0, 1, 1, 2, 2]
    assert token_modality_index([4, 1]).tolist() == [-1, 0, 0, 0, 0, 1]  # e.g. a 2 x 2 patch grid + one token


def test_masks_for_one_absent_modality():
    tok = token_modality_index([1, 1])  # [fusion, m0, m1]
    present = torch.tensor([[True, False]])
    valid = token_validity(present, tok)
    assert valid.tolist() == [[True, True, False]]
    expected = torch.tensor([[[True, True, False], [True, True, False], [False, False, False]]])
    assert torch.equal(self_attention_mask(valid), expected)
    assert readout_mask(valid, tok).tolist() == [[[False, True, False]]]


@pytest.mark.parametrize("need_weights", [False, True])
def test_attend_fully_masked_query_gives_zeros_not_nan(need_weights):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 3, 4, requires_grad=True) for _ in range(3))
    mask = torch.tensor([[True, False, True], [False, False, False], [False, False, True]]).expand(2, 3, 3)
    out, weights = attend(q, k, v, mask, need_weights=need_weights)
    assert torch.isfinite(out).all()
    assert torch.equal(out[:, :, 1], torch.zeros(2, 2, 4))
    out.sum().backward()
    assert torch.count_nonzero(q.grad[:, :, 1]) == 0  # the empty query learns nothing
    assert torch.count_nonzero(k.grad[:, :, 1]) == 0 and torch.count_nonzero(v.grad[:, :, 1]) == 0  # masked key
    if need_weights:
        assert torch.equal(weights[:, :, 1], torch.zeros(2, 2, 3))
        assert torch.equal(weights[:, :, 0, 1], torch.zeros(2, 2))
        assert torch.allclose(weights[:, :, 0].sum(-1), torch.ones(2, 2))


def test_sdpa_and_explicit_paths_agree():
    torch.manual_seed(1)
    q, k, v = (torch.randn(3, 4, 5, 8) for _ in range(3))
    mask = torch.rand(3, 5, 5) > 0.4
    fast, _ = attend(q, k, v, mask)
    slow, _ = attend(q, k, v, mask, need_weights=True)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_attention_maps_and_modality_weights():
    torch.manual_seed(0)
    schema = tiny_schema()
    model = fc.create_model("hybrid", schema, token_dim=16, n_heads=2, n_layers=2, tokens_per_modality=2).eval()
    present = mixed_presence(schema)
    with torch.no_grad():
        out = model(make_batch(schema, present), return_attention=True)
    att = out.attention
    b, s = present.shape[0], 1 + 3 * 2
    assert att.token_modality.tolist() == [-1, 0, 0, 1, 1, 2, 2]
    assert att.channel_names == ["fusion"]  # how viewers label token -1
    assert att.mask.shape == (b, s, s) and len(att.layers) == 2
    valid = token_validity(present, att.token_modality)
    for layer in att.layers:
        assert layer.shape == (b, 2, s, s)
        rows = layer.sum(-1)  # (B, H, S): 1 for valid queries, 0 for absent-modality queries
        assert torch.allclose(rows, valid.unsqueeze(1).float().expand_as(rows), atol=1e-5)
        assert torch.count_nonzero(layer[~att.mask.unsqueeze(1).expand_as(layer)]) == 0
    assert att.pooling.shape == (b, 2, s) and torch.count_nonzero(att.pooling[..., 0]) == 0
    weights = torch.stack([out.modality_weights[n] for n in schema.modality_names], dim=1)
    assert torch.allclose(weights.sum(1), torch.ones(b), atol=1e-5)
    assert torch.count_nonzero(weights[~present]) == 0
    assert model(make_batch(schema, present)).attention is None  # fast path returns no maps


def test_config_is_validated():
    with pytest.raises(ValueError, match="divisible"):
        HybridFusionConfig(token_dim=10, n_heads=4)
    with pytest.raises(ValueError, match="tokens_per_modality"):
        HybridFusionConfig(tokens_per_modality=0)
