"""Captum attributions for any fusion method: IG, GradientShap, Feature Ablation, Occlusion.

A :class:`~fusioncore.models.base.FusionModel` takes a :class:`Batch`; captum wants a forward
over a tuple of tensors. :class:`CaptumForward` is that bridge: its inputs are the tensors of the
modalities *present* in a group of samples, and everything else (the presence mask, the
tensors of absent modalities, sequence padding) travels through ``additional_forward_args``,
which captum repeats alongside the inputs for its interpolation/perturbation batches.

Absent modalities are never attributed: samples are grouped by presence pattern and only the
present modalities of a group are captum inputs; their rows in the result are NaN. Baselines
are computed from *present* rows only (an absent row's placeholder zeros never enter a mean).

Shapes: tabular ``(N, d)`` -> per-feature scores ``(N, d)``; image ``(N, C, H, W)`` -> per-pixel
scores ``(N, H, W)`` (summed over channels) and per-patch scores ``(N, H/p, W/p)``; sequence
``(N, L, d)`` -> per-token scores ``(N, L)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..data.dataset import MultimodalDataset, to_batch
from ..types import Batch
from .units import element_scores, feature_mask, occlusion_window, pool_patches, unit_labels, unit_scores

Progress = Callable[[int, int], None]


# -- the captum bridge ------------------------------------------------------------------------


class CaptumForward:
    """``forward(*attributed, present, *fixed) -> (B, K)`` for captum.

    attributed: the tensors of ``attributed_names`` (what captum perturbs / differentiates).
    present:    ``(B, M)`` bool presence mask (additional forward arg).
    fixed:      tensors of the other modalities, then sequence padding masks, in ``fixed_names``
                / ``padding_names`` order (additional forward args).
    output:     ``"prob"`` (softmax probabilities, default) or ``"logit"``.
    """

    def __init__(self, model, attributed_names: Sequence[str], fixed_names: Sequence[str],
                 padding_names: Sequence[str] = (), output: str = "prob") -> None:
        if output not in ("prob", "logit"):
            raise ValueError(f"output: expected 'prob' or 'logit', got {output!r}")
        self.model = model
        self.attributed_names = list(attributed_names)
        self.fixed_names = list(fixed_names)
        self.padding_names = list(padding_names)
        self.output = output

    def batch(self, tensors: Sequence[Tensor], present: Tensor, extra: Sequence[Tensor]) -> Batch:
        inputs = dict(zip(self.attributed_names, tensors))
        inputs.update(zip(self.fixed_names, extra[: len(self.fixed_names)]))
        padding = dict(zip(self.padding_names, extra[len(self.fixed_names):])) or None
        return Batch(inputs=inputs, present=present, padding=padding)

    def __call__(self, *args: Tensor) -> Tensor:
        n = len(self.attributed_names)
        tensors, present, extra = args[:n], args[n], args[n + 1:]
        logits = self.model(self.batch(tensors, present, extra)).logits
        return torch.softmax(logits, dim=-1) if self.output == "prob" else logits


# -- results ----------------------------------------------------------------------------------


@dataclass
class Attributions:
    """Attributions of a cohort, one array per modality.

    values:   modality -> ``(N, *shape)`` raw attributions in the model's (preprocessed) input
              space; rows where the modality is absent are NaN.
    target:   ``(N,)`` the class explained per sample.
    output:   ``(N,)`` model output (prob or logit of ``target``) at the input.
    baseline_output: ``(N,)`` output at the baseline (IG; NaN for other methods).
    delta:    ``(N,)`` captum's convergence delta (IG/GradientShap; NaN otherwise).
    """

    method: str
    sample_ids: list[str]
    modality_names: list[str]
    kinds: dict[str, str]
    present: np.ndarray
    target: np.ndarray
    values: dict[str, np.ndarray]
    output: np.ndarray
    baseline_output: np.ndarray
    delta: np.ndarray
    output_kind: str = "prob"
    feature_names: dict[str, list[str]] = field(default_factory=dict)

    def scores(self, name: str) -> np.ndarray:
        """Per-unit scores: ``(N, d)`` features, ``(N, H, W)`` pixels (channel sum), ``(N, L)`` tokens."""
        return element_scores(self.values[name], self.kinds[name])

    def patch_scores(self, name: str, patch_size: int) -> np.ndarray:
        """``(N, H/p, W/p)`` sum of pixel attributions per ``patch_size`` patch (image modalities)."""
        return pool_patches(self.scores(name), patch_size, reduce="sum")

    def modality_totals(self) -> np.ndarray:
        """``(N, M)`` sum of each modality's attributions (NaN where absent)."""
        out = np.full((len(self.sample_ids), len(self.modality_names)), np.nan)
        for j, name in enumerate(self.modality_names):
            v = self.values[name].reshape(len(self.sample_ids), -1)
            out[:, j] = np.where(self.present[:, j], np.nansum(v, axis=1), np.nan)
        return out

    def to_frame(self, *, patch_size: int = 8):
        """Long table: ``sample_id, modality, unit, attribution`` (tabular features, image
        patches ``r{row}c{col}``, sequence tokens); absent modalities are left out."""
        import pandas as pd

        parts = []
        for j, name in enumerate(self.modality_names):
            kind = self.kinds[name]
            s = unit_scores(self.scores(name), kind, self.values[name].shape[1:], patch_size, reduce="sum")
            units = unit_labels(kind, s.shape[1], grid_width=self.values[name].shape[-1] // patch_size,
                                feature_names=self.feature_names.get(name))
            rows = np.flatnonzero(self.present[:, j])
            if not len(rows):
                continue
            parts.append(pd.DataFrame({
                "sample_id": np.repeat([self.sample_ids[i] for i in rows], s.shape[1]),
                "modality": name,
                "unit": np.tile(units, len(rows)),
                "attribution": s[rows].reshape(-1),
            }))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["sample_id", "modality", "unit", "attribution"])
        frame.insert(0, "method", self.method)
        return frame


