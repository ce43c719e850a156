"""Whole-image informativeness heatmaps: tiled inference, stitching, overlays.

A model sees ``h x w`` inputs (64 x 64 for the demo). A larger image is cut into tiles of
``tile`` pixels (default: the model's input size, i.e. native resolution) every ``stride =
tile - overlap`` pixels, with the last row/column of tiles flush with the border; tiles are
resized to the model input when ``tile`` differs, inferred in batches (on the GPU when one is
available), their maps resized back and *averaged* where tiles overlap.

Memory: the only buffer that grows with the image's area is the output map ``(H, W)`` float32
(on the inference device). Overlap counts are separable (``rows(y) * cols(x)``), so they are two
1-D vectors, not a second full-size array; tiles are read from the image (any array-like that
can be sliced, e.g. an ``np.memmap``) one batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..device import select_device

MapFn = Callable[[Tensor], Tensor]  # (B, 3, h, w) float in [0, 1] -> (B, 1, h, w) map


def tile_starts(length: int, tile: int, stride: int) -> np.ndarray:
    """Start offsets of tiles of size ``tile`` every ``stride`` px covering ``[0, length)``.

    The last tile is flush with the end (it may overlap its neighbour more), so every pixel is
    covered and no tile leaves the image. ``length <= tile`` gives a single tile at 0.
    """
    if tile < 1 or stride < 1:
        raise ValueError(f"tile ({tile}) and stride ({stride}) must be positive")
    if length <= tile:
        return np.zeros(1, dtype=np.int64)
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return np.asarray(starts, dtype=np.int64)


@dataclass(frozen=True)
class TilingPlan:
    """Where the tiles of an ``height x width`` image go (``tile_h x tile_w`` each)."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    ys: np.ndarray
    xs: np.ndarray

    @property
    def n_tiles(self) -> int:
        return len(self.ys) * len(self.xs)

    def coverage(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row and per-column tile counts; a pixel's count is ``rows[y] * cols[x]``."""
        rows = np.zeros(self.height, dtype=np.float32)
        cols = np.zeros(self.width, dtype=np.float32)
        for y in self.ys:
            rows[y : y + self.tile_h] += 1
        for x in self.xs:
            cols[x : x + self.tile_w] += 1
        return rows, cols


def plan_tiles(height: int, width: int, tile: int, overlap: int = 0, stride: int | None = None) -> TilingPlan:
    """A :class:`TilingPlan`; ``stride`` (if given) overrides ``tile - overlap``."""
    if tile < 1:
        raise ValueError(f"tile size must be positive, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile) = [0, {tile}), got {overlap}")
    stride = tile - overlap if stride is None else int(stride)
    if not 1 <= stride <= tile:
        raise ValueError(f"stride must be in [1, tile] = [1, {tile}] so tiles cover the image, got {stride}")
    th, tw = min(tile, height), min(tile, width)
    return TilingPlan(height, width, th, tw, tile_starts(height, th, stride), tile_starts(width, tw, stride))


def _tiles_to_tensor(image, coords: list[tuple[int, int]], th: int, tw: int, device: torch.device) -> Tensor:
    """Slice ``coords`` tiles from ``(H, W, 3)`` ``image`` -> ``(B, 3, th, tw)`` float in [0, 1]."""
    stack = np.stack([np.asarray(image[y : y + th, x : x + tw, :3]) for y, x in coords])
    t = torch.from_numpy(stack).to(device)
    t = t.permute(0, 3, 1, 2)
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    return t.float()


@torch.inference_mode()
def tiled_map(
    image,
    map_fn: MapFn,
    *,
    model_size: tuple[int, int],
    tile: int | None = None,
    overlap: int = 0,
    stride: int | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """The ``(H, W)`` float32 map of a whole ``(H, W, 3)`` image (uint8, or float in [0, 1]).

    ``progress(done_tiles, total_tiles)`` is called after every batch of tiles (the dashboard's
    progress bar).

    ``map_fn`` maps ``(B, 3, h, w)`` model inputs to ``(B, 1, h, w)`` maps; ``model_size`` is
    ``(h, w)``. Where a tile is the whole image and has the model's size, the result equals
    ``map_fn`` on the image (same arithmetic, one tile).
    """
    if getattr(image, "ndim", None) != 3 or image.shape[2] < 3:
        raise ValueError(f"image must be an (H, W, 3) array, got shape {getattr(image, 'shape', None)}")
    dev = select_device(device)
    height, width = int(image.shape[0]), int(image.shape[1])
    tile = int(tile or max(model_size))
    plan = plan_tiles(height, width, tile, overlap, stride)
    th, tw = plan.tile_h, plan.tile_w
    out = torch.zeros((height, width), dtype=torch.float32, device=dev)
    coords = [(int(y), int(x)) for y in plan.ys for x in plan.xs]
    for start in range(0, len(coords), batch_size):
        chunk = coords[start : start + batch_size]
        x = _tiles_to_tensor(image, chunk, th, tw, dev)
        if (th, tw) != tuple(model_size):
            x = torch.nn.functional.interpolate(x, size=model_size, mode="bilinear", antialias=True, align_corners=False)
        m = map_fn(x).float()
        if m.shape[-2:] != (th, tw):
            m = torch.nn.functional.interpolate(m, size=(th, tw), mode="nearest")
        for (y, xx), tile_map in zip(chunk, m[:, 0]):
            out[y : y + th, xx : xx + tw] += tile_map
        if progress is not None:
            progress(start + len(chunk), len(coords))
    rows, cols = plan.coverage()
    if rows.max() > 1 or cols.max() > 1:
        out.div_(torch.from_numpy(rows).to(dev)[:, None]).div_(torch.from_numpy(cols).to(dev)[None, :])
    return out.cpu().numpy()


def model_map_fn(model, modality: str | None = None) -> tuple[MapFn, tuple[int, int], str]:
    """``(map_fn, (h, w), modality)`` for the image modality of a trained model.

    Uses the model's own map (:meth:`FusionModel.image_map`: MM-dynamics' U-Net gate) when it has
    one, else runs the model with only the image present and reads ``output.gates[modality]``.
    """
    from ..types import Batch

    images = [m for m in model.schema.modalities if m.kind == "image"]
    if not images:
        raise ValueError(f"the model has no image modality (modalities: {model.schema.modality_names})")
    spec = images[0] if modality is None else model.schema.modality(modality)
    if spec.kind != "image":
        raise ValueError(f"modality {spec.name!r} is {spec.kind}, not an image")
    size = (int(spec.shape[1]), int(spec.shape[2]))
    own = model.image_map(spec.name)
    if own is not None:
        return own, size, spec.name

    def via_forward(x: Tensor) -> Tensor:
        n = x.shape[0]
        inputs = {
            m.name: x if m.name == spec.name else torch.zeros((n, *m.shape), device=x.device)
            for m in model.schema.modalities
        }
        present = torch.zeros((n, len(model.schema.modalities)), dtype=torch.bool, device=x.device)
        present[:, model.schema.index(spec.name)] = True
        gates = model(Batch(inputs=inputs, present=present)).gates
        if spec.name not in gates:
            raise ValueError(f"method {model.method!r} gives no image map for {spec.name!r}")
        return gates[spec.name]

    return via_forward, size, spec.name


def overlay(pixels: np.ndarray, heat: np.ndarray, *, colormap: str = "viridis", alpha: float = 0.6,
            vmin: float = 0.0, vmax: float = 1.0, rows_per_chunk: int = 1024) -> np.ndarray:
    """``(H, W, 3)`` uint8 image blended with the colour-mapped ``(H, W)`` map (§5a: viridis, α 0.6).

    Pixels where the map is NaN (no value: e.g. glass on a slide) keep the image unblended. Done
    in row chunks so the float temporaries stay small for gigapixel-class images.
    """
    import matplotlib

    if pixels.shape[:2] != heat.shape:
        raise ValueError(f"image {pixels.shape[:2]} and map {heat.shape} differ in size")
    cmap = matplotlib.colormaps[colormap]
    out = np.empty(pixels.shape[:2] + (3,), dtype=np.uint8)
    scale = max(vmax - vmin, 1e-12)
    for r in range(0, heat.shape[0], rows_per_chunk):
        part = heat[r : r + rows_per_chunk]
        valid = np.isfinite(part)[..., None]
        norm = np.clip((np.nan_to_num(part, nan=vmin) - vmin) / scale, 0.0, 1.0)
        colour = cmap(norm, bytes=True)[..., :3].astype(np.float32)
        base = np.asarray(pixels[r : r + rows_per_chunk, :, :3], dtype=np.float32)
        blend = np.where(valid, (1 - alpha) * base + alpha * colour, base)
        out[r : r + rows_per_chunk] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
    return out
