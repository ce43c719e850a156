"""Turn the block-wise attention probabilities into the dense maps the dashboard shows.

Only used when ``return_attention=True`` (the explicit path): per layer a ``(B, H, S, S)``
map over the full token layout, zero wherever the mask forbids attention and on the rows of
padding / absent tokens; the return-token (pooling) map ``(B, H, Q, S)``; and each channel's
attention mass per modality. At the paper's scale a dense map is ``B*H*S^2`` floats
(~210 MB per layer for one sample), so ask for attention on small batches.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..types import AttentionMaps
from .attention import BlockWeights, TokenBlock, aggregate_channel_modality, expand_rows
from .masks import TokenLayout, key_valid
from .pooling import PoolWeights


def block_diagonal_mask(layout: TokenLayout) -> Tensor:
    """``(S, S)`` bool: every token sees the tokens of its own type only (EAO's unimodal passes)."""
    t = layout.token_types()
    return t[:, None] == t[None, :]


def _scatter(dense: Tensor, probs: Tensor, rows: Tensor, q_pos: Tensor, k_pos: Tensor) -> None:
    """``dense[rows, h, q_pos, k_pos] += probs`` for ``probs`` ``(R, H, Lq, Lk)``."""
    r, h, lq, lk = probs.shape
    shape = (r, h, lq, lk)
    idx = (
        rows.view(r, 1, 1, 1).expand(shape),
        torch.arange(h, device=probs.device).view(1, h, 1, 1).expand(shape),
        q_pos.view(r, 1, lq, 1).expand(shape),
        k_pos.view(r, 1, 1, lk).expand(shape),
    )
    dense.index_put_(idx, probs.to(dense.dtype), accumulate=True)


def assemble_maps(
    layout: TokenLayout,
    structure: Tensor,
    blocks: list[TokenBlock],
    layer_weights: list[BlockWeights],
    pool_weights: PoolWeights | None,
    valid: list[Tensor],
    heads: int,
    channel_names: list[str],
) -> AttentionMaps:
    """Dense :class:`AttentionMaps` from the explicit path's per-block probabilities.

    ``blocks[g]`` is modality ``g`` (the block's positions index that modality's tokens);
    ``valid[m]`` ``(B, L_m)`` the real tokens of present modalities.
    """
    batch = valid[0].shape[0]
    kv = key_valid(layout, valid)
    mask = structure.to(kv.device)[None] & kv[:, None, :] & kv[:, :, None]
    rows = torch.arange(batch, device=structure.device)
    layers = [_layer_map(layout, blocks, w, heads, rows) for w in layer_weights]
    pooling = None if pool_weights is None else _pooling_map(layout, blocks, pool_weights, heads, rows)
    channel_modality = None
    if layout.n_channels and layers:
        per_layer = [aggregate_channel_modality(d, layout.token_types(), layout.n_modalities, layout.n_channels) for d in layers]
        channel_modality = torch.stack(per_layer).mean(dim=(0, 2))  # (B, C, M)
    return AttentionMaps(
        mask=mask,
        layers=layers,
        token_modality=layout.token_types(),
        channel_modality=channel_modality,
        channel_names=list(channel_names),
        pooling=pooling,
    )


def _fusion_positions(layout: TokenLayout, rows: Tensor) -> Tensor:
    """``(B, n_fusion)``: the sequence positions of the fusion (channel) tokens, for every row."""
    n_f = layout.n_fusion
    return (layout.offsets[-1] + torch.arange(n_f, device=rows.device)).expand(rows.numel(), n_f)


def _layer_map(layout: TokenLayout, blocks: list[TokenBlock], weights: BlockWeights, heads: int, rows: Tensor) -> Tensor:
    """One self-attention layer's ``(B, H, S, S)`` map: each modality's block on its own positions
    (padding rows zeroed), then the fusion tokens' rows over the keys they attended."""
    batch, offsets, s = rows.numel(), layout.offsets, layout.seq_len
    dense = torch.zeros(batch, heads, s, s, device=rows.device)
    for g, (block, p) in enumerate(zip(blocks, weights.blocks)):
        if p is None:
            continue
        pos = block.positions + offsets[g]
        _scatter(dense, p * block.real()[:, None, :, None], block.rows, pos, pos)
    if weights.fusion is not None:
        fusion_pos = _fusion_positions(layout, rows)
        keys = [expand_rows(blocks[g].positions + offsets[g], blocks[g].rows, batch) for g in weights.fusion_blocks]
        _scatter(dense, weights.fusion, rows, fusion_pos, torch.cat(keys + [fusion_pos], dim=1))
    return dense


def _pooling_map(layout: TokenLayout, blocks: list[TokenBlock], weights: PoolWeights, heads: int, rows: Tensor) -> Tensor:
    """The return tokens' ``(B, H, M + C, S)`` map: query ``j`` pools modality ``j``'s tokens,
    query ``M + c`` channel ``c``'s fusion tokens."""
    batch, device = rows.numel(), rows.device
    m, c = layout.n_modalities, layout.n_channels
    pooling = torch.zeros(batch, heads, m + c, layout.seq_len, device=device)
    for j, (block, p) in enumerate(zip(blocks, weights.modalities)):
        if p is None:
            continue
        q = torch.full((block.rows.numel(), 1), j, dtype=torch.long, device=device)
        _scatter(pooling, p, block.rows, q, block.positions + layout.offsets[j])
    per, f_off = layout.tokens_per_channel, layout.offsets[-1]
    for ch in range(c):
        q = torch.full((batch, 1), m + ch, dtype=torch.long, device=device)
        k = (f_off + ch * per + torch.arange(per, device=device)).expand(batch, per)
        _scatter(pooling, weights.channels[:, ch], rows, q, k)
    return pooling


def channel_modality_per_layer(maps: AttentionMaps, n_modalities: int) -> Tensor:
    """``(layers, B, H, C, M)``: per layer and head, each channel's attention mass per modality."""
    n_channels = len(maps.channel_names)
    return torch.stack(
        [aggregate_channel_modality(d, maps.token_modality, n_modalities, n_channels) for d in maps.layers]
    )


__all__ = ["assemble_maps", "block_diagonal_mask", "channel_modality_per_layer"]
