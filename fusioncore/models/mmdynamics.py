"""MM-dynamics (Han et al., CVPR 2022): feature gates + true-class-probability confidence.

Per modality m (spec §4a): gate ``w = sigmoid(W_g x)`` (feature informativeness) -> encoder
``h = dropout(relu(W_e (x * w)))`` -> unimodal TCP classifier ``u = W_u h`` and a raw linear
confidence ``c = W_c h`` (modality informativeness, no sigmoid) -> ``h' = c * h``; the fused
logits are a single linear layer over ``concat(h'_1..h'_M)``.

Loss: ``CE(fused) + sum_m [mean(w_m) + MSE(c_m, TCP_m) + CE(u_m)]`` with TCP = softmax(u)[y]
*not* detached (as the official code; detached for an image modality under decoupled gate
training, below).

Missing modalities (fusioncore's rule, not in the paper): an absent modality's weighted hidden
vector is replaced by zeros before the fusion layer, so it contributes nothing to the logits
(only the fusion bias remains); its gates are reported as 0, its confidence as NaN, and it adds
no loss term for that sample. The prediction is therefore always defined from the modalities
present, including a single one.

Image gates (``image_gate_training="decoupled"``, not in the paper): trained jointly, a U-Net
gate can encode the class in *which* patches it opens instead of showing the evidence. In the
decoupled mode the image encoder and unimodal classifier learn from randomly masked images (that
cross-entropy always has weight 1: it is all that trains them); the gate learns from the frozen
evaluator's cross-entropy on the gated image plus its sparsity term and nothing else; fusion and
confidence learn on the gated image without moving the gate. See :mod:`fusioncore.encoders.image_branch`
and, for how batch norm is treated, ``_frozen``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ..config import DataSchema, ModalitySpec, ModelConfig, Recipe, SelectionConfig, TrainConfig, derive_default_recipe
from ..registry import register_method
from ..types import Batch, FusionOutput, LossOutput
from .base import FusionModel


@dataclass(frozen=True)
class MMDynamicsConfig(ModelConfig):
    """Hyper-parameters of MM-dynamics (defaults: the official ROSMAP/BRCA code).

    feature_informativeness:  learn feature gates (False = the "w/o FI" ablation: gates fixed at 1).
    modality_informativeness: weight each hidden vector by its confidence (False = "w/o MI").
    image_*: the image branch (Image MM-dynamics, spec §5a).
    """

    hidden_dim: int = 1000
    image_hidden_dim: int = 500
    dropout: float = 0.5
    feature_informativeness: bool = True
    modality_informativeness: bool = True
    lambda_sparsity: float = 1.0
    lambda_confidence: float = 1.0
    lambda_unimodal: float = 1.0
    class_weighted: bool = False
    image_gate: str = "smp"  # "smp" (segmentation-models-pytorch U-Net) or "paper" (compact U-Net of §5a)
    image_gate_encoder: str = "resnet18"
    image_patch_size: int = 8
    image_encoder: str = "smallcnn"  # "smallcnn" (§5a) or an smp/timm encoder name
    image_encoder_depth: int = 0  # stages of an smp/timm image encoder (0 = as deep as the image size allows)
    image_gate_fill: str = "black"  # what a gate of 0 turns a pixel into: "black" (x * map, published) or "white"
    sparsity_warmup_epochs: float = 0.0  # train this many epochs without the sparsity term ...
    sparsity_ramp_epochs: float = 0.0  # ... then raise its weight linearly to lambda_sparsity over this many
    image_gate_training: str = "joint"  # "joint" (published) or "decoupled" (see ImageBranch / docs/results.md §3)

    def __post_init__(self) -> None:
        if self.image_gate_training not in ("joint", "decoupled"):
            raise ValueError(f"image_gate_training must be 'joint' or 'decoupled', got {self.image_gate_training!r}")
        if self.image_gate_training == "decoupled" and not self.feature_informativeness:
            raise ValueError("image_gate_training='decoupled' trains image gates, but feature_informativeness=False "
                             "has none: use image_gate_training='joint'")
        if self.image_gate_fill not in ("black", "white"):
            raise ValueError(f"image_gate_fill must be 'black' or 'white', got {self.image_gate_fill!r}")
        if self.sparsity_warmup_epochs < 0 or self.sparsity_ramp_epochs < 0:
            raise ValueError("sparsity_warmup_epochs and sparsity_ramp_epochs must be >= 0, got "
                             f"{self.sparsity_warmup_epochs} and {self.sparsity_ramp_epochs}")

    def sparsity_weight(self, epoch: float | None) -> float:
        """The sparsity term's weight at ``epoch`` (None = not training: the full weight).

        Why a schedule: with the published constant weight the gates of an image branch are
        pushed shut before the classifier has learned what to look at, and a closed gate gets
        no gradient back (docs/results.md, section 3). Defaults (0, 0) = the published loss.
        """
        if epoch is None or epoch >= self.sparsity_warmup_epochs + self.sparsity_ramp_epochs:
            return self.lambda_sparsity
        if epoch < self.sparsity_warmup_epochs:
            return 0.0
        return self.lambda_sparsity * (epoch - self.sparsity_warmup_epochs) / self.sparsity_ramp_epochs


def xavier_init(module: nn.Module) -> None:
    """Xavier-normal weights and zero biases for every Linear, as the official code."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_normal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class TabularBranch(nn.Module):
    """One tabular modality: square-linear sigmoid gate and a one-layer encoder.

    ``gate`` is ``(d, d)``, ``encoder`` ``(hidden, d)``; the TCP heads live in the model.
    """

    def __init__(self, spec: ModalitySpec, hidden_dim: int) -> None:
        super().__init__()
        d = spec.dim
        self.gate = nn.Linear(d, d)
        self.encoder = nn.Linear(d, hidden_dim)
        self.hidden_dim = hidden_dim

    def informativeness(self, x: Tensor) -> Tensor:
        """``(B, d)`` feature gates in (0, 1)."""
        return torch.sigmoid(self.gate(x))

    def encode(self, x: Tensor) -> Tensor:
        """``(B, d)`` gated input -> ``(B, hidden)`` pre-dropout hidden."""
        return torch.relu(self.encoder(x))