# -- baselines ----------------------------------------------------------------------------------


def modality_baselines(batch: Batch, names: Sequence[str], kind: str = "mean") -> dict[str, Tensor]:
    """Per-modality ``(*shape)`` reference input from the *present* rows of ``batch``.

    ``"mean"``: feature-wise mean over present rows (images: per-channel mean colour, so the
    baseline is a flat grey-ish image, not black); ``"zeros"``: zeros. A modality present in no
    row falls back to zeros (it is never attributed anyway).
    """
    if kind not in ("mean", "zeros"):
        raise ValueError(f"baseline: expected 'mean' or 'zeros', got {kind!r}")
    out = {}
    for j, name in enumerate(names):
        x = batch.inputs[name]
        here = batch.present[:, j]
        if kind == "zeros" or not bool(here.any()):
            out[name] = torch.zeros_like(x[0])
            continue
        mean = x[here].mean(dim=0)
        if x.dim() == 4:  # image: one value per channel
            mean = mean.mean(dim=(1, 2), keepdim=True).expand_as(mean).clone()
        out[name] = mean
    return out


def resolve_target(model, batch: Batch, target: Any) -> Tensor:
    """``(B,)`` long class to explain: ``"predicted"``, ``"label"`` (true class), an int or an array."""
    if isinstance(target, str):
        if target == "predicted":
            with torch.no_grad():
                return model(batch).logits.argmax(dim=-1)
        if target == "label":
            if batch.labels is None:
                raise ValueError("target='label' needs labels, and the data has none")
            return batch.labels.long()
        raise ValueError(f"target: expected 'predicted', 'label', a class index or an array, got {target!r}")
    t = torch.as_tensor(target, device=batch.present.device).long()
    if t.dim() == 0:
        t = t.expand(batch.size)
    if t.shape != (batch.size,):
        raise ValueError(f"target: {tuple(t.shape)} values for a batch of {batch.size}")
    k = model.schema.n_classes
    if bool(((t < 0) | (t >= k)).any()):
        raise ValueError(f"target: class indices must be in [0, {k})")
    return t


