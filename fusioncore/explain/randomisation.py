"""Model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps").

An explanation that barely changes when the model's weights are destroyed does not explain the
model. The test re-initialises the layers *cascading from the output layer down* and recomputes
the explanation after each stage; the similarity to the original explanation is reported per
stage (the curve of their Fig. 2) and, as the summary, after the last stage (every layer
re-initialised).

* **Layer order.** "From the output down" is the reverse of the order in which a forward pass
  first calls each module that owns parameters (recorded with forward pre-hooks, so it holds for
  any architecture). Modules the forward pass never calls come last. The layers are split into
  ``n_stages`` contiguous stages of (nearly) equal layer counts.
* **Re-initialisation.** A module's own ``reset_parameters()`` (what PyTorch uses at
  construction; batch norm also resets its running statistics); parameters of modules without
  one (e.g. learned tokens) are redrawn from ``N(0, std)`` with their trained std. Seeded, on a
  copy: the caller's model is never touched.
* **Similarity.** Per sample: the absolute Spearman rank correlation of the unit scores (the sign
  of a map is not what the test asks about: a map that flips when the model is destroyed still
  shows the input, not the model), and for image maps the SSIM of the min-max normalised patch
  grids. A randomised map that is constant has kept none of the original's ranking: similarity
  0. An original map that is constant has nothing to compare: NaN.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..types import Batch

ScoreFn = Callable[[nn.Module], dict]


def cascade_order(model: nn.Module, batch: Batch) -> list[str]:
    """Names of the modules that own parameters, output layer first (reverse first-call order)."""
    owners = {name: m for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))}
    called: list[str] = []
    hooks = [m.register_forward_pre_hook(lambda _m, _a, n=name: called.append(n) if n not in called else None)
             for name, m in owners.items()]
    try:
        with torch.no_grad():
            model.eval()(batch.select(slice(0, min(batch.size, 2))), return_attention=bool(model.gives_attention))
    finally:
        for h in hooks:
            h.remove()
    unused = [n for n in owners if n not in called]
    return list(reversed(called)) + unused


def cascade_stages(order: Sequence[str], n_stages: int) -> list[tuple[str, ...]]:
    """``order`` split into at most ``n_stages`` contiguous, non-empty stages."""
    if n_stages < 1:
        raise ValueError(f"randomisation stages: expected a positive integer, got {n_stages}")
    return [tuple(part) for part in np.array_split(np.asarray(order, dtype=object), min(n_stages, len(order))) if len(part)]


def reinitialise_(module: nn.Module) -> None:
    """Re-draw ``module``'s own parameters (not its children's) with the global torch RNG."""
    reset = getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)
    if callable(reset):
        reset()
        return
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            std = float(p.detach().float().std()) if p.numel() > 1 else 0.0
            p.normal_(0.0, std if np.isfinite(std) and std > 0 else 0.02)


def randomised_cascade(model: nn.Module, stages: Sequence[Sequence[str]], seed: int = 0) -> Iterator[nn.Module]:
    """A copy of ``model`` with stage 1, then stages 1-2, ... re-initialised (one copy, cumulative)."""
    copy_ = copy.deepcopy(model).eval()
    modules = dict(copy_.named_modules())
    devices = [copy_.device] if copy_.device.type == "cuda" else []
    for i, stage in enumerate(stages):
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed * 1009 + i)
            for name in stage:
                reinitialise_(modules[name])
        yield copy_


def rank_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` |Spearman| of two ``(N, U)`` score arrays row by row (ranks with ties averaged,
    then Pearson, i.e. scipy's ``spearmanr`` vectorised); constant rows as the module says, NaN
    rows give NaN."""
    from scipy.stats import rankdata

    a, b = np.asarray(a, float), np.asarray(b, float)
    out = np.full(a.shape[0], np.nan)
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1) & (np.ptp(a, axis=1) > 0)
    if not ok.any():
        return out
    ra, rb = rankdata(a[ok], axis=1), rankdata(b[ok], axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    rho = np.divide((ra * rb).sum(axis=1), denom, out=np.zeros(len(ra)), where=denom > 0)
    out[ok] = np.abs(rho)
    return out


def map_ssim(a: np.ndarray, b: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """``(N,)`` SSIM of two ``(N, h*w)`` patch maps on their ``grid`` (each min-max normalised;
    window: the largest odd size <= 7 that fits, NaN for grids under 3 x 3)."""
    from skimage.metrics import structural_similarity

    side = min(grid)
    win = min(7, side if side % 2 else side - 1)
    out = np.full(a.shape[0], np.nan)
    if win < 3:
        return out
    for i, (x, y) in enumerate(zip(a, b)):
        if not (np.isfinite(x).all() and np.isfinite(y).all()) or np.ptp(x) == 0:
            continue
        if np.ptp(y) == 0:
            out[i] = 0.0
            continue
        nx = ((x - x.min()) / np.ptp(x)).reshape(grid)
        ny = ((y - y.min()) / np.ptp(y)).reshape(grid)
        out[i] = float(structural_similarity(nx, ny, win_size=win, data_range=1.0))
    return out


@dataclass
class RandomisationResult:
    """Similarity of each explanation to itself on the progressively randomised model.

    stages: the module names re-initialised at each stage (cumulative: stage ``i`` has stages
    ``0..i`` randomised). spearman / ssim: explanation -> ``(S, N)`` per stage and sample
    (``ssim`` only for image maps).
    """

    stages: list[tuple[str, ...]]
    spearman: dict
    ssim: dict

    def final_spearman(self, explanation) -> np.ndarray:
        """``(N,)`` similarity with every layer re-initialised."""
        return self.spearman[explanation][-1]

    def final_ssim(self, explanation) -> np.ndarray | None:
        s = self.ssim.get(explanation)
        return None if s is None else s[-1]

    def stage_labels(self) -> list[str]:
        return [f"{s[0]} .. {s[-1]}" if len(s) > 1 else s[0] for s in self.stages]


def randomisation_test(model: nn.Module, batch: Batch, score: ScoreFn, original: dict, *,
                       grids: dict | None = None, n_stages: int = 5, seed: int = 0,
                       progress: Callable[[int, int], None] | None = None) -> RandomisationResult:
    """Cascading randomisation of ``model``: ``score(model) -> {explanation: (N, U)}`` is re-run
    after each stage and compared with ``original`` (the same call on the trained model).

    grids: explanation -> ``(h, w)`` patch grid of the image maps (their SSIM is computed too).
    """
    stages = cascade_stages(cascade_order(model, batch), n_stages)
    spearman = {e: [] for e in original}
    ssim = {e: [] for e in (grids or {})}
    for i, randomised in enumerate(randomised_cascade(model, stages, seed)):
        scores = score(randomised)
        for e, base in original.items():
            spearman[e].append(rank_similarity(base, scores[e]))
            if e in ssim:
                ssim[e].append(map_ssim(base, scores[e], grids[e]))
        if progress is not None:
            progress(i + 1, len(stages))
    return RandomisationResult(stages, {e: np.stack(v) for e, v in spearman.items()}, {e: np.stack(v) for e, v in ssim.items()})
