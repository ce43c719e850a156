"""Token encoders of the MCA family (spec §1a, "Inputs / tokenisation").

* :class:`SequenceEncoder` (pre-embedded sequences, CMU-MOSEI style):
  ``LayerNorm(d) -> Linear(d -> D) -> LayerNorm(D)``, padded positions zeroed before and after
  the projection, then a fixed sinusoidal positional encoding is added.
* :class:`TabularTokenizer` (dense tabular features, TCGA style): feature ``j`` becomes one token
  ``E[j] + MLP(v_j)`` where ``E`` is a learned identity embedding (rows capped at norm 1) and the value
  MLP is ``Linear(1 -> D) -> ReLU -> Linear(D -> D) -> LayerNorm``; values are clipped above at
  ``max_value`` (100); missing values are key-masked (and their value zeroed, so they are finite).

Both return ``(tokens (B, L, D), real (B, L) bool)``; the caller ANDs ``real`` with the
sample's modality presence.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(length, dim)`` fixed sin/cos encoding (Vaswani et al.): even dims sin, odd dims cos."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe.to(dtype)


class SequenceEncoder(nn.Module):
    """``(B, L, d)`` pre-embedded tokens -> ``(B, L, D)`` model tokens."""

    def __init__(self, input_dim: int, dim: int) -> None:
        super().__init__()
        self.norm_in = nn.LayerNorm(input_dim)
        self.proj = nn.Linear(input_dim, dim)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: Tensor, real: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``real`` ``(B, L)`` True = a real token (None: all real)."""
        if x.dim() != 3:
            raise ValueError(f"SequenceEncoder expects (batch, length, features), got shape {tuple(x.shape)}")
        if real is None:
            real = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        keep = real.unsqueeze(-1).to(x.dtype)
        h = self.norm_out(self.proj(self.norm_in(x * keep))) * keep
        h = h + sinusoidal_positions(x.shape[1], h.shape[-1], h.device, h.dtype)
        return h, real


class TabularTokenizer(nn.Module):
    """``(B, d)`` feature values -> ``(B, d, D)`` tokens, one per feature."""

    def __init__(self, n_features: int, dim: int, max_value: float = 100.0) -> None:
        super().__init__()
        self.max_value = max_value
        # The original uses nn.Embedding(max_norm=1), which renormalises the weight *in place*
        # at every lookup; float rounding can leave a norm a hair above 1 and change the weights
        # again on the next call, so two identical eval forwards could differ. The same cap is
        # applied functionally instead (rows scaled to norm <= 1 on the fly, weights untouched).
        self.identity = nn.Embedding(n_features, dim)
        self.value = nn.Sequential(nn.Linear(1, dim), nn.ReLU(), nn.Linear(dim, dim), nn.LayerNorm(dim))

    def forward(self, x: Tensor, observed: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``observed`` ``(B, d)`` True = value observed; non-finite values count as missing too."""
        if x.dim() != 2 or x.shape[1] != self.identity.num_embeddings:
            raise ValueError(
                f"TabularTokenizer expects (batch, {self.identity.num_embeddings}) values, got shape {tuple(x.shape)}"
            )
        finite = torch.isfinite(x)
        real = finite if observed is None else (observed & finite)
        v = torch.where(real, x, torch.zeros((), dtype=x.dtype, device=x.device)).clamp(max=self.max_value)
        w = self.identity.weight
        identity = w * (1.0 / w.norm(dim=-1, keepdim=True).clamp_min(1e-7)).clamp(max=1.0)
        tokens = identity[None] + self.value(v.unsqueeze(-1))
        return tokens, real


__all__ = ["SequenceEncoder", "TabularTokenizer", "sinusoidal_positions"]
