"""Deep Zoom tiles cut on demand from a slide and from its ``heatmap.tif``, for the viewer.

Both layers go through :class:`openslide.deepzoom.DeepZoomGenerator` (the slide through
:class:`~fusioncore.slides.reader.Slide`, which answers OpenSlide's API for either backend; the
heatmap through OpenSlide's generic-TIFF reader, the same file QuPath opens). Slide tiles are
JPEG; heatmap tiles are PNG with the colour map applied on the server (a lookup table, so a
change of colour map costs one table) and alpha 0 where no tissue tile was inferred.

The viewer places the heatmap over the slide by width: the heatmap's level 0 is one px per model
patch, ``D = cell_downsample`` slide px, so in viewport units (slide width = 1) its width is
``heat_width * D / slide_width`` (:meth:`SlideLayers.heatmap_width`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .reader import Slide, SlideError, open_slide

TILE_SIZE = 254
OVERLAP = 1
COLORMAPS = ("viridis", "magma", "inferno", "plasma", "turbo", "jet", "RdYlBu_r", "gray")


@lru_cache(maxsize=16)
def colour_table(colormap: str) -> np.ndarray:
    """``(256, 4)`` uint8 RGBA for encoded heatmap values: 0 transparent, ``1 + 254 * map`` coloured."""
    import matplotlib

    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colour map {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    table = np.zeros((256, 4), dtype=np.uint8)
    table[1:] = matplotlib.colormaps[colormap](np.linspace(0.0, 1.0, 255), bytes=True)
    table[1:, 3] = 255
    return table


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(buffer, "JPEG", quality=85)
    else:
        image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@dataclass
class SlideLayers:
    """A slide and (optionally) its heatmap, cut into Deep Zoom tiles. Thread-safe for reading."""

    slide: Slide
    heatmap: Slide | None
    cell_downsample: float | None

    def __post_init__(self) -> None:
        from openslide.deepzoom import DeepZoomGenerator

        self._slide_dz = DeepZoomGenerator(self.slide.openslide_api, tile_size=TILE_SIZE, overlap=OVERLAP)
        self._heat_dz = (DeepZoomGenerator(self.heatmap.openslide_api, tile_size=TILE_SIZE, overlap=OVERLAP)
                         if self.heatmap is not None else None)

    @classmethod
    def open(cls, slide_path: str | Path, heatmap_path: str | Path | None = None,
             cell_downsample: float | None = None) -> "SlideLayers":
        heat = open_slide(heatmap_path) if heatmap_path is not None else None
        return cls(open_slide(slide_path), heat, cell_downsample)

    def _generator(self, layer: str):
        if layer == "slide":
            return self._slide_dz
        if layer == "heatmap" and self._heat_dz is not None:
            return self._heat_dz
        raise SlideError(f"no {layer!r} layer for {self.slide.path.name}")

    def dzi(self, layer: str) -> str:
        """The layer's ``.dzi`` descriptor (XML)."""
        return self._generator(layer).get_dzi("jpeg" if layer == "slide" else "png")

    def tile(self, layer: str, level: int, col: int, row: int, colormap: str = "viridis") -> tuple[bytes, str]:
        """``(bytes, media type)`` of one Deep Zoom tile; a bad address raises ``ValueError``."""
        gen = self._generator(layer)
        try:
            image = gen.get_tile(level, (col, row))
        except ValueError as err:  # openslide: "Invalid level" / "Invalid address"
            raise ValueError(f"{layer} tile {level}/{col}_{row}: {err}") from err
        if layer == "slide":
            return _encode(image, "jpeg"), "image/jpeg"
        rgba = colour_table(colormap)[np.asarray(image)[..., 0]]  # grey replicated to RGB: any channel
        return _encode(Image.fromarray(rgba, "RGBA"), "png"), "image/png"

    def heatmap_width(self) -> float | None:
        """The heatmap's width in viewport units (slide width = 1), so it lies exactly over the slide."""
        if self.heatmap is None or not self.cell_downsample:
            return None
        return self.heatmap.dimensions[0] * self.cell_downsample / self.slide.dimensions[0]

    def close(self) -> None:
        self.slide.close()
        if self.heatmap is not None:
            self.heatmap.close()


def mask_png(mask: np.ndarray, colour: tuple[int, int, int] = (0, 200, 255), alpha: int = 90) -> bytes:
    """The tissue mask as an RGBA PNG: tissue tinted, glass transparent (an overlay image)."""
    rgba = np.zeros(mask.shape + (4,), dtype=np.uint8)
    rgba[mask] = (*colour, alpha)
    return _encode(Image.fromarray(rgba, "RGBA"), "png")