# -- attribution of one batch ----------------------------------------------------------------------


@dataclass(frozen=True)
class AttributionSettings:
    """The knobs of the captum methods (each method reads the ones it needs)."""

    n_steps: int = 32  # Integrated Gradients: steps of the path integral
    n_samples: int = 16  # GradientShap: random baselines per sample
    patch_size: int = 8  # Feature Ablation / Occlusion: image patch side
    internal_batch_size: int | None = None  # Integrated Gradients: rows per forward


@dataclass
class _Group:
    """The samples of one presence pattern, ready for captum: what every method's runner needs."""

    forward: CaptumForward
    inputs: tuple[Tensor, ...]  # the present modalities' tensors (attributed)
    baselines: tuple[Tensor, ...]  # per input, the reference expanded to its rows
    target: Tensor
    extra: tuple  # additional_forward_args: presence, fixed tensors, padding
    names: list[str]  # modalities of ``inputs``
    kinds: dict[str, str]
    batch: Batch
    modality_names: list[str]
    base: dict[str, Tensor]  # modality -> ``(*shape)`` baseline
    reference: dict[str, Tensor] | None


def _run_ig(g: _Group, s: AttributionSettings):
    from captum.attr import IntegratedGradients

    return IntegratedGradients(g.forward).attribute(
        g.inputs, baselines=g.baselines, target=g.target, additional_forward_args=g.extra, n_steps=s.n_steps,
        internal_batch_size=s.internal_batch_size, return_convergence_delta=True)


def _run_gradshap(g: _Group, s: AttributionSettings):
    """GradientShap against a distribution: ``reference`` rows, else the batch's present rows + the baseline."""
    from captum.attr import GradientShap

    dist = []
    for x, n in zip(g.inputs, g.names):
        if g.reference is not None and n in g.reference:
            dist.append(g.reference[n].to(x.device))
        else:
            pool = g.batch.inputs[n][g.batch.present[:, g.modality_names.index(n)]]
            dist.append(torch.cat([pool, g.base[n].unsqueeze(0)]) if len(pool) else g.base[n].unsqueeze(0))
    attr, d = GradientShap(g.forward).attribute(g.inputs, baselines=tuple(dist), target=g.target,
                                                additional_forward_args=g.extra, n_samples=s.n_samples,
                                                return_convergence_delta=True)
    return attr, d.view(len(g.target), s.n_samples).mean(dim=1)


def _run_ablation(g: _Group, s: AttributionSettings):
    """Feature Ablation over units: features, image patches, sequence tokens."""
    from captum.attr import FeatureAblation

    masks, offset = [], 0
    for n, x in zip(g.names, g.inputs):
        m, k = feature_mask(x, g.kinds[n], s.patch_size, offset)
        masks.append(m)
        offset += k
    attr = FeatureAblation(g.forward).attribute(g.inputs, baselines=g.baselines, target=g.target,
                                                additional_forward_args=g.extra, feature_mask=tuple(masks),
                                                perturbations_per_eval=8)
    return attr, None


def _run_occlusion(g: _Group, s: AttributionSettings):
    """Occlusion: half-overlapping patch windows on images, single units elsewhere."""
    from captum.attr import Occlusion

    windows, strides = zip(*(occlusion_window(g.kinds[n], x.shape[1:], s.patch_size) for n, x in zip(g.names, g.inputs)))
    attr = Occlusion(g.forward).attribute(g.inputs, sliding_window_shapes=tuple(windows), strides=tuple(strides),
                                          baselines=g.baselines, target=g.target, additional_forward_args=g.extra,
                                          perturbations_per_eval=8)
    return attr, None


@dataclass(frozen=True)
class CaptumMethod:
    """One attribution method: its name (the CLI's ``--method``, the app's choice), its label, and
    the runner ``(group, settings) -> (attributions per input, convergence delta or None)``.
    ``path_baseline``: the method integrates from the baseline, so the output there is reported."""

    name: str
    label: str
    run: Callable[[_Group, AttributionSettings], tuple]
    path_baseline: bool = False


