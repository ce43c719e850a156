"""Early fusion: per-modality encoders -> concatenation -> MLP head.

Each modality ``m`` is encoded by its own encoder (an MLP for a feature vector, the SmallCNN for
an image), ``h_m = enc_m(x_m)`` of shape ``(B, hidden)``; the ``M`` vectors are concatenated into ``(B, M * hidden)`` and an MLP head
gives the ``(B, K)`` logits. This is "feature-level" fusion in the neural form used as a
baseline by fusion papers (the classical form concatenates raw features; the per-modality
encoder only keeps the head's input size independent of the feature counts).

Missing modalities (the documented rule): an absent modality's encoding is replaced by a
**learned missing embedding** ``e_m`` (one ``(hidden,)`` vector per modality), never by silent
zeros. Zeros would be a real point in the encoder's output space (the output of a ReLU
encoder is often exactly zero), so the head could not tell "absent" from "all features
inactive"; ``e_m`` is a parameter the head learns to read as "no information about m". The
encoder of an absent modality is not evaluated into the head at all (``torch.where`` selects
``e_m``), so its input and its weights receive no gradient from that sample. The missing
embeddings only learn when training sees absent modalities, so train with
``TrainConfig.modality_dropout > 0`` (the registered default) to make them meaningful.

Explanations: early fusion mixes modalities inside the head, so the only honest per-modality
output is the embedding each modality contributed (``FusionOutput.embeddings``); absent
modalities get no embedding row (NaN), not the missing vector, so they are never explained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import DataSchema, ModelConfig, TrainConfig
from ..encoders.modality import modality_encoders
from ..registry import register_method
from ..types import Batch, FusionOutput
from .base import FusionModel


@dataclass(frozen=True)
class EarlyFusionConfig(ModelConfig):
    """Hyper-parameters of early fusion.

    hidden_dim:      per-modality encoder output size.
    encoder_layers:  Linear -> ReLU -> Dropout blocks per encoder.
    head_dim:        hidden size of the head MLP (0 = a single linear layer over the concatenation).
    dropout:         dropout in encoders and head.
    """

    hidden_dim: int = 128
    encoder_layers: int = 1
    head_dim: int = 64
    dropout: float = 0.5


@register_method(
    "early",
    EarlyFusionConfig,
    train_defaults=TrainConfig(
        epochs=60, lr=1e-3, weight_decay=1e-4, scheduler="cosine", batch_size=32, modality_dropout=0.2
    ),
    description="Early fusion: per-modality encoders, concatenation, MLP head; learned missing embeddings",
    supports=("tabular", "image"),
)
class EarlyFusion(FusionModel):
    """Concatenation fusion for any number of tabular and image modalities."""

    def __init__(self, config: EarlyFusionConfig, schema: DataSchema) -> None:
        super().__init__(config, schema)
        h = config.hidden_dim
        self.encoders = modality_encoders(
            schema.modalities, h, n_layers=config.encoder_layers, dropout=config.dropout, method="early"
        )
        # Small random init (not zeros) so two modalities' missing vectors start distinguishable.
        self.missing_embeddings = nn.ParameterDict(
            {m.name: nn.Parameter(0.02 * torch.randn(h)) for m in schema.modalities}
        )
        width = h * len(schema.modalities)
        if config.head_dim > 0:
            self.head = nn.Sequential(
                nn.Linear(width, config.head_dim),
                nn.ReLU(),
                nn.Dropout(config.dropout),
                nn.Linear(config.head_dim, schema.n_classes),
            )
        else:
            self.head = nn.Linear(width, schema.n_classes)

    def forward(self, batch: Batch, *, return_attention: bool = False) -> FusionOutput:
        """``batch.inputs[m]`` ``(B, d_m)`` or ``(B, C, H, W)`` -> logits ``(B, K)``; ``embeddings[m]`` ``(B, hidden)``."""
        self.check_batch(batch)
        parts, embeddings = [], {}
        for j, name in enumerate(self.modality_names):
            here = batch.present[:, j].unsqueeze(-1)  # (B, 1)
            h = self.encoders[name](batch.inputs[name])
            parts.append(torch.where(here, h, self.missing_embeddings[name].to(h.dtype).expand_as(h)))
            embeddings[name] = torch.where(here, h, torch.full_like(h, float("nan")))
        fused = torch.cat(parts, dim=-1)  # (B, M * hidden)
        logits = self.head(fused)
        embeddings["fusion"] = fused
        return FusionOutput(logits=logits, present=batch.present, embeddings=embeddings)


__all__ = ["EarlyFusion", "EarlyFusionConfig"]
