"""Verdicts on explanations: ``trustworthy`` / ``doubtful`` / ``untrustworthy``, with the why.

Each explanation a model gives (:mod:`fusioncore.explain.trust_scores`) is checked four ways,
every check with a documented threshold (docs/trust.md says how they were chosen):

* **randomisation** (:mod:`~fusioncore.explain.randomisation`): |Spearman| (and SSIM for image
  maps) between the explanation and itself on the fully re-initialised model. High = the map
  shows the input, not the model.
* **deletion** (:mod:`~fusioncore.explain.faithfulness`): the deletion-AUC gap over random
  orderings, with its interval. Untestable when the model barely uses the modality at all.
* **ROAD** (:mod:`~fusioncore.explain.road`, image modalities): the LeRF - MoRF gap under
  noisy linear imputation, which removes patches without out-of-distribution artefacts.
* **recovery** (data with planted truth): AUROC of the scores separating planted units.

Verdict: any check failed -> ``untrustworthy``; every testable check passed (randomisation and
at least one faithfulness check among them) -> ``trustworthy``; anything else -> ``doubtful``.
Agreement between explanation kinds is reported but takes no part in the verdict: two kinds
that disagree do not say which one is wrong, and each has its own faithfulness test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from .faithfulness import Interval, mean_interval, single_sample_interval
from .trust_scores import Explanation

VERDICTS = ("trustworthy", "doubtful", "untrustworthy")
PASS, BORDERLINE, FAIL, UNTESTABLE = "pass", "borderline", "fail", "untestable"
Progress = Callable[[int, int, str], None]
MIN_RANDOM_FOR_INTERVAL = 8


@dataclass(frozen=True)
class TrustThresholds:
    """Where each check passes and fails (measured on trained vs randomised demo models; see
    docs/trust.md). Between ``*_pass`` and ``*_fail`` a check is borderline (-> doubtful)."""

    randomisation_pass: float = 0.4  # |Spearman| at or below: the map changed when the model was destroyed
    randomisation_fail: float = 0.7  # at or above: it barely changed
    ssim_pass: float = 0.3
    ssim_fail: float = 0.6
    deletion_pass: float = 0.15  # deletion-AUC gap over random orderings as a fraction of the modality's effect,
    deletion_fail: float = 0.03  # ... pass at or above (interval above 0), fail at or below
    road_pass: float = 0.15  # ROAD gap (LeRF - MoRF) as a fraction of the modality's effect
    road_fail: float = 0.03
    recovery_pass: float = 0.75  # AUROC of the planted units
    recovery_fail: float = 0.6
    modality_effect_min: float = 0.02  # removing the whole modality must move p(class) this much to test an order


@dataclass(frozen=True)
class Check:
    """One check of one explanation: its number, interval, status and a line in plain words."""

    name: str
    value: float
    status: str
    line: str
    low: float | None = None
    high: float | None = None


def _finite(x) -> bool:
    return x is not None and bool(np.isfinite(x))


def check_randomisation(similarity: float, ssim: float | None, t: TrustThresholds) -> Check:
    if not _finite(similarity):
        return Check("randomisation", similarity, UNTESTABLE, "the explanation is constant: nothing to compare after randomisation")
    worst_fail = similarity >= t.randomisation_fail or (_finite(ssim) and ssim >= t.ssim_fail)
    passed = similarity <= t.randomisation_pass and (not _finite(ssim) or ssim <= t.ssim_pass)
    status = FAIL if worst_fail else PASS if passed else BORDERLINE
    extra = f", SSIM {ssim:.2f} (pass <= {t.ssim_pass}, fail >= {t.ssim_fail})" if _finite(ssim) else ""
    words = {PASS: "changes when the model's weights are destroyed", BORDERLINE: "changes only partly when the model's weights are destroyed",
             FAIL: "barely changes when the model's weights are destroyed: it shows the input, not the model"}[status]
    return Check("randomisation", similarity, status, f"{words} (|Spearman| {similarity:.2f} to the original after re-initialising "
                 f"every layer; pass <= {t.randomisation_pass}, fail >= {t.randomisation_fail}{extra})")


def check_gap(name: str, gap: Interval, effect: float, t: TrustThresholds) -> Check:
    """``deletion`` or ``road``: the gap over chance, as a fraction of what removing the whole
    modality does to p(class) (``effect``), must be large enough and its interval above 0.

    Why relative: the largest gap any ordering can reach scales with how much the model uses the
    modality, so an absolute threshold would fail a perfect ranking of a modality the model leans
    on lightly (the demo's omics beside its image) and pass a weak one of a dominant modality."""
    good, bad = (t.deletion_pass, t.deletion_fail) if name == "deletion" else (t.road_pass, t.road_fail)
    what = ("deleting its top units lowers p(class) faster than random orderings" if name == "deletion"
            else "imputing its top patches (ROAD) lowers p(class) more than imputing its bottom ones")
    low, high = (gap.low, gap.high) if _finite(gap.low) else (None, None)
    if not _finite(effect) or abs(effect) < t.modality_effect_min:
        shown = f"{effect:+.3f}" if _finite(effect) else "nothing"
        return Check(name, gap.mean, UNTESTABLE, f"the model barely uses this modality (removing all of it moves p(class) by "
                     f"{shown}, under {t.modality_effect_min}): no ordering of its units can be tested", low, high)
    if not _finite(gap.mean):
        return Check(name, gap.mean, UNTESTABLE, "no sample has this modality", low, high)
    relative = gap.mean / abs(effect)
    status = FAIL if relative <= bad else PASS if relative >= good and (low is None or low > 0) else BORDERLINE
    ci = f", interval [{low:+.3f}, {high:+.3f}]" if low is not None else ""
    verb = {PASS: "", BORDERLINE: "only marginally: ", FAIL: "no: "}[status]
    return Check(name, relative, status, f"{verb}{what} (gap {gap.mean:+.3f}{ci} = {relative:.0%} of the modality's effect "
                 f"{effect:+.3f}; pass >= {good:.0%} with the interval above 0, fail <= {bad:.0%})", low, high)


def check_recovery(auroc: float, t: TrustThresholds) -> Check:
    status = FAIL if auroc <= t.recovery_fail else PASS if auroc >= t.recovery_pass else BORDERLINE
    words = {PASS: "ranks the planted units high", BORDERLINE: "ranks the planted units only somewhat above the rest",
             FAIL: "does not find the planted units"}[status]
    return Check("recovery", auroc, status, f"{words} (AUROC {auroc:.2f}; pass >= {t.recovery_pass}, fail <= {t.recovery_fail})")


def verdict(checks: list[Check]) -> str:
    """``untrustworthy`` if any check failed, ``trustworthy`` if randomisation and a faithfulness
    check passed and nothing is borderline or untestable, else ``doubtful``."""
    status = {c.name: c.status for c in checks}
    if FAIL in status.values():
        return "untrustworthy"
    faithful = status.get("deletion") == PASS or status.get("road") == PASS
    if status.get("randomisation") == PASS and faithful and all(s == PASS for s in status.values()):
        return "trustworthy"
    return "doubtful"


@dataclass
class TrustRecord:
    """The trust of one explanation over the samples assessed (what ``trust.json`` lists)."""

    explanation: str
    modality: str
    label: str
    n_samples: int
    randomisation_similarity: float
    randomisation_ssim: float | None
    randomisation_curve: list[float]
    deletion_gap: Interval
    insertion_gap: Interval
    road_gap: Interval | None
    modality_effect: float
    recovery_auroc: float | None
    agreement: dict[str, dict[str, float]]
    checks: list[Check]
    verdict: str

    def to_json(self) -> dict:
        out = asdict(self)
        for key in ("deletion_gap", "insertion_gap", "road_gap"):
            value = getattr(self, key)
            out[key] = None if value is None else dict(value._asdict())
        out["why"] = [c.line for c in self.checks]
        return out


@dataclass
class SampleTrust:
    """Per-sample numbers of one explanation: name -> ``(N,)`` array, and a verdict per sample."""

    values: dict[str, np.ndarray]
    verdicts: list[str]
    checks: list[list[Check]] = field(default_factory=list)


def interval(values: np.ndarray, per_random: np.ndarray | None = None, *, confidence: float = 0.95, seed: int = 0) -> Interval:
    """The interval of a mean gap: bootstrap over samples, or, for one sample, the spread over its
    random orderings (none with fewer than :data:`MIN_RANDOM_FOR_INTERVAL`: two or three
    orderings bound nothing, and the check then reads the gap alone)."""
    finite = np.isfinite(values)
    if finite.sum() == 1 and per_random is not None:
        spread = per_random[finite][0]
        if len(spread) < MIN_RANDOM_FOR_INTERVAL:
            return Interval(float(values[finite][0]), np.nan, np.nan)
        return single_sample_interval(spread, confidence=confidence)
    return mean_interval(values, confidence=confidence, seed=seed)
