"""Pure builders of the MCA / Zorro / EAO attention structure (spec §1a, §2a, §3b, §6).

The token sequence is laid out as ``[modality 0 tokens | ... | modality M-1 tokens | fusion
tokens]``. Fusion tokens are split contiguously into *channels*, one per modality subset.
Everything here is a plain function of counts, so the patterns are unit-tested against exact
matrices, and the fast attention path (``attention.py``), the dense reference
(``reference.py``) and the dashboard all read the same rule.

Masks are boolean with ``True = may attend`` (the convention of
``torch.nn.functional.scaled_dot_product_attention``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor

MaskMode = Literal["mca", "zorro", "none"]
MODES = ("mca", "zorro", "none")


def channels_from_combos(n_modalities: int, fusion_combos: Sequence[int] = ()) -> list[tuple[int, ...]]:
    """Modality subsets that get a fusion channel, in the original code's order.

    ``fusion_combos`` lists subset sizes (the configs use ``[4, 3, 2]``): all subsets of the
    first size, then the second, ... each in ``itertools.combinations`` order. Empty means
    "every size from ``n_modalities`` down to 2", which is ``[4, 3, 2]`` for 4 modalities (11
    channels). The first channel must be the all-modality one: its embedding is the fusion
    embedding.
    """
    if n_modalities < 1:
        raise ValueError(f"fusion_combos: need at least one modality, got {n_modalities}")
    sizes = list(fusion_combos) or list(range(n_modalities, 1, -1)) or [n_modalities]
    for s in sizes:
        if not isinstance(s, int) or s < 1 or s > n_modalities:
            raise ValueError(f"fusion_combos: subset size {s!r} is not in 1..{n_modalities} (the number of modalities)")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"fusion_combos: sizes must not repeat, got {list(fusion_combos)}")
    if sizes[0] != n_modalities:
        raise ValueError(
            f"fusion_combos: the first size must be {n_modalities} (the all-modality channel gives the fusion "
            f"embedding), got {list(fusion_combos)}"
        )
    return [c for s in sizes for c in itertools.combinations(range(n_modalities), s)]


def channel_name(channel: Sequence[int], modality_names: Sequence[str]) -> str:
    """``(0, 2)`` -> ``"rna+meth"``: the key of a channel embedding."""
    return "+".join(modality_names[i] for i in channel)


@dataclass(frozen=True)
class TokenLayout:
    """Where every token of the fused sequence sits.

    token_counts:        tokens per modality ``(L_0, ..., L_{M-1})``.
    channels:            modality subsets with fusion tokens (one for Zorro: all modalities).
    tokens_per_channel:  fusion tokens per channel (all channels have the same count).
    mode:                ``mca`` (per-channel fusion), ``zorro`` (fusion sees everything) or
                         ``none`` (no fusion tokens, every token sees every token: an EAO pass).
    """

    token_counts: tuple[int, ...]
    channels: tuple[tuple[int, ...], ...]
    tokens_per_channel: int
    mode: MaskMode

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mask mode must be one of {MODES}, got {self.mode!r}")
        if any(n < 0 for n in self.token_counts):
            raise ValueError(f"token counts must be >= 0, got {self.token_counts}")
        if self.mode == "none" and (self.channels or self.tokens_per_channel):
            raise ValueError("mask mode 'none' (EAO) has no fusion channels")
        if self.mode == "zorro" and len(self.channels) != 1:
            raise ValueError(f"Zorro has exactly one fusion channel (all modalities), got {len(self.channels)}")
        m = len(self.token_counts)
        for c in self.channels:
            if not c or any(i < 0 or i >= m for i in c):
                raise ValueError(f"channel {c} refers to modalities outside 0..{m - 1}")

    @property
    def n_modalities(self) -> int:
        return len(self.token_counts)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def n_fusion(self) -> int:
        return self.n_channels * self.tokens_per_channel

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each modality's tokens, then the start of the fusion tokens."""
        out, start = [], 0
        for n in self.token_counts:
            out.append(start)
            start += n
        out.append(start)
        return tuple(out)

    @property
    def seq_len(self) -> int:
        return sum(self.token_counts) + self.n_fusion

    def token_types(self) -> Tensor:
        """``(S,)`` long: modality index ``m`` for its tokens, ``-1 - c`` for channel ``c``'s fusion tokens."""
        parts = [torch.full((n,), m, dtype=torch.long) for m, n in enumerate(self.token_counts)]
        parts += [torch.full((self.tokens_per_channel,), -1 - c, dtype=torch.long) for c in range(self.n_channels)]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)

    def channel_membership(self) -> Tensor:
        """``(C, M)`` bool: channel ``c`` contains modality ``m``."""
        member = torch.zeros(self.n_channels, self.n_modalities, dtype=torch.bool)
        for c, subset in enumerate(self.channels):
            member[c, list(subset)] = True
        return member


