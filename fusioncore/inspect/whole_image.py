"""Informativeness maps of whole images larger than the model input (the dashboard's tiled view).

A slide region of thousands of pixels is tiled, every tile goes through the model's image
gate in batches (on the GPU when there is one), and the map is stitched back at full
resolution. The dashboard shows a downsampled copy (a browser cannot draw 8k x 8k heatmaps)
and offers the full-resolution map for download.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..data.images import DEFAULT_MAX_PIXELS, read_image
from ..explain.heatmap import model_map_fn, plan_tiles, tiled_map


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
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> WholeImageMap:
    """Tile, infer and stitch the map of an uploaded image file (``payload`` named ``name``).

    Bad files (not an image, truncated, a decompression bomb) raise ``ImageLoadError`` naming
    ``name``; a model without an image gate raises ``ValueError``.
    """
    map_fn, size, modality = model_map_fn(model, modality)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(payload)
        loaded = read_image(path, max_pixels=max_pixels)
    start = time.perf_counter()
    tile = int(tile or max(size))
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