#: Every attribution method, in the order they are offered. Adding one is one entry here: the CLI,
#: the dashboard and the trust report read this table.
CAPTUM_METHODS: dict[str, CaptumMethod] = {
    m.name: m
    for m in (
        CaptumMethod("ig", "Integrated Gradients", _run_ig, path_baseline=True),
        CaptumMethod("gradshap", "GradientShap", _run_gradshap),
        CaptumMethod("ablation", "Feature Ablation", _run_ablation),
        CaptumMethod("occlusion", "Occlusion", _run_occlusion),
    )
}
METHODS = tuple(CAPTUM_METHODS)
METHOD_LABELS = {name: m.label for name, m in CAPTUM_METHODS.items()}


def captum_method(name: str) -> CaptumMethod:
    """The table entry of ``name``, or a ValueError listing the methods."""
    if name not in CAPTUM_METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {name!r}")
    return CAPTUM_METHODS[name]


def _group(model, batch: Batch, rows: Tensor, here: list[str], target: Tensor, base: dict[str, Tensor],
           reference: dict[str, Tensor] | None, output: str) -> _Group:
    """The rows ``rows`` of ``batch`` (one presence pattern, modalities ``here`` present) for captum."""
    names = model.modality_names
    fixed = [n for n in names if n not in here]
    padding_names = sorted(batch.padding) if batch.padding else []
    inputs = tuple(batch.inputs[n][rows].detach() for n in here)
    return _Group(
        forward=CaptumForward(model, here, fixed, padding_names, output), inputs=inputs,
        baselines=tuple(base[n].unsqueeze(0).expand_as(x).contiguous() for n, x in zip(here, inputs)),
        target=target, names=here, kinds={m.name: m.kind for m in model.schema.modalities}, batch=batch,
        modality_names=list(names), base=base, reference=reference,
        extra=(batch.present[rows], *(batch.inputs[n][rows] for n in fixed), *(batch.padding[n][rows] for n in padding_names)))


def attribute_batch(
    model,
    batch: Batch,
    method: str = "ig",
    *,
    target: Any = "predicted",
    baseline: str = "mean",
    baselines: dict[str, Tensor] | None = None,
    reference: dict[str, Tensor] | None = None,
    output: str = "prob",
    n_steps: int = 32,
    n_samples: int = 16,
    patch_size: int = 8,
    internal_batch_size: int | None = None,
) -> Attributions:
    """Attributions of one batch (the model in eval mode, on the batch's device).

    Samples are grouped by presence pattern; each group's present modalities go through the
    ``method``'s runner of :data:`CAPTUM_METHODS`.
    baselines: modality -> ``(*shape)`` reference input (default: :func:`modality_baselines`).
    reference: modality -> ``(R, *shape)`` reference distribution for GradientShap (default:
               the batch's own present rows).
    """
    entry = captum_method(method)
    settings = AttributionSettings(n_steps, n_samples, patch_size, internal_batch_size)
    model.eval()
    model.check_batch(batch)
    names = model.modality_names
    targets = resolve_target(model, batch, target)
    base = baselines if baselines is not None else modality_baselines(batch, names, baseline)
    B = batch.size
    values = {n: np.full((B, *batch.inputs[n].shape[1:]), np.nan, dtype=np.float32) for n in names}
    out_at, out_base, delta = np.full(B, np.nan), np.full(B, np.nan), np.full(B, np.nan)
    present = batch.present
    for pattern in torch.unique(present, dim=0):
        rows = torch.nonzero((present == pattern).all(dim=1)).squeeze(1)
        here = [n for n, p in zip(names, pattern.tolist()) if p]
        if not here:
            continue  # nothing observed, nothing to attribute
        group = _group(model, batch, rows, here, targets[rows], base, reference, output)
        inputs = group.inputs
        attr, d = entry.run(group, settings)
        idx = rows.cpu().numpy()
        for n, a in zip(here, attr):
            values[n][idx] = a.detach().float().cpu().numpy()
        with torch.no_grad():
            pick = lambda o: o.gather(1, group.target.view(-1, 1)).squeeze(1).double().cpu().numpy()  # noqa: E731
            out_at[idx] = pick(group.forward(*inputs, *group.extra))
            if entry.path_baseline:
                out_base[idx] = pick(group.forward(*group.baselines, *group.extra))
        if d is not None:
            delta[idx] = d.detach().double().cpu().numpy()
    features = {m.name: list(m.features) for m in model.schema.modalities if m.features}
    return Attributions(method=method, sample_ids=list(batch.sample_ids or [str(i) for i in range(B)]), modality_names=list(names),
                        kinds={m.name: m.kind for m in model.schema.modalities}, present=present.cpu().numpy(), target=targets.cpu().numpy(), values=values,
                        output=out_at, baseline_output=out_base, delta=delta, output_kind=output, feature_names=features)