def build_branch(spec: ModalitySpec, config: MMDynamicsConfig) -> nn.Module:
    """The gate + encoder for one modality, by its kind."""
    if spec.kind == "tabular":
        return TabularBranch(spec, config.hidden_dim)
    if spec.kind == "image":
        from ..encoders.image_branch import ImageBranch

        return ImageBranch(spec, config)
    raise ValueError(f"MM-dynamics supports tabular and image modalities, not {spec.kind!r} ({spec.name})")


#: The image recipe measured on the demo cohort (docs/results.md, sections 3 and 8): CPU-sized
#: branches, the gate decoupled from its evaluator, a white fill, a sparsity warm-up and ramp.
IMAGE_RECIPE_PARAMS = dict(
    hidden_dim=64, image_hidden_dim=64, image_gate="smp", image_gate_encoder="resnet18", image_encoder="resnet18",
    image_encoder_depth=3, image_gate_fill="white", image_gate_training="decoupled", class_weighted=True,
    lambda_sparsity=0.3, sparsity_warmup_epochs=6.0, sparsity_ramp_epochs=10.0,
)


def default_recipe(kinds: frozenset[str], paper: TrainConfig) -> Recipe:
    """MM-dynamics' default: the published recipe on tables (epoch picked on validation); on
    images the demo recipe's optimisation for 36 mini-batch epochs, no epoch picked before the
    sparsity ramp ends.

    Why 36 and not the bundled demo's 24: with a 15 % validation split carved out, seed 2's
    validation loss was still falling at epoch 24 and its gate found the planted patches with an
    AUROC of only 0.80; at 36 epochs seeds 0-2 select epochs 30-36 and reach 0.975-0.987
    (docs/results.md, section 8)."""
    base = derive_default_recipe(kinds, paper)
    if "image" not in kinds:
        return base
    ramp_end = int(IMAGE_RECIPE_PARAMS["sparsity_warmup_epochs"] + IMAGE_RECIPE_PARAMS["sparsity_ramp_epochs"])
    train = TrainConfig(epochs=36, lr=2e-3, weight_decay=1e-4, scheduler="cosine", batch_size=32, seed=paper.seed)
    return Recipe("default", train, dict(IMAGE_RECIPE_PARAMS),
                  SelectionConfig(monitor="loss", patience=8, min_epochs=ramp_end))


