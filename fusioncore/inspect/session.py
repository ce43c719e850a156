"""One sample, one presence pattern: everything the dashboard's sample view shows.

A modality toggle in the dashboard is a new presence pattern for the same sample. The model is
run once on a two-row batch — the sample with the requested pattern and the same sample with
every modality it has — so the prediction, the change against the all-present prediction and
every explanation (confidence, true TCP, feature gates, image patch maps, attention) come from
one forward pass and can never disagree with each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..data.dataset import MultimodalDataset, to_batch
from ..device import describe_device
from ..metrics import true_tcp
from ..training.evaluate import ensure_aligned
from ..types import AttentionMaps


@dataclass(frozen=True)
class ModelSummary:
    """What the sidebar says about a loaded model."""

    method: str
    modalities: tuple[str, ...]
    kinds: tuple[str, ...]
    classes: tuple[str, ...]
    n_parameters: int
    device: str
    has_attention: bool
    synthetic_demo: bool = False  # trained on the bundled synthetic cohort (checkpoint ``extra.demo``)

    def rows(self) -> list[tuple[str, str]]:
        """``(label, value)`` pairs in display order."""
        mods = ", ".join(f"{m} ({k})" for m, k in zip(self.modalities, self.kinds))
        return [
            ("method", self.method),
            ("modalities", mods),
            ("classes", ", ".join(self.classes)),
            ("parameters", f"{self.n_parameters:,}"),
            ("device", self.device),
        ]


def model_summary(model) -> ModelSummary:
    """Method, modalities, classes, parameter count and device of ``model``."""
    return ModelSummary(
        method=model.method,
        modalities=tuple(model.modality_names),
        kinds=tuple(m.kind for m in model.schema.modalities),
        classes=tuple(model.schema.classes),
        n_parameters=int(model.n_parameters()),
        device=describe_device(model.device),
        has_attention=bool(model.gives_attention),
        synthetic_demo=is_demo_model(model),
    )


def is_demo_model(model) -> bool:
    """True for a checkpoint ``scripts/build_assets.py`` trained on the synthetic demo cohort
    (its ``extra.demo`` flag), wherever it is loaded from (bundled, folder path or upload)."""
    return bool(model.checkpoint_extra.get("demo", False))


@dataclass(frozen=True)
class SampleExplanation:
    """A sample's prediction and explanations under one presence pattern (arrays on CPU).

    available:     ``(M,)`` bool, the modalities the sample has in the data.
    present:       ``(M,)`` bool, the pattern used (requested AND available).
    probabilities: ``(K,)`` class probabilities under ``present``.
    reference:     ``(K,)`` class probabilities with every available modality (the baseline of
                   the "change" the dashboard shows).
    confidence:    modality -> predicted TCP / modality informativeness (NaN when absent);
                   empty for methods without one.
    true_tcp:      modality -> softmax(unimodal logits)[true class] (labelled samples, methods
                   with unimodal heads); NaN when absent.
    gates:         modality -> feature gates ``(d,)`` or image patch map ``(H, W)``, present
                   modalities only.
    images:        image modality -> the raw image ``(3, H, W)`` in [0, 1].
    attention:     the attention maps of this sample (batch dimension 1), transformer methods.
    patch_size:    side of the square patches the model's image maps are constant on, so figures
                   rank and outline whole patches, not pixels.
    """

    sample_id: str
    index: int
    method: str
    classes: tuple[str, ...]
    modality_names: tuple[str, ...]
    kinds: dict[str, str]
    available: np.ndarray
    present: np.ndarray
    probabilities: np.ndarray
    reference: np.ndarray
    true_class: int | None
    confidence: dict[str, float] = field(default_factory=dict)
    true_tcp: dict[str, float] = field(default_factory=dict)
    gates: dict[str, np.ndarray] = field(default_factory=dict)
    feature_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    modality_weights: dict[str, float] = field(default_factory=dict)
    attention: AttentionMaps | None = None
    patch_size: int = 8

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def predicted_class(self) -> str:
        return self.classes[self.predicted]

    @property
    def change(self) -> np.ndarray:
        """``(K,)`` probabilities minus the all-present reference."""
        return self.probabilities - self.reference

    @property
    def active_modalities(self) -> list[str]:
        return [m for m, p in zip(self.modality_names, self.present) if p]

    def modalities_of(self, kind: str, *, gated: bool = False) -> list[str]:
        """Modalities of ``kind`` in model order; with ``gated``, only those with a gate or image
        map under this pattern (what the sample view draws a map or gate chart for)."""
        return [m for m in self.modality_names if self.kinds[m] == kind and (not gated or m in self.gates)]

    @property
    def switched_off(self) -> list[str]:
        """Modalities the sample has but the pattern switched off (what the pages name as masked)."""
        return [m for m, a, p in zip(self.modality_names, self.available, self.present) if a and not p]

    @property
    def tcp_error(self) -> dict[str, float]:
        """Predicted minus true TCP per modality (NaN when either is missing)."""
        return {m: self.confidence.get(m, float("nan")) - t for m, t in self.true_tcp.items()}


def one_click_away(available, pattern: tuple[bool, ...]) -> list[tuple[bool, ...]]:
    """The presence patterns one switch click from ``pattern`` (what the dashboard prefetches):
    each available modality flipped, never the pattern with every modality off (no prediction)."""
    out = []
    for j, here in enumerate(available):
        if here:
            flipped = tuple(not p if i == j else p for i, p in enumerate(pattern))
            if any(f and a for f, a in zip(flipped, available)):
                out.append(flipped)
    return out


def reference_pattern(available: Sequence[bool], pattern: Sequence[bool]) -> tuple[bool, ...] | None:
    """The pattern whose explanation gives ``pattern``'s all-present reference, or None when
    ``pattern`` (restricted to what the sample has) is that pattern itself.

    Why: the dashboard caches one explanation per pattern; a toggled pattern reuses the sample's
    cached all-present probabilities as its reference, so a toggle runs the model on one row
    (:func:`explain_sample`'s ``reference``) instead of two.
    """
    available = tuple(bool(a) for a in available)
    if len(pattern) != len(available):
        raise ValueError(f"presence pattern has {len(pattern)} flags for {len(available)} modalities")
    effective = tuple(bool(p) and a for p, a in zip(pattern, available))
    return None if effective == available else available


def presence_pattern(model, present: Sequence[bool] | dict[str, bool] | None) -> np.ndarray:
    """A requested pattern as ``(M,)`` bool in model order (None = everything)."""
    names = model.modality_names
    if present is None:
        return np.ones(len(names), dtype=bool)
    if isinstance(present, dict):
        unknown = sorted(set(present) - set(names))
        if unknown:
            raise ValueError(f"presence pattern names unknown modalities {unknown}; the model has {names}")
        return np.array([bool(present.get(n, True)) for n in names])
    flags = np.asarray(present, dtype=bool).reshape(-1)
    if flags.shape[0] != len(names):
        raise ValueError(f"presence pattern has {flags.shape[0]} flags for {len(names)} modalities ({', '.join(names)})")
    return flags


def _row(value: torch.Tensor, i: int) -> np.ndarray:
    return value[i].detach().float().cpu().numpy()


def _first_row_tcp(out, names: Sequence[str], pattern: np.ndarray, label: int | None) -> dict[str, float]:
    """True TCP of row 0 per modality with unimodal logits (NaN where switched off; none without a label)."""
    tcp = {}
    if label is not None:
        for j, n in enumerate(names):
            if n in out.modality_logits:
                logits = _row(out.modality_logits[n], 0)[None, :]
                tcp[n] = float(true_tcp(logits.astype(np.float64), np.array([label]))[0]) if pattern[j] else float("nan")
    return tcp


def _first_row_gates(out, names: Sequence[str], pattern: np.ndarray) -> dict[str, np.ndarray]:
    """Row 0's gates of the modalities switched on: ``(d,)`` feature gates or ``(H, W)`` image maps."""
    gates = {}
    for j, n in enumerate(names):
        if n in out.gates and pattern[j]:
            g = _row(out.gates[n], 0)
            gates[n] = g[0] if g.ndim == 3 else g  # image maps (1, H, W) -> (H, W)
    return gates


def _two_rows(model, data: MultimodalDataset, index: int, pattern: np.ndarray, available: np.ndarray,
              attention: bool, reference: np.ndarray | None):
    """``(output, probabilities)`` of sample ``index``: row 0 under ``pattern``, row 1 with every
    available modality (taken from ``reference`` when given, so only row 0 is run)."""
    rows = [pattern] if reference is not None else [pattern, available]
    batch = to_batch(data, model.preprocessing, model.device, np.full(len(rows), index))
    batch = batch.with_present(torch.from_numpy(np.stack(rows)).to(model.device))
    out = model(batch, return_attention=attention and model.gives_attention)
    probs = torch.softmax(out.logits.float(), dim=-1).cpu().numpy()
    if reference is not None:
        reference = np.asarray(reference, dtype=probs.dtype).reshape(-1)
        if reference.shape != (probs.shape[1],):
            raise ValueError(f"reference: expected {probs.shape[1]} class probabilities, got shape {reference.shape}")
        probs = np.stack([probs[0], reference])
    return out, probs


@torch.no_grad()
def explain_sample(
    model,
    data: MultimodalDataset,
    index: int,
    present: Sequence[bool] | dict[str, bool] | None = None,
    *,
    attention: bool = True,
    reference: np.ndarray | None = None,
) -> SampleExplanation:
    """Prediction and explanations of sample ``index`` of ``data`` with modalities ``present``.

    A modality the sample does not have stays absent whatever ``present`` asks. At least one
    modality must remain, because a prediction from no evidence at all explains nothing.
    ``reference``: the all-present ``(K,)`` probabilities when already known (the dashboard
    caches them per sample, see :func:`reference_pattern`), so only one row is run instead of two.
    The forward pass is :func:`_two_rows`; the per-modality rows are :func:`_first_row_tcp` /
    :func:`_first_row_gates`.
    """
    data = ensure_aligned(model, data)
    if not 0 <= int(index) < len(data):
        raise ValueError(f"sample index {index} is out of range for a cohort of {len(data)} samples")
    index = int(index)
    names = model.modality_names
    available = data.present[index].copy()
    pattern = presence_pattern(model, present) & available
    if not pattern.any():
        raise ValueError(
            f"sample {data.sample_ids[index]!r}: no modality left "
            f"(it has {', '.join(n for n, a in zip(names, available) if a)}); keep at least one switched on"
        )
    model.eval()
    out, probs = _two_rows(model, data, index, pattern, available, attention, reference)
    label = None if data.labels is None else int(data.labels[index])
    kinds = {m.name: m.kind for m in model.schema.modalities}
    return SampleExplanation(
        sample_id=str(data.sample_ids[index]),
        index=index,
        method=model.method,
        classes=tuple(model.schema.classes),
        modality_names=tuple(names),
        kinds=kinds,
        available=available,
        present=pattern,
        probabilities=probs[0],
        reference=probs[1],
        true_class=label,
        confidence={n: float(out.confidence[n][0]) if pattern[j] else float("nan")
                    for j, n in enumerate(names) if n in out.confidence},
        true_tcp=_first_row_tcp(out, names, pattern, label),
        gates=_first_row_gates(out, names, pattern),
        feature_names={m.name: tuple(m.features) for m in model.schema.modalities if m.kind == "tabular"},
        images={n: np.asarray(data.features[n][index], dtype=np.float32) for n in names if kinds[n] == "image"},
        modality_weights={n: float(out.modality_weights[n][0])
                          for j, n in enumerate(names) if n in out.modality_weights and pattern[j]},
        attention=out.row(0).cpu().attention,
        patch_size=model.explanation_patch_size,
    )

def sample_attributions(
    model,
    data: MultimodalDataset,
    index: int,
    present: Sequence[bool] | dict[str, bool] | None = None,
    *,
    method: str = "ig",
    n_steps: int = 32,
    target: Any = "predicted",
):
    """Captum attributions of one sample under a presence pattern (``fusioncore.explain.attributions``).

    Baselines are the cohort's per-modality means over present rows (a one-sample mean would be
    the sample itself, and every attribution would be zero).
    """
    from ..explain.attributions import attribute_batch, modality_baselines

    data = ensure_aligned(model, data)
    index = int(index)
    pattern = presence_pattern(model, present) & data.present[index]
    if not pattern.any():
        raise ValueError(f"sample {data.sample_ids[index]!r}: no modality left to attribute")
    full = to_batch(data, model.preprocessing, model.device)
    base = modality_baselines(full, model.modality_names, "mean")
    batch = to_batch(data, model.preprocessing, model.device, np.array([index]))
    batch = batch.with_present(torch.from_numpy(pattern[None, :]).to(model.device))
    return attribute_batch(model, batch, method, target=target, baselines=base, n_steps=n_steps,
                           patch_size=model.explanation_patch_size)
