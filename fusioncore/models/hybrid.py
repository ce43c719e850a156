"""Hybrid fusion: per-modality token encoders -> a transformer fusion module -> head.

Pipeline, for ``M`` modalities with ``T`` tokens each (``S = 1 + M * T`` tokens)::

    x_m (B, d_m) or (B, C, H, W) --enc_m--> (B, hidden) --linear--> (B, T, D) + type_m     modality tokens
    [fusion token ; tokens_1 ; ... ; tokens_M]                             (B, S, D)

With ``image_tokens="patches"`` an image modality is not squeezed through an encoder into ``T``
tokens; it becomes one token per ``image_patch_size`` square patch (the patch tokeniser of
MCA / Zorro / EAO, ``encoders.tokenizers.PatchTokenizer``, with 2-D positions) plus its type
embedding, so the readout's attention to each patch can be drawn over the image. ::
    n_layers x [ masked multi-head self-attention -> FFN ]  (pre-norm, residual)
    cross-attention readout: the fusion token queries the modality tokens  (B, D)
    LayerNorm -> Linear                                                    (B, K)

Missing modalities are handled by **key masking**: a token of an absent modality may neither
attend nor be attended to (its row and column of the mask are False), and the readout only
attends to present modality tokens. The fusion token is always valid, so every present token
has at least one key; a query whose keys are all masked (an absent token, or the readout of a
sample with no modality at all) yields an exact zero vector, never NaN. Masked probabilities
are exactly 0, so absent inputs and their encoders get exactly zero gradient.

Attention uses ``scaled_dot_product_attention`` (fused kernels) unless weights are requested;
``forward(batch, return_attention=True)`` switches to an explicit softmax path (same maths)
and returns :class:`~fusioncore.types.AttentionMaps`: the mask, per-layer ``(B, H, S, S)``
self-attention, ``token_modality`` (``-1`` = fusion token) and ``pooling`` ``(B, H, S)`` (the
readout's attention, fusion column 0). ``modality_weights[m]`` ``(B,)`` is then the readout's
attention mass on modality ``m`` (mean over heads), 0 when absent.

Masks are built by the small pure functions below, so they are tested on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from ..config import DataSchema, ModelConfig, TrainConfig
from ..encoders.modality import modality_encoders
from ..encoders.tokenizers import PatchTokenizer
from ..layers.attention import attend
from ..registry import register_method
from ..types import AttentionMaps, Batch, FusionOutput
from .base import FusionModel

FUSION_TOKEN = -1
IMAGE_TOKENS = ("encoder", "patches")


@dataclass(frozen=True)
class HybridFusionConfig(ModelConfig):
    """Hyper-parameters of hybrid (transformer) fusion.

    hidden_dim:          per-modality encoder output size.
    encoder_dropout:     dropout inside the per-modality encoders.
    tokens_per_modality: tokens each modality's encoder emits (``T``).
    token_dim:           transformer width ``D`` (divisible by ``n_heads``).
    n_heads, n_layers:   self-attention heads and layers.
    ff_mult:             FFN hidden size = ``ff_mult * token_dim``.
    dropout:             attention / FFN dropout.
    image_tokens:        ``"encoder"`` (SmallCNN -> ``T`` tokens, like any modality) or ``"patches"``
                         (one token per image patch).
    image_patch_size:    patch side in pixels for ``image_tokens="patches"``.
    """

    hidden_dim: int = 128
    encoder_dropout: float = 0.5
    tokens_per_modality: int = 4
    token_dim: int = 64
    n_heads: int = 4
    n_layers: int = 2
    ff_mult: int = 2
    dropout: float = 0.1
    image_tokens: str = "encoder"
    image_patch_size: int = 8

    def __post_init__(self) -> None:
        if self.image_tokens not in IMAGE_TOKENS:
            raise ValueError(f"HybridFusionConfig: image_tokens must be one of {IMAGE_TOKENS}, got {self.image_tokens!r}")
        if self.token_dim % self.n_heads:
            raise ValueError(
                f"HybridFusionConfig: token_dim ({self.token_dim}) must be divisible by n_heads ({self.n_heads})"
            )
        if self.tokens_per_modality < 1 or self.n_layers < 0:
            raise ValueError(
                "HybridFusionConfig: tokens_per_modality must be >= 1 and n_layers >= 0, got "
                f"{self.tokens_per_modality} and {self.n_layers}"
            )


# -- masks: pure functions -----------------------------------------------------------------
def token_modality_index(token_counts: Sequence[int]) -> Tensor:
    """``(S,)`` long: ``-1`` for the fusion token (position 0), then ``m`` for each of modality ``m``'s
    ``token_counts[m]`` tokens."""
    # Built from Python ints: a tensor of repeats cannot be expanded on the meta device, where the
    # model budget builds every model before allocating it.
    index = [FUSION_TOKEN] + [m for m, count in enumerate(token_counts) for _ in range(int(count))]
    return torch.tensor(index, dtype=torch.long)


def token_validity(present: Tensor, token_modality: Tensor) -> Tensor:
    """``(B, S)`` bool: a token is valid if it is a fusion token or its modality is present.

    present: ``(B, M)`` bool; token_modality: ``(S,)`` long (negative = fusion token).
    """
    idx = token_modality.to(present.device)
    of_modality = present[:, idx.clamp_min(0)]  # (B, S); fusion columns overwritten below
    return of_modality | (idx < 0).unsqueeze(0)


def self_attention_mask(valid: Tensor) -> Tensor:
    """``(B, S, S)`` bool, True = query ``i`` may attend to key ``j``: both tokens valid."""
    return valid.unsqueeze(-1) & valid.unsqueeze(-2)


def readout_mask(valid: Tensor, token_modality: Tensor) -> Tensor:
    """``(B, 1, S)`` bool: the readout query may attend to valid *modality* tokens only."""
    is_modality = (token_modality >= 0).to(valid.device)
    return (valid & is_modality.unsqueeze(0)).unsqueeze(1)


# -- attention (the core is layers.attention.attend) -------------------------------------
class MultiHeadAttention(nn.Module):
    """Multi-head attention from ``x_q`` ``(B, Sq, D)`` to ``x_kv`` ``(B, Sk, D)``."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def _split(self, x: Tensor) -> Tensor:
        b, s, d = x.shape
        return x.view(b, s, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, x_q: Tensor, x_kv: Tensor, mask: Tensor, need_weights: bool = False):
        p = self.dropout if self.training else 0.0
        # mask (B, Sq, Sk) -> (B, 1, Sq, Sk): one rule for every head.
        out, weights = attend(
            self._split(self.q(x_q)), self._split(self.k(x_kv)), self._split(self.v(x_kv)),
            mask.unsqueeze(1), need_weights, dropout_p=p,
        )
        b, h, s, dh = out.shape
        return self.out(out.transpose(1, 2).reshape(b, s, h * dh)), weights


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, mult: int, dropout: float) -> None:
        super().__init__(nn.Linear(dim, mult * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mult * dim, dim))


