"""``fusioncore explain heatmap``: a model's image map over a large region, written as files.

:mod:`fusioncore.explain.heatmap` tiles the image and stitches the map; this module writes the
overlay PNG and the raw map (``.npy`` / ``.tiff``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..checkpoint import load
from ..data.images import read_image
from ..explain.heatmap import model_map_fn, overlay, plan_tiles, tiled_map


def save_map(heat: np.ndarray, path: str | Path) -> Path:
    """Write the raw map as ``.npy`` or 32-bit float ``.tif``/``.tiff`` (by suffix)."""
    from PIL import Image

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, heat.astype(np.float32))
    elif suffix in (".tif", ".tiff"):
        Image.fromarray(heat.astype(np.float32), mode="F").save(path)
    else:
        raise ValueError(f"{path}: the raw map is written as .npy or .tiff, not {suffix or 'no suffix'}")
    return path


def explain_heatmap_cli(
    checkpoint: str | Path,
    image: str | Path,
    out: str | Path,
    *,
    modality: str | None = None,
    tile: int | None = None,
    overlap: int = 0,
    stride: int | None = None,
    batch_size: int = 64,
    device: str = "auto",
    raw_format: str = "npy",
    colormap: str = "viridis",
    alpha: float = 0.6,
) -> dict[str, object]:
    """``fusioncore explain heatmap``: write ``OUT.png`` (overlay) and ``OUT.npy``/``OUT.tiff`` (raw map).

    Returns a summary dict (paths, image size, tiles, conversion note, map min/mean/max).
    """
    if raw_format not in ("npy", "tiff"):
        raise ValueError(f"raw_format must be 'npy' or 'tiff', got {raw_format!r}")
    model = load(checkpoint, device=device)
    loaded = read_image(image)
    map_fn, size, name = model_map_fn(model, modality)
    heat = tiled_map(loaded.pixels, map_fn, model_size=size, tile=tile, overlap=overlap, stride=stride,
                     batch_size=batch_size, device=model.device)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out if out.suffix.lower() == ".png" else out.with_suffix(".png")
    Image.fromarray(overlay(loaded.pixels, heat, colormap=colormap, alpha=alpha)).save(png)
    raw = save_map(heat, png.with_suffix("." + raw_format))
    plan = plan_tiles(heat.shape[0], heat.shape[1], int(tile or max(size)), overlap, stride)
    return {
        "overlay": str(png),
        "map": str(raw),
        "modality": name,
        "image_size": [int(heat.shape[0]), int(heat.shape[1])],
        "tiles": plan.n_tiles,
        "conversion": loaded.conversion,
        "map_min": float(heat.min()),
        "map_mean": float(heat.mean()),
        "map_max": float(heat.max()),
    }


__all__ = ["explain_heatmap_cli", "save_map"]
