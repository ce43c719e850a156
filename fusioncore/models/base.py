"""The base class every fusion method derives from.

It fixes the contract (``forward(Batch) -> FusionOutput``, ``loss(output, batch) ->
LossOutput``), keeps the schema and the preprocessing the model was trained with, and knows
how to save itself as a checkpoint folder.

It also answers what the method *can do* — the capabilities the trainer, the explainers and the
dashboard ask (:meth:`FusionModel.supported_kinds`, ``accepts_missing_values``,
``gives_attention``, :attr:`~FusionModel.needs_labels`, :attr:`~FusionModel.uses_class_weights`,
:attr:`~FusionModel.explanation_patch_size`, :meth:`~FusionModel.image_map`,
:meth:`~FusionModel.patch_grid`). Why: code outside ``models/`` never reads a config field by
name (``tests/models/test_capabilities.py`` checks it), so a method can rename or add a field, or
answer from its own structure, without a change anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

from ..checkpoint_writer import save_checkpoint
from ..config import DataSchema, ModelConfig
from ..types import Batch, FusionOutput, LossOutput


class FusionModel(nn.Module):
    """A multimodal classifier: a :class:`Batch` in, a :class:`FusionOutput` out.

    Subclasses implement :meth:`forward` and, where the method has more than a fused
    cross-entropy, :meth:`loss`. ``preprocessing`` and ``train_config`` are attached by the
    trainer (or the checkpoint loader) so that a saved model carries everything needed to
    score raw data again.
    """

    method: ClassVar[str] = ""
    #: Whether the method handles missing *values* inside a present modality (NaN cells, key-
    #: masked by token models). Others refuse NaN with a clear message instead of training on it.
    accepts_missing_values: ClassVar[bool] = False
    #: Whether ``forward(..., return_attention=True)`` fills ``FusionOutput.attention`` (the
    #: dashboard's attention view is shown for exactly these methods).
    gives_attention: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, schema: DataSchema) -> None:
        super().__init__()
        self.config = config
        self.schema = schema
        self.preprocessing: dict[str, Any] = {}
        self.train_config: Any = None
        self.class_weights: Tensor | None = None
        #: Set by the trainer before every optimiser step to the position in training, in epochs
        #: (``epoch + batch / batches_per_epoch``; None outside training), so a loss can follow a
        #: schedule that resumes exactly (e.g. MM-dynamics' sparsity warm-up).
        self.training_epoch: float | None = None
        #: Set by the checkpoint loader: the folder it came from (None when built or uploaded) and
        #: the checkpoint's ``extra`` (e.g. ``{"demo": True}`` for the bundled demo models).
        self.checkpoint_path: Path | None = None
        self.checkpoint_extra: dict[str, Any] = {}

    # -- the contract -------------------------------------------------------------------
    def forward(self, batch: Batch, *, return_attention: bool = False) -> FusionOutput:  # pragma: no cover
        raise NotImplementedError  # abstract

    def loss(self, output: FusionOutput, batch: Batch) -> LossOutput:
        """Fused cross-entropy (methods with more terms override this)."""
        ce = self.cross_entropy(output.logits, batch.labels)
        return LossOutput(total=ce, terms={"ce_fused": ce.detach()})

    # -- capabilities (asked by the trainer, explain/, inspect/; overridden where they differ) ----
    @classmethod
    def supported_kinds(cls) -> tuple[str, ...]:
        """The modality kinds the method accepts, as registered (``register_method(supports=...)``,
        the one place they are declared; :func:`~fusioncore.registry.create_model` refuses others)."""
        from ..registry import get_method

        return tuple(get_method(cls.method).supports)

    @property
    def needs_labels(self) -> bool:
        """Whether training needs labels (False for a purely self-supervised setting)."""
        return True

    @property
    def uses_class_weights(self) -> bool:
        """Whether the trainer should set inverse-frequency :attr:`class_weights` for the loss."""
        return False

    @property
    def explanation_patch_size(self) -> int:
        """Side in pixels of the square image patches explanations are pooled over: the method's
        own patch when it has one, else 8 (a unit fine enough for the images of the demo and the
        published recipes, and a divisor of their sizes)."""
        return 8

    def image_map(self, modality: str) -> Callable[[Tensor], Tensor] | None:
        """The method's own informativeness map of image ``modality``: a function from a
        ``(N, C, H, W)`` batch of images to ``(N, 1, h, w)`` maps in (0, 1), computed from the
        image alone; None when the method has none (explainers then run the model with only the
        image present and read ``FusionOutput.gates``)."""
        return None

    def patch_grid(self, modality: str) -> tuple[int, int] | None:
        """``(rows, cols)`` of the patch tokens image ``modality`` becomes, row-major (token
        ``k`` = patch ``(k // cols, k % cols)``), or None when the method does not cut it into
        patch tokens. Attention to such tokens can be drawn over the image
        (``fusioncore.explain.attention_patches``)."""
        return None

    # -- helpers shared by methods ------------------------------------------------------
    @property
    def modality_names(self) -> list[str]:
        return self.schema.modality_names

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def cross_entropy(self, logits: Tensor, labels: Tensor | None, rows: Tensor | None = None) -> Tensor:
        """Mean cross-entropy over ``rows`` (bool mask) with the model's class weights, if any.

        With no selected row the result is a differentiable zero, never NaN.
        """
        if labels is None:
            raise ValueError("this loss needs labels, and the batch has none")
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        per_sample = nn.functional.cross_entropy(logits, labels, weight=weight, reduction="none")
        if weight is not None:
            # Normalise like torch's weighted mean, so weights rescale classes, not the loss.
            w = weight[labels]
            if rows is not None:
                w = w * rows
            return (per_sample * (rows if rows is not None else 1)).sum() / w.sum().clamp_min(1e-12)
        if rows is None:
            return per_sample.mean()
        return (per_sample * rows).sum() / rows.sum().clamp_min(1)

    def check_batch(self, batch: Batch) -> None:
        """Refuse a batch that does not match the schema, naming what is wrong."""
        if batch.present.shape[1] != len(self.schema.modalities):
            raise ValueError(
                f"presence mask has {batch.present.shape[1]} columns, the model has "
                f"{len(self.schema.modalities)} modalities ({', '.join(self.modality_names)})"
            )
        for spec in self.schema.modalities:
            if spec.name not in batch.inputs:
                raise ValueError(f"the batch has no input for modality {spec.name!r}")
            got = tuple(batch.inputs[spec.name].shape[1:])
            if got != tuple(spec.shape):
                raise ValueError(
                    f"modality {spec.name!r}: the model expects per-sample shape {tuple(spec.shape)}, got {got}"
                )
            if not self.accepts_missing_values and not torch.isfinite(batch.inputs[spec.name]).all():
                raise ValueError(
                    f"modality {spec.name!r} has missing (NaN) or infinite values; method {self.method!r} needs "
                    f"complete values for the modalities present (impute them, or use mca/zorro/eao, which mask them)"
                )

    # -- persistence ------------------------------------------------------------------
    def save(self, path: str | Path, *, metrics: dict | None = None, extra: dict | None = None) -> Path:
        """Write a checkpoint folder (``config.json`` + ``model.safetensors`` [+ ``metrics.json``])."""
        return save_checkpoint(self, path, metrics=metrics, extra=extra)
