"""Tissue detection on a low-resolution copy of a slide, so background tiles are never inferred.

H&E tissue is coloured and glass is grey-white, so the HSV saturation separates them: Otsu's
threshold on the (3 x 3 median-filtered) saturation of a thumbnail, floored at
:data:`MIN_SATURATION` so a slide of bare glass does not turn its noise into "tissue"; then a
closing (radius 2 mask px) joins loose stroma, holes inside tissue are filled (lumina, fat) and
specks smaller than ``min_area_um2`` removed. The mask is computed once per slide on a copy at
about ``mask_um`` microns per px (4 by default: cells blur into tissue, a 32-um model tile spans
8 mask px), at most ``max_side`` px long (2,048: ~ 30 level-0 px per mask px on a 60k-px slide),
and costs well under a second.

A tile is kept when the mask covers at least ``min_tissue`` of its footprint, computed for every
tile at once from a summed-area table of the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Saturation (0-1) below which nothing counts as tissue, whatever Otsu says.
MIN_SATURATION = 0.05


@dataclass(frozen=True)
class TissueMask:
    """``mask`` ``(h, w)`` bool over the whole slide; one mask px covers ``downsample`` level-0 px
    (``(x, y)``); ``threshold`` is the saturation cut that was used."""

    mask: np.ndarray
    downsample: tuple[float, float]
    threshold: float

    @property
    def fraction(self) -> float:
        """Share of the slide's area that is tissue."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    def coverage(self, x0: np.ndarray, y0: np.ndarray, size: tuple[float, float]) -> np.ndarray:
        """Tissue fraction of the level-0 boxes with top-left ``(x0, y0)`` (arrays) and size
        ``(w, h)`` (level-0 px): mean of the mask px the boxes overlap (summed-area table)."""
        h, w = self.mask.shape
        table = np.zeros((h + 1, w + 1), dtype=np.int64)
        table[1:, 1:] = self.mask.astype(np.int64).cumsum(0).cumsum(1)
        dx, dy = self.downsample
        c0 = np.clip(np.floor(np.asarray(x0, dtype=np.float64) / dx), 0, w).astype(np.int64)
        r0 = np.clip(np.floor(np.asarray(y0, dtype=np.float64) / dy), 0, h).astype(np.int64)
        c1 = np.clip(np.ceil((np.asarray(x0, dtype=np.float64) + size[0]) / dx), 0, w).astype(np.int64)
        r1 = np.clip(np.ceil((np.asarray(y0, dtype=np.float64) + size[1]) / dy), 0, h).astype(np.int64)
        c1, r1 = np.maximum(c1, np.minimum(c0 + 1, w)), np.maximum(r1, np.minimum(r0 + 1, h))
        area = np.maximum((r1 - r0) * (c1 - c0), 1)
        inside = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
        return inside / area


def saturation(rgb: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` uint8 -> ``(h, w)`` float32 HSV saturation in [0, 1]."""
    rgb = rgb.astype(np.float32)
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    return np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0).astype(np.float32)


def tissue_mask_from_rgb(rgb: np.ndarray, downsample: tuple[float, float], *, mpp: float | None = None,
                         min_area_um2: float = 5_000.0) -> TissueMask:
    """The mask of a thumbnail ``rgb`` ``(h, w, 3)`` whose px cover ``downsample`` level-0 px.

    ``mpp`` (level-0 microns per px) turns ``min_area_um2`` into mask px; without it specks under
    16 mask px are removed.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu
    from skimage.morphology import remove_small_objects

    sat = ndimage.median_filter(saturation(rgb), size=3)
    threshold = MIN_SATURATION
    if sat.size and float(sat.max()) > float(sat.min()):
        threshold = max(float(threshold_otsu(sat)), MIN_SATURATION)
    stained = sat > threshold
    mask = ndimage.binary_closing(stained, structure=np.ones((3, 3), dtype=bool), iterations=2, border_value=0)
    mask = ndimage.binary_fill_holes(mask | stained)
    if mpp:
        px_area_um2 = downsample[0] * downsample[1] * mpp * mpp
        min_px = max(1, int(round(min_area_um2 / px_area_um2)))
    else:
        min_px = 16
    if mask.any():
        mask = remove_small_objects(mask, max_size=min_px)
    return TissueMask(mask=np.ascontiguousarray(mask, dtype=bool), downsample=downsample, threshold=threshold)


def tissue_mask(slide, *, max_side: int = 2048, mask_um: float = 4.0, min_area_um2: float = 5_000.0) -> TissueMask:
    """The tissue mask of an open :class:`~fusioncore.slides.reader.Slide` (at ~``mask_um`` um/px
    when the slide records its mpp, else with the longest side ``max_side``)."""
    longest = max(slide.dimensions)
    if slide.info.mpp:
        max_side = int(min(max_side, max(64, round(longest * slide.info.mpp[0] / mask_um))))
    pixels, _ = slide.thumbnail(max_side)
    w0, h0 = slide.dimensions
    downsample = (w0 / pixels.shape[1], h0 / pixels.shape[0])
    mpp = slide.info.mpp[0] if slide.info.mpp else None
    return tissue_mask_from_rgb(pixels, downsample, mpp=mpp, min_area_um2=min_area_um2)
