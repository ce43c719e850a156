"""What one explanation *unit* is, for every modality kind, in one place.

A tabular modality's unit is a **feature** (one column); an image's is a **patch** (a
``patch_size`` x ``patch_size`` square, all channels); a sequence's is a **token** (one position,
all its dimensions). Attributions, deletion / insertion curves, planted-truth recovery and the
trust report all rank units, so they all go through these functions:

* :func:`n_units`, :func:`unit_labels`: how many units a modality has and what they are called;
* :func:`element_scores`: an attribution array summed to one score per element (pixel, token);
* :func:`unit_scores`: per-element scores pooled to ``(N, U)`` unit scores;
* :func:`expand_units`: a ``(B, U)`` unit mask back to the input's elements;
* :func:`feature_mask`, :func:`occlusion_window`: the same units as captum's ablation groups and
  occlusion windows;
* :func:`pool_patches`: pixel maps summed or averaged per patch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor


def pool_patches(maps: np.ndarray, patch_size: int, reduce: str = "sum") -> np.ndarray:
    """``(N, H, W)`` -> ``(N, H/p, W/p)`` patch sums (or means)."""
    n, h, w = maps.shape
    if h % patch_size or w % patch_size:
        raise ValueError(f"patch_size {patch_size} does not divide the map size ({h}, {w})")
    blocks = maps.reshape(n, h // patch_size, patch_size, w // patch_size, patch_size)
    return blocks.sum(axis=(2, 4)) if reduce == "sum" else blocks.mean(axis=(2, 4))


def element_scores(values: np.ndarray, kind: str) -> np.ndarray:
    """One score per element of an input-shaped attribution array: an image's ``(N, C, H, W)``
    summed over channels to ``(N, H, W)`` pixels, a sequence's ``(N, L, d)`` over dimensions to
    ``(N, L)`` tokens, a table's ``(N, d)`` as it is."""
    if kind == "image":
        return values.sum(axis=1)
    if kind == "sequence":
        return values.sum(axis=-1)
    return values


def unit_scores(scores: np.ndarray, kind: str, shape: Sequence[int], patch_size: int,
                reduce: str = "mean") -> np.ndarray:
    """``(N, U)`` unit scores from a tabular ``(N, d)``, image ``(N, h, w)``/``(N, H, W)``/
    ``(N, 1, H, W)`` (pixels are averaged per patch, or summed with ``reduce="sum"``) or
    sequence ``(N, L)`` array."""
    s = np.asarray(scores, dtype=np.float64)
    n = s.shape[0]
    if kind == "image":
        if s.ndim == 4 and s.shape[1] == 1:
            s = s[:, 0]
        _, H, W = shape
        if s.ndim == 2 and s.shape[1] == (H // patch_size) * (W // patch_size):
            return s  # already one score per patch, row-major
        if s.shape[1:] == (H, W):
            s = pool_patches(s, patch_size, reduce=reduce)
        if s.shape[1:] != (H // patch_size, W // patch_size):
            raise ValueError(f"image scores: shape {s.shape[1:]} is neither the image ({H}, {W}) nor its "
                             f"{patch_size}-px patch grid ({H // patch_size}, {W // patch_size})")
        return s.reshape(n, -1)
    units = shape[0]
    if s.ndim != 2 or s.shape[1] != units:
        raise ValueError(f"{kind} scores: expected shape (N, {units}), got {s.shape}")
    return s


def n_units(spec, patch_size: int) -> int:
    """Number of units of a modality: features, image patches or tokens."""
    if spec.kind == "image":
        return (spec.shape[1] // patch_size) * (spec.shape[2] // patch_size)
    return int(spec.shape[0])


def expand_units(mask: torch.Tensor, kind: str, shape: Sequence[int], patch_size: int) -> torch.Tensor:
    """``(B, U)`` bool unit mask -> broadcastable to ``(B, *shape)``."""
    if kind == "image":
        _, H, W = shape
        g = mask.view(-1, H // patch_size, W // patch_size)
        return g.repeat_interleave(patch_size, 1).repeat_interleave(patch_size, 2).unsqueeze(1)
    if kind == "sequence":
        return mask.unsqueeze(-1)
    return mask


def feature_mask(x: Tensor, kind: str, patch_size: int, offset: int) -> tuple[Tensor, int]:
    """``(1, *shape)`` ids grouping each unit's elements (captum's ``feature_mask``): a feature, an image
    patch (all channels), a token; numbered from ``offset``. Returns the ids and the number of units."""
    shape = x.shape[1:]
    if kind == "image":
        c, h, w = shape
        g = torch.arange((h // patch_size) * (w // patch_size), device=x.device).view(h // patch_size, w // patch_size)
        ids = g.repeat_interleave(patch_size, 0).repeat_interleave(patch_size, 1).expand(c, h, w)
    elif kind == "sequence":
        L, d = shape
        ids = torch.arange(L, device=x.device).view(L, 1).expand(L, d)
    else:
        ids = torch.arange(int(np.prod(shape)), device=x.device).view(shape)
    return (ids + offset).unsqueeze(0).contiguous(), int(ids.max()) + 1


def occlusion_window(kind: str, shape: Sequence[int], patch_size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Captum Occlusion's ``(window, stride)`` for one sample of ``shape``: half-overlapping patch
    windows on images, one token (all its dimensions) on sequences, one feature otherwise."""
    if kind == "image":
        half = max(1, patch_size // 2)
        return (shape[0], patch_size, patch_size), (shape[0], half, half)
    if kind == "sequence":
        return (1, shape[1]), (1, shape[1])
    return (1,), (1,)


def unit_labels(kind: str, n: int, *, grid_width: int = 1, feature_names: Sequence[str] | None = None) -> list[str]:
    """Names of ``n`` units: image patches ``r{row}c{col}`` on a grid ``grid_width`` patches wide,
    the feature names of a tabular modality when known, else ``feature{k}`` / ``token{k}``."""
    if kind == "image":
        return [f"r{r}c{c}" for r in range(n // grid_width) for c in range(grid_width)]
    if kind == "tabular" and feature_names:
        return list(feature_names)
    return [f"{'token' if kind == 'sequence' else 'feature'}{k}" for k in range(n)]


__all__ = ["expand_units", "feature_mask", "n_units", "occlusion_window", "pool_patches", "unit_labels", "unit_scores"]
