"""Test slides: pyramidal JPEG-compressed TIFFs with tissue islands (from real H&E tiles) on glass.

:func:`write_test_slide` writes a slide of any size without holding it in memory: every 256-px TIFF
tile of every level is rendered on its own (island geometry evaluated at the tile's pixel centres,
tissue texture sampled from the given real tiles, glass a light grey with sensor noise), so a
60,000 x 60,000-px slide costs a few megabytes of memory and a couple of minutes.

Layouts: ``"pages"`` stores levels as successive TIFF directories (OpenSlide's generic-TIFF layout,
microns per pixel in the resolution tags); ``"subifds"`` stores them as SubIFDs of level 0 (the
OME-TIFF layout, which OpenSlide reads as a single level and tiffslide reads whole).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

GLASS = (243, 241, 244)
TILE = 256


@dataclass(frozen=True)
class Island:
    """An ellipse of tissue (level-0 px) filled with texture ``texture`` (an index into the tiles)."""

    cx: float
    cy: float
    rx: float
    ry: float
    angle: float
    texture: int


def make_islands(size: tuple[int, int], n: int, seed: int, n_textures: int, coverage: float = 0.35) -> list[Island]:
    """``n`` non-degenerate ellipses covering roughly ``coverage`` of a ``(width, height)`` slide."""
    rng = np.random.default_rng(seed)
    w, h = size
    area = coverage * w * h / max(n, 1)
    islands = []
    for _ in range(n):
        aspect = rng.uniform(0.5, 2.0)
        rx = np.sqrt(area * aspect / np.pi)
        ry = area / (np.pi * rx)
        islands.append(Island(float(rng.uniform(0.15, 0.85) * w), float(rng.uniform(0.15, 0.85) * h), float(rx),
                              float(ry), float(rng.uniform(0, np.pi)), int(rng.integers(n_textures))))
    return islands


def render(x0: int, y0: int, shape: tuple[int, int], downsample: int, islands: Sequence[Island],
           textures: Sequence[np.ndarray], seed: int = 0) -> np.ndarray:
    """uint8 ``(h, w, 3)`` of the slide at ``downsample``, level px from ``(x0, y0)`` (in that level's px)."""
    h, w = shape
    ys = (y0 + np.arange(h) + 0.5) * downsample
    xs = (x0 + np.arange(w) + 0.5) * downsample
    rng = np.random.default_rng([seed, x0, y0, downsample])
    out = np.empty((h, w, 3), dtype=np.uint8)
    out[:] = GLASS
    out = np.clip(out.astype(np.int16) + rng.integers(-3, 4, size=(h, w, 1)), 0, 255).astype(np.uint8)
    gx, gy = np.meshgrid(xs, ys)
    for isl in islands:
        if xs[-1] < isl.cx - max(isl.rx, isl.ry) or xs[0] > isl.cx + max(isl.rx, isl.ry):
            continue
        if ys[-1] < isl.cy - max(isl.rx, isl.ry) or ys[0] > isl.cy + max(isl.rx, isl.ry):
            continue
        c, s = np.cos(isl.angle), np.sin(isl.angle)
        u, v = (gx - isl.cx) * c + (gy - isl.cy) * s, -(gx - isl.cx) * s + (gy - isl.cy) * c
        inside = (u / isl.rx) ** 2 + (v / isl.ry) ** 2 <= 1.0
        if inside.any():
            tex = textures[isl.texture]
            ty = (gy[inside] % tex.shape[0]).astype(np.int64)
            tx = (gx[inside] % tex.shape[1]).astype(np.int64)
            out[inside] = tex[ty, tx]
    return out


def _tiles(level_size: tuple[int, int], downsample: int, islands, textures, seed: int) -> Iterator[np.ndarray]:
    w, h = level_size
    for y in range(0, h, TILE):
        for x in range(0, w, TILE):
            yield render(x, y, (TILE, TILE), downsample, islands, textures, seed)


def write_test_slide(path: str | Path, size: tuple[int, int], textures: Sequence[np.ndarray], *, levels: int = 3,
                     mpp: float = 0.5, n_islands: int = 4, seed: int = 0, layout: str = "pages",
                     quality: int = 85) -> Path:
    """Write a ``size = (width, height)`` slide with ``levels`` levels (each half the last) to ``path``."""
    import tifffile

    if layout not in ("pages", "subifds"):
        raise ValueError(f"layout must be 'pages' or 'subifds', got {layout!r}")
    textures = [np.ascontiguousarray(np.asarray(t)[..., :3], dtype=np.uint8) for t in textures]
    islands = make_islands(size, n_islands, seed, len(textures))
    path = Path(path)
    w, h = size
    with tifffile.TiffWriter(path, bigtiff=w * h * 3 > 2**31) as tif:
        for level in range(levels):
            ds = 2**level
            lw, lh = -(-w // ds), -(-h // ds)
            options = dict(tile=(TILE, TILE), compression="jpeg", compressionargs={"level": quality}, photometric="rgb",
                           resolution=(1e4 / (mpp * ds), 1e4 / (mpp * ds)), resolutionunit="CENTIMETER",
                           shape=(lh, lw, 3), dtype=np.uint8, metadata=None)
            if layout == "subifds" and level == 0:
                options["subifds"] = levels - 1
            tif.write(_tiles((lw, lh), ds, islands, textures, seed), subfiletype=1 if level else 0, **options)
    return path