class SelfAttentionLayer(nn.Module):
    """Pre-norm ``x + MHSA(LN(x)) ; x + FFN(LN(x))`` over ``(B, S, D)`` tokens."""

    def __init__(self, dim: int, n_heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, n_heads, dropout)
        self.ff = FeedForward(dim, ff_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor, need_weights: bool = False):
        y = self.norm1(x)
        a, weights = self.attn(y, y, mask, need_weights)
        x = x + self.drop(a)
        return x + self.drop(self.ff(self.norm2(x))), weights


class CrossAttentionReadout(nn.Module):
    """The fusion query ``(B, 1, D)`` attends to the tokens ``(B, S, D)``; then an FFN."""

    def __init__(self, dim: int, n_heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, n_heads, dropout)
        self.ff = FeedForward(dim, ff_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, query: Tensor, tokens: Tensor, mask: Tensor, need_weights: bool = False):
        a, weights = self.attn(self.norm_q(query), self.norm_kv(tokens), mask, need_weights)
        z = query + self.drop(a)
        return z + self.drop(self.ff(self.norm_ff(z))), weights


@register_method(
    "hybrid",
    HybridFusionConfig,
    train_defaults=TrainConfig(
        epochs=60, lr=5e-4, weight_decay=1e-4, scheduler="cosine", batch_size=32, modality_dropout=0.2,
        grad_clip=1.0,
    ),
    description="Hybrid fusion: per-modality tokens, masked transformer self-attention + cross-attention readout",
    supports=("tabular", "image"),
)
class HybridFusion(FusionModel):
    """Transformer fusion over per-modality tokens for tabular and image modalities."""

    gives_attention = True

    def __init__(self, config: HybridFusionConfig, schema: DataSchema) -> None:
        super().__init__(config, schema)
        d, t = config.token_dim, config.tokens_per_modality
        names = [m.name for m in schema.modalities]
        patched = [m for m in schema.modalities if m.kind == "image" and config.image_tokens == "patches"]
        self.patch_modalities = {m.name for m in patched}
        encoded = tuple(m for m in schema.modalities if m.name not in self.patch_modalities)
        self.encoders = modality_encoders(encoded, config.hidden_dim, dropout=config.encoder_dropout, method="hybrid")
        self.tokenizers = nn.ModuleDict({m.name: nn.Linear(config.hidden_dim, t * d) for m in encoded})
        for m in patched:
            try:
                self.tokenizers[m.name] = PatchTokenizer(m.shape, config.image_patch_size, d)
            except ValueError as err:
                raise ValueError(f"hybrid: modality {m.name!r}: {err}") from err
        counts = [self.tokenizers[n].n_tokens if n in self.patch_modalities else t for n in names]
        # patch tokens carry their 2-D position already: one type vector per patched modality
        self.type_embeddings = nn.ParameterDict(
            {n: nn.Parameter(0.02 * torch.randn(1 if n in self.patch_modalities else t, d)) for n in names})
        self.fusion_token = nn.Parameter(0.02 * torch.randn(1, 1, d))
        self.layers = nn.ModuleList(
            SelfAttentionLayer(d, config.n_heads, config.ff_mult, config.dropout) for _ in range(config.n_layers)
        )
        self.readout = CrossAttentionReadout(d, config.n_heads, config.ff_mult, config.dropout)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, schema.n_classes)
        self.register_buffer("token_modality", token_modality_index(counts), persistent=False)

    @property
    def explanation_patch_size(self) -> int:
        """The side of the patch tokens (``image_tokens="patches"``); the same unit otherwise."""
        return int(self.config.image_patch_size)

    def patch_grid(self, modality: str) -> tuple[int, int] | None:
        return self.tokenizers[modality].grid if modality in self.patch_modalities else None

    def tokens(self, batch: Batch) -> Tensor:
        """``(B, S, D)``: the fusion token followed by each modality's tokens (``T``, or its patches)."""
        cfg: HybridFusionConfig = self.config
        b = batch.size
        parts = [self.fusion_token.expand(b, -1, -1)]
        for name in self.modality_names:
            if name in self.patch_modalities:
                tok, _ = self.tokenizers[name](batch.inputs[name])  # check_batch refused non-finite pixels
            else:
                h = self.encoders[name](batch.inputs[name])
                tok = self.tokenizers[name](h).view(b, cfg.tokens_per_modality, cfg.token_dim)
            parts.append(tok + self.type_embeddings[name])
        return torch.cat(parts, dim=1)

    def forward(self, batch: Batch, *, return_attention: bool = False) -> FusionOutput:
        """``batch.inputs[m]`` ``(B, d_m)`` -> logits ``(B, K)``; attention maps when asked for."""
        self.check_batch(batch)
        x = self.tokens(batch)
        valid = token_validity(batch.present, self.token_modality)
        mask = self_attention_mask(valid)
        maps = []
        for layer in self.layers:
            x, w = layer(x, mask, return_attention)
            maps.append(w)
        z, pooling = self.readout(x[:, :1], x, readout_mask(valid, self.token_modality), return_attention)
        fused = self.norm(z.squeeze(1))  # (B, D)
        out = FusionOutput(logits=self.head(fused), present=batch.present, embeddings={"fusion": fused})
        if return_attention:
            pooling = pooling.squeeze(2)  # (B, H, S)
            out.attention = AttentionMaps(
                mask=mask, layers=maps, token_modality=self.token_modality, pooling=pooling,
                channel_names=["fusion"],  # token -1 (= channel 0 in the viewer's labels) is the fusion token
            )
            mass = pooling.mean(dim=1)  # (B, S)
            out.modality_weights = {
                name: mass[:, self.token_modality == j].sum(dim=-1) for j, name in enumerate(self.modality_names)
            }
        return out


__all__ = [
    "HybridFusion",
    "HybridFusionConfig",
    "readout_mask",
    "self_attention_mask",
    "token_modality_index",
    "token_validity",
]
