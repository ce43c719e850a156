"""Block-sparse attention: compaction, all-masked queries, and parity with the dense masked reference."""

from __future__ import annotations

import pytest
import torch

import fusioncore as fc
from fusioncore.layers.attention import (
    Attention,
    TokenBlock,
    aggregate_channel_modality,
    attend,
    compact,
    masked_softmax,
)
from fusioncore.layers.maps import channel_modality_per_layer
from fusioncore.layers.masks import attention_mask, key_valid, pooling_mask
from fusioncore.layers.reference import dense_attention, dense_forward

try:  # tests/ as a package or as rootdir-relative modules
    from .mca_helpers import mixed_schema, random_batch
except ImportError:  # pragma: no cover
    from mca_helpers import mixed_schema, random_batch


# -- compaction -------------------------------------------------------------------------------
def test_compact_prefix_needs_no_mask_and_drops_empty_rows():
    x = torch.arange(3 * 4 * 2, dtype=torch.float32).view(3, 4, 2)
    valid = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    block = compact(x, valid)
    assert block.rows.tolist() == [0, 2] and block.valid is None
    assert torch.equal(block.x, x[[0, 2], :2])


def test_compact_gathers_real_tokens_in_order():
    x = torch.arange(2 * 4, dtype=torch.float32).view(2, 4, 1)
    valid = torch.tensor([[0, 1, 0, 1], [1, 1, 1, 0]], dtype=torch.bool)
    block = compact(x, valid)
    assert block.x.shape == (2, 3, 1)
    assert block.x[0, :2, 0].tolist() == [1.0, 3.0] and block.x[1, :, 0].tolist() == [4.0, 5.0, 6.0]
    assert block.valid.tolist() == [[True, True, False], [True, True, True]]
    assert block.positions[0, :2].tolist() == [1, 3] and block.positions[1].tolist() == [0, 1, 2]


def test_compact_everything_absent():
    block = compact(torch.randn(2, 3, 4), torch.zeros(2, 3, dtype=torch.bool))
    assert block.x.shape[0] == 0 and block.rows.numel() == 0


# -- all-masked queries --------------------------------------------------------------------------
@pytest.mark.parametrize("need_weights", [False, True])
def test_all_masked_query_gives_zeros_not_nan(need_weights):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 1, 3, 4), torch.randn(2, 1, 5, 4), torch.randn(2, 1, 5, 4)
    mask = torch.ones(2, 1, 3, 5, dtype=torch.bool)
    mask[1, :, 1] = False  # one query row with every key masked
    out, probs = attend(q, k, v, mask, need_weights)
    assert torch.isfinite(out).all()
    assert torch.equal(out[1, 0, 1], torch.zeros(4))
    ref = torch.softmax(q[0] @ k[0].transpose(-1, -2) / 2.0, -1) @ v[0]
    assert torch.allclose(out[0], ref, atol=1e-6)
    if need_weights:
        assert torch.equal(probs[1, 0, 1], torch.zeros(5))


@pytest.mark.parametrize("need_weights", [False, True])
def test_all_masked_query_has_zero_gradient_and_masked_keys_learn_nothing(need_weights):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 3, 4, requires_grad=True) for _ in range(3))
    mask = torch.tensor([[True, False, True], [False, False, False], [False, False, True]]).expand(2, 3, 3)
    out, weights = attend(q, k, v, mask.unsqueeze(1), need_weights)  # (B, 1, Sq, Sk): every head
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
    fast, _ = attend(q, k, v, mask.unsqueeze(1))
    slow, _ = attend(q, k, v, mask.unsqueeze(1), need_weights=True)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_masked_softmax_zero_for_masked_and_empty_rows():
    scores = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [5.0, -1.0, 0.0]])
    mask = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    w = masked_softmax(scores, mask)
    e = torch.exp(torch.tensor([1.0, 3.0]))
    assert torch.allclose(w[0], torch.tensor([e[0] / e.sum(), 0.0, e[1] / e.sum()]))
    assert torch.equal(w[1], torch.zeros(3))
    assert torch.allclose(w[2], torch.softmax(scores[2], -1))
    s = scores.clone().requires_grad_(True)
    masked_softmax(s, mask).sum().backward()
    assert torch.equal(s.grad[1], torch.zeros(3)) and s.grad[0, 1] == 0  # empty row and masked entry learn nothing


def test_dense_reference_all_masked_rows_zero():
    torch.manual_seed(0)
    attn = Attention(8, 2, 4)
    x = torch.randn(1, 3, 8)
    mask = torch.tensor([[[1, 1, 0], [0, 0, 0], [1, 1, 1]]], dtype=torch.bool)
    out = dense_attention(attn, x, mask)
    assert torch.equal(out[0, 1], torch.zeros(8))


