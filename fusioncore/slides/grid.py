"""Where a model's tiles go on a slide: the resolution to read at and the grid of tissue tiles.

A model was trained on ``h x w`` tiles at some microns per pixel. :func:`choose_resolution` picks
the *downsample* — level-0 px per model px — from, in order: ``--mpp``, ``--level``, the training
mpp the checkpoint records, and otherwise the slide's level 0, stating that assumption. The slide
is read from the level with the largest downsample not above it and resized by the rest.

:class:`SlideGrid` lays tiles of the model's size edge to edge from the slide's top-left corner
(stride = tile: the model's patches are the explanation units, so tiles never overlap). The last
row and column reach past the slide's edge, which reads as glass (white), so every tile and every
patch sits on one regular grid and a heatmap cell is one model patch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .reader import SlideError, SlideInfo

#: Relative mismatch between a requested and an available resolution that is still "the same".
RESOLUTION_TOLERANCE = 0.1


@dataclass(frozen=True)
class Resolution:
    """``downsample`` level-0 px per model px; ``level`` is the slide level read (its downsample
    <= ``downsample``); ``mpp`` microns per model px (None when the slide does not say);
    ``source`` how it was chosen, in words, including any assumption."""

    downsample: float
    level: int
    mpp: float | None
    source: str

    def as_dict(self) -> dict:
        return {"downsample": self.downsample, "level": self.level, "mpp": self.mpp, "source": self.source}


def _snap(downsample: float) -> float:
    """Treat a downsample within :data:`RESOLUTION_TOLERANCE` of a whole number as that number
    (0.499 vs 0.5 um/px should not cost a resize of every tile)."""
    nearest = round(downsample)
    if nearest >= 1 and abs(downsample - nearest) <= RESOLUTION_TOLERANCE * nearest:
        return float(nearest)
    return float(downsample)


def _level_for(info: SlideInfo, downsample: float) -> int:
    best = 0
    for level, d in enumerate(info.level_downsamples):
        if d <= downsample * (1 + 1e-6):
            best = level
    return best


def choose_resolution(info: SlideInfo, *, mpp: float | None = None, level: int | None = None,
                      model_mpp: float | None = None) -> Resolution:
    """The resolution to run a model at on this slide (see the module docstring for the order)."""
    if mpp is not None and level is not None:
        raise SlideError(f"{info.path}: give --mpp or --level, not both")
    slide_mpp = info.mpp[0] if info.mpp else None
    if level is not None:
        if not 0 <= level < len(info.level_downsamples):
            raise SlideError(f"{info.path}: --level {level}: the slide has levels 0-{len(info.level_downsamples) - 1}")
        ds = info.level_downsamples[level]
        at = slide_mpp * ds if slide_mpp else None
        note = f"--level {level}"
        if model_mpp and at and abs(at / model_mpp - 1) > RESOLUTION_TOLERANCE:
            note += f" ({at:.3g} um/px, but the model was trained at {model_mpp:.3g} um/px)"
        return Resolution(ds, level, at, note)
    wanted, source = (mpp, f"--mpp {mpp:g}") if mpp is not None else (model_mpp, f"the checkpoint's training mpp {model_mpp}")
    if wanted is not None:
        if wanted <= 0:
            raise SlideError(f"{info.path}: the resolution must be positive microns per pixel, got {wanted}")
        if slide_mpp is None:
            raise SlideError(f"{info.path}: the slide does not record its microns per pixel, so {source} cannot be "
                             "matched; give --level instead")
        ds = wanted / slide_mpp
        if ds < 1 - RESOLUTION_TOLERANCE:
            raise SlideError(f"{info.path}: {source} is finer than the slide's level 0 ({slide_mpp:g} um/px); "
                             "upsampling would invent detail")
        ds = max(1.0, _snap(ds))
        return Resolution(ds, _level_for(info, ds), slide_mpp * ds, source)
    at = f" ({slide_mpp:g} um/px)" if slide_mpp else " (the slide does not record its um/px either)"
    return Resolution(1.0, 0, slide_mpp, "assumed: the checkpoint does not record its training resolution, so the "
                      f"model runs on the slide's level 0{at}; pass --mpp or --level to choose")


@dataclass(frozen=True)
class SlideGrid:
    """Model tiles of ``tile = (h, w)`` model px laid edge to edge over the slide.

    Tile ``(row, col)`` covers model px ``[row*h, (row+1)*h) x [col*w, (col+1)*w)``, i.e. level-0 px
    from :meth:`origin` over ``footprint``; ``cell`` is the side of the model's explanation patch
    (model px), so a tile holds ``(h / cell) x (w / cell)`` heatmap cells.
    """

    slide_size: tuple[int, int]
    resolution: Resolution
    tile: tuple[int, int]
    cell: int

    def __post_init__(self) -> None:
        h, w = self.tile
        if h % self.cell or w % self.cell:
            raise ValueError(f"the explanation patch ({self.cell} px) must divide the model tile ({h} x {w})")

    @property
    def downsample(self) -> float:
        return self.resolution.downsample

    @property
    def model_size(self) -> tuple[int, int]:
        """The slide's ``(width, height)`` in model px."""
        w0, h0 = self.slide_size
        return math.ceil(w0 / self.downsample - 1e-9), math.ceil(h0 / self.downsample - 1e-9)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of tiles."""
        mw, mh = self.model_size
        return math.ceil(mh / self.tile[0]), math.ceil(mw / self.tile[1])

    @property
    def cells_per_tile(self) -> tuple[int, int]:
        return self.tile[0] // self.cell, self.tile[1] // self.cell

    @property
    def cell_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of heatmap cells over the whole grid."""
        rows, cols = self.shape
        ch, cw = self.cells_per_tile
        return rows * ch, cols * cw

    @property
    def cell_downsample(self) -> float:
        """Level-0 px per heatmap cell."""
        return self.downsample * self.cell

    @property
    def footprint(self) -> tuple[float, float]:
        """A tile's ``(width, height)`` in level-0 px."""
        return self.tile[1] * self.downsample, self.tile[0] * self.downsample

    def origin(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Level-0 ``(x, y)`` of the top-left corners of tiles ``(rows, cols)`` (rounded down)."""
        x = np.floor(np.asarray(cols, dtype=np.float64) * self.tile[1] * self.downsample + 1e-9).astype(np.int64)
        y = np.floor(np.asarray(rows, dtype=np.float64) * self.tile[0] * self.downsample + 1e-9).astype(np.int64)
        return x, y

    def tile_at(self, x: float, y: float) -> tuple[int, int]:
        """The ``(row, col)`` of the tile holding level-0 point ``(x, y)``."""
        return int(y // (self.tile[0] * self.downsample)), int(x // (self.tile[1] * self.downsample))

    def as_dict(self) -> dict:
        return {"slide_size": list(self.slide_size), "resolution": self.resolution.as_dict(), "tile": list(self.tile),
                "cell": self.cell, "shape": list(self.shape)}


def tissue_tiles(grid: SlideGrid, tissue, min_tissue: float) -> tuple[np.ndarray, np.ndarray]:
    """``(rc, fraction)``: ``(n, 2)`` int32 row/col of the tiles whose tissue fraction is at least
    ``min_tissue`` (row-major order), and that fraction ``(n,)`` float32. ``min_tissue=0`` keeps
    every tile, glass included."""
    if not 0.0 <= min_tissue <= 1.0:
        raise ValueError(f"min_tissue must be in [0, 1], got {min_tissue}")
    rows, cols = grid.shape
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()
    x, y = grid.origin(rr, cc)
    fraction = tissue.coverage(x, y, grid.footprint).astype(np.float32)
    keep = fraction >= min_tissue if min_tissue > 0 else np.ones_like(fraction, dtype=bool)
    return np.stack([rr[keep], cc[keep]], axis=1).astype(np.int32), fraction[keep]
