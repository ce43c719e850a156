"""Hybrid (transformer) fusion specifics: masks, attention, explanations.

The model contract itself is tested for every method in ``test_registered.py``.
"""

from __future__ import annotations

import pytest
import torch

import fusioncore as fc
from fusioncore.models.hybrid import (
    HybridFusionConfig,
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
