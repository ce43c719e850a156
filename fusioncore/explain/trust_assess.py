"""Run every trust check of every explanation a model gives, over a cohort or one sample.

:func:`assess_trust` is what ``fusioncore explain trust`` and the dashboard's cohort table call,
:func:`assess_sample` what the sample view's trust panel calls (one sample under one presence
pattern, baselines from the whole cohort, more random orderings so a single sample still gets an
interval). Both return a :class:`TrustReport` (arrays and dataclasses; files are written by
:mod:`fusioncore.reports.trust`).

Work is batched on the model's device: the explanation of all samples in chunks of
``batch_size``, the perturbed copies in forward passes of ``rows_per_forward`` rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch

from ..data.dataset import MultimodalDataset, to_batch
from ..device import describe_device
from .attributions import modality_baselines
from .faithfulness import DeletionInsertion, Interval, deletion_insertion
from .fidelity import rank_agreement
from .planted import planted_recovery, sample_aurocs, truth_masks
from .randomisation import RandomisationResult, randomisation_test
from .road import FRACTIONS as ROAD_FRACTIONS, RoadCurves, road_curves
from .trust import (Check, Progress, SampleTrust, TrustRecord, TrustThresholds, check_gap, check_randomisation,
                    check_recovery, interval, verdict)
from .trust_scores import Explanation, available_explanations, explanation_unit_scores, magnitudes


@dataclass(frozen=True)
class TrustSettings:
    """How much work the checks do (defaults: minutes for the demo on two CPU cores).

    attribution: captum method assessed beside the model's own explanations (None: none).
    n_stages: randomisation cascade stages; steps: deletion/insertion steps; n_random: random
    orderings per sample; ig_steps: integration steps of the attribution; top_k: agreement overlap.
    randomisation_samples: the cascade (an explanation pass per stage, the costliest check) runs on
    the first this many samples; the others' randomisation check uses the mean over those.
    road / road_fractions: run ROAD on image modalities, at these removed fractions.
    """

    attribution: str | None = "ig"
    n_stages: int = 4
    randomisation_samples: int = 8
    steps: int = 5
    n_random: int = 2
    ig_steps: int = 16
    road: bool = True
    road_fractions: tuple[float, ...] = ROAD_FRACTIONS
    top_k: int = 5
    batch_size: int = 64
    rows_per_forward: int = 256
    seed: int = 0
    confidence: float = 0.95


@dataclass
class TrustReport:
    """Every check of every explanation (cohort records, per-sample numbers, the curves)."""

    method: str
    sample_ids: list[str]
    classes: tuple[str, ...]
    target: np.ndarray
    explanations: list[Explanation]
    records: list[TrustRecord]
    per_sample: dict[Explanation, SampleTrust]
    randomisation: RandomisationResult
    faithfulness: dict[Explanation, DeletionInsertion]
    road: dict[Explanation, RoadCurves]
    settings: TrustSettings
    thresholds: TrustThresholds
    device: str
    seconds: float
    truth: bool = False
    notes: list[str] = field(default_factory=list)

    def record(self, explanation: Explanation) -> TrustRecord:
        return self.records[self.explanations.index(explanation)]


def _targets(model, batch, batch_size: int) -> torch.Tensor:
    """The class explained: the true label, or the prediction without labels."""
    if batch.labels is not None:
        return batch.labels.long()
    with torch.no_grad():
        return torch.cat([model(batch.select(slice(s, s + batch_size))).logits.argmax(-1) for s in range(0, batch.size, batch_size)])


def _agreement(scores: dict, e: Explanation, top_k: int) -> tuple[dict, dict]:
    """Mean and per-sample Spearman / top-k overlap of ``e`` with each other kind of its modality."""
    mean, per = {}, {}
    for other, s in scores.items():
        if other == e or other.modality != e.modality:
            continue
        rho, overlap = rank_agreement(scores[e], s, k=top_k)
        mean[other.kind] = {"spearman": float(np.nanmean(rho)) if np.isfinite(rho).any() else float("nan"),
                            f"top{top_k}_overlap": float(np.nanmean(overlap)) if np.isfinite(overlap).any() else float("nan")}
        per[f"spearman_vs_{other.kind}"] = rho
        per[f"top{top_k}_overlap_vs_{other.kind}"] = overlap
    return mean, per


def _sample_checks(values: dict, curves: DeletionInsertion, t: TrustThresholds) -> tuple[list[str], list[list[Check]]]:
    """A verdict per sample from its own numbers (deletion interval: over its random orderings)."""
    verdicts, checks = [], []
    gaps = curves.gaps("deletion")
    for i in range(len(gaps)):
        if not np.isfinite(values["deletion_gap"][i]):
            verdicts.append("")  # the modality is absent from this sample
            checks.append([])
            continue
        effect = values["modality_effect"][i]
        row = [_sample_randomisation(values, i, t),
               check_gap("deletion", interval(gaps[i:i + 1].mean(1), gaps[i:i + 1]), effect, t)]
        if "road_gap" in values:
            row.append(check_gap("road", Interval(values["road_gap"][i], np.nan, np.nan), effect, t))
        if "recovery_auroc" in values and np.isfinite(values["recovery_auroc"][i]):
            row.append(check_recovery(values["recovery_auroc"][i], t))
        verdicts.append(verdict(row))
        checks.append(row)
    return verdicts, checks


def _sample_randomisation(values: dict, i: int, t: TrustThresholds) -> Check:
    """Sample ``i``'s randomisation check, from the mean of the randomised subset when it is not in it."""
    sim, ssim = values["randomisation_similarity"], values.get("randomisation_ssim")
    if np.isfinite(sim[i]) or not np.isfinite(sim).any():
        return check_randomisation(sim[i], None if ssim is None else ssim[i], t)
    mean_ssim = float(np.nanmean(ssim)) if ssim is not None and np.isfinite(ssim).any() else None
    c = check_randomisation(float(np.nanmean(sim)), mean_ssim, t)
    return replace(c, line=c.line + f"; mean over the {int(np.isfinite(sim).sum())} samples the cascade ran on")


