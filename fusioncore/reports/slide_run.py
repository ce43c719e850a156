"""``fusioncore explain slide``: one slide through a model into a folder of result files.

Steps: open the slide (bad files refused by name) -> tissue mask -> grid at the model's
resolution -> the resumable tile store in ``OUT/work`` -> stream the pending tissue tiles through
the model -> aggregate -> write ``heatmap.tif``, ``overlay.png``, ``tissue.png``, ``regions.csv``,
``regions.geojson`` and, last, ``summary.json`` (its presence with ``"status": "complete"`` is
what marks the slide done for ``explain slides``).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..slides.aggregate import cell_map, predict_slide, top_regions
from ..slides.infer import SlideModel
from ..slides.reader import open_slide
from ..slides.store import TileStore
from ..slides.stream import plan_slide, run_tiles
from . import slide as files

SUMMARY = "summary.json"


@dataclass(frozen=True)
class SlideOptions:
    """How to run a slide (the CLI's flags)."""

    mpp: float | None = None
    level: int | None = None
    min_tissue: float = 0.1
    batch_size: int = 128
    precision: str = "fp32"
    compile: bool = False
    top_k: int = 10
    spacing: int = 1
    modality: str | None = None
    thumbnail: int = 2048


def is_complete(out: str | Path) -> bool:
    """Whether ``out`` holds a finished run (its summary says so)."""
    path = Path(out) / SUMMARY
    try:
        return json.loads(path.read_text()).get("status") == "complete"
    except (OSError, ValueError):
        return False


def _plan_record(slide, model, slide_model: SlideModel, plan, options: SlideOptions) -> dict:
    """What the tile store must match to be resumed (anything that changes a tile's numbers)."""
    return {"slide": slide.identity(), "checkpoint": str(model.checkpoint_path or model.method),
            "modality": slide_model.modality, "grid": plan.grid.as_dict(), "min_tissue": plan.min_tissue,
            "tissue_threshold": plan.tissue.threshold, "block": plan.block, "precision": slide_model.requested,
            "compile": options.compile, "n_tiles": int(len(plan.tiles))}


def explain_slide(model, slide_path: str | Path, out: str | Path, options: SlideOptions = SlideOptions(), *,
                  slide_model: SlideModel | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run ``model`` over the tissue of ``slide_path`` into folder ``out``; returns the summary dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    slide_model = slide_model or SlideModel(model, options.modality, precision=options.precision,
                                            compile=options.compile)
    model_mpp = model.schema.modality(slide_model.modality).mpp
    with open_slide(slide_path) as slide:
        plan = plan_slide(slide, slide_model, mpp=options.mpp, level=options.level, model_mpp=model_mpp,
                          min_tissue=options.min_tissue)
        store = TileStore.open(out / "work", _plan_record(slide, model, slide_model, plan, options), plan.tiles,
                               plan.fraction, plan.grid.cells_per_tile, len(slide_model.classes))
        stats = run_tiles(slide, slide_model, plan, store, batch_size=options.batch_size, progress=progress)
        t0 = time.perf_counter()
        summary = _write_outputs(slide, model, slide_model, plan, store, out, options)
        summary["run"] = stats.as_dict() | {"write_s": round(time.perf_counter() - t0, 3)}
    _write_summary(out, summary)
    return summary


def _write_outputs(slide, model, slide_model: SlideModel, plan, store, out: Path, options: SlideOptions) -> dict:
    grid = plan.grid
    prediction = predict_slide(store, slide_model.classes, slide_model.modality, slide_model.absent)
    regions = top_regions(plan, store, slide_model.classes, options.top_k, options.spacing)
    level0 = cell_map(plan, store)
    slide_mpp = slide.info.mpp[0] if slide.info.mpp else None
    files.write_heatmap_tiff(out / "heatmap.tif", level0, cell_downsample=grid.cell_downsample, slide_mpp=slide_mpp,
                             description={"slide": slide.path.name, "slide_dimensions": list(slide.dimensions),
                                          "method": model.method, "modality": slide_model.modality})
    thumb, thumb_ds = slide.thumbnail(options.thumbnail)
    files.write_overlay_png(out / "overlay.png", thumb, thumb_ds, level0, grid.cell_downsample, regions)
    files.write_tissue_png(out / "tissue.png", plan.tissue.mask)
    files.write_regions_csv(out / "regions.csv", regions)
    files.write_regions_geojson(out / "regions.geojson", regions, slide.path.name)
    absent = slide_model.absent
    return {
        "status": "complete",
        "warnings": _warnings(plan, slide_model),
        "slide": slide.info.as_dict(),
        "method": model.method,
        "checkpoint": str(model.checkpoint_path or ""),
        "modality": slide_model.modality,
        "absent_modalities": absent,
        "absent_note": (f"the slide stands for the image modality {slide_model.modality!r}; "
                        + (f"{', '.join(absent)} were flagged absent in every tile, so the prediction is the "
                           "model's prediction from the image alone and they have no confidence" if absent
                           else "the model has no other modality")),
        "resolution": grid.resolution.as_dict(),
        "grid": grid.as_dict() | {"cell_downsample": grid.cell_downsample},
        "tissue": {"fraction": plan.tissue.fraction, "threshold": plan.tissue.threshold,
                   "min_tissue": plan.min_tissue, "tiles": int(len(plan.tiles)),
                   "megapixels_at_model_resolution": len(plan.tiles) * slide_model.tile[0] * slide_model.tile[1] / 1e6},
        "prediction": prediction.as_dict(),
        "regions": [asdict(r) for r in regions],
        "model": slide_model.describe(),
        "files": {name: str(out / name) for name in ("heatmap.tif", "overlay.png", "tissue.png", "regions.csv",
                                                      "regions.geojson", SUMMARY)},
    }


def _warnings(plan, slide_model: SlideModel) -> list[str]:
    """What makes this result suspect, in words (the CLI prints them on stderr)."""
    out = []
    if not len(plan.tiles):
        out.append(f"no tissue tile found (tissue fraction {plan.tissue.fraction:.1%} of the slide, min_tissue "
                   f"{plan.min_tissue}): nothing was inferred and there is no slide-level prediction")
    if plan.grid.resolution.source.startswith("assumed"):
        out.append(plan.grid.resolution.source)
    check = slide_model.check
    if check and not check["kept"]:
        out.append(f"{check['precision']} differed from float32 by {max(check['max_abs_diff_map'], check['max_abs_diff_probs']):.3g} "
                   f"(> {check['tolerance']}) on the first batch: the run used float32")
    return out


def _finite(obj):
    """NaN/inf -> None, so the summary is valid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _write_summary(out: Path, summary: dict) -> None:
    tmp = out / (SUMMARY + ".tmp")
    tmp.write_text(json.dumps(_finite(summary), indent=1, default=str, allow_nan=False))
    os.replace(tmp, out / SUMMARY)
