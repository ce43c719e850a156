"""Attention pooling with learned return tokens (the original ``mean_pool: false`` path).

One learned query per output slot cross-attends to the tokens it may see, and the query is
added back as a residual: ``pooled = CrossAttn(q, tokens) + q`` (spec §1a). Slots: one per
modality (over that modality's real tokens) and one per fusion channel (over that channel's
fusion tokens); with Zorro's single channel, its query pools all fusion tokens. The exact
pattern is ``masks.pooling_mask``; this module computes it block by block.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .attention import Attention, TokenBlock, _heads, _merge, attend, expand_rows


@dataclass
class PoolWeights:
    """Attention probabilities of the return-token pooling (explicit path).

    modalities: per modality block, ``(B', H, 1, L')`` its return token over its real tokens (None: no sample).
    channels:   ``(B, C, H, 1, T)`` each channel's return token over its fusion tokens.
    """

    modalities: list[Tensor | None]
    channels: Tensor


class ReturnTokenPooling(nn.Module):
    """``n_modalities + n_channels`` learned return tokens and one cross-attention."""

    def __init__(self, dim: int, heads: int, dim_head: int, n_modalities: int, n_channels: int) -> None:
        super().__init__()
        self.n_modalities = n_modalities
        self.n_channels = n_channels
        self.queries = nn.Parameter(torch.randn(n_modalities + n_channels, dim))
        self.attn = Attention(dim, heads, dim_head)

    def forward(
        self, blocks: list[TokenBlock], fusion: Tensor, batch: int, need_weights: bool = False
    ) -> tuple[Tensor, PoolWeights | None]:
        """blocks: the M modality blocks; fusion ``(B, C*T, D)`` -> pooled ``(B, M + C, D)``.

        With ``need_weights`` also the :class:`PoolWeights`.
        """
        heads = self.attn.heads
        q_all = _heads(self.attn.to_q(self.queries), heads)  # (H, Q, dh)
        pooled, w_mod = [], []
        for m, block in enumerate(blocks):
            out = self.queries.new_zeros(batch, self.queries.shape[1])
            p = None
            if block.x.shape[0] > 0:
                _, k, v = self.attn.project(block.x)
                q = q_all[:, m : m + 1].unsqueeze(0).expand(k.shape[0], -1, -1, -1)
                mask = None if block.valid is None else block.valid[:, None, None, :]
                o, p = attend(q, k, v, mask, need_weights)
                out = expand_rows(self.attn.to_out(_merge(o))[:, 0], block.rows, batch)
            pooled.append(out + self.queries[m])
            w_mod.append(p)
        c = self.n_channels
        per = fusion.shape[1] // c
        _, k, v = self.attn.project(fusion.view(batch, c, per, -1))  # (B, C, H, T, dh)
        q = q_all[:, self.n_modalities :].transpose(0, 1).unsqueeze(2).unsqueeze(0).expand(batch, -1, -1, -1, -1)
        o, p_ch = attend(q, k, v, None, need_weights)  # (B, C, H, 1, dh)
        channels = self.attn.to_out(_merge(o))[:, :, 0] + self.queries[self.n_modalities :]
        out = torch.cat([torch.stack(pooled, dim=1), channels], dim=1)
        return out, (PoolWeights(w_mod, p_ch) if need_weights else None)


def masked_mean(x: Tensor, valid: Tensor | None) -> Tensor:
    """Mean over real tokens: ``(B', L', D)``, ``(B', L')`` -> ``(B', D)`` (EAO's mean pooling)."""
    if valid is None:
        return x.mean(dim=1)
    w = valid.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


__all__ = ["PoolWeights", "ReturnTokenPooling", "masked_mean"]
