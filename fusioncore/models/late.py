"""Late fusion: one classifier per modality, then a decision layer over the modalities present.

Each modality ``m`` (feature vector or image) has its own encoder and linear classifier, giving unimodal logits
``u_m`` ``(B, K)``. The decision layer combines them as a convex combination over the
modalities *present* for each sample::

    logits = sum_m alpha_m * u_m,   alpha = softmax over present m of s_m,   alpha_m = 0 if m absent

``decision`` chooses the scores ``s_m``:

* ``"learned"`` (default): ``s_m = v_m . h_m + c_m`` from the modality's own hidden vector, so the
  weight of a modality can change per sample (a learned decision layer / gating over present views);
* ``"static"``: one learned scalar per modality (weighted voting);
* ``"mean"``: ``s_m = 0``, i.e. the plain average of the present modalities' logits (the simple variant).

Because there is no bias, the fused logits are *exactly* the sum of per-modality contributions
``alpha_m * u_m`` (see :func:`modality_contributions`): that is the explanation late fusion can
honestly give. An absent modality has ``alpha_m = 0`` and NaN unimodal logits, so it is never
shown as contributing. A prediction is defined from any single present modality.

Loss: ``CE(fused) + lambda_unimodal * sum_m CE(u_m)`` over the samples where ``m`` is present,
so each classifier is a real classifier on its own (what makes averaging logits meaningful).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import DataSchema, ModelConfig, TrainConfig
from ..encoders.modality import modality_encoders
from ..layers.attention import masked_softmax
from ..registry import register_method
from ..types import Batch, FusionOutput, LossOutput
from .base import FusionModel

DECISIONS = ("learned", "static", "mean")


@dataclass(frozen=True)
class LateFusionConfig(ModelConfig):
    """Hyper-parameters of late fusion.

    hidden_dim:      per-modality encoder output size.
    encoder_layers:  Linear -> ReLU -> Dropout blocks per encoder.
    dropout:         encoder dropout.
    decision:        ``learned`` | ``static`` | ``mean`` (see the module docstring).
    lambda_unimodal: weight of the per-modality cross-entropy terms.
    """

    hidden_dim: int = 128
    encoder_layers: int = 1
    dropout: float = 0.5
    decision: str = "learned"
    lambda_unimodal: float = 1.0

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"LateFusionConfig.decision must be one of {DECISIONS}, got {self.decision!r}")


def modality_contributions(output: FusionOutput) -> dict[str, Tensor]:
    """Per-modality additive contributions ``alpha_m * u_m`` ``(B, K)`` of a late-fusion output.

    They sum exactly to ``output.logits`` over the present modalities; absent rows are 0.
    """
    if not output.modality_weights or not output.modality_logits:
        raise ValueError("modality_contributions needs a late-fusion output (modality_weights and modality_logits)")
    return {
        name: torch.nan_to_num(output.modality_logits[name], nan=0.0) * w.unsqueeze(-1)
        for name, w in output.modality_weights.items()
    }


@register_method(
    "late",
    LateFusionConfig,
    train_defaults=TrainConfig(
        epochs=60, lr=1e-3, weight_decay=1e-4, scheduler="cosine", batch_size=32, modality_dropout=0.2
    ),
    description="Late fusion: per-modality classifiers, learned decision weights over present modalities",
    supports=("tabular", "image"),
)
class LateFusion(FusionModel):
    """Decision-level fusion for any number of tabular and image modalities."""

    def __init__(self, config: LateFusionConfig, schema: DataSchema) -> None:
        super().__init__(config, schema)
        h, k = config.hidden_dim, schema.n_classes
        names = [m.name for m in schema.modalities]
        self.encoders = modality_encoders(
            schema.modalities, h, n_layers=config.encoder_layers, dropout=config.dropout, method="late"
        )
        self.classifiers = nn.ModuleDict({n: nn.Linear(h, k) for n in names})
        if config.decision == "learned":
            self.scorers = nn.ModuleDict({n: nn.Linear(h, 1) for n in names})
        elif config.decision == "static":
            self.modality_scores = nn.ParameterDict({n: nn.Parameter(torch.zeros(())) for n in names})

    def _scores(self, hidden: dict[str, Tensor]) -> Tensor:
        """``(B, M)`` decision scores before the masked softmax."""
        cfg: LateFusionConfig = self.config
        names = self.modality_names
        if cfg.decision == "learned":
            return torch.cat([self.scorers[n](hidden[n]) for n in names], dim=-1)
        ref = hidden[names[0]]
        if cfg.decision == "static":
            return torch.stack([self.modality_scores[n] for n in names]).to(ref.dtype).expand(ref.shape[0], -1)
        return ref.new_zeros(ref.shape[0], len(names))

    def forward(self, batch: Batch, *, return_attention: bool = False) -> FusionOutput:
        """``batch.inputs[m]`` ``(B, d_m)`` or ``(B, C, H, W)`` -> logits ``(B, K)``, ``modality_logits[m]`` ``(B, K)``,
        ``modality_weights[m]`` ``(B,)``."""
        self.check_batch(batch)
        present = batch.present
        hidden = {n: self.encoders[n](batch.inputs[n]) for n in self.modality_names}
        raw = {n: self.classifiers[n](hidden[n]) for n in self.modality_names}
        alpha = masked_softmax(self._scores(hidden), present)  # (B, M)
        logits = 0.0
        shown_logits, weights = {}, {}
        for j, name in enumerate(self.modality_names):
            here = present[:, j].unsqueeze(-1)
            # where(), not 0 * u: an absent modality adds exactly nothing, whatever its encoder computed.
            logits = logits + torch.where(here, alpha[:, j : j + 1] * raw[name], torch.zeros_like(raw[name]))
            shown_logits[name] = torch.where(here, raw[name], torch.full_like(raw[name], float("nan")))
            weights[name] = alpha[:, j]
        return FusionOutput(
            logits=logits,
            present=present,
            modality_logits=shown_logits,
            modality_weights=weights,
            embeddings={n: torch.where(present[:, j : j + 1], hidden[n], torch.full_like(hidden[n], float("nan")))
                        for j, n in enumerate(self.modality_names)},
            extras={"raw_modality_logits": raw},
        )

    def loss(self, output: FusionOutput, batch: Batch) -> LossOutput:
        cfg: LateFusionConfig = self.config
        total = self.cross_entropy(output.logits, batch.labels)
        terms = {"ce_fused": total.detach()}
        for j, name in enumerate(self.modality_names):
            rows = batch.present[:, j].to(output.logits.dtype)
            ce_m = self.cross_entropy(output.extras["raw_modality_logits"][name], batch.labels, rows=rows)
            terms[f"ce_{name}"] = ce_m.detach()
            total = total + cfg.lambda_unimodal * ce_m
        return LossOutput(total=total, terms=terms)


__all__ = ["LateFusion", "LateFusionConfig", "modality_contributions"]
