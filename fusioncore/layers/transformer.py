"""The MCA transformer block (the original ``MCALayer``, spec §1a) over token blocks.

Per layer: ``x <- LN(x); x <- Attn(x) + x; x <- LN(x); x <- FF(x) + x`` with one bias-free
LayerNorm shared by both normalisations (so the residual adds to the *normalised* x, as the
original code), a GEGLU feed-forward and bias-free linears; no dropout; a final LayerNorm after
the last layer. Norm and feed-forward act per token, so they run on the compacted blocks and
padding/absent samples cost nothing there either.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from .attention import Attention, TokenBlock


class GEGLUFeedForward(nn.Module):
    """``Linear(D -> 2*inner) -> x * GELU(gate) -> Linear(inner -> D)``, inner = ``int(D*mult*2/3)``
    (1365 for D = 512, mult 4), bias-free."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        inner = int(dim * mult * 2 / 3)
        self.proj_in = nn.Linear(dim, 2 * inner, bias=False)
        self.proj_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x, gate = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(x * F.gelu(gate))


@dataclass
class FusionPlan:
    """Which keys the fusion tokens may read (from ``masks.TokenLayout``, in block terms).

    sees: ``(F, G)`` bool, fusion token -> block; own: ``(F, F)`` bool, fusion -> fusion.
    """

    sees: Tensor
    own: Tensor


class MCALayer(nn.Module):
    """One pre-norm block with the shared bias-free LayerNorm."""

    def __init__(self, dim: int, heads: int, dim_head: int, ff_mult: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, bias=False)
        self.attn = Attention(dim, heads, dim_head)
        self.ff = GEGLUFeedForward(dim, ff_mult)

    def forward(
        self,
        blocks: list[TokenBlock],
        fusion: Tensor | None,
        plan: FusionPlan | None,
        need_weights: bool = False,
    ) -> tuple[list[TokenBlock], Tensor | None, dict | None]:
        blocks = [b.with_x(self.norm(b.x)) for b in blocks]
        fusion = None if fusion is None else self.norm(fusion)
        outs, f_out, weights = self.attn.forward_blocks(
            blocks,
            fusion,
            None if plan is None else plan.sees,
            None if plan is None else plan.own,
            need_weights=need_weights,
        )
        blocks = [b.with_x(self._ff(o + b.x)) for b, o in zip(blocks, outs)]
        if fusion is not None:
            fusion = self._ff(f_out + fusion)
        return blocks, fusion, weights

    def _ff(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        return self.ff(x) + x


class MCATransformer(nn.Module):
    """``depth`` :class:`MCALayer` s and a final LayerNorm; returns blocks, fusion, per-layer weights."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, ff_mult: int = 4) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"transformer depth must be >= 1, got {depth}")
        self.layers = nn.ModuleList([MCALayer(dim, heads, dim_head, ff_mult) for _ in range(depth)])
        self.final_norm = nn.LayerNorm(dim, bias=False)

    def forward(
        self,
        blocks: list[TokenBlock],
        fusion: Tensor | None = None,
        plan: FusionPlan | None = None,
        need_weights: bool = False,
    ) -> tuple[list[TokenBlock], Tensor | None, list[dict]]:
        weights = []
        for layer in self.layers:
            blocks, fusion, w = layer(blocks, fusion, plan, need_weights)
            if need_weights:
                weights.append(w)
        blocks = [b.with_x(self.final_norm(b.x)) for b in blocks]
        fusion = None if fusion is None else self.final_norm(fusion)
        return blocks, fusion, weights


__all__ = ["FusionPlan", "GEGLUFeedForward", "MCALayer", "MCATransformer"]
