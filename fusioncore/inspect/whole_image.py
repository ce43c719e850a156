"""Informativeness maps of whole images larger than the model input (the dashboard's tiled view).

A slide region of thousands of pixels is tiled, every tile goes through the model's image
gate in batches (on the GPU when there is one), and the map is stitched back at full
resolution. The dashboard shows a downsampled copy (a browser cannot draw 8k x 8k heatmaps)
and offers the full-resolution map for download.

The image comes from a browser upload, so it is bounded like every upload: at most
:data:`~fusioncore.inspect.uploads.UPLOAD_MAX_PIXELS` pixels (refused before decoding), tiles of
at least :data:`MIN_TILE_PX` pixels and at most :data:`MAX_TILES` of them, so one click costs at
most about the 64-pixel tiling of a 40-megapixel image. Larger images are whole slides: they
belong to the slide reader, which streams them.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..data.images import ImageLoadError, read_image
from ..explain.heatmap import model_map_fn, plan_tiles, tiled_map
from .uploads import UPLOAD_MAX_PIXELS

#: Smallest tile side accepted (a tile is resized to the model's input, so smaller tiles only
#: multiply the work).
MIN_TILE_PX = 32
#: Most tiles one whole-image map may take (the 64-px tiling of a 40-megapixel image is ~9,800).
MAX_TILES = 10_000


def _n_tiles(height: int, width: int, tile: int, overlap: int) -> int:
    plan = plan_tiles(height, width, tile, overlap)
    return len(plan.ys) * len(plan.xs)


def check_tiling(height: int, width: int, tile: int, overlap: int = 0) -> int:
    """The number of tiles of a ``height x width`` image; ``ValueError`` saying the smallest
    tile that fits when ``tile`` is below :data:`MIN_TILE_PX` or gives more than :data:`MAX_TILES`."""
    if tile < MIN_TILE_PX:
        raise ValueError(f"tile size {tile} px is below the minimum of {MIN_TILE_PX} px")
    n = _n_tiles(height, width, tile, overlap)
    if n > MAX_TILES:
        low, high = tile, max(height, width, tile)
        while low < high:  # the smallest tile (same overlap) within the budget
            mid = (low + high) // 2
            low, high = (mid + 1, high) if _n_tiles(height, width, mid, overlap) > MAX_TILES else (low, mid)
        raise ValueError(f"{width} x {height} px in {tile}-px tiles (overlap {overlap}) makes {n:,} tiles, more than "
                         f"the {MAX_TILES:,} one map may take; use tiles of at least {low} px, less overlap, "
                         "or a smaller image")
    return n


@dataclass(frozen=True)
class WholeImageMap:
    """A stitched map and its display copy.

    pixels:   ``(h, w, 3)`` uint8 display copy of the image (longest side <= ``max_display``).
    heat:     ``(h, w)`` float32 display copy of the map.
    full_map: ``(H, W)`` float32 map at the image's own resolution.
    """

    modality: str
    pixels: np.ndarray
    heat: np.ndarray
    full_map: np.ndarray
    n_tiles: int
    seconds: float
    conversion: str

    def npy_bytes(self) -> bytes:
        """The full-resolution map as a ``.npy`` file (for download)."""
        import io

        buffer = io.BytesIO()
        np.save(buffer, self.full_map)
        return buffer.getvalue()


def _shrink(array: np.ndarray, max_side: int, resample) -> np.ndarray:
    h, w = array.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return array
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if array.ndim == 2:
        return np.asarray(Image.fromarray(array.astype(np.float32), mode="F").resize(size, resample), dtype=np.float32)
    return np.asarray(Image.fromarray(array).resize(size, resample))


def whole_image_heatmap(
    model,
    payload: bytes,
    name: str,
    *,
    modality: str | None = None,
    tile: int | None = None,
    overlap: int = 0,
    batch_size: int = 64,
    device=None,
    progress: Callable[[int, int], None] | None = None,
    max_display: int = 768,
    max_pixels: int = UPLOAD_MAX_PIXELS,
) -> WholeImageMap:
    """Tile, infer and stitch the map of an uploaded image file (``payload`` named ``name``).

    Bad files (not an image, truncated, a decompression bomb, above ``max_pixels``) raise
    ``ImageLoadError`` naming ``name`` (never the server's temporary folder); a model without an
    image gate, or a tiling beyond :func:`check_tiling`'s bounds, raises ``ValueError``.
    """
    map_fn, size, modality = model_map_fn(model, modality)
    with tempfile.TemporaryDirectory(prefix="fc-image-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(payload)
        try:
            loaded = read_image(path, max_pixels=max_pixels)
        except ImageLoadError as err:
            raise ImageLoadError(str(err).replace(str(path), Path(name).name)) from err
    tile = int(tile or max(size))
    check_tiling(loaded.pixels.shape[0], loaded.pixels.shape[1], tile, overlap)
    start = time.perf_counter()
    full = tiled_map(loaded.pixels, map_fn, model_size=size, tile=tile, overlap=overlap, batch_size=batch_size,
                     device=device if device is not None else model.device, progress=progress)
    seconds = time.perf_counter() - start
    plan = plan_tiles(loaded.pixels.shape[0], loaded.pixels.shape[1], tile, overlap)
    return WholeImageMap(
        modality=modality,
        pixels=_shrink(loaded.pixels, max_display, Image.Resampling.BILINEAR),
        heat=_shrink(full, max_display, Image.Resampling.BILINEAR),
        full_map=full,
        n_tiles=len(plan.ys) * len(plan.xs),
        seconds=seconds,
        conversion=loaded.conversion,
    )