def test_forward_blocks_matches_dense_for_one_layer():
    """Blocks + fusion through ``Attention.forward_blocks`` == one dense masked attention."""
    torch.manual_seed(0)
    from fusioncore.layers.masks import make_layout

    layout = make_layout((3, 2), "mca", tokens_per_channel=2)
    attn = Attention(8, 2, 4)
    b = 3
    x = torch.randn(b, layout.seq_len, 8)
    valid = [torch.tensor([[1, 1, 0], [0, 0, 0], [1, 0, 1]], dtype=torch.bool), torch.ones(b, 2, dtype=torch.bool)]
    kv = key_valid(layout, valid)
    dense = dense_attention(attn, x, attention_mask(layout)[None] & kv[:, None, :])
    blocks = [compact(x[:, :3], valid[0]), compact(x[:, 3:5], valid[1])]
    sees = layout.channel_membership()[torch.zeros(2, dtype=torch.long)]
    own = torch.ones(2, 2, dtype=torch.bool)
    for need in (False, True):
        outs, fusion, _ = attn.forward_blocks(blocks, x[:, 5:], sees, own, need_weights=need)
        assert torch.allclose(fusion, dense[:, 5:], atol=1e-5)
        b0 = blocks[0]
        for r, row in enumerate(b0.rows.tolist()):
            for t, pos in enumerate(b0.positions[r].tolist()):
                if b0.real()[r, t]:
                    assert torch.allclose(outs[0][r, t], dense[row, pos], atol=1e-5)
        assert torch.allclose(outs[1], dense[:, 3:5], atol=1e-5)


# -- whole-model parity ----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["mca", "zorro", "eao"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_whole_model_matches_dense_reference(method, seed):
    torch.manual_seed(seed)
    schema = mixed_schema()
    model = fc.create_model(method, schema, dim=32, depth=2, heads=2, dim_head=16, tokens_per_channel=2).eval()
    batch = random_batch(schema, 7, seed, p_missing=[0.0, 0.4, 0.8][seed])
    with torch.no_grad():
        fast = model(batch)
        explicit = model(batch, return_attention=True)
        ref = dense_forward(model, batch)
    assert set(fast.embeddings) == set(ref) - {"logits"}
    for key, value in fast.embeddings.items():
        assert torch.isfinite(value).all(), key
        assert torch.allclose(value, ref[key], atol=1e-4), f"{method}: embedding {key} differs from the dense reference"
        assert torch.allclose(explicit.embeddings[key], ref[key], atol=1e-4), f"{method}: explicit path, {key}"
    assert torch.allclose(fast.logits, ref["logits"], atol=1e-4)


# -- attention maps ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["mca", "zorro"])
def test_attention_maps_zero_where_masked(method):
    torch.manual_seed(0)
    schema = mixed_schema()
    model = fc.create_model(method, schema, dim=16, depth=2, heads=2, dim_head=8).eval()
    batch = random_batch(schema, 5, seed=3)
    with torch.no_grad():
        att = model(batch, return_attention=True).attention
    layout = model.layout
    s, b = layout.seq_len, batch.size
    assert att.mask.shape == (b, s, s) and len(att.layers) == 2
    structural = attention_mask(layout)
    assert not (att.mask & ~structural[None]).any()
    for layer in att.layers:
        assert layer.shape == (b, 2, s, s)
        masked = ~att.mask[:, None].expand_as(layer)
        assert torch.count_nonzero(layer[masked]) == 0, "attention on a masked entry"
        rows = att.mask.any(-1)[:, None].expand(-1, 2, -1)
        assert torch.allclose(layer.sum(-1)[rows], torch.ones(()), atol=1e-5)
    kv = key_valid(layout, model.encode(batch)[1])
    pmask = pooling_mask(layout)[None] & kv[:, None, :]
    assert att.pooling.shape == (b, 2, layout.n_modalities + layout.n_channels, s)
    assert torch.count_nonzero(att.pooling[~pmask[:, None].expand_as(att.pooling)]) == 0
    # channel x modality: zero for absent modalities and for modalities outside the channel
    cm = att.channel_modality
    assert cm.shape == (b, layout.n_channels, layout.n_modalities)
    member = layout.channel_membership()
    assert torch.count_nonzero(cm[:, ~member]) == 0
    assert torch.count_nonzero(cm.permute(0, 2, 1)[~batch.present]) == 0
    assert (cm.sum(-1) <= 1 + 1e-5).all()
    per_layer = channel_modality_per_layer(att, layout.n_modalities)
    assert per_layer.shape == (2, b, 2, layout.n_channels, layout.n_modalities)
    assert torch.allclose(per_layer.mean(dim=(0, 2)), cm, atol=1e-6)
    assert att.channel_names == model.channel_names


def test_aggregate_channel_modality_by_hand():
    types = torch.tensor([0, 0, 1, -1, -2])
    probs = torch.zeros(1, 1, 5, 5)
    probs[0, 0, 3] = torch.tensor([0.25, 0.25, 0.3, 0.2, 0.0])  # channel 0 token
    probs[0, 0, 4] = torch.tensor([0.0, 0.0, 0.6, 0.0, 0.4])  # channel 1 token
    cm = aggregate_channel_modality(probs, types, 2, 2)
    assert torch.allclose(cm[0, 0], torch.tensor([[0.5, 0.3], [0.0, 0.6]]))


def test_token_block_real_defaults_to_all_true():
    blk = TokenBlock(torch.zeros(2, 3, 4), None, torch.arange(2), torch.zeros(2, 3, dtype=torch.long), 3)
    assert blk.real().all()