@register_method(
    "mmdynamics",
    MMDynamicsConfig,
    train_defaults=TrainConfig(epochs=1000, lr=1e-4, weight_decay=1e-4, scheduler="step", step_size=500, gamma=0.2),
    default_recipe=default_recipe,
    description="MM-dynamics: feature gates + TCP modality confidence (Han et al. 2022)",
    supports=("tabular", "image"),
)
class MMDynamics(FusionModel):
    """MM-dynamics for any mix of tabular and image modalities."""

    def __init__(self, config: MMDynamicsConfig, schema: DataSchema) -> None:
        super().__init__(config, schema)
        k = schema.n_classes
        self.branches = nn.ModuleDict({m.name: build_branch(m, config) for m in schema.modalities})
        hidden = {m.name: self.branches[m.name].hidden_dim for m in schema.modalities}
        self.tcp_classifiers = nn.ModuleDict({n: nn.Linear(h, k) for n, h in hidden.items()})
        self.confidences = nn.ModuleDict({n: nn.Linear(h, 1) for n, h in hidden.items()})
        self.fusion = nn.Linear(sum(hidden.values()), k)
        self.dropout = nn.Dropout(config.dropout)
        xavier_init(self)

    @property
    def uses_class_weights(self) -> bool:
        return bool(self.config.class_weighted)

    @property
    def explanation_patch_size(self) -> int:
        """The gate's patch. The ``paper`` U-Net answers per 8 x 8 cell before patch averaging,
        so its map is constant on patches of ``lcm(image_patch_size, 8)``."""
        patch = int(self.config.image_patch_size)
        return math.lcm(patch, 8) if self.config.image_gate == "paper" else patch

    def image_map(self, modality: str) -> Callable[[Tensor], Tensor] | None:
        """The U-Net gate of image ``modality`` (:meth:`ImageBranch.informativeness`); None when
        the model is built without feature gates, whose untrained U-Net would be no explanation."""
        if self.schema.modality(modality).kind != "image" or not self.config.feature_informativeness:
            return None
        return self.branches[modality].informativeness

    def forward(self, batch: Batch, *, return_attention: bool = False) -> FusionOutput:
        self.check_batch(batch)
        cfg: MMDynamicsConfig = self.config
        present = batch.present
        parts, gates, confidence, raw_conf, unimodal, evaluator = [], {}, {}, {}, {}, {}
        for j, spec in enumerate(self.schema.modalities):
            name, here = spec.name, present[:, j]
            rows = _branch_rows(spec, here, self.training)
            x = batch.inputs[name]
            out = self._encode_modality(spec, x if rows is None else x[rows])
            if rows is not None:
                out = out.scatter(rows, present.shape[0])
            if out.gate is not None:
                gates[name] = out.gate * _expand(here, out.gate)
            if out.evaluator is not None:
                evaluator[name] = out.evaluator
            unimodal[name], raw_conf[name], h = out.unimodal, out.confidence, out.hidden
            if cfg.modality_informativeness:
                h = h * out.confidence.unsqueeze(-1)
                confidence[name] = torch.where(here, out.confidence, torch.full_like(out.confidence, float("nan")))
            parts.append(h * here.unsqueeze(-1).to(h.dtype))
        logits = self.fusion(torch.cat(parts, dim=-1))
        return FusionOutput(
            logits=logits,
            present=present,
            modality_logits=unimodal,
            gates=gates,
            confidence=confidence,
            extras={"raw_gates": gates, "raw_confidence": raw_conf, "evaluator_logits": evaluator},
        )

    def _encode_modality(self, spec: ModalitySpec, x: Tensor) -> "_ModalityPass":
        """One modality's gate, encoder, unimodal classifier and raw confidence, for the rows given."""
        cfg: MMDynamicsConfig = self.config
        branch = self.branches[spec.name]
        # (the config refuses "decoupled" without feature gates)
        decoupled = self.training and spec.kind == "image" and cfg.image_gate_training == "decoupled"
        gate = h_eval = None
        if cfg.feature_informativeness:
            gate = branch.informativeness(x)
            if decoupled:
                # The evaluator (encoder + unimodal classifier) learns from randomly masked
                # images only; the gate is judged by a frozen copy of it (ImageBranch docs).
                h_eval = self.tcp_classifiers[spec.name](self.dropout(branch.encode(branch.fill(x, branch.random_mask(x)))))
            x = branch.fill(x, gate) if spec.kind == "image" else x * gate
        if decoupled:
            h_judged = self.dropout(_frozen(branch.encoder, x).relu())
            unimodal = _frozen(self.tcp_classifiers[spec.name], h_judged)
            h = h_judged.detach()  # fusion and confidence learn on the gated image, gate untouched
        else:
            h = self.dropout(branch.encode(x))
            unimodal = self.tcp_classifiers[spec.name](h)
        return _ModalityPass(gate, h_eval, unimodal, h, self.confidences[spec.name](h).squeeze(-1))

    def loss(self, output: FusionOutput, batch: Batch) -> LossOutput:
        cfg: MMDynamicsConfig = self.config
        labels = batch.labels
        total = self.cross_entropy(output.logits, labels)
        terms = {"ce_fused": total.detach()}
        for j, name in enumerate(self.modality_names):
            here = batch.present[:, j].to(output.logits.dtype)
            u = output.modality_logits[name]
            ce_m = self.cross_entropy(u, labels, rows=here)
            view = cfg.lambda_unimodal * ce_m
            terms[f"ce_{name}"] = ce_m.detach()
            evaluator = output.extras.get("evaluator_logits", {}).get(name)  # set by decoupled training only
            if evaluator is not None:
                ce_eval = self.cross_entropy(evaluator, labels, rows=here)
                view = view + ce_eval  # weight 1 whatever lambda_unimodal: nothing else trains the evaluator
                terms[f"ce_{name}_evaluator"] = ce_eval.detach()
            if cfg.feature_informativeness:
                gate = output.gates[name]
                per_sample = gate.flatten(1).mean(dim=1)
                sparsity = (per_sample * here).sum() / here.sum().clamp_min(1)
                view = view + cfg.sparsity_weight(self.training_epoch) * sparsity
                terms[f"sparsity_{name}"] = sparsity.detach()
            if cfg.modality_informativeness:
                if evaluator is not None:
                    u = u.detach()  # a decoupled gate learns from its cross-entropy and sparsity only
                tcp = torch.softmax(u, dim=-1).gather(1, labels.unsqueeze(1)).squeeze(1)
                sq = (output.extras["raw_confidence"][name] - tcp) ** 2
                mse = (sq * here).sum() / here.sum().clamp_min(1)
                view = view + cfg.lambda_confidence * mse
                terms[f"tcp_mse_{name}"] = mse.detach()
            total = total + view
        return LossOutput(total=total, terms=terms)



