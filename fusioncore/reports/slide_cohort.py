"""``fusioncore explain slides``: a cohort of slides, one slide per worker, into one CSV.

Slides come from a folder (every file with a slide suffix, sorted by path) or a CSV (column
``slide``, paths relative to the CSV, optional ``slide_id``). Under ``torchrun`` rank ``r`` of
``W`` takes slides ``r, r + W, ...`` (:func:`assign`); each slide goes to ``OUT/<slide_id>/`` and a
finished one (its ``summary.json`` says complete) is skipped. A slide that fails (corrupt,
truncated) gets ``OUT/<slide_id>/error.json`` and the cohort goes on. When every rank is done,
rank 0 writes ``OUT/slides.csv`` from the folders alone, so the CSV does not depend on how many
processes ran or which one ran which slide.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..slides.reader import SLIDE_SUFFIXES
from .slide_run import SUMMARY, SlideOptions, explain_slide, is_complete

ERROR = "error.json"
CSV_NAME = "slides.csv"


class CohortError(ValueError):
    """A slide list that cannot be used; the message names the file and row."""


def list_slides(source: str | Path) -> list[tuple[str, Path]]:
    """``(slide_id, path)`` for every slide of a folder or a CSV (see the module docstring)."""
    source = Path(source)
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in SLIDE_SUFFIXES)
        if not paths:
            raise CohortError(f"{source}: no slide files (suffixes {', '.join(SLIDE_SUFFIXES)})")
        pairs = [(p.relative_to(source).with_suffix("").as_posix().replace("/", "__"), p) for p in paths]
    elif source.is_file():
        pairs = _from_csv(source)
    else:
        raise CohortError(f"{source}: no such folder or CSV file")
    seen: dict[str, Path] = {}
    for sid, path in pairs:
        if sid in seen:
            raise CohortError(f"{source}: slide id {sid!r} is used twice ({seen[sid]} and {path})")
        seen[sid] = path
    return pairs


def _from_csv(path: Path) -> list[tuple[str, Path]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "slide" not in reader.fieldnames:
            raise CohortError(f"{path}: needs a 'slide' column (paths relative to the CSV); columns are "
                              f"{reader.fieldnames}")
        pairs = []
        for row_no, row in enumerate(reader, start=2):
            value = (row.get("slide") or "").strip()
            if not value:
                raise CohortError(f"{path}, row {row_no}, column 'slide': empty")
            slide = (path.parent / value) if not Path(value).is_absolute() else Path(value)
            sid = (row.get("slide_id") or "").strip() or Path(value).stem
            if "/" in sid or "\\" in sid or sid in (".", ".."):
                raise CohortError(f"{path}, row {row_no}, column 'slide_id': {sid!r} cannot name a folder")
            pairs.append((sid, slide))
    if not pairs:
        raise CohortError(f"{path}: no rows")
    return pairs


def assign(n: int, rank: int, world: int) -> list[int]:
    """The slide indices rank ``rank`` of ``world`` runs (round robin: one slide per worker at a time)."""
    return list(range(rank, n, world))


def run_share(model, slides: list[tuple[str, Path]], out: Path, options: SlideOptions, *, rank: int = 0,
              world: int = 1, progress_for=None) -> list[dict]:
    """Run this rank's slides; returns one ``{slide_id, status, seconds?, error?}`` per slide."""
    done = []
    for index in assign(len(slides), rank, world):
        sid, path = slides[index]
        folder = out / sid
        if is_complete(folder):
            done.append({"slide_id": sid, "status": "skipped (already complete)"})
            continue
        try:
            summary = explain_slide(model, path, folder, options, progress=progress_for(sid) if progress_for else None)
        except ValueError as err:  # a bad slide: record it, go on with the cohort
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ERROR).write_text(json.dumps({"slide": str(path), "error": str(err)}, indent=1))
            done.append({"slide_id": sid, "status": "error", "error": str(err)})
            continue
        (folder / ERROR).unlink(missing_ok=True)
        done.append({"slide_id": sid, "status": "computed", "seconds": summary["run"]["seconds"]})
    return done


def cohort_rows(slides: list[tuple[str, Path]], out: Path) -> list[dict]:
    """One row per slide, read from its folder (complete summary, error record, or missing)."""
    rows = []
    for sid, path in slides:
        folder = out / sid
        row = {"slide_id": sid, "slide": str(path)}
        if is_complete(folder):
            row |= _summary_row(json.loads((folder / SUMMARY).read_text()))
        elif (folder / ERROR).is_file():
            row |= {"status": "error", "error": json.loads((folder / ERROR).read_text()).get("error", "")}
        else:
            row |= {"status": "missing"}
        rows.append(row)
    return rows


def _summary_row(summary: dict) -> dict:
    pred = summary["prediction"]
    row = {"status": "done", "predicted": pred["predicted"] or "", "tiles": pred["n_tiles"],
           "tissue_fraction": summary["tissue"]["fraction"], "mpp": summary["resolution"]["mpp"],
           "downsample": summary["resolution"]["downsample"], "level": summary["resolution"]["level"]}
    row |= {f"p_{c}": p for c, p in pred["probabilities"].items()}
    for modality, conf in pred["confidence"].items():
        row[f"confidence_{modality}"] = None if conf is None else conf["weighted_mean"]
    row["map_mean"] = pred["map_spread"]["mean"]
    return row


def write_cohort_csv(path: Path, rows: list[dict]) -> Path:
    """``rows`` as CSV; columns in first-seen order, floats with 6 significant digits."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    if "error" in columns:
        columns.append(columns.pop(columns.index("error")))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: (f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v))
                             for c, v in ((c, row.get(c)) for c in columns)})
    return path
