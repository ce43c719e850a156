"""Modal Channel Attention (MCA) and its Zorro and Everything-At-Once (EAO) baselines.

Spec §1a (MCA), §2a (Zorro), §3b (EAO as in the MCA repo). All three share the encoders, the
transformer block and the contrastive recipe code; they differ only in data:

* ``mca``:   one channel of fusion tokens per modality subset (``fusion_combos``; default all
  subsets of size M..2, i.e. 11 channels for 4 modalities); channel S's fusion tokens see the
  tokens of the modalities in S and their own channel. Fusion embedding = the all-modality
  channel's return token.
* ``zorro``: one channel holding as many fusion tokens as MCA has in total; fusion tokens see
  every token; one fusion return token.
* ``eao``:   no fusion tokens and no mask; the shared transformer runs once per modality and
  once per modality pair, each pass mean-pooled.

Modality tokens only ever see their own modality (MCA/Zorro), so each modality is one compact
block and attention costs only what the mask allows (``layers/attention.py``).

Tokens (``encoders/tokenizers.py``): a sequence gives one token per step, a table one per feature,
an image one per ``image_patch_size`` square patch (row-major, with 2-D positions) — an extension
of the paper, which has no image modality, so the attention a channel pays to each patch can be
drawn over the image (``fusioncore.explain.attention_patches``). An absent modality's tokens are
never keys, whatever its kind.

Outputs (the one :class:`FusionOutput` contract): ``embeddings`` = every modality, every channel
(e.g. ``"rna+meth"``; EAO: every pair) and ``"fusion"``; rows of an absent modality, and of a
channel none of whose modalities is present, are zero vectors (they contribute nothing and are
excluded from every loss term by the presence rules). ``logits`` come from a linear head on the
fusion embedding. ``loss`` = the contrastive recipe ``+ lambda_supervised * CE(logits)`` when
labels are present; ``lambda_supervised = 0`` is the paper's self-supervised setting (train
embeddings only, then fit probes on them: ``fusioncore.explain.embeddings``).

Scale: the defaults are small for CPU (dim 64, 2 layers, 4 x 16 heads, 2 tokens per channel);
the paper's scale is :data:`PAPER_SCALE` (``create_model("mca", schema, **PAPER_SCALE)``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import DataSchema, ModelConfig, TrainConfig
from ..encoders.tokenizers import POSITION_KINDS, PatchTokenizer, token_count, token_encoder
from ..layers.attention import BlockWeights, TokenBlock, compact, expand_rows
from ..layers.maps import assemble_maps, block_diagonal_mask
from ..layers.masks import MaskMode, TokenLayout, attention_mask, channel_name, make_layout
from ..layers.pooling import ReturnTokenPooling, masked_mean
from ..layers.transformer import FusionPlan, MCATransformer
from ..losses.contrastive import ContrastiveRecipeLoss, eao_recipe, mca_recipe, zorro_recipe
from ..registry import register_method
from ..types import Batch, FusionOutput, LossOutput
from .base import FusionModel


@dataclass(frozen=True)
class MCAConfig(ModelConfig):
    """Hyper-parameters shared by ``mca``, ``zorro`` and ``eao``.

    tokens_per_channel: fusion tokens per MCA channel (paper: 8, x 11 channels = 88); Zorro gets
                        the same total in its single channel; EAO has none.
    fusion_combos:      MCA channel subset sizes, e.g. ``(4, 3, 2)``; empty = M..2. EAO always
                        uses pairs (``[2]``).
    recipe:             contrastive recipe ``"tcga"`` (all pairs, 60 MCA terms) or ``"cmu"``
                        (14 MCA terms); EAO ignores it (its own 26-term recipe).
    lambda_supervised:  weight of the cross-entropy of the fusion head (0 = the paper's purely
                        self-supervised training; probes afterwards).
    max_value:          tabular values are clipped above at this value (the original's 100).
    eao_skip_first_pair: reproduce the repo quirk leaving pair (0, 1) out of EAO's unimodal-vs-pair terms.
    loss_normalize:     L2-normalise embeddings inside the contrastive loss (cosine logits, as CLIP).
                        False = the original (raw dot products); True helps short CPU trainings,
                        where raw logits of ``scale * |a||b|`` saturate the softmax.
    image_patch_size:   side in pixels of the square patches an image modality is cut into; each
                        patch is one token (``encoders.tokenizers.PatchTokenizer``; not in the
                        paper, which has no images).
    image_positions:    2-D positions of the patch tokens: ``"sinusoidal"`` (fixed) or ``"learned"``.
    """

    dim: int = 64
    depth: int = 2
    heads: int = 4
    dim_head: int = 16
    ff_mult: int = 4
    tokens_per_channel: int = 2
    fusion_combos: tuple[int, ...] = ()
    recipe: str = "tcga"
    lambda_supervised: float = 1.0
    init_temperature: float = 0.07
    max_value: float = 100.0
    eao_skip_first_pair: bool = True
    loss_normalize: bool = False
    image_patch_size: int = 8
    image_positions: str = "sinusoidal"


#: The paper's scale (spec §1b): D 512, 5 layers, 8 heads x 64, 8 fusion tokens x 11 channels = 88.
PAPER_SCALE = {"dim": 512, "depth": 5, "heads": 8, "dim_head": 64, "ff_mult": 4, "tokens_per_channel": 8}

#: The paper's optimiser recipe (AdamW 1e-4, cosine with warm-up, grad clip 2.0, batch 8); epochs
#: and warm-up are shortened here so the registry default trains on CPU in minutes.
_TRAIN_DEFAULTS = TrainConfig(
    epochs=30, lr=1e-4, weight_decay=1e-4, optimizer="adamw", scheduler="cosine", warmup_steps=50,
    batch_size=8, grad_clip=2.0, seed=43,
)


class _TokenFusionModel(FusionModel):
    """Shared encoders, transformer, head and loss of the three methods."""

    mode: MaskMode = "mca"
    accepts_missing_values = True  # NaN feature values are key-masked by the tabular tokeniser
    gives_attention = True

    def __init__(self, config: MCAConfig, schema: DataSchema) -> None:
        super().__init__(config, schema)
        if config.dim < 1 or config.heads < 1 or config.dim_head < 1:
            raise ValueError(f"MCAConfig: dim, heads and dim_head must be >= 1, got {config.dim}, {config.heads}, {config.dim_head}")
        if config.image_positions not in POSITION_KINDS:
            raise ValueError(f"MCAConfig.image_positions must be one of {POSITION_KINDS}, got {config.image_positions!r}")
        self.token_counts = tuple(token_count(m, config.image_patch_size) for m in schema.modalities)
        self.encoders = nn.ModuleDict({
            m.name: token_encoder(m, config.dim, max_value=config.max_value, patch_size=config.image_patch_size,
                                  positions=config.image_positions)
            for m in schema.modalities
        })
        self.transformer = MCATransformer(config.dim, config.depth, config.heads, config.dim_head, config.ff_mult)
        self.head = nn.Linear(config.dim, schema.n_classes)

    @property
    def needs_labels(self) -> bool:
        """``lambda_supervised = 0`` is the paper's purely self-supervised setting."""
        return bool(self.config.lambda_supervised)

    @property
    def explanation_patch_size(self) -> int:
        """The side of the patch tokens an image is cut into."""
        return int(self.config.image_patch_size)

    def patch_grid(self, modality: str) -> tuple[int, int] | None:
        encoder = self.encoders[modality] if modality in self.encoders else None
        return encoder.grid if isinstance(encoder, PatchTokenizer) else None

    # -- shared pieces --------------------------------------------------------------
    def encode(self, batch: Batch) -> tuple[list[Tensor], list[Tensor]]:
        """Tokens ``[(B, L_m, D)]`` and key validity ``[(B, L_m)]`` (real token AND modality present)."""
        self.check_batch(batch)
        tokens, valid = [], []
        padding = batch.padding or {}
        for j, spec in enumerate(self.schema.modalities):
            real = padding.get(spec.name)
            if real is not None and tuple(real.shape) != tuple(batch.inputs[spec.name].shape[: real.dim()]):
                raise ValueError(
                    f"Batch.padding[{spec.name!r}] has shape {tuple(real.shape)}, expected "
                    f"{tuple(batch.inputs[spec.name].shape[:2])} (True = real token / observed value)"
                )
            t, r = self.encoders[spec.name](batch.inputs[spec.name], None if real is None else real.bool())
            tokens.append(t)
            valid.append(r & batch.present[:, j : j + 1])
        return tokens, valid

    def loss(self, output: FusionOutput, batch: Batch) -> LossOutput:
        """Contrastive recipe (+ ``lambda_supervised`` * fused CE when the batch has labels)."""
        emb = output.embeddings
        if self.config.loss_normalize:
            emb = {k: F.normalize(v, dim=-1) for k, v in emb.items()}
        out = self.contrastive(emb, batch.present)
        total, terms = out.total, dict(out.terms)
        weight = self.config.lambda_supervised
        if weight > 0 and batch.labels is not None:
            ce = self.cross_entropy(output.logits, batch.labels)
            total = total + weight * ce
            terms["ce_fused"] = ce.detach()
        terms["contrastive"] = out.total.detach()
        return LossOutput(total=total, terms=terms)


class _ChannelModel(_TokenFusionModel):
    """MCA and Zorro: modality blocks + fusion tokens in channels + return-token pooling."""

    def __init__(self, config: MCAConfig, schema: DataSchema) -> None:
        super().__init__(config, schema)
        if config.tokens_per_channel < 1:
            raise ValueError(f"MCAConfig.tokens_per_channel must be >= 1, got {config.tokens_per_channel}")
        self.layout: TokenLayout = make_layout(
            self.token_counts, self.mode, fusion_combos=config.fusion_combos, tokens_per_channel=config.tokens_per_channel
        )
        names = self.modality_names
        self.channel_names = [channel_name(c, names) for c in self.layout.channels]
        self.fusion_tokens = nn.Parameter(torch.randn(self.layout.n_fusion, config.dim))
        self.pooling = ReturnTokenPooling(config.dim, config.heads, config.dim_head, len(names), self.layout.n_channels)
        member = self.layout.channel_membership()  # (C, M)
        channel_of = torch.arange(self.layout.n_channels).repeat_interleave(self.layout.tokens_per_channel)
        self.register_buffer("_fusion_sees", member[channel_of], persistent=False)  # (F, M)
        self.register_buffer("_fusion_own", channel_of[:, None] == channel_of[None, :], persistent=False)
        self.register_buffer("_membership", member, persistent=False)
        recipe = (
            mca_recipe(names, self.layout.channels, config.recipe)
            if self.mode == "mca"
            else zorro_recipe(names, config.recipe)
        )
        self.contrastive = ContrastiveRecipeLoss(recipe, names, self.members, config.init_temperature)

    @property
    def members(self) -> dict[str, tuple[int, ...]]:
        out = {n: tuple(c) for n, c in zip(self.channel_names, self.layout.channels)}
        out["fusion"] = tuple(range(len(self.modality_names)))
        return out

    def embeddings_from_pooled(self, pooled: Tensor, present: Tensor) -> dict[str, Tensor]:
        """``(B, M + C, D)`` pooled return tokens -> named embeddings, absent rows zeroed."""
        m = len(self.modality_names)
        channel_present = (present[:, None, :] & self._membership[None]).any(dim=-1)  # (B, C)
        keep = torch.cat([present, channel_present], dim=1).unsqueeze(-1)
        pooled = torch.where(keep, pooled, torch.zeros((), dtype=pooled.dtype, device=pooled.device))
        emb = {name: pooled[:, j] for j, name in enumerate(self.modality_names)}
        emb.update({name: pooled[:, m + c] for c, name in enumerate(self.channel_names)})
        emb["fusion"] = pooled[:, m]  # the first channel is the all-modality one
        return emb

    def forward(self, batch: Batch, *, return_attention: bool = False) -> FusionOutput:
        tokens, valid = self.encode(batch)
        b = batch.size
        blocks = [compact(t, v) for t, v in zip(tokens, valid)]
        fusion = self.fusion_tokens.unsqueeze(0).expand(b, -1, -1)
        plan = FusionPlan(self._fusion_sees, self._fusion_own)
        blocks, fusion, layer_w = self.transformer(blocks, fusion, plan, need_weights=return_attention)
        pooled, pool_w = self.pooling(blocks, fusion, b, need_weights=return_attention)
        emb = self.embeddings_from_pooled(pooled, batch.present)
        attention = None
        if return_attention:
            attention = assemble_maps(
                self.layout, attention_mask(self.layout), blocks, layer_w, pool_w, valid, self.config.heads, self.channel_names
            )
        return FusionOutput(logits=self.head(emb["fusion"]), present=batch.present, embeddings=emb, attention=attention)


@register_method(
    "mca",
    MCAConfig,
    train_defaults=_TRAIN_DEFAULTS,
    description="Modal Channel Attention: fusion-token channels per modality subset (Bjorgaard 2024)",
    supports=("tabular", "sequence", "image"),
)
class MCA(_ChannelModel):
    """MCA (spec §1a)."""

    mode: MaskMode = "mca"


@register_method(
    "zorro",
    MCAConfig,
    train_defaults=_TRAIN_DEFAULTS,
    description="Zorro: modality-pure streams + fusion tokens that see everything (Recasens et al. 2023)",
    supports=("tabular", "sequence", "image"),
)
class Zorro(_ChannelModel):
    """Zorro as the MCA paper's baseline (spec §2a)."""

    mode: MaskMode = "zorro"


@register_method(
    "eao",
    MCAConfig,
    train_defaults=_TRAIN_DEFAULTS,
    description="Everything At Once: one transformer per modality and pair, post-inference fusion (Shvetsova et al. 2022)",
    supports=("tabular", "sequence", "image"),
)
class EAO(_TokenFusionModel):
    """EAO as in the MCA repo (spec §3b).

    The shared transformer runs once per modality and once per modality pair (no fusion
    tokens, no mask beyond padding), each pass mean-pooled over its real tokens.

    **Assumption (post-inference fusion):** EAO never forms an all-modality embedding, and the
    MCA repo does not contain the code that builds its ``fusion`` key. Following the original
    EAO post-hoc path, ``fusion`` = the mean of the L2-normalised unimodal embeddings of the
    modalities present (zero when none is).
    """

    mode: MaskMode = "none"

    def __init__(self, config: MCAConfig, schema: DataSchema) -> None:
        super().__init__(config, schema)
        m = len(self.modality_names)
        if m < 2:
            raise ValueError(f"EAO needs at least 2 modalities (it contrasts them), the schema has {m}")
        self.pairs = list(itertools.combinations(range(m), 2))
        self.passes = [(j,) for j in range(m)] + self.pairs
        self.pair_names = [channel_name(p, self.modality_names) for p in self.pairs]
        recipe = eao_recipe(self.modality_names, self.pairs, skip_first_pair=config.eao_skip_first_pair)
        self.contrastive = ContrastiveRecipeLoss(recipe, self.modality_names, self.members, config.init_temperature)

    @property
    def members(self) -> dict[str, tuple[int, ...]]:
        out = {n: p for n, p in zip(self.pair_names, self.pairs)}
        out["fusion"] = tuple(range(len(self.modality_names)))
        return out

    def pass_blocks(self, tokens: list[Tensor], valid: list[Tensor]) -> list[TokenBlock]:
        """One compacted block per pass (a modality or the concatenation of a pair)."""
        return [
            compact(torch.cat([tokens[j] for j in p], dim=1), torch.cat([valid[j] for j in p], dim=1))
            for p in self.passes
        ]

    def embeddings_from_passes(self, pooled: list[Tensor], present: Tensor) -> dict[str, Tensor]:
        """Per-pass ``(B, D)`` means -> named embeddings plus the post-inference ``fusion``."""
        m = len(self.modality_names)
        emb = {name: pooled[j] for j, name in enumerate(self.modality_names)}
        emb.update({name: pooled[m + i] for i, name in enumerate(self.pair_names)})
        normed = torch.stack([F.normalize(pooled[j], dim=-1) for j in range(m)], dim=1)  # (B, M, D)
        w = present.to(normed.dtype).unsqueeze(-1)
        emb["fusion"] = (normed * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
        return emb

    def forward(self, batch: Batch, *, return_attention: bool = False) -> FusionOutput:
        tokens, valid = self.encode(batch)
        b = batch.size
        blocks = self.pass_blocks(tokens, valid)
        blocks, _, layer_w = self.transformer(blocks, None, None, need_weights=return_attention)
        dim = self.config.dim
        pooled = [
            expand_rows(masked_mean(blk.x, blk.valid), blk.rows, b) if blk.x.shape[0] else tokens[0].new_zeros(b, dim)
            for blk in blocks
        ]
        emb = self.embeddings_from_passes(pooled, batch.present)
        attention = None
        if return_attention:
            # The unimodal passes are the only attention over a modality's own tokens; they are
            # shown block-diagonally (pair passes and the post-hoc fusion have no single map).
            layout = make_layout(self.token_counts, "none")
            uni = len(self.modality_names)
            shown = [BlockWeights(blocks=w.blocks[:uni]) for w in layer_w]
            attention = assemble_maps(
                layout, block_diagonal_mask(layout), blocks[:uni], shown, None, valid, self.config.heads, []
            )
        return FusionOutput(logits=self.head(emb["fusion"]), present=batch.present, embeddings=emb, attention=attention)


__all__ = ["EAO", "MCA", "MCAConfig", "PAPER_SCALE", "Zorro"]