@dataclass
class _Context:
    """What every explanation's checks share: the model, inputs, baselines, target, settings."""

    model: object
    batch: object
    baselines: dict
    target: torch.Tensor
    patch: int
    settings: TrustSettings
    thresholds: TrustThresholds
    masks: dict


def _assess_one(c: _Context, e: Explanation, scores: dict, rand: RandomisationResult):
    """The record, per-sample numbers, deletion/insertion and ROAD curves of explanation ``e``."""
    st, t = c.settings, c.thresholds
    s, where = scores[e], magnitudes(scores)
    curves = deletion_insertion(c.model, c.batch, e.modality, s, c.target, c.baselines[e.modality], patch_size=c.patch,
                                steps=st.steps, n_random=st.n_random, seed=st.seed, rows_per_forward=st.rows_per_forward)
    values = {"randomisation_similarity": rand.final_spearman(e), "deletion_gap": curves.gap("deletion"),
              "insertion_gap": curves.gap("insertion"), "modality_effect": curves.modality_effect()}
    if rand.final_ssim(e) is not None:
        values["randomisation_ssim"] = rand.final_ssim(e)
    road = None
    if st.road and c.model.schema.modality(e.modality).kind == "image":
        road = road_curves(c.model, c.batch, e.modality, s, c.target, patch_size=c.patch, fractions=st.road_fractions, seed=st.seed,
                           rows_per_forward=st.rows_per_forward)
        values["road_gap"] = road.gap()
    mask = c.masks.get(e.modality)
    if mask is not None and mask.any():
        values["recovery_auroc"] = sample_aurocs(where[e], mask)
    agreement, per = _agreement(where, e, st.top_k)
    gap = lambda key, per_random=None: interval(values[key], per_random, confidence=st.confidence, seed=st.seed)  # noqa: E731
    mean = lambda key: float(np.nanmean(values[key])) if key in values and np.isfinite(values[key]).any() else None  # noqa: E731
    deletion, road_gap, effect = gap("deletion_gap", curves.gaps("deletion")), gap("road_gap") if road else None, mean("modality_effect")
    checks = [check_randomisation(mean("randomisation_similarity") or float("nan"), mean("randomisation_ssim"), t),
              check_gap("deletion", deletion, effect, t)]
    if road_gap is not None:
        checks.append(check_gap("road", road_gap, effect, t))
    recovery = planted_recovery(where[e], mask).auroc if "recovery_auroc" in values else None
    if recovery is not None:
        checks.append(check_recovery(recovery, t))
    record = TrustRecord(e.kind, e.modality, e.label, int(np.isfinite(values["deletion_gap"]).sum()),
                         mean("randomisation_similarity") or float("nan"), mean("randomisation_ssim"),
                         [float(np.nanmean(x)) if np.isfinite(x).any() else float("nan") for x in rand.spearman[e]],
                         deletion, gap("insertion_gap", curves.gaps("insertion")), road_gap, effect if effect is not None else float("nan"),
                         recovery, agreement, checks, verdict(checks))
    verdicts, sample_checks = _sample_checks(values, curves, t)
    values.update(per)
    return record, SampleTrust(values, verdicts, sample_checks), curves, road


