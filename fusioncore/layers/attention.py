"""Attention that costs only what the MCA / Zorro mask allows.

The dense formulation (``reference.py``) scores every query against every key of a
``2548``-token sequence and then throws most scores away. Here the sequence is kept as
*blocks*: each modality's tokens (compacted so that absent samples and padding are not
computed at all) attend only among themselves, and the few fusion tokens attend to the keys of
the modalities their channel may see plus their own channel. Every block is one call of
``torch.nn.functional.scaled_dot_product_attention`` (fused kernels on CPU and GPU); no
``[S x S]`` score matrix is ever materialised.

The explicit path (``need_weights=True``) computes the same blocks with an explicit softmax so
that the probabilities can be returned to the dashboard; masked entries are exactly zero and a
query with no allowed key outputs zeros (never NaN, never the uniform softmax of the original
code).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class TokenBlock:
    """One self-attending group of tokens, compacted.

    x:         ``(B', L', D)`` tokens of the ``B'`` samples that have at least one real token.
    valid:     ``(B', L')`` True = real token; None when every token is real (no mask needed).
    rows:      ``(B',)`` long: the batch row of each compacted row.
    positions: ``(B', L')`` long: each token's index on the group's full (uncompacted) axis.
    length:    length of the full axis (``L``).
    """

    x: Tensor
    valid: Tensor | None
    rows: Tensor
    positions: Tensor
    length: int

    def with_x(self, x: Tensor) -> "TokenBlock":
        return replace(self, x=x)

    def real(self) -> Tensor:
        """``(B', L')`` bool validity (all True when ``valid`` is None)."""
        if self.valid is None:
            return torch.ones(self.x.shape[:2], dtype=torch.bool, device=self.x.device)
        return self.valid


def compact(x: Tensor, valid: Tensor) -> TokenBlock:
    """Drop samples with no real token and move real tokens to the front (order kept).

    ``x`` ``(B, L, D)``, ``valid`` ``(B, L)`` bool. The compacted length is the largest number of
    real tokens of any sample, so cost follows the tokens actually present. With fixed-length
    tabular tokens and no missing values the result has no mask at all (fastest kernels).
    """
    if x.dim() != 3 or valid.shape != x.shape[:2]:
        raise ValueError(f"compact: expected x (B, L, D) and valid (B, L), got {tuple(x.shape)} and {tuple(valid.shape)}")
    counts = valid.sum(dim=1)
    rows = torch.nonzero(counts > 0).flatten()
    length = x.shape[1]
    if rows.numel() == 0:
        empty = x.new_zeros(0, 0, x.shape[2])
        z = torch.zeros(0, 0, dtype=torch.long, device=x.device)
        return TokenBlock(empty, None, rows, z, length)
    v = valid[rows]
    keep = int(counts.max())
    if bool(v[:, :keep].all()) and keep == int(counts[rows].min()):
        # Real tokens already form a common prefix: slice, no gather.
        pos = torch.arange(keep, device=x.device).expand(rows.numel(), keep)
        return TokenBlock(x[rows, :keep], None, rows, pos, length)
    # Stable sort puts real tokens first, in their original order.
    order = torch.sort((~v).to(torch.int8), dim=1, stable=True).indices[:, :keep]
    xs = torch.gather(x[rows], 1, order.unsqueeze(-1).expand(-1, -1, x.shape[2]))
    vs = torch.gather(v, 1, order)
    return TokenBlock(xs, None if bool(vs.all()) else vs, rows, order, length)


def expand_rows(t: Tensor, rows: Tensor, batch: int) -> Tensor:
    """Scatter compacted rows ``t`` ``(B', ...)`` back to ``(batch, ...)`` with zeros elsewhere."""
    if t.shape[0] == batch:
        return t
    out = t.new_zeros((batch,) + tuple(t.shape[1:]))
    return out.index_copy(0, rows, t)


def _heads(t: Tensor, heads: int) -> Tensor:
    """``(..., L, H*dh)`` -> ``(..., H, L, dh)``."""
    *lead, n, hd = t.shape
    return t.view(*lead, n, heads, hd // heads).transpose(-3, -2)


def _merge(t: Tensor) -> Tensor:
    """``(..., H, L, dh)`` -> ``(..., L, H*dh)``."""
    t = t.transpose(-3, -2)
    return t.reshape(*t.shape[:-2], -1)


def masked_softmax(scores: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax of ``scores`` over the entries where ``mask`` (bool, True = allowed) holds.

    The one home of the rule every attention here follows: masked entries are exactly 0, and a
    row with no allowed entry is all zeros (never NaN, never the uniform softmax). The empty row
    is let through to every entry (so the softmax is finite) and then zeroed, which zeroes its
    gradient too. ``mask`` broadcasts to ``scores``.
    """
    empty = ~mask.any(dim=dim, keepdim=True)
    probs = torch.softmax(scores.masked_fill(~(mask | empty), float("-inf")), dim=dim)
    return probs.masked_fill(empty, 0.0)


def attend(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, need_weights: bool = False, *, dropout_p: float = 0.0
) -> tuple[Tensor, Tensor | None]:
    """Masked softmax attention, the one core of MCA / Zorro / EAO, hybrid fusion and the pooling.

    q ``(..., Lq, dh)``, k / v ``(..., Lk, dh)``; ``mask`` bool, True = may attend, broadcastable to
    the scores ``(..., Lq, Lk)`` (None: every key). A query whose keys are all masked outputs zeros
    (and zero probabilities), as :func:`masked_softmax`. The fast path is
    ``scaled_dot_product_attention`` (fused kernels, no score matrix kept); ``need_weights`` uses
    the explicit softmax instead and also returns the probabilities ``(..., Lq, Lk)`` (before
    dropout). ``dropout_p`` drops attention probabilities (pass 0 in eval mode).
    """
    if need_weights:
        scores = torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        probs = torch.softmax(scores, dim=-1) if mask is None else masked_softmax(scores, mask)
        dropped = F.dropout(probs, p=dropout_p) if dropout_p > 0 else probs
        return torch.matmul(dropped, v), probs
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p), None
    empty = ~mask.any(dim=-1, keepdim=True)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | empty, dropout_p=dropout_p)
    return out.masked_fill(empty, 0.0), None


@dataclass
class BlockWeights:
    """Attention probabilities of one :meth:`Attention.forward_blocks` call (explicit path).

    blocks:        per block, ``(B', H, L', L')`` (None for a block with no sample).
    fusion:        ``(B, H, F, K)`` the fusion tokens' attention, or None without fusion tokens; its
                   keys are the keys of the blocks listed in ``fusion_blocks`` (expanded to ``B`` rows),
                   in that order, then the fusion tokens.
    fusion_blocks: which blocks' keys precede the fusion keys.
    """

    blocks: list[Tensor | None] = field(default_factory=list)
    fusion: Tensor | None = None
    fusion_blocks: list[int] = field(default_factory=list)


class Attention(nn.Module):
    """Multi-head attention with bias-free projections (``to_q``, ``to_kv``, ``to_out``).

    Used for self-attention inside the transformer blocks and for cross-attention pooling with
    learned return tokens, as the original ``Attention`` class.
    """

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(..., L, D)`` -> q, k, v each ``(..., H, L, dh)``."""
        k, v = self.to_kv(x).chunk(2, dim=-1)
        return _heads(self.to_q(x), self.heads), _heads(k, self.heads), _heads(v, self.heads)

    def forward_blocks(
        self,
        blocks: list[TokenBlock],
        fusion: Tensor | None = None,
        fusion_sees: Tensor | None = None,
        fusion_self: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[list[Tensor], Tensor | None, BlockWeights | None]:
        """Self-attention over blocks plus fusion tokens, as the block-structured mask allows.

        blocks:      self-attending groups (modalities for MCA/Zorro, passes for EAO).
        fusion:      ``(B, F, D)`` fusion tokens (never padded), or None.
        fusion_sees: ``(F, G)`` bool: fusion token ``i`` may attend the keys of block ``g``.
        fusion_self: ``(F, F)`` bool: fusion token ``i`` may attend fusion token ``j``.
        Returns the new block tensors (each ``(B', L', D)``), the new fusion tokens and, with
        ``need_weights``, the :class:`BlockWeights`.
        """
        outs, weights = [], BlockWeights() if need_weights else None
        kv_cache = []
        for block in blocks:
            if block.x.shape[0] == 0:
                outs.append(block.x)
                kv_cache.append(None)
                if need_weights:
                    weights.blocks.append(None)
                continue
            q, k, v = self.project(block.x)
            mask = None if block.valid is None else block.valid[:, None, None, :]
            o, p = attend(q, k, v, mask, need_weights)
            outs.append(self.to_out(_merge(o)))
            kv_cache.append((k, v))
            if need_weights:
                weights.blocks.append(p)
        if fusion is None:
            return outs, None, weights
        qf, kf, vf = self.project(fusion)
        b, n_f = fusion.shape[0], fusion.shape[1]
        keys, values, struct, real, used = [], [], [], [], []
        for g, block in enumerate(blocks):
            sees = fusion_sees[:, g]
            if kv_cache[g] is None or not bool(sees.any()):
                continue
            used.append(g)
            k, v = kv_cache[g]
            keys.append(expand_rows(k, block.rows, b))
            values.append(expand_rows(v, block.rows, b))
            struct.append(sees[:, None].expand(n_f, k.shape[-2]))
            real.append(expand_rows(block.real(), block.rows, b))
        keys.append(kf)
        values.append(vf)
        struct.append(fusion_self)
        real.append(torch.ones(b, n_f, dtype=torch.bool, device=fusion.device))
        mask = torch.cat(struct, dim=1)[None, None] & torch.cat(real, dim=1)[:, None, None, :]
        o, p = attend(qf, torch.cat(keys, dim=-2), torch.cat(values, dim=-2), mask, need_weights)
        if need_weights:
            weights.fusion, weights.fusion_blocks = p, used
        return outs, self.to_out(_merge(o)), weights


def aggregate_channel_modality(probs: Tensor, token_types: Tensor, n_modalities: int, n_channels: int) -> Tensor:
    """Attention of each channel's fusion tokens over modalities.

    probs ``(B, H, S, S)`` (one layer), token_types ``(S,)`` (``m`` or ``-1-c``) ->
    ``(B, H, C, M)``: for channel ``c``, the attention mass its fusion tokens put on modality
    ``m``'s tokens, averaged over the channel's tokens. The remaining mass of a row (up to 1) is
    on the channel's own fusion tokens.
    """
    types = token_types.to(probs.device)
    mod_onehot = F.one_hot(types.clamp_min(0), n_modalities).to(probs.dtype) * (types >= 0)[:, None]  # (S, M)
    ch_index = (-1 - types).clamp_min(0)
    ch_onehot = F.one_hot(ch_index, max(n_channels, 1)).to(probs.dtype)[:, :n_channels] * (types < 0)[:, None]  # (S, C)
    per_query = probs @ mod_onehot  # (B, H, S, M)
    summed = torch.einsum("bhsm,sc->bhcm", per_query, ch_onehot)
    return summed / ch_onehot.sum(0).clamp_min(1)[None, None, :, None]


__all__ = [
    "Attention",
    "BlockWeights",
    "TokenBlock",
    "aggregate_channel_modality",
    "attend",
    "compact",
    "expand_rows",
    "masked_softmax",
]
