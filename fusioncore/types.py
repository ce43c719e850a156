"""The one model contract every fusion method shares.

A :class:`Batch` goes in (named modality tensors plus an explicit presence mask), a
:class:`FusionOutput` comes out (logits plus whatever explanations the method can honestly
give). The dashboard, the trainer and the explanation code only ever see these two types, so
a new method plugs in without special cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Sequence

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

    @staticmethod
    def combine(
        maps: Sequence["AttentionMaps"], rows: Callable[[list[Tensor]], Tensor], shared: Callable[[Tensor], Tensor]
    ) -> "AttentionMaps":
        """One map from corresponding maps: ``rows`` joins the tensors with a batch dimension
        (``layers``, ``channel_modality``, ``pooling``, a ``(B, S, S)`` mask), ``shared`` is applied
        to the first map's tensors without one (a ``(S, S)`` mask, ``token_modality``)."""
        first = maps[0]
        batched = lambda name: (  # noqa: E731
            None if getattr(first, name) is None else rows([getattr(m, name) for m in maps])
        )
        if first.mask is None or first.mask.dim() == 3:
            mask = batched("mask")
        else:
            mask = shared(first.mask)
        return AttentionMaps(
            mask=mask,
            layers=[rows(list(per_layer)) for per_layer in zip(*(m.layers for m in maps))],
            token_modality=None if first.token_modality is None else shared(first.token_modality),
            channel_modality=batched("channel_modality"),
            channel_names=list(first.channel_names),
            pooling=batched("pooling"),
        )


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

    # -- one output from others, field by field in one place -------------------------------------
    @staticmethod
    def combine(
        outputs: Sequence["FusionOutput"],
        rows: Callable[[list[Tensor]], Tensor],
        shared: Callable[[Tensor], Tensor] = lambda t: t,
    ) -> "FusionOutput":
        """One output from corresponding ``outputs`` (same methods, same fields filled).

        ``rows`` turns the list of corresponding batch-first tensors (every field, the per-modality
        dicts, ``extras`` and the batched attention tensors) into one; ``shared`` is applied to the
        attention tensors that have no batch dimension. Every copy of an output goes through
        here, so a new field is carried by all of them or by none.
        """
        if not outputs:
            raise ValueError("FusionOutput.combine needs at least one output")
        first = outputs[0]
        values = {}
        for f in fields(FusionOutput):
            items = [getattr(o, f.name) for o in outputs]
            if f.name == "attention":
                present = [a is not None for a in items]
                if any(present) and not all(present):
                    raise ValueError("FusionOutput.combine: some outputs have attention maps and some do not")
                values[f.name] = None if items[0] is None else AttentionMaps.combine(items, rows, shared)
            else:
                values[f.name] = _combine_tree(items, rows, f.name)
        return replace(first, **values)

    def map(self, fn: Callable[[Tensor], Tensor], *, shared: Callable[[Tensor], Tensor] = lambda t: t) -> "FusionOutput":
        """A copy with ``fn`` applied to every batch-first tensor (``shared`` to attention's others)."""
        return FusionOutput.combine([self], lambda ts: fn(ts[0]), shared)

    @staticmethod
    def cat(outputs: Sequence["FusionOutput"]) -> "FusionOutput":
        """The outputs of consecutive batches as one, rows in order (every field, attention and extras)."""
        if len(outputs) == 1:
            return outputs[0]
        return FusionOutput.combine(outputs, torch.cat)

    def select(self, index: Tensor | slice) -> "FusionOutput":
        """The rows ``index`` of every batch-first tensor."""
        return self.map(lambda t: t[index])

    def row(self, i: int) -> "FusionOutput":
        """Sample ``i`` as an output of one row (the batch dimension kept)."""
        return self.select(slice(i, i + 1))

    def detach(self) -> "FusionOutput":
        """A copy holding detached tensors (for caching and display); ``extras`` (loss inputs) dropped."""
        return replace(self, extras={}).map(Tensor.detach, shared=Tensor.detach)

    def cpu(self) -> "FusionOutput":
        """:meth:`detach` on the CPU."""
        return self.detach().map(Tensor.cpu, shared=Tensor.cpu)


def _combine_tree(items: list, rows: Callable[[list[Tensor]], Tensor], where: str):
    """Apply ``rows`` to corresponding tensors of equally shaped (nested) dicts; other leaves kept."""
    first = items[0]
    if isinstance(first, Tensor):
        return rows(items)
    if isinstance(first, dict):
        for item in items[1:]:
            if set(item) != set(first):
                raise ValueError(f"FusionOutput.{where}: the outputs hold different keys ({sorted(first)} vs {sorted(item)})")
        return {k: _combine_tree([item[k] for item in items], rows, f"{where}[{k!r}]") for k in first}
    return first


@dataclass
class LossOutput:
    """A scalar to optimise plus its named terms (for logging and tests)."""

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
