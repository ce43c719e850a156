"""The explanations a model gives, as one importance score per unit, for the trust checks.

Trust checks (``fusioncore.explain.trust``) need every explanation in one shape: ``(N, U)``
scores per modality, higher = more important for the explained class, NaN rows where the
modality is absent. Units are tabular features, image patches (``(H/p) * (W/p)``, row-major) or
sequence tokens, as in :mod:`fusioncore.explain.fidelity`.

Which explanations exist is asked of the model's *output*, never read off method names:

* ``gates`` / ``image_map``: the modalities ``FusionOutput.gates`` fills (tabular feature gates,
  image patch maps), pooled to one mean value per patch;
* ``attention``: when ``model.gives_attention``, the attention the fusion tokens pay to a
  modality's tokens (mean over layers, heads and fusion queries; all queries when the method
  has no fusion tokens), for modalities whose token count equals their unit count (one token
  per feature / patch / position: otherwise a token is not a unit and the map cannot be ranked
  against the data);
* an attribution method (default Integrated Gradients), for every modality: the *signed*
  attribution toward the explained class, summed over channels and over each patch, so a unit
  that pushes the probability down ranks last (deleting it should not make the class less likely);
  checks that ask where rather than which way read its magnitude (:func:`magnitudes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..types import AttentionMaps, Batch
from .attributions import METHOD_LABELS, attribute_batch
from .units import n_units, unit_scores

#: Model-intrinsic explanation kinds by the modality kind they explain (an attribution method's
#: kind is its name, e.g. ``"ig"``).
GATE_KIND = {"tabular": "gates", "image": "image_map", "sequence": "gates"}
ATTENTION = "attention"
KIND_LABELS = {"gates": "feature gates", "image_map": "image patch map", ATTENTION: "attention", **METHOD_LABELS}


@dataclass(frozen=True, order=True)
class Explanation:
    """One explanation of one modality: ``kind`` (``gates``, ``image_map``, ``attention`` or an
    attribution method) and the ``modality`` it ranks the units of."""

    kind: str
    modality: str

    @property
    def label(self) -> str:
        return f"{KIND_LABELS.get(self.kind, self.kind)} ({self.modality})"

    @property
    def is_attribution(self) -> bool:
        return self.kind not in (*GATE_KIND.values(), ATTENTION)


def magnitudes(scores: dict[Explanation, np.ndarray]) -> dict[Explanation, np.ndarray]:
    """Where each explanation points, whatever the direction: |attribution| for attribution
    methods, the scores themselves for gates, maps and attention (never negative).

    Randomisation, agreement and planted-truth recovery ask *where* (a unit strongly arguing
    against the class carries signal too, and a map whose signs flip when the model is destroyed
    still shows the same places); deletion and ROAD ask *which way* and use the signed scores."""
    return {e: np.abs(s) if e.is_attribution else s for e, s in scores.items()}


def attention_unit_scores(attention: AttentionMaps, modality_index: int, units: int) -> Tensor | None:
    """``(B, U)`` attention received by the tokens of modality ``modality_index``, or None when
    its tokens are not one per unit (or the method did not say which token is which).

    attention.layers: per layer ``(B, H, S, S)``; attention.token_modality: ``(S,)``, ``m`` for
    modality ``m``'s tokens (in unit order), negative for fusion tokens / channels.
    """
    if attention is None or attention.token_modality is None or not attention.layers:
        return None
    types = attention.token_modality.to(attention.layers[0].device)
    keys = types == modality_index
    if int(keys.sum()) != units:
        return None
    queries = types < 0
    if not bool(queries.any()):
        queries = torch.ones_like(keys)
    mean = torch.stack([a.float() for a in attention.layers]).mean(dim=(0, 2))  # (B, S, S)
    return mean[:, queries][:, :, keys].mean(dim=1)


def _forward_scores(model, batch: Batch, wanted: Sequence[Explanation], patch_size: int) -> dict[Explanation, np.ndarray]:
    """Gate, image-map and attention scores of one batch (one forward pass)."""
    specs = {m.name: m for m in model.schema.modalities}
    attention = any(e.kind == ATTENTION for e in wanted)
    with torch.no_grad():
        out = model(batch, return_attention=attention)
    scores = {}
    for e in wanted:
        spec = specs[e.modality]
        if e.kind == ATTENTION:
            s = attention_unit_scores(out.attention, model.schema.index(e.modality), n_units(spec, patch_size))
            if s is None:
                raise ValueError(f"{e.label}: the model's attention has no token per unit for this modality")
            scores[e] = s.double().cpu().numpy()
        else:
            scores[e] = unit_scores(out.gates[e.modality].double().cpu().numpy(), spec.kind, spec.shape, patch_size)
    return scores


def _attribution_scores(model, batch: Batch, method: str, wanted: Sequence[Explanation], target: Tensor,
                        baselines: dict[str, Tensor], patch_size: int, n_steps: int) -> dict[Explanation, np.ndarray]:
    """``(B, U)`` signed attribution toward ``target`` of each modality in ``wanted`` (one captum
    call attributes every modality at once)."""
    with torch.enable_grad():
        attrs = attribute_batch(model, batch, method, target=target, baselines=baselines, n_steps=n_steps,
                                patch_size=patch_size)
    out = {}
    for e in wanted:
        if model.schema.modality(e.modality).kind == "image":
            s = attrs.patch_scores(e.modality, patch_size)
        else:
            s = attrs.scores(e.modality)
        out[e] = s.reshape(batch.size, -1).astype(np.float64)
    return out


def available_explanations(model, batch: Batch, attribution: str | None = "ig", patch_size: int = 8) -> list[Explanation]:
    """The explanations ``model`` gives for the modalities of ``batch``, asked of its output.

    ``attribution``: the captum method added for every modality (None: none)."""
    with torch.no_grad():
        out = model(batch.select(slice(0, min(batch.size, 4))), return_attention=bool(model.gives_attention))
    found = []
    for j, spec in enumerate(model.schema.modalities):
        if spec.name in out.gates:
            found.append(Explanation(GATE_KIND[spec.kind], spec.name))
        if attention_unit_scores(out.attention, j, n_units(spec, patch_size)) is not None:
            found.append(Explanation(ATTENTION, spec.name))
        if attribution is not None:
            found.append(Explanation(attribution, spec.name))
    return found


def explanation_unit_scores(model, batch: Batch, explanations: Sequence[Explanation], *, target: Tensor,
                            baselines: dict[str, Tensor], patch_size: int = 8, batch_size: int = 64,
                            n_steps: int = 32) -> dict[Explanation, np.ndarray]:
    """Explanation -> ``(N, U)`` unit scores of every row of ``batch`` (NaN where absent).

    target: ``(N,)`` the class explained (attributions; the model-intrinsic kinds do not depend
    on it). baselines: modality -> ``(*shape)`` reference input of the attributions (from the
    cohort, never from the explained rows alone). Runs in chunks of ``batch_size`` rows.
    """
    model.eval()
    intrinsic = [e for e in explanations if not e.is_attribution]
    methods = {e.kind: [x for x in explanations if x.kind == e.kind] for e in explanations if e.is_attribution}
    parts: dict[Explanation, list[np.ndarray]] = {e: [] for e in explanations}
    for start in range(0, batch.size, batch_size):
        rows = slice(start, min(start + batch_size, batch.size))
        chunk = batch.select(rows)
        found = _forward_scores(model, chunk, intrinsic, patch_size) if intrinsic else {}
        for method, wanted in methods.items():
            found.update(_attribution_scores(model, chunk, method, wanted, target[rows], baselines, patch_size, n_steps))
        for e, s in found.items():
            parts[e].append(s)
    present = batch.present.cpu().numpy()
    out = {}
    for e, chunks in parts.items():
        s = np.concatenate(chunks)
        here = present[:, model.schema.index(e.modality)]
        out[e] = np.where(here[:, None], s, np.nan)
    return out
