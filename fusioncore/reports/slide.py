"""Files of a slide heatmap run: ``heatmap.tif``, ``overlay.png``, ``tissue.png``, ``regions.csv``,
``regions.geojson`` and ``summary.json``.

* ``heatmap.tif`` — a pyramidal, tiled (256 px), deflate-compressed 8-bit TIFF, levels as
  successive directories (the layout OpenSlide's generic-TIFF reader and QuPath open). One px per
  model patch: level 0 covers ``D`` level-0 slide px per side (``D`` in the ImageDescription JSON,
  and the TIFF resolution tags carry the matching microns per px, so QuPath shows it at the
  slide's physical scale). Values: 0 = no tissue tile, else ``map = (value - 1) / 254``.
* ``overlay.png`` — the slide's thumbnail with the map blended over its tissue tiles and the top-k
  regions outlined and numbered.
* ``regions.geojson`` — a GeoJSON FeatureCollection of the top-k regions as polygons in level-0
  px (QuPath's convention: File > Import objects), with their scores as measurements.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..explain.heatmap import overlay
from ..slides.aggregate import Region, decode_cells

TIFF_TILE = 256


def pyramid(level0: np.ndarray, min_side: int = TIFF_TILE) -> list[np.ndarray]:
    """Levels of an encoded cell map (0 = none), each half the last, until both sides fit in
    ``min_side``; always at least two. A reduced px is the mean of its non-zero px (0 if none)."""
    levels = [level0]
    while len(levels) < 2 or max(levels[-1].shape) > min_side:
        prev = levels[-1]
        if min(prev.shape) < 2:
            break
        h, w = prev.shape[0] // 2 * 2, prev.shape[1] // 2 * 2
        blocks = prev[:h, :w].reshape(h // 2, 2, w // 2, 2).astype(np.uint16)
        count = (blocks > 0).sum(axis=(1, 3))
        total = blocks.sum(axis=(1, 3))
        levels.append(np.where(count > 0, np.rint(total / np.maximum(count, 1)), 0).astype(np.uint8))
    return levels


def write_heatmap_tiff(path: Path, level0: np.ndarray, *, cell_downsample: float, slide_mpp: float | None,
                       description: dict) -> Path:
    """Write the encoded cell map ``level0`` (uint8, see the module docstring) as a pyramidal TIFF."""
    import tifffile

    levels = pyramid(level0)
    meta = {"fusioncore": "slide heatmap", "value": "0 = no tissue tile; map = (value - 1) / 254",
            "level0_slide_px_per_px": cell_downsample, **description}
    with tifffile.TiffWriter(path, bigtiff=level0.size > 2**31) as tif:
        for index, data in enumerate(levels):
            scale = cell_downsample * level0.shape[1] / data.shape[1]
            kwargs = {}
            if slide_mpp:
                kwargs = {"resolution": (1e4 / (slide_mpp * scale),) * 2, "resolutionunit": "CENTIMETER"}
            tif.write(data, tile=(TIFF_TILE, TIFF_TILE), compression="zlib", photometric="minisblack",
                      subfiletype=1 if index else 0, description=json.dumps(meta) if index == 0 else None,
                      metadata=None, **kwargs)
    return path


def heat_for_thumbnail(level0: np.ndarray, cell_downsample: float, thumb_shape: tuple[int, int],
                       thumb_downsample: float) -> np.ndarray:
    """The map sampled at each thumbnail px centre (nearest cell): float32, NaN off tissue."""
    th, tw = thumb_shape
    ys = np.minimum(((np.arange(th) + 0.5) * thumb_downsample / cell_downsample).astype(np.int64), level0.shape[0] - 1)
    xs = np.minimum(((np.arange(tw) + 0.5) * thumb_downsample / cell_downsample).astype(np.int64), level0.shape[1] - 1)
    return decode_cells(level0[np.ix_(ys, xs)])


def write_overlay_png(path: Path, thumb: np.ndarray, thumb_downsample: float, level0: np.ndarray,
                      cell_downsample: float, regions: list[Region], *, colormap: str = "viridis",
                      alpha: float = 0.5) -> Path:
    """The thumbnail with the map over tissue tiles and the regions outlined (rank labels)."""
    heat = heat_for_thumbnail(level0, cell_downsample, thumb.shape[:2], thumb_downsample)
    image = Image.fromarray(overlay(thumb, heat, colormap=colormap, alpha=alpha))
    draw = ImageDraw.Draw(image)
    for region in regions:
        box = [region.x / thumb_downsample, region.y / thumb_downsample,
               (region.x + region.width) / thumb_downsample, (region.y + region.height) / thumb_downsample]
        draw.rectangle(box, outline=(230, 30, 30), width=2)
        draw.text((box[2] + 2, box[1]), str(region.rank), fill=(230, 30, 30))
    image.save(path)
    return path


def write_tissue_png(path: Path, mask: np.ndarray) -> Path:
    """The tissue mask as a black (glass) / white (tissue) PNG at the mask's resolution."""
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return path


REGION_COLUMNS = ("rank", "x", "y", "width", "height", "score", "predicted", "probability", "confidence", "tissue",
                  "row", "col")


def write_regions_csv(path: Path, regions: list[Region]) -> Path:
    """One row per region; ``x, y, width, height`` in level-0 px."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=REGION_COLUMNS)
        writer.writeheader()
        for r in regions:
            writer.writerow({c: _fmt(getattr(r, c)) for c in REGION_COLUMNS})
    return path


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def regions_geojson(regions: list[Region], slide_name: str) -> dict:
    """A GeoJSON FeatureCollection (RFC 7946 structure; level-0 px as coordinates, as QuPath uses)."""
    features = []
    for r in regions:
        x0, y0, x1, y1 = r.x, r.y, r.x + r.width, r.y + r.height
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]  # counter-clockwise in x-right, y-up terms
        measurements = {"score": r.score, "probability": r.probability, "tissue": r.tissue}
        if r.confidence is not None:
            measurements["confidence"] = r.confidence
        features.append({
            "type": "Feature",
            "id": f"region-{r.rank}",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"objectType": "annotation", "name": f"fusioncore region {r.rank}",
                           "classification": {"name": r.predicted, "color": [230, 30, 30]},
                           "measurements": measurements, "rank": r.rank, "slide": slide_name},
        })
    return {"type": "FeatureCollection", "features": features}


def write_regions_geojson(path: Path, regions: list[Region], slide_name: str) -> Path:
    path.write_text(json.dumps(regions_geojson(regions, slide_name), indent=1))
    return path