@dataclass
class _ModalityPass:
    """What one modality's branch gives for the rows it ran on (``None``: not computed)."""

    gate: Tensor | None
    evaluator: Tensor | None
    unimodal: Tensor
    hidden: Tensor
    confidence: Tensor

    def scatter(self, rows: Tensor, n: int) -> "_ModalityPass":
        """Back to all ``n`` rows of the batch: the rows not run hold zeros (they are masked later)."""
        def full(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            out = t.new_zeros((n, *t.shape[1:]))
            return out.index_copy(0, rows, t)
        return _ModalityPass(*(full(getattr(self, f.name)) for f in dataclasses.fields(self)))


def _branch_rows(spec: ModalitySpec, here: Tensor, training: bool) -> Tensor | None:
    """The rows an image branch runs on, or ``None`` for the whole batch.

    An image branch has batch norm: in training its batch statistics would mix the values held
    for absent images into the present ones' normalisation (and send them gradient), so it runs
    on the present rows only. Tabular branches are row-wise (the whole batch gives the same
    numbers); in evaluation batch norm uses its running statistics. With fewer than two present
    images the whole batch runs (batch norm needs two values per channel in training); those
    outputs are masked like any absent modality's.
    """
    if spec.kind != "image" or not training:
        return None
    count = int(here.sum())
    if count == here.numel() or count < 2:
        return None
    return here.nonzero().squeeze(1)

def _frozen(module: nn.Module, x: Tensor) -> Tensor:
    """``module(x)`` with its parameters detached: gradients reach ``x`` (the gate), not ``module``.

    It runs in the module's current mode. In training, batch norm therefore normalises the gated
    images with their batch's statistics, as the evaluator pass does for its masked images, and
    folds them into the running statistics, which are then what inference normalises gated images
    with. The alternative, eval-mode batch norm here (each sample judged with the running
    statistics of the randomly masked images), was measured worse on the demo cohort: heatmap
    AUROC 0.974 and 0.889 against 1.000 and 0.994 for training seeds 0 and 1 (docs/results.md §3).
    """
    params = {n: p.detach() for n, p in module.named_parameters()}
    return torch.func.functional_call(module, {**params, **dict(module.named_buffers())}, (x,))


def _expand(here: Tensor, like: Tensor) -> Tensor:
    """``(B,)`` bool -> broadcastable float mask for a ``(B, ...)`` tensor."""
    return here.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))
