"""MM-static: the fixed-weight baseline of Image MM-dynamics (Wenderoth 2024, spec §5a).

The same encoders as MM-dynamics — a one-layer ReLU encoder per tabular modality, SmallCNN (or
an smp/timm encoder) per image — but *no* feature gates and *no* TCP confidence: each latent
is multiplied by a fixed per-modality scalar before concatenation and one linear fusion layer.
Loss: class-weighted cross-entropy on the fused logits only.

Missing modalities (fusioncore's rule): an absent modality's weighted latent is zeroed, so it
contributes nothing; its reported weight is 0 for that sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import DataSchema, ModalitySpec, ModelConfig, TrainConfig
from ..registry import register_method
from ..types import Batch, FusionOutput
from .base import FusionModel
from .mmdynamics import xavier_init

#: The paper's CLI default scalars were [3, 1, 6] for protein, RNA and image; without names to
#: match, tabular modalities default to 1 and images to 6 (the image scalar).
DEFAULT_TABULAR_SCALAR = 1.0
DEFAULT_IMAGE_SCALAR = 6.0


@dataclass(frozen=True)
class MMStaticConfig(ModelConfig):
    """Hyper-parameters of MM-static.

    modality_scalars: modality name -> fixed weight of its latent (missing names get the
    defaults above). ``class_weighted``: inverse-frequency class weights in the CE (as §5a).
    """

    hidden_dim: int = 1000
    image_hidden_dim: int = 500
    dropout: float = 0.5
    modality_scalars: dict[str, float] | None = None
    class_weighted: bool = True
    image_encoder: str = "smallcnn"  # "smallcnn" (§5a) or an smp/timm encoder name
    image_encoder_depth: int = 0  # stages of an smp/timm image encoder (0 = as deep as the image size allows)


class _TabularEncoder(nn.Module):
    def __init__(self, spec: ModalitySpec, hidden_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(spec.dim, hidden_dim)
        self.hidden_dim = hidden_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).relu()


class _ImageEncoder(nn.Module):
    def __init__(self, spec: ModalitySpec, config: MMStaticConfig) -> None:
        super().__init__()
        from ..encoders.image_branch import SmpImageEncoder
        from ..encoders.smallcnn import SmallCNN

        c, h, w = (int(s) for s in spec.shape)
        self.hidden_dim = int(config.image_hidden_dim)
        if config.image_encoder == "smallcnn":
            self.net = SmallCNN(c, (h, w), self.hidden_dim)
        else:
            self.net = SmpImageEncoder(config.image_encoder, c, (h, w), self.hidden_dim,
                                       depth=config.image_encoder_depth)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).relu()


def modality_scalar(config: MMStaticConfig, spec: ModalitySpec) -> float:
    scalars = config.modality_scalars or {}
    if spec.name in scalars:
        return float(scalars[spec.name])
    return DEFAULT_IMAGE_SCALAR if spec.kind == "image" else DEFAULT_TABULAR_SCALAR


@register_method(
    "mmstatic",
    MMStaticConfig,
    train_defaults=TrainConfig(epochs=250, lr=1e-4, weight_decay=1e-4, scheduler="step", step_size=500, gamma=0.2, batch_size=1024),
    description="MM-static: fixed per-modality latent weights, no gates, no TCP (Wenderoth 2024 baseline)",
    supports=("tabular", "image"),
)
class MMStatic(FusionModel):
    """MM-static for any mix of tabular and image modalities."""

    def __init__(self, config: MMStaticConfig, schema: DataSchema) -> None:
        super().__init__(config, schema)
        unknown = sorted(set(config.modality_scalars or {}) - set(schema.modality_names))
        if unknown:
            raise ValueError(f"modality_scalars names {unknown} are not modalities of the data ({schema.modality_names})")
        self.encoders = nn.ModuleDict(
            {
                m.name: _ImageEncoder(m, config) if m.kind == "image" else _TabularEncoder(m, config.hidden_dim)
                for m in schema.modalities
            }
        )
        self.register_buffer(
            "scalars", torch.tensor([modality_scalar(config, m) for m in schema.modalities], dtype=torch.float32),
            persistent=False,
        )
        self.fusion = nn.Linear(sum(e.hidden_dim for e in self.encoders.values()), schema.n_classes)
        self.dropout = nn.Dropout(config.dropout)
        xavier_init(self)

    @property
    def uses_class_weights(self) -> bool:
        return bool(self.config.class_weighted)

    def forward(self, batch: Batch, *, return_attention: bool = False) -> FusionOutput:
        self.check_batch(batch)
        present = batch.present
        parts, weights, embeddings = [], {}, {}
        for j, name in enumerate(self.modality_names):
            here = present[:, j].to(self.scalars.dtype)
            h = self.encoders[name](batch.inputs[name])
            embeddings[name] = h * here.unsqueeze(-1)
            parts.append(self.dropout(h) * (self.scalars[j] * here).unsqueeze(-1))
            weights[name] = self.scalars[j] * here
        return FusionOutput(
            logits=self.fusion(torch.cat(parts, dim=-1)),
            present=present,
            modality_weights=weights,
            embeddings=embeddings,
        )