def make_layout(
    token_counts: Sequence[int],
    mode: MaskMode,
    *,
    fusion_combos: Sequence[int] = (),
    tokens_per_channel: int = 1,
) -> TokenLayout:
    """The layout of one method: MCA channels from ``fusion_combos``; Zorro one channel holding
    as many fusion tokens as MCA would have in total (the paper's like-for-like 88); EAO none."""
    m = len(token_counts)
    if mode == "none":
        return TokenLayout(tuple(token_counts), (), 0, "none")
    channels = channels_from_combos(m, fusion_combos)
    if mode == "zorro":
        return TokenLayout(tuple(token_counts), (tuple(range(m)),), tokens_per_channel * len(channels), "zorro")
    return TokenLayout(tuple(token_counts), tuple(channels), tokens_per_channel, mode)


def attention_mask(layout: TokenLayout) -> Tensor:
    """``(S, S)`` bool "query may attend key" (structure only; padding is separate).

    * modality tokens see only their own modality's tokens (``mca``/``zorro``);
    * an MCA fusion token of channel ``S`` sees the tokens of every modality in ``S`` and the
      fusion tokens of its own channel only;
    * a Zorro fusion token sees every token;
    * ``none`` (one EAO pass): every token sees every token.
    """
    types = layout.token_types()
    s = types.numel()
    if layout.mode == "none":
        return torch.ones(s, s, dtype=torch.bool)
    q, k = types[:, None], types[None, :]
    same = q == k  # own modality / own channel
    is_fusion_q = q < 0
    member = layout.channel_membership()  # (C, M)
    channel_of_q = (-1 - types).clamp_min(0)
    # (S, S): query's channel contains the key's modality (only meaningful for fusion queries / modality keys).
    sees_modality = member[channel_of_q][:, types.clamp_min(0)] & (k >= 0)
    return same | (is_fusion_q & sees_modality)


def pooling_mask(layout: TokenLayout) -> Tensor:
    """``(Q, S)`` bool: which tokens each learned return token (query) pools over.

    Queries are ordered: one per modality (its own tokens), then one per channel (that
    channel's fusion tokens). For Zorro the single channel query pools all fusion tokens; the
    fusion embedding is always the first (all-modality) channel's query. (The original code
    also has a "global" query over every token; it is unused by the loss and left out here.)
    """
    types = layout.token_types()
    queries = torch.cat(
        [torch.arange(layout.n_modalities), -1 - torch.arange(layout.n_channels)]
    )
    return queries[:, None] == types[None, :]


def key_valid(layout: TokenLayout, valid: Sequence[Tensor]) -> Tensor:
    """``(B, S)`` bool: token is a real key. ``valid[m]`` is ``(B, L_m)`` (False = padding or an
    absent modality); fusion tokens are always real."""
    if len(valid) != layout.n_modalities:
        raise ValueError(f"key_valid: {len(valid)} validity masks for {layout.n_modalities} modalities")
    b = valid[0].shape[0] if valid else 0
    parts = list(valid) + [torch.ones(b, layout.n_fusion, dtype=torch.bool, device=valid[0].device)]
    return torch.cat(parts, dim=1)


__all__ = [
    "MODES",
    "MaskMode",
    "TokenLayout",
    "attention_mask",
    "channel_name",
    "channels_from_combos",
    "key_valid",
    "make_layout",
    "pooling_mask",
]