def concat_attributions(parts: Sequence[Attributions]) -> Attributions:
    """One :class:`Attributions` from batches of the same method and model."""
    if not parts:
        raise ValueError("no attributions to concatenate")
    first = parts[0]
    cat = lambda key: np.concatenate([getattr(p, key) for p in parts])  # noqa: E731
    return Attributions(method=first.method, sample_ids=[s for p in parts for s in p.sample_ids], modality_names=first.modality_names,
                        kinds=first.kinds, present=cat("present"), target=cat("target"),
                        values={n: np.concatenate([p.values[n] for p in parts]) for n in first.modality_names},
                        output=cat("output"), baseline_output=cat("baseline_output"), delta=cat("delta"),
                        output_kind=first.output_kind, feature_names=first.feature_names)


def attribute_dataset(
    model,
    data: MultimodalDataset,
    method: str = "ig",
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    target: Any = "predicted",
    baseline: str = "mean",
    progress: Progress | None = None,
    **kwargs: Any,
) -> Attributions:
    """Attributions for a whole cohort, in batches (on ``device``; default the model's).

    Baselines (and the GradientShap reference distribution) are computed once over the whole
    cohort's present rows, so every batch is explained against the same reference.
    ``progress(done, total)`` is called after each batch. ``target`` may be an ``(N,)`` array.
    """
    from ..data.align import align_to_schema
    from ..device import select_device

    if data.schema != model.schema:
        data = align_to_schema(data, model.schema)
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    dev = select_device(device) if device is not None else model.device
    model.to(dev).eval()
    full = to_batch(data, model.preprocessing, "cpu")
    base = {k: v.to(dev) for k, v in modality_baselines(full, model.modality_names, baseline).items()}
    reference = None
    if method == "gradshap":
        gen = np.random.default_rng(0)
        reference = {}
        for j, n in enumerate(model.modality_names):
            pool = np.flatnonzero(data.present[:, j])
            pick = gen.choice(pool, size=min(len(pool), 32), replace=False) if len(pool) else []
            reference[n] = torch.cat([full.inputs[n][torch.as_tensor(pick, dtype=torch.long)], base[n].cpu().unsqueeze(0)]).to(dev)
    parts, n = [], len(data)
    target_arr = None if isinstance(target, str) else np.broadcast_to(np.asarray(target), (n,))
    for start in range(0, n, batch_size):
        index = np.arange(start, min(start + batch_size, n))
        batch = to_batch(data, model.preprocessing, dev, index)
        t = target if target_arr is None else target_arr[index]
        parts.append(attribute_batch(model, batch, method, target=t, baselines=base, reference=reference, **kwargs))
        if progress is not None:
            progress(int(index[-1]) + 1, n)
    return concat_attributions(parts)


# -- the model an explanation runs on ------------------------------------------------------------


def load_model(checkpoint: Any, device: str | torch.device | None = "auto"):
    """A loaded model from a checkpoint folder, or ``checkpoint`` itself when it is a model."""
    from ..device import select_device
    from ..models.base import FusionModel

    if isinstance(checkpoint, FusionModel):
        return checkpoint.to(select_device(device)).eval()
    from ..checkpoint import load

    return load(checkpoint, device=device)

