"""Contrastive loss recipes of MCA, Zorro and EAO as data (spec §1a "Contrastive loss", §3b, §6).

A *recipe* is a list of :class:`ContrastivePair` ``(a, b, rule)``: embedding names (modality,
channel such as ``"rna+meth"``, or ``"fusion"``) and the presence rule that selects the anchor
rows. Every pair is a CLIP-style symmetric InfoNCE with **one shared learnable temperature**
(torchmultimodal's ``ContrastiveLossWithTemperature``: scale ``exp(tau)`` initialised to
``1/0.07``, clamped to ``[1, 100]``). The CMU recipe, the TCGA recipe, Zorro and EAO are four
lists, not four code paths.

Rows (anchors) are filtered by the rule; columns are not (the torchmultimodal behaviour), so a
sample lacking a modality still serves as a negative. A pair with no valid row is skipped
(the original gives NaN and then averages the non-NaN terms, which is the same thing).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.masks import channel_name
from ..types import LossOutput

PresenceRule = Literal["both", "all"]
RECIPES = ("cmu", "tcga")


@dataclass(frozen=True)
class ContrastivePair:
    """Positive pair ``(a, b)``; ``rule`` says which samples are anchors.

    ``both``: ``a`` exists and ``b`` exists, where a modality exists when present, and a channel
    (or ``fusion``) when *any* of its modalities is present (the original masks).
    ``all``:  every modality of ``a`` and of ``b`` is present (the original EAO's rule).
    """

    a: str
    b: str
    rule: PresenceRule = "both"

    @property
    def name(self) -> str:
        return f"{self.a}~{self.b}"


def _channels_names(modalities: Sequence[str], channels: Sequence[Sequence[int]]) -> list[str]:
    return [channel_name(c, modalities) for c in channels]


def mca_recipe(modalities: Sequence[str], channels: Sequence[Sequence[int]], recipe: str) -> list[ContrastivePair]:
    """MCA pairs. ``channels[0]`` is the root (all-modality) channel = ``fusion``.

    ``cmu`` (``bimodal_contrastive=False, non_fusion_fcl=False, fcl=True``): ``(z_m, fusion)``
    for each m, plus ``(fusion, z_S)`` for every non-root channel: 4 + 10 = 14 terms for 4 modalities.
    ``tcga`` (``bimodal_contrastive=True, non_fusion_fcl=True``): every pair among
    ``{z_m} + {fusion}`` (10), ``(fusion, z_S)`` (10) and ``(z_m, z_S)`` for every m and
    non-root S (40): 60 terms.
    """
    _check_recipe(recipe)
    others = _channels_names(modalities, channels[1:])
    if recipe == "cmu":
        pairs = [ContrastivePair(m, "fusion") for m in modalities]
    else:
        pairs = [ContrastivePair(a, b) for a, b in itertools.combinations(list(modalities) + ["fusion"], 2)]
    pairs += [ContrastivePair("fusion", s) for s in others]
    if recipe == "tcga":
        pairs += [ContrastivePair(m, s) for m in modalities for s in others]
    return pairs


def zorro_recipe(modalities: Sequence[str], recipe: str) -> list[ContrastivePair]:
    """Zorro has no channel terms: ``cmu`` = ``(z_m, fusion)`` (4); ``tcga`` = all pairs among
    ``{z_m} + {fusion}`` (10)."""
    _check_recipe(recipe)
    if recipe == "cmu":
        return [ContrastivePair(m, "fusion") for m in modalities]
    return [ContrastivePair(a, b) for a, b in itertools.combinations(list(modalities) + ["fusion"], 2)]


def eao_recipe(modalities: Sequence[str], pairs: Sequence[Sequence[int]], *, skip_first_pair: bool = True) -> list[ContrastivePair]:
    """EAO as in the MCA repo (spec §3b): all unimodal pairs (6) and ``(z_m, z_ij)`` for every m
    and pair embedding (m is also contrasted with pairs containing m). ``skip_first_pair``
    reproduces the repo quirk that drops the first pair (0, 1) from the second kind: 6 + 4*5 = 26."""
    uni = [ContrastivePair(a, b) for a, b in itertools.combinations(modalities, 2)]
    names = _channels_names(modalities, pairs)
    if skip_first_pair:
        names = names[1:]
    return uni + [ContrastivePair(m, s) for m in modalities for s in names]


def _check_recipe(recipe: str) -> None:
    if recipe not in RECIPES:
        raise ValueError(f"contrastive recipe must be one of {RECIPES}, got {recipe!r}")


def embedding_presence(present: Tensor, modalities: Sequence[str], members: dict[str, Sequence[int]]) -> dict[str, Tensor]:
    """``(B, M)`` presence -> per embedding name ``(B,)`` "exists" (modality present; channel: any member)."""
    out = {name: present[:, j] for j, name in enumerate(modalities)}
    for name, idx in members.items():
        out[name] = present[:, list(idx)].any(dim=1)
    return out


def pair_rows(pair: ContrastivePair, present: Tensor, modalities: Sequence[str], members: dict[str, Sequence[int]]) -> Tensor:
    """``(B,)`` bool anchor rows of ``pair``."""
    if pair.rule == "both":
        exists = embedding_presence(present, modalities, members)
        for key in (pair.a, pair.b):
            if key not in exists:
                raise ValueError(f"contrastive pair {pair.name}: no embedding named {key!r}; known: {sorted(exists)}")
        return exists[pair.a] & exists[pair.b]
    if pair.rule == "all":
        idx = set()
        for key in (pair.a, pair.b):
            idx |= set(members[key]) if key in members else {list(modalities).index(key)}
        return present[:, sorted(idx)].all(dim=1)
    raise ValueError(f"contrastive pair {pair.name}: unknown presence rule {pair.rule!r} (expected 'both' or 'all')")


def clip_loss(a: Tensor, b: Tensor, scale: Tensor, rows: Tensor) -> Tensor:
    """Symmetric InfoNCE ``½[CE(s·a bᵀ) + CE(s·b aᵀ)]`` over anchor ``rows`` (all columns kept)."""
    labels = torch.arange(a.shape[0], device=a.device)[rows]
    logits_a = (scale * a @ b.T)[rows]
    logits_b = (scale * b @ a.T)[rows]
    return 0.5 * (F.cross_entropy(logits_a, labels) + F.cross_entropy(logits_b, labels))


class ContrastiveRecipeLoss(nn.Module):
    """A recipe plus the one shared learnable temperature.

    ``members`` maps each channel / pair embedding name (and ``"fusion"``) to its modality
    indices, so presence rules are evaluated from the batch's ``(B, M)`` presence matrix.
    """

    def __init__(
        self,
        pairs: Sequence[ContrastivePair],
        modalities: Sequence[str],
        members: dict[str, Sequence[int]],
        init_temperature: float = 0.07,
        min_scale: float = 1.0,
        max_scale: float = 100.0,
    ) -> None:
        super().__init__()
        if not pairs:
            raise ValueError("a contrastive recipe needs at least one pair")
        self.pairs = list(pairs)
        self.modalities = list(modalities)
        self.members = {k: tuple(v) for k, v in members.items()}
        self.min_scale, self.max_scale = min_scale, max_scale
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    @property
    def scale(self) -> Tensor:
        """``exp(tau)`` clamped to ``[1, 100]`` (clamping the log keeps the gradient zero outside)."""
        return self.log_scale.clamp(math.log(self.min_scale), math.log(self.max_scale)).exp()

    def forward(self, embeddings: dict[str, Tensor], present: Tensor) -> LossOutput:
        """Mean over the pairs that have at least one anchor; terms named ``"a~b"``."""
        scale = self.scale
        terms, values = {}, []
        for pair in self.pairs:
            rows = pair_rows(pair, present, self.modalities, self.members)
            if not bool(rows.any()):
                continue
            value = clip_loss(embeddings[pair.a], embeddings[pair.b], scale, rows)
            terms[pair.name] = value.detach()
            values.append(value)
        if values:
            total = torch.stack(values).mean()
        else:  # no pair has an anchor: a differentiable zero, never NaN
            total = scale * 0.0 + sum(e.sum() * 0.0 for e in embeddings.values())
        terms["logit_scale"] = scale.detach()
        return LossOutput(total=total, terms=terms)


__all__ = [
    "ContrastivePair",
    "ContrastiveRecipeLoss",
    "RECIPES",
    "clip_loss",
    "eao_recipe",
    "embedding_presence",
    "mca_recipe",
    "pair_rows",
    "zorro_recipe",
]
