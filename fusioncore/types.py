"""The one model contract every fusion method shares.

A :class:`Batch` goes in (named modality tensors plus an explicit presence mask), a
:class:`FusionOutput` comes out (logits plus whatever explanations the method can honestly
give). The dashboard, the trainer and the explanation code only ever see these two types, so
a new method plugs in without special cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import Tensor


@dataclass
class Batch:
    """A mini-batch of samples.

    inputs:  modality name -> tensor whose first dimension is the batch, e.g. ``(B, d)`` for
             tabular features, ``(B, 3, H, W)`` for images, ``(B, L, d)`` for sequences. The
             rows of an absent modality hold arbitrary finite values (usually zeros): absence is
             said by ``present``, never by the values.
    present: ``(B, M)`` bool, column order = the model's modality order. True = observed.
    labels:  ``(B,)`` long class indices, when known.
    sample_ids: identifiers of the rows, for explanations and exports.
    padding: optional modality name -> ``(B, L)`` bool, True = a real (non-padded) token, for
             sequence modalities.
    """

    inputs: dict[str, Tensor]
    present: Tensor
    labels: Tensor | None = None
    sample_ids: list[str] | None = None
    padding: dict[str, Tensor] | None = None

    def __post_init__(self) -> None:
        if self.present.dtype != torch.bool or self.present.dim() != 2:
            raise ValueError(
                f"Batch.present must be a (batch, n_modalities) bool tensor, got "
                f"dtype={self.present.dtype} shape={tuple(self.present.shape)}"
            )
        n = self.present.shape[0]
        for name, value in self.inputs.items():
            if value.shape[0] != n:
                raise ValueError(
                    f"Batch.inputs[{name!r}] has {value.shape[0]} rows but present has {n}"
                )
        if self.labels is not None and self.labels.shape[0] != n:
            raise ValueError(f"Batch.labels has {self.labels.shape[0]} rows but present has {n}")

    @property
    def size(self) -> int:
        return int(self.present.shape[0])

    def to(self, device: torch.device | str) -> "Batch":
        """The same batch on ``device`` (non-blocking where the memory allows it)."""
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return Batch(
            inputs={k: move(v) for k, v in self.inputs.items()},
            present=move(self.present),
            labels=None if self.labels is None else move(self.labels),
            sample_ids=self.sample_ids,
            padding=None if self.padding is None else {k: move(v) for k, v in self.padding.items()},
        )

    def with_present(self, present: Tensor) -> "Batch":
        """The same samples with another presence pattern (used by modality toggles/ablations)."""
        return replace(self, present=present.to(self.present.device, torch.bool))

    def select(self, index: Tensor | slice) -> "Batch":
        """A sub-batch of rows ``index``."""
        ids = None
        if self.sample_ids is not None:
            rows = range(self.size)[index] if isinstance(index, slice) else index.tolist()
            ids = [self.sample_ids[i] for i in rows]
        return Batch(
            inputs={k: v[index] for k, v in self.inputs.items()},
            present=self.present[index],
            labels=None if self.labels is None else self.labels[index],
            sample_ids=ids,
            padding=None if self.padding is None else {k: v[index] for k, v in self.padding.items()},
        )


@dataclass
class AttentionMaps:
    """Attention a transformer method can show (filled only when asked for).

    mask:     ``(S, S)`` or ``(B, S, S)`` bool, True = may attend (the rule the model applied).
    layers:   per layer, ``(B, H, S, S)`` attention probabilities (masked entries exactly 0).
    token_modality: ``(S,)`` long, which modality (or -1-c for channel c / fusion) each token is.
    channel_modality: ``(B, C, M)`` attention mass of each channel's fusion tokens per modality.
    channel_names: names of the channels (e.g. ``"mrna+meth"``).
    """

    mask: Tensor | None = None
    layers: list[Tensor] = field(default_factory=list)
    token_modality: Tensor | None = None
    channel_modality: Tensor | None = None
    channel_names: list[str] = field(default_factory=list)
    pooling: Tensor | None = None


@dataclass
class FusionOutput:
    """What every method returns.

    logits:            ``(B, K)`` fused class logits.
    present:           ``(B, M)`` the presence mask the prediction used.
    modality_logits:   name -> ``(B, K)`` unimodal logits (MM-dynamics' TCP classifier, late fusion).
    gates:             name -> feature informativeness: ``(B, d)`` tabular gates, or
                       ``(B, 1, H, W)`` image patch maps. Rows of absent modalities are 0.
    confidence:        name -> ``(B,)`` modality informativeness (predicted TCP for MM-dynamics).
                       Rows of absent modalities are NaN, so they can never be mistaken for a score.
    modality_weights:  name -> ``(B,)`` any other per-modality weight the method fused with
                       (late-fusion decision weights, MM-static scalars).
    embeddings:        name -> ``(B, D)`` embeddings (unimodal, channel, ``"fusion"``).
    attention:         attention maps, when asked for.
    extras:            method-specific tensors needed by its loss (not explanations).
    """

    logits: Tensor
    present: Tensor
    modality_logits: dict[str, Tensor] = field(default_factory=dict)
    gates: dict[str, Tensor] = field(default_factory=dict)
    confidence: dict[str, Tensor] = field(default_factory=dict)
    modality_weights: dict[str, Tensor] = field(default_factory=dict)
    embeddings: dict[str, Tensor] = field(default_factory=dict)
    attention: AttentionMaps | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def probabilities(self) -> Tensor:
        return torch.softmax(self.logits, dim=-1)

    def available_explanations(self) -> list[str]:
        """Names of the explanation fields this output fills (what a viewer can show)."""
        names = []
        for f in fields(self):
            if f.name in ("logits", "present", "extras"):
                continue
            value = getattr(self, f.name)
            if value:
                names.append(f.name)
        return names

    def detach(self) -> "FusionOutput":
        """A copy holding detached tensors (for caching and display)."""
        d = lambda m: {k: v.detach() for k, v in m.items()}  # noqa: E731
        return FusionOutput(
            logits=self.logits.detach(),
            present=self.present.detach(),
            modality_logits=d(self.modality_logits),
            gates=d(self.gates),
            confidence=d(self.confidence),
            modality_weights=d(self.modality_weights),
            embeddings=d(self.embeddings),
            attention=self.attention,
            extras={},
        )


@dataclass
class LossOutput:
    """A scalar to optimise plus its named terms (for logging and tests)."""

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