def _randomisation(c: _Context, explanations: list[Explanation], scores: dict, grids: dict, tick) -> RandomisationResult:
    """The cascade on the first ``randomisation_samples`` rows; arrays padded to every row with NaN."""
    st = c.settings
    n = c.batch.size
    k = min(n, max(1, st.randomisation_samples))
    sub = c.batch.select(slice(0, k))
    score = lambda m: magnitudes(explanation_unit_scores(m, sub, explanations, target=c.target[:k], baselines=c.baselines,  # noqa: E731
                                                         patch_size=c.patch, batch_size=st.batch_size, n_steps=st.ig_steps))
    rand = randomisation_test(c.model, sub, score, magnitudes({e: v[:k] for e, v in scores.items()}), grids=grids, n_stages=st.n_stages,
                              seed=st.seed, progress=lambda d, total: tick(f"randomisation: stage {d} of {total} re-initialised"))
    pad = lambda a: np.concatenate([a, np.full((a.shape[0], n - k), np.nan)], axis=1)  # noqa: E731
    return RandomisationResult(rand.stages, {e: pad(v) for e, v in rand.spearman.items()}, {e: pad(v) for e, v in rand.ssim.items()})


def assess_trust(model, data: MultimodalDataset, *, reference: MultimodalDataset | None = None, truth=None,
                 settings: TrustSettings = TrustSettings(), thresholds: TrustThresholds = TrustThresholds(),
                 only: Sequence[Explanation] | None = None, progress: Progress | None = None) -> TrustReport:
    """Every trust check of every explanation ``model`` gives, on every sample of ``data``.

    reference: the cohort the baselines (what a removed unit becomes, the IG reference) are the
    per-modality means of (default ``data``). truth: planted truth of ``data``'s rows (the demo
    cohort's ``GroundTruth`` or modality -> ``(N, U)`` bool masks). only: assess just these of the
    explanations the model gives (agreement is then among them). ``progress(done, total, what)``.
    """
    from ..training.evaluate import ensure_aligned

    start = time.perf_counter()
    align = lambda d: ensure_aligned(model, d)  # noqa: E731
    data = align(data)
    reference = align(reference) if reference is not None else data
    model.eval()
    dev, patch, st = model.device, model.explanation_patch_size, settings
    batch = to_batch(data, model.preprocessing, dev)
    base = modality_baselines(to_batch(reference, model.preprocessing, "cpu"), model.modality_names, "mean")
    target = _targets(model, batch, st.batch_size)
    used = data.present.any(axis=0)
    given = [e for e in available_explanations(model, batch, st.attribution, patch) if used[model.schema.index(e.modality)]]
    unknown = sorted(set(only or ()) - set(given))
    if unknown:
        raise ValueError(f"{model.method} gives no {', '.join(e.label for e in unknown)} for these samples; it gives: "
                         f"{', '.join(e.label for e in given) or 'nothing'}")
    explanations = [e for e in given if only is None or e in only]
    if not explanations:
        raise ValueError(f"{model.method}: no explanation to assess for the modalities present in these samples")
    c = _Context(model, batch, {k: v.to(dev) for k, v in base.items()}, target, patch, st, thresholds,
                 truth_masks(truth, model.schema, len(data)) if truth is not None else {})
    total, done = 1 + st.n_stages + len(explanations), [0]

    def tick(what: str) -> None:
        done[0] += 1
        if progress is not None:
            progress(min(done[0], total), total, what)

    score = lambda m: explanation_unit_scores(m, batch, explanations, target=target, baselines=c.baselines, patch_size=patch,  # noqa: E731
                                              batch_size=st.batch_size, n_steps=st.ig_steps)
    scores = score(model)
    tick("explanations of the trained model")
    grids = {e: (model.schema.modality(e.modality).shape[1] // patch, model.schema.modality(e.modality).shape[2] // patch)
             for e in explanations if model.schema.modality(e.modality).kind == "image"}
    rand = _randomisation(c, explanations, scores, grids, tick)
    done[0] = 1 + st.n_stages
    results = {}
    for e in explanations:
        results[e] = _assess_one(c, e, scores, rand)
        tick(f"faithfulness: {e.label}")
    return TrustReport(model.method, list(data.sample_ids), tuple(model.schema.classes), target.cpu().numpy(), explanations,
                       [r[0] for r in results.values()], {e: r[1] for e, r in results.items()}, rand,
                       {e: r[2] for e, r in results.items()}, {e: r[3] for e, r in results.items() if r[3] is not None},
                       settings, thresholds, describe_device(dev), time.perf_counter() - start, truth=bool(c.masks))


#: One sample: every random ordering is cheap, so enough of them to give the gap an interval, and
#: the finer deletion steps of the fidelity CLI.
SAMPLE_SETTINGS = TrustSettings(n_random=16, steps=10, randomisation_samples=1)


def assess_sample(model, data: MultimodalDataset, index: int, present=None, *, truth=None,
                  settings: TrustSettings = SAMPLE_SETTINGS, thresholds: TrustThresholds = TrustThresholds(),
                  progress: Progress | None = None) -> TrustReport:
    """The trust checks of sample ``index`` of ``data`` under a presence pattern (``present``:
    ``(M,)`` flags in model order, None = every modality it has).

    Baselines come from the whole cohort ``data`` (a one-sample mean would be the sample itself);
    ``truth``: planted truth of ``data``'s rows (see :func:`demo_planted_truth`), or None.
    """
    from ..training.evaluate import ensure_aligned

    data = ensure_aligned(model, data)
    names = model.modality_names
    flags = np.ones(len(names), dtype=bool) if present is None else np.asarray(present, dtype=bool).reshape(-1)
    if flags.shape[0] != len(names):
        raise ValueError(f"presence pattern has {flags.shape[0]} flags for {len(names)} modalities ({', '.join(names)})")
    pattern = flags & data.present[int(index)]
    if not pattern.any():
        raise ValueError(f"sample {data.sample_ids[int(index)]!r}: every modality is switched off, nothing to assess")
    one = data.subset([int(index)]).with_present(pattern[None])
    masks = None
    if truth is not None:
        masks = {k: v[[int(index)]] for k, v in truth_masks(truth, model.schema, len(data)).items()}
    return assess_trust(model, one, reference=data, truth=masks, settings=settings, thresholds=thresholds, progress=progress)


def demo_planted_truth(data: MultimodalDataset) -> dict[str, np.ndarray] | None:
    """Planted-truth unit masks (modality -> ``(N, U)``) when every sample of ``data`` is a sample
    of the bundled demo cohort with the same values; None for any other data."""
    from ..demo import load_demo_cohort

    cohort = load_demo_cohort()
    where = {sid: i for i, sid in enumerate(cohort.data.sample_ids)}
    if not data.sample_ids or any(s not in where for s in data.sample_ids):
        return None
    rows = np.array([where[s] for s in data.sample_ids])
    for name in data.modality_names:
        if name not in cohort.data.features or not np.allclose(cohort.data.features[name][rows], data.features[name], atol=1e-6):
            return None
    from ..data.synthetic_cohort import SyntheticCohort

    truth = SyntheticCohort(cohort.data, cohort.truth).subset(rows).truth
    return truth_masks(truth, data.schema, len(data))
