"""The dashboard's slide viewer backend (no Streamlit): a finished slide run, and one tile of it at
full resolution.

:func:`load_run` reads a run folder written by :func:`fusioncore.reports.slide_run.explain_slide`;
:func:`inspect_tile` re-reads the model tile under a level-0 point exactly as the run read it (same
block, same resize) and runs the model on it in float32, so the panel beside the viewer shows the
tile's pixels, its map at the model's resolution, its class probabilities and confidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..slides.grid import Resolution, SlideGrid
from ..slides.infer import SlideModel
from ..slides.reader import open_slide
from ..slides.stream import BlockReader
from .figures import FigureBundle


@dataclass(frozen=True)
class SlideRun:
    """A finished run folder: its summary and files."""

    folder: Path
    summary: dict

    @property
    def grid(self) -> SlideGrid:
        g = self.summary["grid"]
        return SlideGrid(tuple(g["slide_size"]), Resolution(**g["resolution"]), tuple(g["tile"]), int(g["cell"]))

    @property
    def block(self) -> int:
        return int(json.loads((self.folder / "work" / "plan.json").read_text())["block"])

    def file(self, name: str) -> Path:
        return self.folder / name

    def regions_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.summary["regions"])


def load_run(folder: str | Path) -> SlideRun:
    """A finished run; ``ValueError`` naming the folder when it is not one."""
    folder = Path(folder)
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{folder}: not a finished slide run (summary.json unreadable: {err})") from err
    if summary.get("status") != "complete":
        raise ValueError(f"{folder}: the slide run is not complete")
    return SlideRun(folder, summary)


@dataclass(frozen=True)
class SlideTile:
    """One model tile: ``pixels`` ``(h, w, 3)`` uint8 and ``heat`` ``(h, w)`` float32 at the model's
    resolution; ``box`` ``(x, y, width, height)`` in level-0 px."""

    row: int
    col: int
    box: tuple[int, int, int, int]
    pixels: np.ndarray
    heat: np.ndarray
    classes: list[str]
    probabilities: np.ndarray
    confidence: float | None
    modality: str

    @property
    def predicted(self) -> str:
        return self.classes[int(np.argmax(self.probabilities))]

    @property
    def score(self) -> float:
        return float(self.heat.mean())


def inspect_tile(run: SlideRun, slide_path: str | Path, model, x: float, y: float) -> SlideTile:
    """The tile under level-0 point ``(x, y)`` of ``run``'s slide, re-inferred in float32."""
    grid = run.grid
    row, col = grid.tile_at(x, y)
    rows, cols = grid.shape
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"({x:.0f}, {y:.0f}) is outside the slide ({grid.slide_size[0]} x {grid.slide_size[1]} px)")
    slide_model = SlideModel(model, run.summary["modality"], precision="fp32")
    with open_slide(slide_path) as slide:
        pixels = BlockReader(slide, grid, run.block).tiles(np.array([[row, col]]))
    out = slide_model(pixels)
    cell = slide_model.cell
    heat = np.kron(out.cells[0], np.ones((cell, cell), dtype=np.float32))
    x0, y0 = (int(v[0]) for v in grid.origin(np.array([row]), np.array([col])))
    w, h = grid.footprint
    conf = float(out.confidence[0])
    return SlideTile(row, col, (x0, y0, int(round(w)), int(round(h))), pixels[0], heat, list(slide_model.classes),
                     out.probs[0], conf if np.isfinite(conf) else None, slide_model.modality)


def tile_figure(tile: SlideTile, *, opacity: float = 0.5, colorscale: str = "Viridis", top_k: int = 3,
                patch_size: int = 8) -> FigureBundle:
    """The tile beside its map at full resolution (the sample view's heatmap figure)."""
    from .. import viz

    fig = viz.image_heatmap_figure(tile.pixels, tile.heat, opacity=opacity, colorscale=colorscale, top_k=top_k,
                                   patch_size=patch_size, side_by_side=True,
                                   title=f"Tile ({tile.box[0]}, {tile.box[1]}): {tile.predicted}")
    ys, xs = np.mgrid[0 : tile.heat.shape[0], 0 : tile.heat.shape[1]]
    data = pd.DataFrame({"x": xs.ravel(), "y": ys.ravel(), "map": tile.heat.ravel()})
    sid = f"tile_{tile.box[0]}_{tile.box[1]}"
    return FigureBundle("slide_tile", fig, data, sid, extra={"box_level0": list(tile.box)})
